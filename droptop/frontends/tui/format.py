"""Turning model values into short, safe Rich Text for cells and labels.

Every string that came from the kernel or a process (comm, interface names) goes
through `safe()`: control bytes become visible escapes, and because the result is
a Text object, never markup, a comm like "[red]x" is shown literally.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from rich.text import Text

from droptop.sanitize import printable
from droptop.units import (  # noqa: F401  (the TUI's cells use the shared labels)
    clock,
    comm_label,
    date_clock,
    human_bytes,
    human_count,
    human_rate,
    ifname_label,
    netns_label,
    reason_label,
)

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


def spark(values: Sequence[float], width: int, *, peak: float | None = None) -> str:
    """The last `width` values as block characters; zero is blank, any drop is visible.

    Scaled to `peak` (default: the largest value shown), right-aligned so the
    newest sample is always in the last column. A non-finite value (a hand-made
    snapshot) is drawn as zero rather than raising in the middle of a redraw.
    """
    if width <= 0:
        return ""
    vals = [v if math.isfinite(v) else 0.0 for v in list(values)[-width:]]
    top = peak if peak is not None else max(vals, default=0.0)
    out = []
    for v in vals:
        if v <= 0 or not 0 < top < math.inf:  # NaN and infinite peaks draw nothing
            out.append(" ")
        else:
            idx = min(len(SPARK_BARS) - 1, int(v / top * (len(SPARK_BARS) - 1) + 0.5))
            out.append(SPARK_BARS[max(idx, 0)])
    return "".join(out).rjust(width)
