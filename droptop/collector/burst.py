"""The per-CPU burst slots: drops counted in the kernel's one-entry cache, not yet
stored back into the counters (bpf/droptop.bpf.c, BURST_COUNT), and each CPU's count
of sampled drops, which says when the stack and sample maps are worth reading.

A hit counts in its CPU's slot: `n` and `nb` there are that CPU's whole count of
key `idx` (its counter when the slot was resolved, plus the hits since); the next
miss stores them back into counts[idx]. Each per-CPU value, slot or counter, is
that CPU's true count at the moment it was read, and true counts only grow. So the
larger of the two is exact as of some moment of the read, provided the slots are
read *before* the counters: a store-back the counter read missed is still in the
slot, and one it saw is never smaller than the slot. Totals never go back either,
because a CPU whose slot cannot be read cleanly keeps its last clean reading, which
is still a lower bound.

A clean reading: the miss path makes the slot's `seq` odd while it changes idx, n
and nb, so two reads with the same even seq pair a key's index with its own count.
(`seq` comes before those fields in the slot, and the kernel copies the value
forwards. x86-64 keeps stores in order; droptop builds the slot counting only there.)
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from droptop.collector.bpfmaps import lookup

SLOT_FIELDS = struct.Struct("<56xQQQI")
"""struct slot's seq (offset 56), n (64), nb (72) and idx (80); the rest is not read."""
SAMPLED = struct.Struct("<96xQ")
"""struct slot's sampled (offset 96): drops this CPU sampled, a stack or headers each."""
READ_TRIES = 3
"""Pairs of slot reads per poll before a CPU falls back to its last clean reading."""

Claim = tuple[int, int, int]
"""(cpu, packets, bytes): a lower bound of one CPU's count of one key."""


def clean_slots(first: bytes, second: bytes, ncpu: int, size: int) -> dict[int, Claim]:
    """cpu -> (idx, packets, bytes) for every CPU whose slot had the same even seq in
    both reads of the per-CPU value (ncpu values of `size` bytes each)."""
    out: dict[int, Claim] = {}
    for cpu in range(ncpu):
        seq, n, nb, idx = SLOT_FIELDS.unpack_from(first, cpu * size)
        if seq % 2 == 0 and SLOT_FIELDS.unpack_from(second, cpu * size)[0] == seq:
            out[cpu] = (idx, n, nb)
    return out


def raise_to_claims(
    packets: list[int],
    nbytes: list[int],
    claims: dict[int, list[Claim]],
    percpu: Callable[[int, int], tuple[int, int]],
) -> None:
    """Raise each total to what the claims prove, in place.

    packets/nbytes: per-index sums over CPUs of the counters; claims: idx -> claims;
    percpu(idx, cpu): that CPU's (packets, bytes) counter as summed. An index past the
    end (a key claimed after the counters were read) waits for the next poll.
    """
    for idx, found in claims.items():
        if idx >= len(packets):
            continue
        for cpu, n, nb in found:
            p, b = percpu(idx, cpu)
            if n > p:
                packets[idx] += n - p
            if nb > b:
                nbytes[idx] += nb - b


class BurstSlots:
    """Reads the kernel's `cache` map (one per-CPU slot) for raise_to_claims()."""

    def __init__(self, fd: int, ncpu: int, value_size: int) -> None:
        self._fd = fd
        self._ncpu = ncpu
        self._size = value_size
        self._last: dict[int, tuple[int, int, int]] = {}  # cpu -> last clean (idx, n, nb)
        self.sampled = 0
        """Drops sampled on all CPUs as of the last read (it moves after the maps do):
        while it stands still, the stack and sample maps have not changed."""

    def read(self) -> dict[int, list[Claim]]:
        """idx -> claims, from a clean reading of each CPU's slot (or its last one).
        Call before reading the counters."""
        key = b"\0\0\0\0"
        total = self._ncpu * self._size
        for _ in range(READ_TRIES):
            first = lookup(self._fd, key, total)
            second = lookup(self._fd, key, total)
            if first is None or second is None:
                break
            self.sampled = sum(
                SAMPLED.unpack_from(first, cpu * self._size)[0] for cpu in range(self._ncpu)
            )
            clean = clean_slots(first, second, self._ncpu, self._size)
            self._last.update(clean)
            if len(clean) == self._ncpu:
                break
        out: dict[int, list[Claim]] = {}
        for cpu, (idx, n, nb) in self._last.items():
            out.setdefault(idx, []).append((cpu, n, nb))
        return out
