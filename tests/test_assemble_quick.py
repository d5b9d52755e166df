"""SnapshotAssembler's quick paths (_moved, _went_idle) against its full path (_rebuild).

Two assemblers get the same slots, clock and counters. The second is forced onto the
full path for every row of every poll by setting `_Row.single` to False on all its rows
before each poll: `single` is read only by the quick paths' guards in _moved() and
_went_idle(), so this has no other effect. (Putting rows in `_dirty` would not do: it
also rebuilds idle rows that did not move, and builds rows that never moved at all.)
After every poll of a random run (moving, sleeping and waking rows, a row of two slots,
bytes-only changes, stacks and samples that change or not, reattribute(), reset(),
slots added late) both snapshots must be the same, field by field. Further tests check
when the `attribute` callback is called.
"""

from __future__ import annotations

import random
from collections import Counter

import pytest

from droptop.collector.assemble import SnapshotAssembler
from droptop.model import (
    HISTORY_LEN,
    Attribution,
    DropKey,
    DropRow,
    PacketSample,
    Reason,
    StackSample,
)


class Names:
    best_source = "btf"

    def resolve(self, raw: int) -> Reason:
        name = {2: "NOT_SPECIFIED", 3: "NO_SOCKET"}.get(raw, f"0x{raw:x}")
        return Reason(raw, name, "core", "btf")

    def table(self) -> tuple[Reason, ...]:
        return (Reason(3, "NO_SOCKET", "core", "btf"),)


class Clock:
    """Replays a list of times, one per call."""

    def __init__(self, times: list[float]) -> None:
        self.times = times
        self.i = 0

    def __call__(self) -> float:
        t = self.times[self.i]
        self.i += 1
        return t


class Attributor:
    """An attribute callback whose answer says how often it was asked about the key."""

    def __init__(self) -> None:
        self.calls: list[tuple[DropKey, tuple[StackSample, ...]]] = []  # tests clear it
        self.asked: Counter[DropKey] = Counter()  # never cleared

    def __call__(self, key: DropKey, stacks: tuple[StackSample, ...]) -> Attribution:
        self.calls.append((key, stacks))
        self.asked[key] += 1
        n = self.asked[key]
        return Attribution(context=f"stacks={len(stacks)}", netns_name=f"{key.comm}#{n}")

    def keys(self) -> list[DropKey]:
        return [k for k, _ in self.calls]


def key(comm: str, raw: int = 3, ifindex: int = 2) -> DropKey:
    return DropKey(raw, comm, False, ifindex, 4026531833)


def make(times: list[float], walls: list[float]) -> tuple[SnapshotAssembler, Attributor]:
    who = Attributor()
    a = SnapshotAssembler(
        Names(),
        kernel="k",
        capacity=64,
        stacks_enabled=True,
        hostname="h",
        clock=Clock(times),
        wallclock=Clock(walls),
        attribute=who,
    )
    return a, who


def spy_rebuilds(a: SnapshotAssembler) -> list[DropKey]:
    """Record the key of every row that goes through _rebuild (the full path)."""
    seen: list[DropKey] = []
    rebuild = a._rebuild

    def spy(row, rate, brate, wall):
        seen.append(row.key)
        rebuild(row, rate, brate, wall)

    a._rebuild = spy  # build_counts looks it up on the instance
    return seen


def force_full_path(a: SnapshotAssembler) -> None:
    for row in a._rows.values():
        row.single = False


FLOAT_FIELDS = {"rate", "byte_rate"}


def assert_same_row(x: DropRow, y: DropRow) -> None:
    for name in DropRow._fields:
        got, want = getattr(x, name), getattr(y, name)
        if name in FLOAT_FIELDS:
            assert got == pytest.approx(want), (x.key, name)
        elif name == "history":
            assert tuple(got) == pytest.approx(tuple(want)), (x.key, name)
            assert len(got) <= HISTORY_LEN
        else:
            assert got == want, (x.key, name)


