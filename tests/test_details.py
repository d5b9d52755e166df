"""Stacks and packet samples taken in from their maps in bounded steps (collector/details.py).

The maps here are fake readers over hand-packed entries, laid out as the BPF
program's structs; a real hash map's chunked pass is in test_bpfmaps.py.
"""

from __future__ import annotations

import struct

import pytest

from droptop.collector.details import (
    SAMPLE_HEAD,
    SampleRings,
    StackTops,
    chunk_size,
    details_budget,
)
from droptop.model import StackSample

SAMPLE_SIZE = SAMPLE_HEAD.size + 136  # net[SAMPLE_BYTES + 1], rounded up to 8 as the kernel does


class FakeReader:
    """A map's entries, handed out `limit` at a time like BatchReader.read_next."""

    def __init__(self, key_size: int, value_size: int) -> None:
        self.key_size = key_size
        self.value_size = value_size
        self.entries: dict[bytes, bytes] = {}
        self._order: list[bytes] = []
        self._at = 0
        self.chunks = 0

    def restart(self) -> None:
        self._order = list(self.entries)
        self._at = 0

    def read_next(self, limit: int) -> tuple[memoryview, memoryview, int, bool]:
        part = self._order[self._at : self._at + limit]
        self._at += len(part)
        self.chunks += 1
        keys = b"".join(part)
        vals = b"".join(self.entries[k] for k in part)
        return memoryview(keys), memoryview(vals), len(part), self._at >= len(self._order)


def stack_map() -> FakeReader:
    return FakeReader(8, 8)


def set_stack(m: FakeReader, idx: int, sid: int, count: int) -> None:
    m.entries[struct.pack("<Ii", idx, sid)] = struct.pack("<Q", count)


def frames_of(sid: int) -> tuple[str, ...] | None:
    return None if sid == 99 else (f"fn{sid}+0x1", "caller+0x2")


def run_pass(col: StackTops | SampleRings, budget: int = 10_000, polls: int = 50) -> set[int]:
    """Start a pass and take until it and its pending entries are done."""
    col.start()
    changed: set[int] = set()
    for _ in range(polls):
        changed |= col.take(budget, 10**6)
    return changed


def test_stacks_top_by_count_and_only_changes_reported():
    m = stack_map()
    for sid in range(10):
        set_stack(m, 1, sid, 100 + sid)  # ten stacks: the top 8 are 9..2
    set_stack(m, 2, 5, 7)
    tops = StackTops(m, frames_of)  # type: ignore[arg-type]
    assert run_pass(tops) == {1, 2}
    assert [s.count for s in tops.stacks[1]] == [109, 108, 107, 106, 105, 104, 103, 102]
    assert tops.stacks[1][0] == StackSample(("fn9+0x1", "caller+0x2"), 109)
    assert tops.stacks[2] == (StackSample(("fn5+0x1", "caller+0x2"), 7),)
    first = tops.stacks[1]

    # Nothing moved: nothing changes, and every tuple is the same object.
    assert run_pass(tops) == set()
    assert tops.stacks[1] is first
    # A stack below the top 8 moved (still below): the row need not be rebuilt.
    set_stack(m, 1, 0, 101)
    assert run_pass(tops) == set()
    assert tops.stacks[1] is first
    # It climbs into the top 8.
    set_stack(m, 1, 0, 500)
    assert run_pass(tops) == {1}
    assert tops.stacks[1][0].count == 500


def test_stacks_whose_frames_are_gone_are_left_out():
    m = stack_map()
    set_stack(m, 3, 99, 4)
    set_stack(m, 3, 1, 2)
    tops = StackTops(m, frames_of)  # type: ignore[arg-type]
    run_pass(tops)
    assert tops.stacks[3] == (StackSample(frames_of(1), 2),)  # type: ignore[arg-type]


def test_stacks_chunked_and_budgeted():
    m = stack_map()
    for idx in range(1000):
        set_stack(m, idx, 1, idx + 1)
    tops = StackTops(m, frames_of)  # type: ignore[arg-type]
    tops.start()
    seen: set[int] = set()
    polls = 0
    while tops.reading or len(seen) < 1000:
        got = tops.take(50, 64)
        assert len(got) <= 50  # never more than the budget in one poll
        assert not got & seen  # each key once: a pass finds each entry once
        seen |= got
        polls += 1
        assert polls < 100
    assert m.chunks == 1000 // 64 + 1  # one read of a chunk a poll, until the end
    assert polls == 20  # 1000 entries at 50 a poll
    assert all(tops.stacks[i][0].count == i + 1 for i in range(1000))
    # A pass is not restarted while one is under way.
    tops.start()
    tops.take(1, 64)
    tops.start()
    assert tops.reading and m.chunks == 1000 // 64 + 2


def sample_map() -> FakeReader:
    return FakeReader(8, SAMPLE_SIZE)


