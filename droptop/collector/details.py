"""Stacks and packet samples per counter index, read from their maps in bounded
steps.

Each map is read in passes, started when the collector says details are due, one
chunk a poll (one batch syscall): 8,192 entries in a poll in which no key moved,
down to a few hundred in one in which 10,000 did (`chunk_size`). What is
new since the entries taken in is found at C speed, as set differences of the
entries' identities (each map's key read as one u64, with its count or kernel
time); at most `budget` new entries a poll become Python objects, the rest wait in
`pending` for the next polls, and the pass reads on only when fewer than a poll's
budget wait.

Why: 10,000 keys seen for the first time all get new stacks and samples at once.
Reading both maps whole and taking everything in cost that poll ~60 ms on top of
its counters, and ~90 ms more in rebuilding and attributing the rows; in steps no
poll of changed keys pays for more than a few hundred details (bench_poll.py), and
a big burst's details arrive over the next polls (10,000 keys: ~40 polls, longer
while they all keep moving). A few hundred new keys' details arrive in one poll.
`take()` returns the indices whose stacks or samples changed, so the assembler
rebuilds exactly those rows.
"""

from __future__ import annotations

import operator
import struct
import time
from collections.abc import Callable, Sequence
from itertools import compress, islice, repeat

from droptop.collector.assemble import SAMPLES_PER_ROW
from droptop.collector.bpfmaps import BatchReader, BatchUnsupported
from droptop.model import PacketSample, StackSample

STACKS_PER_ROW = 8
"""A row keeps its most sampled stacks, this many."""
MAX_CHUNK = 8192
"""Entries of each map read in a poll in which no key moved."""
DETAILS_PER_POLL = 500
MIN_DETAILS_PER_POLL = 150
"""New entries taken in per poll: from DETAILS_PER_POLL down to this (details_budget)."""
SAMPLE_HEAD = struct.Struct("<QIHHBBH32s")
"""struct sample in droptop.bpf.c up to net[]: ktime, length, protocol (network order),
dev_type, mac_len, net_len, pad, mac[32]."""
_MAC_AT = SAMPLE_HEAD.size - 32
_NET_AT = SAMPLE_HEAD.size
_BY_TIME = operator.itemgetter(0)  # PacketSample.time
_new = tuple.__new__

Frames = Callable[[int], "tuple[str, ...] | None"]
"""A stack id's symbolized frames, or None when the stack map no longer has it."""
_LOW = 0xFFFFFFFF
"""Both maps' keys start with the u32 counter index: a key read as a little-endian u64
is idx | rest << 32, one int per entry for C-speed set arithmetic."""


def details_budget(moved: int, onset: bool = False) -> int:
    """New stack counts, and new or evicted packet samples, to take in (each) in a poll
    in which `moved` counters moved: what the counters leave. Measured at 10,000 keys
    (bench_poll.py): a moved key costs the poll ~2.5 us; a detail ~10-20 us all told
    (taking it in, its row rebuilt, and attributed again when its first stacks change
    the context), so 500 details take an otherwise idle poll to ~20 ms.

    At least MIN_DETAILS_PER_POLL, so that details keep arriving while thousands of
    keys keep moving; but none in the poll in which such a burst begins (`onset`: at
    least twice the keys of the poll before moved), the dearest of them (every key
    woken at once, the first drops of 10,000 new keys): its details wait a poll."""
    left = DETAILS_PER_POLL - moved // 20
    if onset and left < MIN_DETAILS_PER_POLL:
        return 0
    return max(MIN_DETAILS_PER_POLL, left)


def chunk_size(moved: int) -> int:
    """Entries of each map to read in a poll in which `moved` counters moved: 8,192
    when none did (a map of ~2,000 keys' details at once), down to twice the take
    budget when 10,000 did (so that the pass keeps up). Reading and diffing both maps'
    8,192 costs ~4 ms here, their 20,000 each ~15 ms."""
    return max(2 * details_budget(moved), MAX_CHUNK - moved)


def _new_entries(cur: dict[int, int], taken: dict[int, int]) -> list[tuple[int, int]]:
    """The entries of `cur` that `taken` does not hold as they are, at C speed in the
    size of `cur`. (Not `cur.items() - taken.items()`: that walks all of `taken`, 40,000
    samples' worth at 10,000 keys, and cost every poll of a pass ~2 ms.)"""
    return list(compress(cur.items(), map(operator.ne, cur.values(), map(taken.get, cur))))


