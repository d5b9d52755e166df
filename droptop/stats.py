"""Rate maths shared by the assembler and the interface counters.

Kernel counters only ever grow; a rate is a delta over the measured interval.
The per-row bookkeeping (which rows changed, their histories) lives in
collector/assemble.py, where it can be done for changed rows only.
"""

from __future__ import annotations


def per_second(delta: int, interval: float) -> float:
    """A counter delta as a rate; zero for a non-positive interval or a negative delta."""
    if interval <= 0 or delta <= 0:
        return 0.0
    return delta / interval