def check_table_order(a: SnapshotAssembler, rows: tuple[DropRow, ...]) -> list[DropRow]:
    """Active rows by (rate, packets) descending, then idle rows by (-packets, order).
    Returns the rows with active rows tied on (rate, packets) put in key order: the
    assembler gives ties no order of their own (it depends on which path built them)."""
    active = [r for r in rows if r.rate > 0.0]
    idle = list(rows[len(active) :])
    assert all(r.rate == 0.0 for r in idle)
    assert [(r.rate, r.packets) for r in active] == sorted(
        ((r.rate, r.packets) for r in active), reverse=True
    )
    idle_keys = [(-r.packets, a._rows[r.key].order) for r in idle]
    assert idle_keys == sorted(idle_keys)
    assert len({r.key for r in rows}) == len(rows)  # one row a key
    return sorted(active, key=lambda r: (-r.rate, -r.packets, r.key)) + idle


def assert_same_snapshot(a, sa, b, sb) -> None:
    assert sa.poll == sb.poll and sa.time == sb.time and sa.interval == sb.interval
    assert sa.total_packets == sb.total_packets
    assert sa.total_rate == pytest.approx(sb.total_rate)
    assert sa.total_history == pytest.approx(sb.total_history)
    assert (sa.overflow_packets, sa.overflow_bytes, sa.resets) == (
        sb.overflow_packets,
        sb.overflow_bytes,
        sb.resets,
    )
    rows_a, rows_b = check_table_order(a, sa.rows), check_table_order(b, sb.rows)
    assert [r.key for r in rows_a] == [r.key for r in rows_b]
    for x, y in zip(rows_a, rows_b):
        assert_same_row(x, y)
    assert sa.total_packets == sum(r.packets for r in sa.rows) + sa.overflow_packets


# --- the random run -------------------------------------------------------------------

BUSY = key("busy")
SLEEPERS = [key(f"sleep{i}", ifindex=3) for i in range(4)]
TWO = key("two")
BYTES = key("bytes")
BENIGN = key("closer", raw=2)
NOLOC = key("noloc", ifindex=0)
LATE = key("late")
NEW = key("new")  # its slot is added at poll 30
POLLS = 400  # past several buffer swaps (_Row.move_on) for the busiest rows
RESETS = (50, 85)


