from __future__ import annotations

import pytest

from droptop.collector.assemble import RawRow, SnapshotAssembler
from droptop.model import DropKey, Location, Reason, StackSample


class Names:
    best_source = "btf"

    def resolve(self, raw: int) -> Reason:
        return Reason(raw, {3: "NO_SOCKET"}.get(raw, f"0x{raw:x}"), "core", "btf")

    def table(self):
        return (Reason(3, "NO_SOCKET", "core", "btf"),)


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def make():
    clock = Clock()
    a = SnapshotAssembler(
        Names(),
        kernel="k",
        capacity=8,
        stacks_enabled=True,
        hostname="h",
        clock=clock,
        wallclock=clock,
    )
    return a, clock


KEY = DropKey(3, "curl", False, 1, 42)
OTHER = DropKey(0x10002, "ksoftirqd/0", True, 2, 42)


def test_locations_of_one_key_merge_into_one_row():
    a, _ = make()
    a.add_slot(0, KEY, "lo", "f+0x1")
    a.add_slot(1, KEY, "lo", "g+0x2")
    st = (StackSample(("x",), 1),)
    snap = a.build_counts([5, 7], [50, 70], stacks={0: st}, overflow=(3, 30), map_used=2)
    (row,) = snap.rows
    assert row.packets == 12 and row.bytes == 120
    assert [(loc.symbol, loc.packets) for loc in row.locations] == [("g+0x2", 7), ("f+0x1", 5)]
    assert row.stacks == st
    assert snap.overflow_packets == 3 and snap.map_used == 2 and snap.map_capacity == 8
    assert row.reason.name == "NO_SOCKET"
    assert snap.total_packets == 15  # every drop: 12 in rows, 3 overflow


def test_rates_order_and_idle_rows_are_reused():
    a, clock = make()
    a.add_slot(0, KEY, "lo", "f")
    a.add_slot(1, OTHER, "wlan0", "g")
    first = a.build_counts([100, 1], [1000, 10])
    assert all(r.rate == 0.0 for r in first.rows)  # no rate from one reading
    assert [r.key for r in first.rows] == [KEY, OTHER]  # idle: by total
    clock.t += 2
    snap = a.build_counts([100, 21], [1000, 210])
    assert [r.key for r in snap.rows] == [OTHER, KEY]  # active first
    assert snap.rows[0].rate == pytest.approx(10.0)
    assert snap.rows[0].byte_rate == pytest.approx(100.0)
    assert snap.rows[1] is first.rows[0]  # untouched idle row: the same object
    assert snap.total_rate == pytest.approx(10.0) and snap.interval == 2.0
    assert snap.total_history == (0.0, 10.0)
    clock.t += 1
    idle = a.build_counts([100, 21], [1000, 210])
    went_idle = next(r for r in idle.rows if r.key == OTHER)
    assert went_idle.rate == 0.0 and went_idle.history == (0.0, 10.0, 0.0)
    assert [r.key for r in idle.rows] == [KEY, OTHER]  # both idle: by total again
    clock.t += 1
    later = a.build_counts([100, 21], [1000, 210])
    assert next(r for r in later.rows if r.key == OTHER) is went_idle
    assert went_idle.history_at(later.poll) == (0.0, 10.0, 0.0, 0.0)


def test_history_gap_is_filled_when_an_idle_row_moves_again():
    a, clock = make()
    a.add_slot(0, KEY, "lo", "f")
    a.build_counts([1], [1])
    for _ in range(3):
        clock.t += 1
        a.build_counts([1], [1])
    clock.t += 1
    snap = a.build_counts([6], [6])
    assert snap.rows[0].history == (0.0, 0.0, 0.0, 0.0, 5.0)
    assert snap.rows[0].history_end == snap.poll == 5


