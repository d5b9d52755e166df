"""Turning model values into short, safe Rich Text for cells and labels.

Every string that came from the kernel or a process (comm, interface names, cgroup
paths, service and namespace names, packet fields) goes through `safe()` or
`printable`: control bytes become visible escapes, and because the result is a
Text object, never markup, a comm like "[red]x" is shown literally.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from rich.text import Text

from droptop.model import DropRow
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
    row_netns_label,
    task_label,
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


# --- whose drop -------------------------------------------------------------------------

CONTEXT_SHORT = {
    "process": "proc",
    "softirq-inline": "inline",
    "softirq-irq": "irq",
    "softirq": "softirq",
    "ksoftirqd": "ksoftirqd",
    "hardirq": "hardirq",
    "nmi": "nmi",
    "kthread": "kthread",
    "idle": "idle",
}
"""The CTX column's words for droptop.attribution.context's contexts (words, not colours)."""

CONTEXT_WORDS = {
    "process": "process: the task's own code path (a syscall): the task made this drop",
    "softirq-inline": (
        "softirq-inline: run inside this task's own syscall (loopback or veth receive in "
        "its send): the task made this drop"
    ),
    "softirq-irq": (
        "softirq-irq: at interrupt exit (a timer or NIC softirq); the task shown was only "
        "interrupted, it is not the culprit"
    ),
    "softirq": "softirq: no sampled stack says how it was entered; no task is blamed",
    "ksoftirqd": "ksoftirqd: softirq deferred to the per-CPU ksoftirqd thread; no task blamed",
    "hardirq": "hardirq: in an interrupt handler; the task shown was only interrupted",
    "nmi": "nmi: in a non-maskable interrupt; the task shown was only interrupted",
    "kthread": "kthread: a kernel thread's own work (kworker, napi, rcu); no process blamed",
    "idle": "idle: the idle task's own work; no process blamed",
}
"""One line per context for the drill-down: what it means for whom to blame."""

NEW_MARK = "+"
"""Before the reason of a row that just appeared (it is also bold green)."""
COUNTER_MARK = "#"
"""Before the reason of a counter row: a kernel or driver loss counter, not kfree_skb."""
BENIGN_MARK = "~"
"""Before the reason of a row classified as a free rather than a loss."""
MARKS = (
    (NEW_MARK, "the row appeared within the last few refreshes"),
    (
        COUNTER_MARK,
        "a loss counter (kernel SNMP or driver), not a kfree_skb drop: no comm, no stacks",
    ),
    (
        BENIGN_MARK,
        "a benign free (a queue purged at close, a frame not for us): counted, "
        "not a loss; b hides them",
    ),
    (
        "[comm]",
        "the task did not make this drop: kernel context (softirq, idle, kernel "
        "thread) or a task the interrupt only interrupted (CTX says which)",
    ),
)
"""The table's text marks, for the help screen's legend."""


def is_counter(row: DropRow) -> bool:
    return row.source == "counter"


def context_short(row: DropRow) -> str:
    """The CTX cell: a short word; "ctr" for a counter row, "-" when not known."""
    if is_counter(row):
        return "ctr"
    return CONTEXT_SHORT.get(row.who.context, printable(row.who.context) or "-")


def service_label(row: DropRow) -> str:
    return printable(row.who.service) if row.who.service else "-"


def reason_marks(row: DropRow, *, new: bool) -> str:
    """The text marks before a reason: + new, # counter, ~ benign."""
    marks = NEW_MARK if new else ""
    if is_counter(row):
        marks += COUNTER_MARK
    if row.benign is not None:
        marks += BENIGN_MARK
    return marks