class Run:
    """The slots, counters, stacks and samples both assemblers are fed."""

    def __init__(self, seed: int) -> None:
        self.rnd = random.Random(seed)
        self.slots: list[tuple[DropKey, str, str]] = []
        self.p: list[int] = []
        self.b: list[int] = []
        self.stacks: dict[int, tuple[StackSample, ...]] = {}
        self.samples: dict[int, tuple[PacketSample, ...]] = {}
        self.sleep_left = [0] * len(SLEEPERS)  # polls still to sleep
        self.awake_left = [0] * len(SLEEPERS)
        self.fixed_gaps = iter([1, 70, 2, 61, 1, 1, 60, 59, 3] * 5)  # for SLEEPERS[0]
        for k, ifname, loc in [
            (BUSY, "eth0", "ip_rcv_core+0x1a"),
            *((k, "eth1", f"tcp_v4_rcv+0x{i}") for i, k in enumerate(SLEEPERS)),
            (TWO, "eth0", "g+0x1"),
            (TWO, "eth0", "h+0x2"),
            (BYTES, "eth0", "f+0x3"),
            (BENIGN, "", "udp_destruct_common+0xb9"),
            (NOLOC, "", ""),
            (LATE, "eth2", "nf_hook_slow+0x9"),
        ]:
            self.add(k, ifname, loc)

    def add(self, k: DropKey, ifname: str, loc: str) -> int:
        self.slots.append((k, ifname, loc))
        self.p.append(0)
        self.b.append(0)
        return len(self.slots) - 1

    def bump(self, s: int, packets: int | None = None) -> None:
        dp = self.rnd.randint(1, 40) if packets is None else packets
        self.p[s] += dp
        self.b[s] += dp * self.rnd.randint(40, 1500)

    def bytes_only(self, s: int) -> None:
        self.b[s] += self.rnd.randint(1, 3000)

    def slot(self, k: DropKey) -> list[int]:
        return [i for i, (kk, _, _) in enumerate(self.slots) if kk == k]

    def step(self, poll: int) -> None:
        rnd = self.rnd
        for s in self.slot(BUSY):
            self.bump(s)
        for i, k in enumerate(SLEEPERS):
            (s,) = self.slot(k)
            if self.sleep_left[i]:
                self.sleep_left[i] -= 1
                if rnd.random() < 0.05:
                    self.bytes_only(s)  # stirs without a packet
            elif self.awake_left[i]:
                self.awake_left[i] -= 1
                self.bump(s)
            else:  # fall asleep now for a while, then wake for a few polls
                gap = next(self.fixed_gaps) if i == 0 else rnd.randint(1, 70)
                self.sleep_left[i] = gap - 1
                self.awake_left[i] = rnd.randint(1, 4)
        for s in self.slot(TWO):
            if rnd.random() < 0.5:
                self.bump(s)
        (s,) = self.slot(BYTES)
        r = rnd.random()
        if r < 0.5:
            self.bytes_only(s)
        elif r < 0.7:
            self.bump(s)
        (s,) = self.slot(BENIGN)
        if rnd.random() < 0.3:
            self.bump(s)
        (s,) = self.slot(NOLOC)
        if poll == 77:
            self.p[s] -= 1  # a counter that went back (a wrap, say): no rate, a new total
        elif rnd.random() < 0.3:
            self.bump(s)
        if poll >= 40:
            (s,) = self.slot(LATE)
            if rnd.random() < 0.6:
                self.bump(s, rnd.randint(1, 3))
        for s in self.slot(NEW):
            if rnd.random() < 0.7:
                self.bump(s)

    def next_stacks(self) -> dict[int, tuple[StackSample, ...]] | None:
        """Mostly the same dict or an equal copy (no rebuild); sometimes a new entry."""
        rnd = self.rnd
        r = rnd.random()
        if r < 0.1:
            return None
        if r < 0.5:
            return self.stacks
        new = dict(self.stacks)
        if r < 0.8:
            s = rnd.randrange(len(self.slots))
            frames = ("kfree_skb_reason+0x1", self.slots[s][2] or "x+0x0")
            count = rnd.randint(1, 3)
            new[s] = (StackSample(frames, count),)  # a new object, maybe of equal value
        elif r < 0.85 and new:
            del new[rnd.choice(list(new))]
        self.stacks = new
        return new

    def next_samples(self, wall: float) -> dict[int, tuple[PacketSample, ...]] | None:
        rnd = self.rnd
        r = rnd.random()
        if r < 0.2:
            return None
        if r < 0.85:
            return self.samples
        new = dict(self.samples)
        s = rnd.randrange(len(self.slots))
        k, ifname, _ = self.slots[s]
        sample = PacketSample(wall + rnd.random(), k.ifindex, ifname, k.netns, 0x800, 60, b"", b"")
        new[s] = (*new.get(s, ())[-7:], sample)
        self.samples = new
        return new