def test_reset_restarts_totals_not_rates():
    a, clock = make()
    a.add_slot(0, KEY, "lo", "f")
    a.build_counts([100], [100], overflow=(5, 5))
    a.reset()
    clock.t += 1
    snap = a.build_counts([130], [160], overflow=(7, 7))
    assert snap.rows[0].packets == 30 and snap.rows[0].bytes == 60
    assert snap.rows[0].rate == 30.0
    assert snap.total_packets == 32 and snap.overflow_packets == 2
    clock.t += 1
    snap = a.build_counts([130], [160], overflow=(7, 7))  # an idle row after a reset
    assert snap.rows[0].packets == 30


def test_raw_row_interface_and_new_stacks_rebuild_the_row():
    a, clock = make()
    st1 = (StackSample(("a",), 1),)
    snap = a.build([RawRow(KEY, "lo", 5, 50, (Location("f", 5),), st1)])
    assert snap.rows[0].stacks == st1
    clock.t += 1
    st2 = (StackSample(("a",), 2),)
    snap = a.build([RawRow(KEY, "lo", 5, 50, (Location("f", 5),), st2)])
    assert snap.rows[0].stacks == st2  # counts unchanged, stacks changed: rebuilt
    clock.t += 1
    snap2 = a.build([RawRow(KEY, "lo", 5, 50, (Location("f", 5),), st2)])
    assert snap2.rows[0] is snap.rows[0]


def test_slots_must_be_registered_in_order():
    a, _ = make()
    with pytest.raises(ValueError):
        a.add_slot(3, KEY, "lo", "f")


def test_totals_count_overflow_drops_too():
    """The header's total and rate are all drops: rows plus drops the full map could
    not attribute (overflow)."""
    a, clock = make()
    a.add_slot(0, KEY, "lo", "f")
    first = a.build_counts([10], [100], overflow=(4, 40))
    assert first.total_packets == 14 and first.total_rate == 0.0
    clock.t += 2
    snap = a.build_counts([30], [300], overflow=(24, 240))
    assert snap.total_packets == 54
    assert snap.rows[0].rate == pytest.approx(10.0)
    assert snap.total_rate == pytest.approx(20.0)  # 10/s in the row, 10/s overflow
    assert snap.total_history == (0.0, pytest.approx(20.0))
    clock.t += 1
    only_overflow = a.build_counts([30], [300], overflow=(30, 300))
    assert only_overflow.total_rate == pytest.approx(6.0)
    assert only_overflow.total_packets == 60
    a.reset()
    clock.t += 1
    after = a.build_counts([31], [310], overflow=(35, 350))
    assert after.total_packets == 1 + 5 and after.total_rate == pytest.approx(6.0)


def test_fake_collector_totals_include_overflow():
    from droptop.collector.fake import FakeCollector

    fake = FakeCollector(overflow=(7, 70))
    snap = fake.poll()
    assert snap.overflow_packets == 7
    assert snap.total_packets == sum(r.packets for r in snap.rows) + 7


def test_reattribute_rebuilds_an_unchanged_row_with_a_fresh_attribution():
    from droptop.collector.assemble import SnapshotAssembler
    from droptop.model import Attribution, DropKey, Reason

    class Names:
        best_source = "btf"

        def resolve(self, raw):
            return Reason(raw, "NO_SOCKET", "core", "btf")

        def table(self):
            return ()

    answers = iter([Attribution(netns_name="4026532001"), Attribution(netns_name="blue")])
    a = SnapshotAssembler(
        Names(),
        kernel="k",
        capacity=8,
        stacks_enabled=False,
        attribute=lambda key, stacks: next(answers),
    )
    key = DropKey(3, "curl", False, 2, 4026532001)
    a.add_slot(0, key, "eth0", "f+0x1")
    a.build_counts([5], [300])
    first = a.build_counts([6], [360]).rows[0]
    assert first.who.netns_name == "4026532001"
    idle = a.build_counts([6], [360]).rows[0]  # gone idle: rebuilt once, rate 0
    assert a.build_counts([6], [360]).rows[0] is idle  # then the same row, no new lookup
    a.reattribute([key])
    again = a.build_counts([6], [360]).rows[0]
    assert again.who.netns_name == "blue" and again.packets == first.packets
