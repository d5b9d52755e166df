"""Cumulative per-slot counters -> one named, rated, sorted Snapshot.

A *slot* is one kernel counter (one index of droptop's counter array: a
(reason, comm, ifindex, netns, kernel-context, location) tuple); a *row* is a
DropKey, the sum of its slots over drop locations.

A poll's Python work is proportional to what changed, not to the map: with 10k
keys the map read is one syscall and a C-speed comparison of the counter lists
finds the slots that moved; only their rows (and rows that just went idle) are
rebuilt, every other row is the very same immutable object as last time. A
moved row of one location (nearly every row of a busy poll) is one tuple built
from its last row, with its stacks, samples and attribution looked up again only
where they changed; only new rows and rows of several locations go the full way. Table
order is the active rows sorted by rate, then the idle rows (idlerows.py).
"""

from __future__ import annotations

import operator
import socket
import time
from array import array
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import compress
from typing import Protocol

from droptop.collector.idlerows import IdleRows
from droptop.model import (
    HISTORY_LEN,
    NO_ATTRIBUTION,
    Attribution,
    DropKey,
    DropRow,
    Location,
    PacketSample,
    Reason,
    Snapshot,
    StackSample,
)
from droptop.names.benign import classify as classify_benign
from droptop.stats import per_second

_RATE = operator.attrgetter("rate")
_PACKETS = operator.attrgetter("packets")
SAMPLES_PER_ROW = 8
"""Packet samples a row keeps: the kernel's ring holds 8 a key per CPU."""
# A row's rates live in a buffer of zeros that only ever gets written past its views'
# ends. Buffers come in two sizes, each plus the row's order modulo its step, so that
# rows made or woken in one poll do not all fill up in the same later one; a full
# buffer gives way to the smaller size if that holds what still shows.
_FIRST = 32
"""A new row's (most rows live a few polls: 10,000 rows of a burst take 4 MB, not 12),
and a row's woken after a whole history idle (its zeros counted ahead, not stored)."""
_SPARE = HISTORY_LEN
"""A busy row's: a history and _SPARE more, so it moves on every _SPARE to 2 * _SPARE
polls."""
_ZEROS = array("d", bytes(8 * (HISTORY_LEN + 2 * _SPARE)))


def _buffer_for(need: int, order: int) -> array:
    """A fresh buffer of zeros for at least `need` rates."""
    if need <= _FIRST:
        return _ZEROS[: _FIRST + order % _FIRST]
    return _ZEROS[: HISTORY_LEN + _SPARE + order % _SPARE]


class ReasonNames(Protocol):
    """What the assembler needs from droptop.names.reasons (or a test double)."""

    def resolve(self, raw: int) -> Reason: ...

    def table(self) -> tuple[Reason, ...]: ...

    @property
    def best_source(self) -> str: ...


@dataclass(frozen=True, slots=True)
class RawRow:
    """One counter as a collector may report it: cumulative counts, not yet named or rated."""

    key: DropKey
    ifname: str
    packets: int
    bytes: int
    locations: tuple[Location, ...] = ()
    stacks: tuple[StackSample, ...] = ()


