"""Turning model values into short, safe Rich Text for cells and labels.

Every string that came from the kernel or a process (comm, interface names) goes
through `safe()`: control bytes become visible escapes, and because the result is
a Text object, never markup, a comm like "[red]x" is shown literally.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from rich.text import Text

from droptop.export import human_count
from droptop.model import DropKey, DropRow
from droptop.sanitize import printable

SPARK_BARS = "▁▂▃▄▅▆▇█"


def safe(text: str, style: str = "") -> Text:
    """Kernel/process text as a Text: control bytes escaped, markup not interpreted."""
    return Text(printable(text), style=style, no_wrap=True, end="")


def fit(text: str, width: int) -> str:
    """Cut `text` to `width` cells with an ellipsis, so truncation is visible."""
    if width <= 0:
        return ""
    if len(text) <= width:
        return text
    return text[: width - 1] + "…" if width > 1 else text[:1]


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


def spark(values: Sequence[float], width: int, *, peak: float | None = None) -> str:
    """The last `width` values as block characters; zero is blank, any drop is visible.

    Scaled to `peak` (default: the largest value shown), right-aligned so the
    newest sample is always in the last column.
    """
    if width <= 0:
        return ""
    vals = list(values)[-width:]
    top = peak if peak is not None else max(vals, default=0.0)
    out = []
    for v in vals:
        if v <= 0 or top <= 0:
            out.append(" ")
        else:
            idx = min(len(SPARK_BARS) - 1, int(v / top * (len(SPARK_BARS) - 1) + 0.5))
            out.append(SPARK_BARS[max(idx, 0)])
    return "".join(out).rjust(width)


def comm_text(key: DropKey) -> str:
    """Plain comm label; kernel context in brackets, like ps shows kernel threads."""
    comm = printable(key.comm)
    return f"[{comm}]" if key.kernel_context else comm


def ifname_text(row: DropRow) -> str:
    if row.ifname:
        return printable(row.ifname)
    return f"#{row.key.ifindex}" if row.key.ifindex else "-"


def netns_text(netns: int) -> str:
    return str(netns) if netns else "-"


def reason_text(row: DropRow, *, with_subsys: bool = False) -> str:
    if with_subsys and row.reason.subsys != "core":
        return f"{row.reason.subsys}:{row.reason.name}"
    return row.reason.name


def clock(t: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t))


def date_clock(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))