def put_sample(
    m: FakeReader,
    idx: int,
    cpu: int,
    pos: int,
    ktime: int,
    *,
    length: int = 60,
    proto: bytes = b"\x08\x00",
    mac: bytes = b"M" * 14,
    net: bytes = b"N" * 40,
) -> None:
    head = SAMPLE_HEAD.pack(
        ktime,
        length,
        int.from_bytes(proto, "little"),  # as the kernel stores skb->protocol
        1,
        len(mac),
        len(net),
        0,
        mac.ljust(32, b"\0"),
    )
    m.entries[struct.pack("<IHH", idx, cpu, pos)] = (head + net).ljust(SAMPLE_SIZE, b"\0")


def rings(m: FakeReader, sample_bytes: int = 128) -> SampleRings:
    r = SampleRings(m, sample_bytes)  # type: ignore[arg-type]
    for idx in range(2000):
        r.keys[idx] = (idx + 10, f"veth{idx}", 4026531840 + idx)
    return r


def test_samples_decoded_from_the_struct():
    m = sample_map()
    put_sample(m, 7, 1, 0, 5_000_000_000, length=1400, proto=b"\x86\xdd", net=bytes(range(40)))
    r = rings(m)
    assert run_pass(r) == {7}
    (s,) = r.rings[7]
    assert (s.ifindex, s.ifname, s.netns) == (17, "veth7", 4026531847)
    assert s.protocol == 0x86DD  # host order from the network-order field
    assert s.length == 1400 and s.link_type == 1
    assert s.mac == b"M" * 14 and s.network == bytes(range(40))


def test_samples_cut_to_sample_bytes():
    m = sample_map()
    put_sample(m, 1, 0, 0, 1, net=b"x" * 100)
    r = rings(m, sample_bytes=64)
    run_pass(r)
    assert r.rings[1][0].network == b"x" * 64


def test_ring_newest_eight_oldest_first_and_same_object_when_unchanged():
    m = sample_map()
    ms = 1_000_000
    for pos in range(8):
        put_sample(m, 4, 0, pos, (100 + pos) * ms)
        put_sample(m, 4, 1, pos, (200 + pos) * ms)  # the other CPU's ring is newer
    r = rings(m)
    run_pass(r)
    ring = r.rings[4]
    assert len(ring) == 8
    assert [round((s.time - ring[0].time) * 1e3) for s in ring] == [0, 1, 2, 3, 4, 5, 6, 7]
    assert round((ring[0].time - r._offset) * 1e3) == 200  # the newest 8 of both CPUs
    assert run_pass(r) == set()
    assert r.rings[4] is ring
    put_sample(m, 4, 0, 3, 900 * ms)  # overwrites a ring slot with the newest sample
    assert run_pass(r) == {4}
    assert round((r.rings[4][-1].time - ring[-1].time) * 1e3) == 900 - 207


def test_evicted_samples_leave_their_ring():
    m = sample_map()
    put_sample(m, 1, 0, 0, 10)
    put_sample(m, 1, 0, 1, 11)
    put_sample(m, 2, 0, 0, 12)
    r = rings(m)
    run_pass(r)
    del m.entries[struct.pack("<IHH", 1, 0, 0)]
    del m.entries[struct.pack("<IHH", 2, 0, 0)]
    assert run_pass(r) == {1, 2}
    assert len(r.rings[1]) == 1
    assert 2 not in r.rings


def test_sample_of_an_unknown_key_waits_for_a_later_pass():
    m = sample_map()
    put_sample(m, 5000, 0, 0, 10)  # index not learnt yet
    r = rings(m)
    assert run_pass(r) == set()
    r.keys[5000] = (1, "eth0", 1)
    assert run_pass(r) == {5000}


def test_samples_budgeted_and_all_arrive():
    m = sample_map()
    for idx in range(1500):
        put_sample(m, idx, 0, 0, idx + 1)
    r = rings(m)
    r.start()
    total = 0
    for _ in range(40):
        got = r.take(100, 100)
        assert len(got) <= 100
        total += len(got)
    assert total == 1500 and len(r.rings) == 1500


@pytest.mark.parametrize(
    ("moved", "budget", "chunk"),
    [(0, 500, 8192), (2000, 400, 6192), (7000, 150, 1192), (10_000, 150, 300), (10**6, 150, 300)],
)
def test_budget_and_chunk_shrink_with_the_keys_a_poll_moved(moved, budget, chunk):
    assert details_budget(moved) == budget
    assert chunk_size(moved) == chunk


@pytest.mark.parametrize(
    ("moved", "onset", "budget"),
    [
        (10_000, True, 0),
        (8000, True, 0),
        (7000, True, 150),
        (10_000, False, 150),
        (2000, True, 400),
        (0, True, 500),
    ],
)
def test_a_poll_in_which_a_big_burst_begins_takes_no_details(moved, onset, budget):
    # Only where the counters leave less than the minimum: a few hundred new keys'
    # details still arrive in the poll that first sees them.
    assert details_budget(moved, onset) == budget