class _Row:
    """Mutable bookkeeping behind one DropRow."""

    __slots__ = (
        "benign",
        "by",
        "fill",
        "first_seen",
        "floor",
        "ifname",
        "key",
        "order",
        "pk",
        "rates",
        "reason",
        "row",
        "single",
        "slots",
        "who",
    )

    def __init__(self, key: DropKey, ifname: str, order: int) -> None:
        self.key = key
        self.ifname = ifname
        self.order = order
        self.slots: list[int] = []
        self.single = False  # exactly one slot: rows the quick paths can build
        self.pk = 0  # packets and bytes over its slots since the last reset: what it shows
        self.by = 0
        # What a rebuild would compute the same again, with what it was computed from:
        self.reason: Reason | None = None
        self.benign: tuple[tuple[str, ...], str | None] | None = None  # (symbols, why)
        self.who: tuple[tuple[StackSample, ...], Attribution] | None = None  # (stacks, who)
        # Per poll, written only at `fill` and beyond; zeros from `fill` on. Preallocated:
        # an append that grows an array reallocates it, 10,000 rows grown in step
        # reallocated in the same polls, and appends cost a 10,000-key poll ~2 ms.
        self.rates = _buffer_for(0, order)
        self.fill = 0
        # Woken after a whole history idle: where its rates since it woke begin in the
        # buffer; its views are HISTORY_LEN long, zeros ahead of them (-1: not woken).
        self.floor = -1
        self.first_seen = 0.0
        self.row: DropRow | None = None

    def record(self, rate: float) -> tuple[array, int, int]:
        """Add this poll's rate; the history as of now, as DropRow's (rates, rates_start,
        rates_end): a window that never changes."""
        rates, end = self.rates, self.fill
        if end == len(rates):
            rates, end = self.move_on()
        rates[end] = rate
        end = self.fill = end + 1
        return rates, self.start(end), end

    def start(self, end: int) -> int:
        """DropRow.rates_start of the view that ends at `end` (< 0: zeros ahead)."""
        start, floor = end - HISTORY_LEN, self.floor
        if start < 0 or start < floor:  # zeros ahead (woken), or a history still short
            return start - floor if floor >= 0 else 0
        return start

    def idle_for(self, polls: int) -> None:
        """The polls it sat idle, as zero rates (at most a history's worth: all a view
        shows). Nothing to write: the buffer holds zeros from `fill` on."""
        if polls <= 0:
            return
        if polls >= HISTORY_LEN:
            # A whole history idle: what showed is out of view, the zeros go ahead of
            # what comes next; the same buffer while it has room (10,000 rows woken at
            # once otherwise took 10,000 fresh buffers in that poll).
            if self.fill == len(self.rates):
                self.rates = _buffer_for(0, self.order)
                self.fill = 0
            self.floor = self.fill
        elif self.fill + polls <= len(self.rates):
            self.fill += polls
        else:
            self.move_on(polls)

    def move_on(self, zeros: int = 0) -> tuple[array, int]:
        """A fresh buffer holding the last rates a view shows, then `zeros` (fewer than
        HISTORY_LEN) zero rates: views of the old buffer keep it, unchanged. Returns
        (buffer, fill)."""
        rates, end, floor = self.rates, self.fill, self.floor
        keep = min(end - max(floor, 0), HISTORY_LEN - zeros)  # still shown after the zeros
        fresh = self.rates = _buffer_for(keep + zeros + 1, self.order)
        fresh[:keep] = rates[end - keep : end]
        self.fill = shown = keep + zeros
        # Woken, and its zeros ahead still show: they stay ahead of the fresh buffer.
        self.floor = 0 if floor >= 0 and shown < HISTORY_LEN else -1
        return fresh, shown


_new = tuple.__new__
"""A NamedTuple built without its Python-level __new__: ~0.1 us, not ~0.25."""


