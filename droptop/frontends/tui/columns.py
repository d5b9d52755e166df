"""The drop table's columns: what each shows, how it sorts, and which survive a narrow terminal.

Pure (Rich only, no Textual), so the layout rules are testable without an app.
Below ~100 columns the least useful columns are left out instead of squeezing
everything; the rate, reason and comm always stay.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.text import Text

from droptop import severity
from droptop.frontends.tui.format import (
    comm_label,
    fit,
    human_count,
    human_rate,
    ifname_label,
    netns_label,
    reason_label,
    spark,
)
from droptop.model import DropRow, Snapshot
from droptop.sanitize import printable

CELL_PADDING = 1
"""Blank cells on each side of every table cell."""
NEW_ROW_REFRESHES = 3
"""A row that appears is marked new for this many refreshes."""
NEW_STYLE = "bold green"
NEW_MARK = "+"


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
        7,
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
        5,
        lambda r: r.packets,
        True,
        True,
        help="this row's part of all drops since start",
    ),
    ColumnSpec(
        "reason",
        "REASON",
        20,
        1,
        lambda r: (r.reason.name, r.reason.raw),
        False,
        grow=16,
        help="the kernel's drop reason (+ marks a row that just appeared)",
    ),
    ColumnSpec(
        "subsys",
        "SUBSYS",
        11,
        7,
        lambda r: (r.reason.subsys, r.reason.name),
        False,
        grow=6,
        help="subsystem that owns the reason: core, mac80211, openvswitch, ...",
    ),
    ColumnSpec(
        "comm",
        "COMM",
        15,
        2,
        lambda r: (r.key.comm, r.key.kernel_context),
        False,
        grow=2,
        help="task running when the packet was dropped; [brackets] = kernel context",
    ),
    ColumnSpec(
        "if",
        "IF",
        8,
        4,
        lambda r: (r.ifname, r.key.ifindex),
        False,
        grow=7,
        help="interface the packet was on (- = none)",
    ),
    ColumnSpec(
        "netns",
        "NETNS",
        10,
        8,
        lambda r: r.key.netns,
        True,
        True,
        help="network namespace inode (- = none)",
    ),
    ColumnSpec(
        "trend",
        "TREND",
        10,
        6,
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
    for key in ("reason", "comm", "if", "subsys", "trend"):
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

    Every text from the row (reason, subsystem, comm, interface) passes `printable`
    here: this is the table's only way from a row to the screen.
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
        text = f"{100.0 * row.packets / total:.1f}%" if total > 0 else "-"
    elif key == "reason":
        text = f"{NEW_MARK}{reason_label(row)}" if new else reason_label(row)
    elif key == "subsys":
        text = printable(row.reason.subsys)
    elif key == "comm":
        text = comm_label(row.key)
    elif key == "if":
        text = ifname_label(row)
    elif key == "netns":
        text = netns_label(row.key.netns)
    elif key == "trend":
        return Text(spark(row.history_at(snap.poll), width), style="cyan" if color else "", end="")
    else:  # pragma: no cover
        raise KeyError(key)
    text = fit(text, width)
    if spec.right:
        text = text.rjust(width)
    return Text(text, style=style, no_wrap=True, end="")