def _pop_some(pending: dict[int, int], budget: int) -> list[tuple[int, int]]:
    """Up to `budget` entries of `pending`, removed from it."""
    if len(pending) <= budget:
        batch = list(pending.items())
        pending.clear()
        return batch
    batch = list(islice(pending.items(), budget))
    for k, _ in batch:
        del pending[k]
    return batch


class _Pass:
    """A pass over one map, a chunk a step; a map without batch lookups (before 5.6)
    has no details."""

    def __init__(self, reader: BatchReader | None) -> None:
        self.reader = reader
        self.active = False

    def start(self) -> bool:
        """Start a pass unless one is under way; False if this one went on."""
        if self.active or self.reader is None:
            return False
        self.reader.restart()
        self.active = True
        return True

    def step(self, chunk: int) -> tuple[memoryview, memoryview, int, bool] | None:
        """The next chunk of up to `chunk` entries (keys, values, n, last), or None
        when no pass is under way."""
        if not self.active or self.reader is None:
            return None
        try:
            keys, vals, n, done = self.reader.read_next(chunk)
        except BatchUnsupported:
            self.reader = None
            self.active = False
            return None
        self.active = not done
        return keys, vals, n, done


class _FromMap:
    """A reader of one details map, in passes."""

    def __init__(self, reader: BatchReader | None) -> None:
        self._pass = _Pass(reader)

    @property
    def reading(self) -> bool:
        """A pass over the map is under way."""
        return self._pass.active


class StackTops(_FromMap):
    """Per counter index, its most sampled stacks, from the stack-count map."""

    def __init__(self, reader: BatchReader | None, frames: Frames) -> None:
        super().__init__(reader)
        self._frames = frames
        self._taken: dict[int, int] = {}  # map key (idx | stack id << 32) -> count taken in
        self._by_idx: dict[int, dict[int, int]] = {}  # idx -> stack id -> count
        self._top: dict[int, tuple[tuple[int, int], ...]] = {}  # idx -> ((count, sid), ...)
        self._pending: dict[int, int] = {}
        self.stacks: dict[int, tuple[StackSample, ...]] = {}
        """idx -> its stacks, most sampled first; a tuple is replaced, never changed."""

    @property
    def backlog(self) -> int:
        """Entries found and not taken in yet."""
        return len(self._pending)

    def start(self) -> None:
        """Start a pass (struct stack_key {u32 idx; s32 stackid} -> u64) unless one is
        under way."""
        if self._pass.start():
            self._pending.clear()  # the pass finds what is still not taken in again

    def take(self, budget: int, chunk: int) -> set[int]:
        """Read the pass's next `chunk` entries, take in up to `budget` new counts; the
        indices whose stacks changed."""
        # The next chunk only when what waits would not fill this poll's budget: a
        # backlog is drained before more of the map is read.
        got = self._pass.step(chunk) if len(self._pending) < budget else None
        if got is not None:
            keys, counts, n, _ = got
            cur = dict(zip(keys[: 8 * n].cast("Q"), counts[: 8 * n].cast("Q")))
            self._pending.update(_new_entries(cur, self._taken))
        if not self._pending:
            return set()
        batch = _pop_some(self._pending, budget)
        self._taken.update(batch)
        by_idx = self._by_idx
        touched = set()
        for k, count in batch:
            idx = k & _LOW
            per = by_idx.get(idx)
            if per is None:
                per = by_idx[idx] = {}
            per[k >> 32] = count
            touched.add(idx)
        changed = set()
        for idx in touched:
            per = by_idx[idx]
            if len(per) == 1:
                ((sid, count),) = per.items()
                top: tuple[tuple[int, int], ...] = ((count, sid),)
            else:
                top = tuple(sorted(((c, s) for s, c in per.items()), reverse=True))
                top = top[:STACKS_PER_ROW]
                if self._top.get(idx) == top:
                    continue  # what moved is below the row's top stacks
            self._top[idx] = top
            samples = []
            for count, sid in top:
                frames = self._frames(sid)
                if frames is not None:
                    samples.append(StackSample(frames, count))
            self.stacks[idx] = tuple(samples)
            changed.add(idx)
        return changed


