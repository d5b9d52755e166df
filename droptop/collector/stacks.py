"""Kernel stack helpers shared by the collector and the drill-down."""

from __future__ import annotations

import re

TRACING_FRAME = re.compile(r"^(bpf_prog_|bpf_trace_run|__traceiter_|__bpf_trace_|perf_trace_)")
"""Frames of the tracing machinery itself (droptop's program calling in), not of the drop."""


def strip_tracing_frames(frames: tuple[str, ...] | list[str]) -> tuple[tuple[str, ...], int]:
    """The stack without its leading tracing frames, and how many were removed.

    The innermost frame that is not tracing machinery is the function that freed
    the packet (kfree_skb_reason, or sk_skb_reason_drop since 6.11).
    """
    i = 0
    while i < len(frames) - 1 and TRACING_FRAME.match(frames[i]):
        i += 1
    return tuple(frames[i:]), i