class SnapshotAssembler:
    """Names reasons, computes rates and keeps rows between polls."""

    def __init__(
        self,
        names: ReasonNames,
        *,
        kernel: str,
        capacity: int,
        stacks_enabled: bool,
        source: str = "live",
        notes: tuple[str, ...] = (),
        hostname: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        wallclock: Callable[[], float] = time.time,
        attribute: Callable[[DropKey, tuple[StackSample, ...]], Attribution] | None = None,
        row_source: str = "kfree_skb",
    ) -> None:
        self.names = names
        self.row_source = row_source
        """DropRow.source of every row built here (kfree_skb, or counter for loss counters)."""
        self.attribute = attribute
        """Whose drop a row is (collector/attribute.py); called only when a row is rebuilt."""
        self.kernel = kernel
        self.capacity = capacity
        self.stacks_enabled = stacks_enabled
        self.source = source
        self.notes = notes
        self.hostname = hostname if hostname is not None else socket.gethostname()
        self._clock = clock
        self._wallclock = wallclock
        self._last_poll: float | None = None
        self._poll = 0
        # per slot
        self._slot_row: list[_Row] = []
        self._slot_loc: list[str] = []
        self._p: list[int] = []
        self._b: list[int] = []
        self._stacks: dict[int, tuple[StackSample, ...]] = {}
        self._samples: dict[int, tuple[PacketSample, ...]] = {}
        # per row
        self._resets = 0
        self._rows: dict[DropKey, _Row] = {}
        self._active: set[_Row] = set()
        self._idle = IdleRows()
        self._total_history: deque[float] = deque(maxlen=HISTORY_LEN)
        self._dirty: set[_Row] = set()  # rebuild next poll even without a change
        self._overflow_base = (0, 0)
        self._overflow_last = (0, 0)
        self._base_total = 0
        self._raw_slots: dict[tuple[DropKey, str], int] = {}

    # --- slots --------------------------------------------------------------

    def add_slot(self, slot: int, key: DropKey, ifname: str, location: str) -> None:
        """Register counter `slot` (slots are numbered 0, 1, 2, ... in order)."""
        if slot != len(self._slot_row):
            raise ValueError(f"slot {slot} registered out of order")
        row = self._rows.get(key)
        if row is None:
            row = self._rows[key] = _Row(key, ifname, len(self._rows))
        elif not row.ifname:
            row.ifname = ifname
        row.slots.append(slot)
        row.single = len(row.slots) == 1
        self._slot_row.append(row)
        self._slot_loc.append(location)
        self._p.append(0)
        self._b.append(0)

    @property
    def slots(self) -> int:
        return len(self._slot_row)

    def reset(self) -> None:
        """Cumulative counts start again from zero (rates and history are unaffected)."""
        for row in self._rows.values():
            row.pk = row.by = 0
            if row.row is not None:
                self._dirty.add(row)
        self._base_total = sum(self._p)
        self._overflow_base = self._overflow_last
        self._resets += 1

    # --- polling ------------------------------------------------------------

    def build_counts(
        self,
        packets: Sequence[int],
        nbytes: Sequence[int],
        *,
        stacks: dict[int, tuple[StackSample, ...]] | None = None,
        samples: dict[int, tuple[PacketSample, ...]] | None = None,
        details_changed: Iterable[int] = (),
        overflow: tuple[int, int] = (0, 0),
        map_used: int = 0,
        bpf_ns_per_drop: float | None = None,
        bpf_missed: int = 0,
    ) -> Snapshot:
        """One poll from cumulative per-slot counters (index = slot).

        stacks and samples: per slot. A caller that changes its dicts in place says
        which slots changed in `details_changed`; a new dict is compared with the last.
        """
        now = self._clock()
        wall = self._wallclock()
        interval = 0.0 if self._last_poll is None else now - self._last_poll
        self._last_poll = now
        self._poll += 1
        first = self._poll == 1
        n = min(len(packets), len(self._p))
        if stacks is not None and stacks is not self._stacks:
            self._mark_changed(stacks, self._stacks)
            self._stacks = stacks
        if samples is not None and samples is not self._samples:
            self._mark_changed(samples, self._samples)
            self._samples = samples
        slot_row = self._slot_row
        self._dirty.update(slot_row[s] for s in details_changed if s < len(slot_row))

        # C-speed scans: the slots whose counters moved (bytes move with packets).
        moved = list(compress(range(n), map(operator.ne, packets, self._p)))
        by_bytes = list(compress(range(n), map(operator.ne, nbytes, self._b)))
        if by_bytes != moved:  # bytes moved alone somewhere (a reset elsewhere, a wrap)
            moved = sorted({*moved, *by_bytes})
        # Rows to rebuild in full, with their counts' growth since the last poll (a
        # row's counts change only where it is rebuilt, so that is its rate's delta).
        changed: dict[_Row, list[int]] = {}
        fast = interval > 0 and not first
        quick, active, live = self._moved(
            moved, packets, nbytes, interval if fast else 0.0, changed
        )
        total_rate = sum(map(_RATE, active))

        rates: dict[_Row, tuple[float, float]] = {}
        if not fast:
            rates = dict.fromkeys(changed, (0.0, 0.0))
        else:
            for row, (dp, db) in changed.items():  # per_second, inlined
                rates[row] = (dp / interval if dp > 0 else 0.0, db / interval if db > 0 else 0.0)
        # Went idle: one more sample, rate 0.
        self._went_idle(self._active - changed.keys() - quick, rates)
        self._refresh_idle(self._dirty - changed.keys() - quick - self._active, rates)
        self._dirty.clear()

        # The header's total is every drop: rows plus overflow (drops counted while the
        # key map was full, attributed to no row).
        new_overflow = overflow[0] - self._overflow_last[0]
        rebuild = self._rebuild
        for row, (rate, brate) in rates.items():
            rebuild(row, rate, brate, wall)
            total_rate += rate
        if new_overflow > 0 and not first:
            total_rate += per_second(new_overflow, interval)
        rebuilt = [row for row, (rate, _) in rates.items() if rate > 0.0]
        self._active = set(live).union(rebuilt)
        self._total_history.append(total_rate)

        active.extend(row.row for row in rebuilt if row.row is not None)
        # Active rows' order: by rate, then total, both descending. Two stable sorts on
        # plain numbers, not one on (rate, packets) tuples: 10,000 tuples fewer, and
        # numbers of one type compare at C speed (2.0 ms against 3.4 at 10,000 rows).
        active.sort(key=_PACKETS, reverse=True)
        active.sort(key=_RATE, reverse=True)
        self._overflow_last = overflow
        self._idle.settle()
        rows = (*active, *self._idle.rows)
        return Snapshot(
            time=wall,
            interval=interval,
            kernel=self.kernel,
            hostname=self.hostname,
            rows=rows,
            total_packets=sum(self._p) - self._base_total + overflow[0] - self._overflow_base[0],
            total_rate=total_rate,
            total_history=tuple(self._total_history),
            poll=self._poll,
            overflow_packets=overflow[0] - self._overflow_base[0],
            overflow_bytes=overflow[1] - self._overflow_base[1],
            map_used=map_used,
            map_capacity=self.capacity,
            names_source=self.names.best_source,
            reason_table=self.names.table(),
            stacks_enabled=self.stacks_enabled,
            bpf_ns_per_drop=bpf_ns_per_drop,
            bpf_missed=bpf_missed,
            source=self.source,
            notes=self.notes,
            resets=self._resets,
        )

    def _moved(
        self,
        moved: list[int],
        packets: Sequence[int],
        nbytes: Sequence[int],
        interval: float,
        changed: dict[_Row, list[int]],
    ) -> tuple[set[_Row], list[DropRow], list[_Row]]:
        """Take in every moved slot's counts, and build the rows that can be built quickly.

        Quick: a row of one slot, built before. Its reason and benign class are its
        last row's (they depend on the key and the slot's location only), and so are
        its stacks, samples and attribution unless the row is dirty (new stacks or
        samples, a reset, a request to attribute it again), when those are looked up:
        the new row is one tuple. That is nearly every row of a busy node's poll. The
        other moved rows go to `changed`, for _rebuild(). interval 0: no rates yet
        (everything goes to `changed`). Returns the quick rows, the new DropRows of
        those that are active (the others joined the idle rows), and their _Rows.
        """
        old_p, old_b, slot_row, slot_loc = self._p, self._b, self._slot_row, self._slot_loc
        dirty, idle = self._dirty, self._idle
        poll = self._poll
        prev = poll - 1
        quick: set[_Row] = set()
        active: list[DropRow] = []
        live: list[_Row] = []  # the rows of `active`
        woke: list[_Row] = []
        for s in moved:
            row = slot_row[s]
            p, b = packets[s], nbytes[s]
            dp = p - old_p[s]
            db = b - old_b[s]
            c0 = row.pk = row.pk + dp
            c1 = row.by = row.by + db
            old = row.row
            if not interval or not row.single or old is None:
                grown = changed.get(row)
                if grown is None:
                    changed[row] = [dp, db]
                else:  # a row of several slots
                    grown[0] += dp
                    grown[1] += db
                continue
            # _Row.idle_for() and record(), inlined: this loop runs once per moved key,
            # and at 10,000 keys the calls were a tenth of the poll.
            rates, end = row.rates, row.fill
            asleep = old.rate == 0.0
            if asleep:  # woke up: the polls it slept, as zero rates (already there)
                slept = prev - old.history_end
                if slept >= HISTORY_LEN and end < len(rates):
                    row.floor = end  # what showed is out of view (as idle_for does)
                elif slept > 0:
                    end += slept
                    if end > len(rates):  # no room for them
                        row.idle_for(slept)
                        rates, end = row.rates, row.fill
                    else:
                        row.fill = end
            rate = dp / interval if dp > 0 else 0.0
            symbol = slot_loc[s]
            if dirty and row in dirty:  # new stacks or samples, a reset, or attribute it again
                stacks = self._stacks.get(s, ())
                who = self._who(row, stacks)
                samples = self._samples.get(s, ())
            else:
                stacks, who, samples = old.stacks, old.who, old.samples
            if end == len(rates):
                rates, end = row.move_on()
            rates[end] = rate
            end = row.fill = end + 1
            start, floor = end - HISTORY_LEN, row.floor  # _Row.start(), inlined
            if start < 0 or start < floor:
                start = start - floor if floor >= 0 else 0
            new = row.row = _new(
                DropRow,
                (
                    old.key,
                    old.reason,
                    old.ifname,
                    c0,
                    c1,
                    rate,
                    db / interval if db > 0 else 0.0,
                    rates,
                    start,
                    end,
                    poll,
                    symbol,  # one location: its symbol and packets (DropRow.locations)
                    p,
                    stacks,
                    old.first_seen,
                    who,
                    old.source,
                    old.benign,
                    samples,
                ),
            )
            quick.add(row)
            if rate > 0.0:
                active.append(new)
                live.append(row)
                if asleep:
                    woke.append(row)
            else:  # bytes moved, packets did not: a reset elsewhere, or a wrap
                idle.join(row, new.packets, row.order, new)  # (leaves first)
        idle.leave_many(woke)
        n = min(len(old_p), len(packets))
        old_p[:n] = packets[:n]  # every slot at once (the unmoved ones are equal anyway)
        old_b[:n] = nbytes[:n]
        return quick, active, live

    def _went_idle(self, rows: set[_Row], slow: dict[_Row, tuple[float, float]]) -> None:
        """Rows active at the last poll that did not move: quickly where nothing else
        changed either (as in _moved), the others through `slow` (for _rebuild)."""
        dirty, poll = self._dirty, self._poll
        joins = []
        for row in rows:
            old = row.row
            if not row.single or old is None or row in dirty or old.history_end != poll - 1:
                slow[row] = (0.0, 0.0)
                continue
            # old with rate 0 and this poll's history: key .. bytes, then where ..
            new = row.row = _new(DropRow, (*old[:5], 0.0, 0.0, *row.record(0.0), poll, *old[11:]))
            joins.append((row, new.packets, row.order, new))
        self._idle.join_many(joins)

    def _refresh_idle(self, rows: set[_Row], slow: dict[_Row, tuple[float, float]]) -> None:
        """Idle rows that did not move but are dirty. Where only their details changed
        (new stacks or samples, attributed again) the new row is the old one with those
        swapped in: the same counts and place among the idle rows. A big burst's
        details arrive while its rows sit idle (collector/details.py), up to 1,000 a poll.
        The others (a reset, several slots) go through `slow`, for _rebuild()."""
        idle, poll = self._idle, self._poll
        for row in rows:
            old = row.row
            if (
                not row.single
                or old is None
                or old.rate != 0.0
                or old.byte_rate != 0.0
                or old.packets != row.pk
                or old.bytes != row.by
            ):
                slow[row] = (0.0, 0.0)
                continue
            s = row.slots[0]
            stacks = self._stacks.get(s, ())
            row.idle_for(poll - 1 - old.history_end)  # as _rebuild() would
            new = row.row = _new(
                DropRow,
                (
                    *old[:7],  # key .. byte_rate
                    *row.record(0.0),
                    poll,
                    old.where,
                    old.where_packets,
                    stacks,
                    old.first_seen,
                    self._who(row, stacks),
                    old.source,
                    old.benign,
                    self._samples.get(s, ()),
                ),
            )
            idle.replace(row, new)

    def reattribute(self, keys: Iterable[DropKey]) -> None:
        """Have these rows attributed again at the next poll (their last answer was
        incomplete), even if nothing else about them changed."""
        for key in keys:
            row = self._rows.get(key)
            if row is not None:
                row.who = None
                self._dirty.add(row)

    def _mark_changed(self, new: dict[int, tuple], old: dict[int, tuple]) -> None:
        """Rows whose per-slot stacks or samples are new objects: rebuild them next poll."""
        for s in set(new) | set(old):
            if new.get(s) is not old.get(s) and s < len(self._slot_row):
                self._dirty.add(self._slot_row[s])

    def _who(self, row: _Row, stacks: tuple[StackSample, ...]) -> Attribution:
        """Whose drop the row is, asked again only when its stacks are new or it was
        asked to be (reattribute)."""
        if self.attribute is None:
            return NO_ATTRIBUTION
        if row.who is not None and row.who[0] is stacks:
            return row.who[1]
        who = self.attribute(row.key, stacks)
        row.who = (stacks, who)
        return who

    def _rebuild(self, row: _Row, rate: float, brate: float, wall: float) -> None:
        # The hot loop of a poll in which many keys changed: locals, no helper calls
        # for the common one-slot row, and nothing recomputed that cannot have changed.
        old = row.row
        if old is not None:
            if old.rate == 0.0:
                self._idle.leave(row)
            row.idle_for(self._poll - 1 - old.history_end)
        else:
            row.first_seen = wall
        rates, start, end = row.record(rate)
        packets = row.pk
        reason = row.reason
        if reason is None:  # a key's raw value names the same reason all run long
            reason = row.reason = self.names.resolve(row.key.raw_reason)
        slots = row.slots
        if len(slots) == 1:
            s = slots[0]
            symbol = self._slot_loc[s]
            where: tuple[Location, ...] | str = symbol  # DropRow.locations makes its Location
            where_packets = self._p[s]
            symbols: tuple[str, ...] = (symbol,) if symbol else ()
            stacks = self._stacks.get(s, ())
            samples = self._samples.get(s, ())
        else:
            where = locations = self._locations(row)
            where_packets = 0
            symbols = tuple(loc.symbol for loc in locations)
            stacks = self._row_stacks(row)
            samples = self._row_samples(row)
        benign = row.benign
        if benign is None or benign[0] != symbols:
            match = classify_benign(reason.name, symbols)
            benign = row.benign = (symbols, match.why if match is not None else None)
        who = self._who(row, stacks)
        row.row = DropRow(  # positional, in DropRow's field order: ~30% cheaper than keywords
            row.key,
            reason,
            row.ifname,
            packets,
            row.by,
            rate,
            brate,
            rates,
            start,
            end,
            self._poll,
            where,
            where_packets,
            stacks,
            row.first_seen,
            who,
            self.row_source,
            benign[1],
            samples,
        )
        if rate == 0.0:
            self._idle.join(row, packets, row.order, row.row)

    # The merges of a row of several slots (a row of one is its slot's, in _rebuild).

    def _locations(self, row: _Row) -> tuple[Location, ...]:
        locs: dict[str, int] = {}
        for s in row.slots:
            if self._slot_loc[s]:
                locs[self._slot_loc[s]] = locs.get(self._slot_loc[s], 0) + self._p[s]
        return tuple(Location(k, v) for k, v in sorted(locs.items(), key=lambda kv: -kv[1]) if v)

    def _row_samples(self, row: _Row) -> tuple[PacketSample, ...]:
        """The row's newest SAMPLES_PER_ROW packet samples over its slots, oldest first."""
        merged = [p for s in row.slots for p in self._samples.get(s, ())]
        return tuple(sorted(merged, key=lambda p: p.time)[-SAMPLES_PER_ROW:])

    def _row_stacks(self, row: _Row) -> tuple[StackSample, ...]:
        merged: dict[tuple[str, ...], int] = {}
        for s in row.slots:
            for st in self._stacks.get(s, ()):
                merged[st.frames] = merged.get(st.frames, 0) + st.count
        return tuple(StackSample(f, c) for f, c in sorted(merged.items(), key=lambda kv: -kv[1]))

    # --- the RawRow interface (fake collector, tests) ------------------------

    def build(
        self,
        raw_rows: Sequence[RawRow],
        *,
        overflow: tuple[int, int] = (0, 0),
        map_used: int = 0,
        bpf_ns_per_drop: float | None = None,
        bpf_missed: int = 0,
    ) -> Snapshot:
        """One poll from rows: each (key, location) becomes a slot the first time it is seen."""
        stacks: dict[int, tuple[StackSample, ...]] = dict(self._stacks)
        for r in raw_rows:
            locs = r.locations or (Location("", r.packets),)
            for i, loc in enumerate(locs):
                ident = (r.key, loc.symbol)
                slot = self._raw_slots.get(ident)
                if slot is None:
                    slot = self._raw_slots[ident] = self.slots
                    self.add_slot(slot, r.key, r.ifname, loc.symbol)
                if i == 0 and stacks.get(slot) != r.stacks:
                    stacks[slot] = r.stacks
        packets = list(self._p)
        nbytes = list(self._b)
        for r in raw_rows:
            locs = r.locations or (Location("", r.packets),)
            for i, loc in enumerate(locs):
                slot = self._raw_slots[(r.key, loc.symbol)]
                packets[slot] = loc.packets
                # Bytes are per row; put them on the row's first location.
                nbytes[slot] = r.bytes if i == 0 else 0
        return self.build_counts(
            packets,
            nbytes,
            stacks=stacks if stacks != self._stacks else self._stacks,
            overflow=overflow,
            map_used=map_used,
            bpf_ns_per_drop=bpf_ns_per_drop,
            bpf_missed=bpf_missed,
        )