@pytest.mark.parametrize("seed", range(6))
def test_quick_paths_give_the_same_snapshots_as_the_full_path(seed):
    run = Run(seed)
    rnd = random.Random(1000 + seed)
    times, t = [], 100.0
    for _ in range(POLLS):
        times.append(t)
        t += rnd.choice([1.0, 1.0, 1.0, 0.5, 2.0, 0.25, 0.0])  # 0.0: no rates this poll
    walls = [1.7e9 + x for x in times]
    a, who_a = make(times, walls)
    b, who_b = make(times, walls)
    rebuilt_a, rebuilt_b = spy_rebuilds(a), spy_rebuilds(b)
    for asm in (a, b):
        for s, (k, ifname, loc) in enumerate(run.slots):
            asm.add_slot(s, k, ifname, loc)
    quick = Counter()
    prev_a = None
    overflow = (0, 0)
    for poll in range(1, POLLS + 1):
        if poll == 30:
            s = run.add(NEW, "eth3", "ip6_rcv_core+0x4")
            for asm in (a, b):
                asm.add_slot(s, NEW, "eth3", "ip6_rcv_core+0x4")
        if poll == 60:  # BUSY gets a second location: no longer a one-slot row
            s = run.add(BUSY, "eth0", "ip_rcv_finish+0x2")
            for asm in (a, b):
                asm.add_slot(s, BUSY, "eth0", "ip_rcv_finish+0x2")
        if poll in RESETS:
            a.reset()
            b.reset()
        if poll % 17 == 0:
            again = [rnd.choice(run.slots)[0], key("never-registered")]
            a.reattribute(again)
            b.reattribute(again)
        if poll > 1:
            run.step(poll)
        if rnd.random() < 0.1:
            overflow = (overflow[0] + 3, overflow[1] + 300)
        stacks = run.next_stacks()
        samples = run.next_samples(walls[poll - 1])
        force_full_path(b)
        del rebuilt_a[:], rebuilt_b[:]
        calls_a, calls_b = len(who_a.calls), len(who_b.calls)
        snaps = [
            asm.build_counts(
                list(run.p), list(run.b), stacks=stacks, samples=samples, overflow=overflow
            )
            for asm in (a, b)
        ]
        sa, sb = snaps
        assert_same_snapshot(a, sa, b, sb)
        assert sorted(who_a.keys()[calls_a:]) == sorted(who_b.keys()[calls_b:])

        built = {r.key for r in sa.rows if r.history_end == poll}
        assert set(rebuilt_b) == built  # the second assembler took the full path throughout
        assert len(rebuilt_b) == len(built)
        assert set(rebuilt_a) <= built
        assert len(rebuilt_a) == len(set(rebuilt_a))  # no row rebuilt twice in a poll
        by_key = {r.key: r for r in sa.rows}
        if prev_a is not None:
            before = {r.key: r for r in prev_a.rows}
            for k, r in by_key.items():
                if k not in built:  # not touched: the very same object as last poll
                    assert r is before[k]
                elif k not in rebuilt_a and k in before:
                    old = before[k]
                    if r.rate > 0 and old.rate > 0:
                        quick["moved"] += 1
                    elif r.rate > 0:
                        quick["woke"] += 1
                    elif r.byte_rate > 0:
                        quick["bytes only"] += 1
                    elif r.packets != old.packets:
                        quick["went back"] += 1  # a counter that went down: no rate
                    elif old.rate == 0:
                        quick["new details"] += 1  # idle still: new stacks, samples, who
                    else:
                        quick["went idle"] += 1
            # the history of every row, idle or not, as of this poll
            for k, r in by_key.items():
                other = next(x for x in sb.rows if x.key == k)
                assert r.history_at(poll) == pytest.approx(other.history_at(poll))
        if poll in RESETS:
            assert all(r.packets <= 40 * 3 for r in sa.rows)  # counted from the reset
        prev_a = sa
    # Both paths were really compared: the quick ones built rows of every kind.
    assert quick["moved"] > 50 and quick["woke"] > 0
    assert quick["went idle"] > 0 and quick["bytes only"] > 0 and quick["new details"] > 0
    assert len(who_a.calls) == len(who_b.calls)


def test_an_idle_row_woken_after_more_than_history_len_polls():
    """The quick path's padding of a long gap matches the full path's (capped zeros)."""
    n = HISTORY_LEN + 15
    times = [float(i) for i in range(n + 2)]
    snaps = []
    for full in (False, True):
        a, _ = make(times, times)
        a.add_slot(0, BUSY, "eth0", "f+0x1")
        counts = [5, 10] + [10] * (n - 2) + [13]
        for c in counts:
            if full:
                force_full_path(a)
            snap = a.build_counts([c], [c * 100])
        snaps.append(snap)
    quick, full = snaps
    row = quick.rows[0]
    assert row.rate == 3.0 and row.history_end == quick.poll == n + 1
    assert tuple(row.history) == (0.0,) * (HISTORY_LEN - 1) + (3.0,)
    assert_same_row(row, full.rows[0])


# --- when `attribute` is called -------------------------------------------------------


def two_rows() -> tuple[SnapshotAssembler, Attributor, list[float]]:
    times = [float(i) for i in range(20)]
    a, who = make(times, times)
    a.add_slot(0, BUSY, "eth0", "f+0x1")
    a.add_slot(1, BYTES, "eth0", "g+0x2")
    return a, who, times


