from __future__ import annotations

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


def test_rows_with_the_same_key_merge_locations_and_stacks():
    a, _ = make()
    rows = [
        RawRow(KEY, "lo", 5, 50, (Location("f+0x1", 5),), (StackSample(("x",), 1),)),
        RawRow(KEY, "lo", 7, 70, (Location("g+0x2", 7),), (StackSample(("x",), 2),)),
    ]
    snap = a.build(rows, overflow=(3, 30), map_used=2)
    (row,) = snap.rows
    assert row.packets == 12 and row.bytes == 120
    assert [loc.symbol for loc in row.locations] == ["g+0x2", "f+0x1"]
    assert row.stacks == (StackSample(("x",), 3),)
    assert snap.overflow_packets == 3 and snap.map_used == 2 and snap.map_capacity == 8
    assert row.reason.name == "NO_SOCKET"


def test_sorted_by_rate_then_total_and_reset():
    a, clock = make()
    other = DropKey(0x10002, "ksoftirqd/0", True, 2, 42)
    a.build([RawRow(KEY, "lo", 100, 1), RawRow(other, "wlan0", 1, 1)])
    clock.t += 1
    snap = a.build([RawRow(KEY, "lo", 100, 1), RawRow(other, "wlan0", 11, 1)], overflow=(5, 5))
    assert [r.key for r in snap.rows] == [other, KEY]
    assert snap.rows[0].rate == 10.0
    assert snap.rows[0].reason.name == "0x10002"
    assert snap.total_rate == 10.0 and snap.interval == 1.0
    a.reset()
    clock.t += 1
    snap = a.build([RawRow(KEY, "lo", 104, 1), RawRow(other, "wlan0", 11, 1)], overflow=(5, 5))
    assert {r.key: r.packets for r in snap.rows} == {KEY: 4, other: 0}
    assert snap.overflow_packets == 0
