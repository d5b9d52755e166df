"""Numbers and labels as every front end shows them: one spelling for batch, files and the TUI.

Labels built from kernel or process text (comm, interface names) are passed
through `printable` here, so no front end can forget it.
"""

from __future__ import annotations

import time

from droptop.model import DropKey, DropRow
from droptop.sanitize import printable


def human_count(n: float) -> str:
    """Compact count: 999, 1.2k, 35.0M. Keeps columns narrow without losing magnitude."""
    n = float(n)
    for unit in ("", "k", "M", "G", "T"):
        if abs(n) < 1000:
            return f"{n:.0f}{unit}" if unit == "" else f"{n:.1f}{unit}"
        n /= 1000
    return f"{n:.1f}P"


def human_rate(rate: float) -> str:
    """Packets/s: one decimal below 10 so slow trickles do not read as zero."""
    if rate <= 0:
        return "0"
    if rate < 10:
        return f"{rate:.1f}"
    return human_count(rate)


def human_bytes(n: float) -> str:
    """Binary units: 512 B, 48.0 MiB, 1.2 GiB."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def comm_label(key: DropKey) -> str:
    """comm for display; kernel context in brackets, like ps shows kernel threads."""
    comm = printable(key.comm)
    return f"[{comm}]" if key.kernel_context else comm


def task_label(row: DropRow) -> str:
    """comm as a row shows it: in brackets when that task did not make the drop (kernel
    context, or only interrupted: softirq at interrupt exit); "-" for a counter row."""
    if row.source == "counter":
        return "-"
    if row.key.kernel_context or not row.who.blames_task:
        return f"[{printable(row.key.comm)}]"
    return printable(row.key.comm)


def row_netns_label(row: DropRow) -> str:
    """The row's network namespace by name (host, an `ip netns` name, pid N (comm))."""
    return printable(row.who.netns_name) if row.who.netns_name else netns_label(row.key.netns)


def ifname_label(row: DropRow) -> str:
    """The interface name captured in the kernel; `#ifindex` when it had none; `-` for no device."""
    if row.ifname:
        return printable(row.ifname)
    return f"#{row.key.ifindex}" if row.key.ifindex else "-"


def netns_label(netns: int) -> str:
    return str(netns) if netns else "-"


def reason_label(row: DropRow, *, with_subsys: bool = False) -> str:
    """The reason name; non-core reasons prefixed with their subsystem where asked."""
    if with_subsys and row.reason.subsys != "core":
        return printable(f"{row.reason.subsys}:{row.reason.name}")
    return printable(row.reason.name)


def clock(t: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t))


def date_clock(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))
