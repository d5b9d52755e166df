"""Prototype: a poll whose Python work grows with the keys that *changed*, not with the map.

Why: with 10,000 keys droptop's poll does per-key Python work on every key every
poll (RateTracker.update, the row cache check, a sort with a Python key
function), and while a key's 60-sample rate history still holds a non-zero
sample (a minute after its last drop) its Rates, history tuple and DropRow are
rebuilt each poll. That is 30-70 ms per poll at 10k keys (bench_poll.py), where
issue 4 asks for 5 ms.

The idea, in four parts, each a C-speed pass or proportional to the changes:
1. changed = the indices whose packet counter moved, found with
   itertools.compress(range(n), map(operator.ne, new, old)) (C loops).
2. Only changed keys and keys that just went idle get a new row. An idle row
   keeps the very same object: its rate is 0 and its cumulative counts are
   unchanged, so nothing about it differs except its rate history, which
   moves one sample to the left per poll.
3. Therefore history leaves the row: rows carry the samples up to their last
   change and the poll number of that sample (`history_end`); the snapshot
   carries its poll number, and a consumer pads with zeros
   (`padded_history(row, snap_poll)`), so a sparkline is still one call.
4. Order: active rows (rate > 0, few) are sorted by rate each poll; idle rows
   stay in a list kept sorted by packets, updated with bisect when a row
   joins or leaves it, so the full table order is a concatenation.

`bench_fastpoll.py` feeds this the real counters from a BccCollector with 10k
keys and times it against droptop's current poll on the same map.
"""

from __future__ import annotations

import bisect
import operator
from collections import deque
from dataclasses import dataclass
from itertools import compress

HISTORY_LEN = 60


@dataclass(frozen=True, slots=True)
class Row:
    """What DropRow holds, with the history ending at `history_end` instead of now."""

    idx: int
    packets: int
    bytes: int
    rate: float
    byte_rate: float
    history: tuple[float, ...]
    history_end: int


def padded_history(row: Row, poll: int, length: int = HISTORY_LEN) -> tuple[float, ...]:
    """The row's rate history as of `poll`: zeros for the polls since its last sample."""
    pad = min(length, poll - row.history_end)
    if pad <= 0:
        return row.history[-length:]
    return (row.history + (0.0,) * pad)[-length:]


class IncrementalAssembler:
    """Rates, rows and order from cumulative per-index counters, work ~ changed keys."""

    def __init__(self) -> None:
        self.poll_no = 0
        self._p: list[int] = []
        self._b: list[int] = []
        self._rows: list[Row | None] = []
        self._hist: list[deque[float] | None] = []
        self._active: set[int] = set()
        self._idle_keys: list[tuple[int, int]] = []  # (-packets, idx), sorted
        self._idle_rows: list[Row] = []  # same order as _idle_keys
        self.total_packets = 0

    def _grow(self, n: int) -> None:
        extra = n - len(self._p)
        if extra > 0:
            self._p += [0] * extra
            self._b += [0] * extra
            self._rows += [None] * extra
            self._hist += [None] * extra

    def _idle_remove(self, row: Row) -> None:
        k = (-row.packets, row.idx)
        i = bisect.bisect_left(self._idle_keys, k)
        if i < len(self._idle_keys) and self._idle_keys[i] == k:
            del self._idle_keys[i]
            del self._idle_rows[i]

    def _idle_add(self, row: Row) -> None:
        k = (-row.packets, row.idx)
        i = bisect.bisect_left(self._idle_keys, k)
        self._idle_keys.insert(i, k)
        self._idle_rows.insert(i, row)

    def update(self, packets: list[int], nbytes: list[int], interval: float) -> tuple[Row, ...]:
        """Feed cumulative counters for indices 0..n-1; return every row, in table order."""
        self.poll_no += 1
        n = len(packets)
        self._grow(n)
        old_p, old_b = self._p, self._b
        # C-speed scan: indices whose counter moved (new indices compare against 0).
        changed = list(compress(range(n), map(operator.ne, packets, old_p)))
        first = self.poll_no == 1
        went_idle = self._active.difference(changed)
        for i in changed:
            row = self._rows[i]
            if row is not None and row.rate == 0.0:
                self._idle_remove(row)
            dp, db = packets[i] - old_p[i], nbytes[i] - old_b[i]
            rate = 0.0 if first or interval <= 0 else dp / interval
            brate = 0.0 if first or interval <= 0 else db / interval
            h = self._hist[i]
            if h is None:
                h = self._hist[i] = deque(maxlen=HISTORY_LEN)
            elif row is not None:  # zeros for the polls this row sat idle
                h.extend((0.0,) * min(HISTORY_LEN, self.poll_no - 1 - row.history_end))
            h.append(rate)
            self.total_packets += dp
            self._rows[i] = Row(i, packets[i], nbytes[i], rate, brate, tuple(h), self.poll_no)
            if rate == 0.0:
                self._idle_add(self._rows[i])
        for i in went_idle:  # was active, no change now: one more sample, rate 0
            row = self._rows[i]
            assert row is not None
            h = self._hist[i]
            assert h is not None
            h.append(0.0)
            new = Row(i, row.packets, row.bytes, 0.0, 0.0, tuple(h), self.poll_no)
            self._rows[i] = new
            self._idle_add(new)
        self._active = {i for i in changed if self._rows[i].rate > 0.0}  # type: ignore[union-attr]
        self._p, self._b = list(packets), list(nbytes)
        active = sorted(
            (self._rows[i] for i in self._active),
            key=lambda r: (-r.rate, -r.packets),  # type: ignore[union-attr]
        )
        return (*active, *self._idle_rows)  # type: ignore[arg-type]