class SampleRings(_FromMap):
    """Per counter index, its newest packet samples, from the samples map."""

    def __init__(self, reader: BatchReader | None, sample_bytes: int) -> None:
        super().__init__(reader)
        self.sample_bytes = sample_bytes
        self.keys: dict[int, tuple[int, str, int]] = {}
        """idx -> what its samples take from its key: ifindex, interface name, netns."""
        self._taken: dict[int, int] = {}  # map key (idx | cpu << 32 | pos << 48) -> ktime
        self._by_idx: dict[int, dict[int, PacketSample]] = {}  # idx -> ring slot -> sample
        self._pending: dict[int, int] = {}  # map key -> ktime, to take in
        self._where: dict[int, tuple[bytes, int]] = {}  # this pass: key -> (chunk, offset)
        self._seen: set[int] = set()  # map keys this pass found
        self._evicted: list[int] = []  # map keys taken in that the last pass did not find
        self._offset = 0.0
        self._size = reader.value_size if reader is not None else 0
        self.rings: dict[int, tuple[PacketSample, ...]] = {}
        """idx -> its samples, oldest first; a tuple is replaced, never changed."""

    @property
    def backlog(self) -> int:
        """Entries found, new or evicted, and not taken in yet."""
        return len(self._pending) + len(self._evicted)

    def start(self) -> None:
        """Start a pass (struct sample_key {u32 idx; u16 cpu; u16 pos} -> struct
        sample) unless one is under way."""
        if self._pass.start():
            self._pending.clear()
            self._where.clear()
            self._seen.clear()
            # Kernel monotonic ns -> wall clock, one offset per pass.
            self._offset = time.time() - time.monotonic_ns() / 1e9

    def take(self, budget: int, chunk: int) -> set[int]:
        """Read the pass's next `chunk` entries, take in up to `budget` new samples and
        up to `budget` evicted ones; the indices whose rings changed."""
        got = self._pass.step(chunk) if len(self._pending) < budget else None  # as StackTops
        if got is not None:
            self._chunk(*got)
        changed: set[int] = set()
        if self._evicted:
            self._evict(self._evicted[-budget:], changed)
            del self._evicted[-budget:]
        if self._pending:
            self._take(_pop_some(self._pending, budget), changed)
        for idx in changed:
            per = self._by_idx.get(idx)
            if per:
                self.rings[idx] = tuple(sorted(per.values(), key=_BY_TIME)[-SAMPLES_PER_ROW:])
            else:
                self.rings.pop(idx, None)
        return changed

    def _chunk(self, keys: memoryview, vals: memoryview, n: int, last: bool) -> None:
        size = self._size
        ks = keys[: 8 * n].cast("Q")
        data = bytes(vals[: n * size])  # a copy: the reader's buffers are reused
        if n and size % 8 == 0:
            ktimes: Sequence[int] = memoryview(data).cast("Q")[:: size // 8]
        else:
            ktimes = [SAMPLE_HEAD.unpack_from(data, i * size)[0] for i in range(n)]
        cur = dict(zip(ks, ktimes))
        self._pending.update(_new_entries(cur, self._taken))
        self._where.update(zip(ks, zip(repeat(data), range(0, n * size, size))))
        self._seen.update(ks)
        if last:  # what the pass did not find was evicted (the map is an LRU hash)
            self._evicted = list(self._taken.keys() - self._seen)

    def _evict(self, keys: list[int], changed: set[int]) -> None:
        taken, by_idx = self._taken, self._by_idx
        for k in keys:
            if taken.pop(k, None) is None:
                continue
            idx = k & _LOW
            per = by_idx.get(idx)
            if per is not None and per.pop(k >> 32, None) is not None:
                changed.add(idx)

    def _take(self, batch: list[tuple[int, int]], changed: set[int]) -> None:
        where, offset = self._where, self._offset
        unpack, keys, limit = SAMPLE_HEAD.unpack_from, self.keys, self.sample_bytes
        taken, by_idx = self._taken, self._by_idx
        for k, ktime in batch:
            idx = k & _LOW
            known = keys.get(idx)
            place = where.get(k)
            if known is None or place is None:
                continue  # its key is not known yet: taken at a later pass
            data, at = place
            ktime, length, proto, dev_type, mac_len, net_len, _, _ = unpack(data, at)
            ifindex, ifname, netns = known
            sample = _new(
                PacketSample,
                (
                    offset + ktime / 1e9,
                    ifindex,
                    ifname,
                    netns,
                    (proto & 0xFF) << 8 | proto >> 8,  # network byte order
                    length,
                    data[at + _MAC_AT : at + _MAC_AT + min(mac_len, 32)],
                    data[at + _NET_AT : at + _NET_AT + min(net_len, limit)],
                    dev_type,
                ),
            )
            taken[k] = ktime
            per = by_idx.get(idx)
            if per is None:
                per = by_idx[idx] = {}
            per[k >> 32] = sample
            changed.add(idx)
