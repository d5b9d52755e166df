"""The drop table's columns: what each shows, how it sorts, and which survive a narrow terminal.

Pure (Rich only, no Textual), so the layout rules are testable without an app.
Below ~130 columns the least useful columns are left out instead of squeezing
everything: at 80 columns the rate, reason, comm, total, service and interface stay
(context, share, trend, netns and subsystem go, in that order, the narrower it gets);
the rate and reason always stay. A row's kind is in text marks before its reason
(+ new, # counter, ~ benign) and in brackets around a comm that did not make the
drop, so nothing depends on colour.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.text import Text

from droptop import severity
from droptop.frontends.tui.format import (
    context_short,
    fit,
    human_count,
    human_rate,
    ifname_label,
    reason_label,
    reason_marks,
    row_netns_label,
    service_label,
    spark,
    task_label,
)
from droptop.model import DropRow, Snapshot
from droptop.sanitize import printable

CELL_PADDING = 1
"""Blank cells on each side of every table cell."""
NEW_ROW_REFRESHES = 3
"""A row that appears is marked new for this many refreshes."""
NEW_STYLE = "bold green"


@dataclass(frozen=True, slots=True)
class ColumnSpec:
    key: str
    label: str
    width: int
    """Minimum (and usual) width in cells, without padding."""
    priority: int
    """Lower numbers are kept first when the terminal is narrow."""
    sort_key: Callable[[DropRow], Any]
    numeric: bool
    """Numeric columns sort descending by default, text columns ascending."""
    right: bool = False
    """Right-align (numbers)."""
    grow: int = 0
    """Up to this many extra cells when there is room."""
    help: str = ""


COLUMNS: tuple[ColumnSpec, ...] = (
    ColumnSpec(
        "rate",
        "RATE/s",
        9,
        0,
        lambda r: (r.rate, r.packets),
        True,
        True,
        help="drops per second over the last interval, with a severity mark",
    ),
    ColumnSpec(
        "total",
        "TOTAL",
        6,
        3,
        lambda r: r.packets,
        True,
        True,
        help="packets dropped since start (or the last reset)",
    ),
    ColumnSpec(
        "share",
        "SHARE",
        6,
        7,
        lambda r: r.packets,
        True,
        True,
        help="this row's part of all drops since start (- for counter rows: not in the total)",
    ),
    ColumnSpec(
        "reason",
        "REASON",
        20,
        1,
        lambda r: (r.reason.name, r.reason.raw),
        False,
        grow=6,
        help="the kernel's drop reason, or a counter's name; marks before it: see Marks",
    ),
    ColumnSpec(
        "subsys",
        "SUBSYS",
        11,
        10,
        lambda r: (r.reason.subsys, r.reason.name),
        False,
        grow=6,
        help="subsystem that owns the reason: core, mac80211, openvswitch; snmp, driver "
        "for counter rows",
    ),
    ColumnSpec(
        "comm",
        "COMM",
        13,
        2,
        lambda r: (r.key.comm, r.key.kernel_context),
        False,
        grow=4,
        help="task running at the drop; [brackets] = it did not make the drop (kernel "
        "context, or only interrupted); - = a counter row",
    ),
    ColumnSpec(
        "ctx",
        "CTX",
        9,
        6,
        lambda r: (r.source, r.who.context),
        False,
        help="context: proc (own code path), inline (softirq in its own syscall), irq "
        "(softirq at interrupt exit: the task was interrupted), ksoftirqd, kthread, "
        "idle, hardirq, nmi; ctr = a counter row",
    ),
    ColumnSpec(
        "service",
        "SERVICE",
        11,
        4,
        lambda r: (r.who.service or "", r.key.comm),
        False,
        grow=10,
        help="service of the socket's or the task's cgroup: a systemd unit, docker:<id>, "
        "pod:<uid> (- = none: a drop at interrupt exit with no socket)",
    ),
    ColumnSpec(
        "if",
        "IF",
        7,
        5,
        lambda r: (r.ifname, r.key.ifindex),
        False,
        grow=8,
        help="interface the packet was on (- = none)",
    ),
    ColumnSpec(
        "netns",
        "NETNS",
        10,
        9,
        lambda r: (r.who.netns_name, r.key.netns),
        False,
        grow=14,
        help="network namespace: host, an `ip netns` name, pid N (comm) of a process in "
        "it, else its inode (- = none)",
    ),
    ColumnSpec(
        "trend",
        "TREND",
        10,
        8,
        lambda r: (r.rate, r.packets),
        True,
        grow=50,
        help="rate over the last minute, newest on the right",
    ),
)
BY_KEY = {c.key: c for c in COLUMNS}
DEFAULT_SORT = "rate"


def layout(width: int) -> dict[str, int]:
    """Column key -> content width for a table `width` cells wide, in display order.

    Columns are admitted by priority while they fit; the spare cells then go to the
    growing columns (reason first, then the trend). The rate and reason are always
    present; the reason shrinks (down to 6) before it is dropped.
    """
    pad = 2 * CELL_PADDING
    chosen: set[str] = set()
    used = 0
    for spec in sorted(COLUMNS, key=lambda c: c.priority):
        need = spec.width + pad
        if used + need <= width or spec.key in ("rate", "reason"):
            chosen.add(spec.key)
            used += need
    widths = {c.key: c.width for c in COLUMNS if c.key in chosen}
    spare = width - used
    if spare < 0:  # tiny terminal: shrink the reason, never below 6
        widths["reason"] = max(6, widths["reason"] + spare)
        spare = 0
    for key in ("comm", "service", "reason", "netns", "if", "subsys", "trend"):
        if key in widths and spare > 0:
            extra = min(spare, BY_KEY[key].grow)
            widths[key] += extra
            spare -= extra
    return {c.key: widths[c.key] for c in COLUMNS if c.key in widths}


def header_label(spec: ColumnSpec, width: int, sort_key: str, descending: bool) -> Text:
    """Column title with an arrow on the sort column (the arrow is text, not colour)."""
    label = spec.label
    if spec.key == sort_key:
        label = f"{label}{'▼' if descending else '▲'}"
    label = fit(label, width)
    return Text(label.rjust(width) if spec.right else label, style="bold", end="")


def cell(
    spec: ColumnSpec,
    row: DropRow,
    snap: Snapshot,
    width: int,
    *,
    new: bool,
    color: bool = True,
) -> Text:
    """One cell as Text (never markup). New rows are bold green *and* marked with +.

    Every text from the row (reason, subsystem, comm, service, interface, netns) passes
    `printable` here: this is the table's only way from a row to the screen.
    """
    key = spec.key
    style = (NEW_STYLE if color else "bold") if new else ""
    if key == "rate":
        level = severity.rate_level(row.rate)
        mark = severity.MARK[level]
        body = human_rate(row.rate)
        text = f"{mark} {body}" if mark else body
        style = severity.style(level, color=color) or style
    elif key == "total":
        text = human_count(row.packets)
    elif key == "share":
        total = snap.total_packets
        # A counter row is not part of the drop total: no share of it.
        counter = row.source == "counter"
        text = f"{100.0 * row.packets / total:.1f}%" if total > 0 and not counter else "-"
    elif key == "reason":
        text = reason_marks(row, new=new) + reason_label(row)
    elif key == "subsys":
        text = printable(row.reason.subsys)
    elif key == "comm":
        text = task_label(row)
    elif key == "ctx":
        text = context_short(row)
    elif key == "service":
        text = service_label(row)
    elif key == "if":
        text = ifname_label(row)
    elif key == "netns":
        text = row_netns_label(row)
    elif key == "trend":
        return Text(spark(row.history_at(snap.poll), width), style="cyan" if color else "", end="")
    else:  # pragma: no cover
        raise KeyError(key)
    text = fit(text, width)
    if spec.right:
        text = text.rjust(width)
    return Text(text, style=style, no_wrap=True, end="")
