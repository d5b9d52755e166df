"""Cumulative counters -> per-interval rates and short histories.

Kernel counters only ever grow; rates are deltas over the measured interval.
A counter that goes backwards (the map was recreated, or counters were reset)
restarts the delta from zero instead of showing a negative rate.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Mapping
from dataclasses import dataclass

HISTORY_LEN = 60
"""Samples kept per row: a minute at the default 1 s interval."""


@dataclass(frozen=True, slots=True)
class Rates:
    packets: int
    """Cumulative packets since start or the last reset."""
    bytes: int
    rate: float
    byte_rate: float
    history: tuple[float, ...]


def per_second(delta: int, interval: float) -> float:
    """A counter delta as a rate; zero for a non-positive interval or a negative delta."""
    if interval <= 0 or delta <= 0:
        return 0.0
    return delta / interval


class RateTracker:
    """Turns successive cumulative (packets, bytes) readings into rates.

    Keys are anything hashable (DropKey in practice). A key that disappears from
    a reading keeps its last value, so a reading that briefly misses a key never
    produces a spike when it comes back.
    """

    def __init__(self, history: int = HISTORY_LEN) -> None:
        self._history_len = history
        self._last: dict[Hashable, tuple[int, int]] = {}
        self._baseline: dict[Hashable, tuple[int, int]] = {}
        self._history: dict[Hashable, deque[float]] = {}
        self._total_history: deque[float] = deque(maxlen=history)

    def update(
        self, counts: Mapping[Hashable, tuple[int, int]], interval: float
    ) -> dict[Hashable, Rates]:
        """Feed one reading; return rates for every key seen so far."""
        first = not self._last and not self._total_history
        out: dict[Hashable, Rates] = {}
        total_rate = 0.0
        merged = dict(self._last)
        merged.update(counts)
        for key, (pkts, nbytes) in merged.items():
            prev_p, prev_b = self._last.get(key, (0, 0))
            if pkts < prev_p or nbytes < prev_b:  # counter restarted
                prev_p, prev_b = 0, 0
                self._baseline.pop(key, None)
            rate = 0.0 if first else per_second(pkts - prev_p, interval)
            brate = 0.0 if first else per_second(nbytes - prev_b, interval)
            hist = self._history.get(key)
            if hist is None:
                hist = self._history[key] = deque(maxlen=self._history_len)
            hist.append(rate)
            base_p, base_b = self._baseline.get(key, (0, 0))
            out[key] = Rates(pkts - base_p, nbytes - base_b, rate, brate, tuple(hist))
            total_rate += rate
        self._last = merged
        self._total_history.append(total_rate)
        return out

    @property
    def total_history(self) -> tuple[float, ...]:
        return tuple(self._total_history)

    def reset(self) -> None:
        """Make every cumulative count start again from zero (rates are unaffected)."""
        self._baseline = dict(self._last)
