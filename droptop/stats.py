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


class _KeyState:
    __slots__ = ("baseline", "history", "last", "rates")

    def __init__(self, history: int) -> None:
        self.last: tuple[int, int] = (0, 0)
        self.baseline: tuple[int, int] = (0, 0)
        self.history: deque[float] = deque(maxlen=history)
        self.rates: Rates | None = None


class RateTracker:
    """Turns successive cumulative (packets, bytes) readings into rates.

    Keys are anything hashable (DropKey in practice). A key missing from a reading
    keeps its last value, so a reading that briefly misses a key never produces a
    spike when it comes back. An idle key (no change, and no rate in its whole
    history) returns the very same Rates object as last time, so callers can skip
    rebuilding its row: with 10k mostly idle keys that is most of the poll's cost.
    """

    def __init__(self, history: int = HISTORY_LEN) -> None:
        self._history_len = history
        self._keys: dict[Hashable, _KeyState] = {}
        self._total_history: deque[float] = deque(maxlen=history)
        self._updates = 0

    def update(
        self, counts: Mapping[Hashable, tuple[int, int]], interval: float
    ) -> dict[Hashable, Rates]:
        """Feed one reading; return rates for every key seen so far."""
        first = self._updates == 0
        self._updates += 1
        out: dict[Hashable, Rates] = {}
        total_rate = 0.0
        states = self._keys
        missing = [(k, st.last) for k, st in states.items() if k not in counts]
        for key, now in (*counts.items(), *missing):
            st = states.get(key)
            if st is None:
                st = states[key] = _KeyState(self._history_len)
            elif now == st.last and st.rates is not None and not any(st.history):
                out[key] = st.rates  # idle: nothing to recompute
                continue
            pkts, nbytes = now
            prev_p, prev_b = st.last
            if pkts < prev_p or nbytes < prev_b:  # counter restarted
                prev_p, prev_b = 0, 0
                st.baseline = (0, 0)
            rate = 0.0 if first else per_second(pkts - prev_p, interval)
            brate = 0.0 if first else per_second(nbytes - prev_b, interval)
            st.history.append(rate)
            st.last = now
            st.rates = Rates(
                pkts - st.baseline[0], nbytes - st.baseline[1], rate, brate, tuple(st.history)
            )
            out[key] = st.rates
            total_rate += rate
        self._total_history.append(total_rate)
        return out

    @property
    def total_history(self) -> tuple[float, ...]:
        return tuple(self._total_history)

    def reset(self) -> None:
        """Make every cumulative count start again from zero (rates are unaffected)."""
        for st in self._keys.values():
            st.baseline = st.last
            st.rates = None  # force the next update to rebuild with the new baseline