def test_a_new_stacks_entry_reattributes_that_row_only():
    a, who, _ = two_rows()
    s0 = (StackSample(("a",), 1),)
    s1 = (StackSample(("b",), 1),)
    a.build_counts([1, 1], [10, 10], stacks={0: s0, 1: s1})
    assert Counter(who.keys()) == {BUSY: 1, BYTES: 1}

    del who.calls[:]
    stacks = {0: s0, 1: s1}  # a new dict, the same tuples: nothing to redo
    snap = a.build_counts([2, 2], [20, 20], stacks=stacks)
    assert who.calls == []
    assert all(r.rate == 1.0 for r in snap.rows)

    s1b = (StackSample(("b",), 1),)  # equal to s1, but a new object: a new sample
    assert s1b == s1 and s1b is not s1
    snap = a.build_counts([3, 3], [30, 30], stacks={0: s0, 1: s1b})
    assert who.keys() == [BYTES]
    assert who.calls[0][1] is s1b
    rows = {r.key: r for r in snap.rows}
    assert rows[BYTES].stacks is s1b and rows[BYTES].who.netns_name == "bytes#2"
    assert rows[BUSY].stacks is s0 and rows[BUSY].who.netns_name == "busy#1"

    del who.calls[:]
    a.build_counts([4, 4], [40, 40], stacks=stacks)  # BYTES back to s1: new for it
    assert who.keys() == [BYTES]

    del who.calls[:]
    a.build_counts([5, 5], [50, 50], stacks=stacks)  # the same dict object again
    a.build_counts([6, 6], [60, 60])  # no stacks given: the last ones hold
    assert who.calls == []


def test_a_new_stacks_entry_rebuilds_an_idle_row():
    a, who, _ = two_rows()
    s0 = (StackSample(("a",), 1),)
    a.build_counts([1, 1], [10, 10], stacks={0: s0})
    a.build_counts([2, 1], [20, 10], stacks={0: s0})  # BYTES idle now
    idle = next(r for r in a.build_counts([3, 1], [30, 10]).rows if r.key == BYTES)
    del who.calls[:]
    s1 = (StackSample(("late",), 2),)
    snap = a.build_counts([4, 1], [40, 10], stacks={0: s0, 1: s1})
    row = next(r for r in snap.rows if r.key == BYTES)
    assert who.keys() == [BYTES]
    assert row is not idle and row.stacks is s1 and row.history_end == snap.poll
    assert row.rate == 0.0 and row.packets == idle.packets
    assert row.history_at(snap.poll) == idle.history_at(snap.poll)


def test_reattribute_calls_attribute_at_the_next_poll():
    a, who, _ = two_rows()
    st = {0: (StackSample(("a",), 1),)}
    a.build_counts([1, 1], [10, 10], stacks=st)
    a.build_counts([2, 1], [20, 10], stacks=st)  # BUSY moving, BYTES idle
    first = {r.key: r for r in a.build_counts([3, 1], [30, 10], stacks=st).rows}
    del who.calls[:]

    a.reattribute([BUSY])  # a moving row, which the quick path would build
    snap = a.build_counts([4, 1], [40, 10], stacks=st)
    assert who.keys() == [BUSY]
    assert who.calls[0][1] is st[0]
    rows = {r.key: r for r in snap.rows}
    assert rows[BUSY].who.netns_name == "busy#2" and rows[BUSY].rate == 1.0
    assert rows[BYTES] is first[BYTES]

    del who.calls[:]
    a.build_counts([5, 1], [50, 10], stacks=st)  # once only
    assert who.calls == []

    a.reattribute([BYTES, key("unknown")])  # an idle row, and a key with no row
    snap = a.build_counts([6, 1], [60, 10], stacks=st)
    assert who.keys() == [BYTES]
    rows = {r.key: r for r in snap.rows}
    assert rows[BYTES].who.netns_name == "bytes#2"
    assert rows[BYTES].packets == 1 and rows[BYTES].rate == 0.0

    del who.calls[:]
    a.reattribute([BUSY])
    a.build_counts([6, 1], [60, 10], stacks=st)  # BUSY goes idle in the same poll
    assert who.keys() == [BUSY]
    del who.calls[:]
    a.build_counts([6, 1], [60, 10], stacks=st)
    assert who.calls == []
