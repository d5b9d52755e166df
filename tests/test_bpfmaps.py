from __future__ import annotations

import ctypes as ct
import os
import struct

import pytest

from droptop.collector.bpfmaps import (
    BatchReader,
    _ElemAttr,
    bpf_syscall,
    possible_cpus,
    sum_percpu_u64,
)
from tests.conftest import need_bpf


def test_sum_percpu_fields():
    # 3 entries x 2 CPUs x (packets, bytes), each CPU slot 16 bytes
    vals = []
    for entry in range(3):
        for cpu in range(2):
            vals += [entry * 10 + cpu, (entry * 10 + cpu) * 100]
    mv = memoryview(struct.pack(f"<{len(vals)}Q", *vals))
    packets, nbytes = sum_percpu_u64(mv, 3, 2, 16, 2)
    assert packets == [1, 21, 41]
    assert nbytes == [100, 2100, 4100]


def test_sum_percpu_padded_slot():
    # one u64 field in a 16-byte slot (value rounded up), 1 CPU
    mv = memoryview(struct.pack("<4Q", 7, 99, 8, 99))
    (only,) = sum_percpu_u64(mv, 2, 1, 16, 1)
    assert only == [7, 8]


def test_possible_cpus(tmp_path):
    f = tmp_path / "possible"
    f.write_text("0-3,8,10-11\n")
    assert possible_cpus(str(f)) == 7


class _MapCreate(ct.Structure):
    _fields_ = [
        ("map_type", ct.c_uint32),
        ("key_size", ct.c_uint32),
        ("value_size", ct.c_uint32),
        ("max_entries", ct.c_uint32),
        ("map_flags", ct.c_uint32),
    ]


def _hash_map(entries: int) -> int:
    """A real BPF hash map (u32 -> u64) holding i -> i * 3 for i < entries."""
    fd = bpf_syscall(0, _MapCreate(1, 4, 8, entries + 16, 0))  # BPF_MAP_CREATE, HASH
    if fd < 0:
        pytest.fail(f"BPF_MAP_CREATE: {os.strerror(-fd)}")
    for i in range(entries):
        k, v = ct.c_uint32(i), ct.c_uint64(i * 3)
        attr = _ElemAttr(map_fd=fd, key=ct.addressof(k), value=ct.addressof(v))
        assert bpf_syscall(2, attr) == 0  # BPF_MAP_UPDATE_ELEM
    return fd


def test_read_next_passes_over_a_real_hash_map_in_chunks():
    need_bpf()
    fd = _hash_map(1000)
    try:
        reader = BatchReader(fd, 4, 8, 128)
        for _ in range(2):  # two passes: the second starts again from the first bucket
            seen: dict[int, int] = {}
            chunks = 0
            done = False
            while not done:
                keys, vals, n, done = reader.read_next(128)
                assert n <= 128
                seen.update(zip(keys.cast("I"), vals.cast("Q")))
                chunks += 1
                assert chunks < 20
            assert seen == {i: i * 3 for i in range(1000)}  # each entry, once a pass
            assert chunks >= 1000 // 128
        # restart() drops a pass half-way: the next chunk is the map's first again.
        first = reader.read_next(64)[0].tobytes()
        reader.read_next(64)
        reader.restart()
        assert reader.read_next(64)[0].tobytes() == first
    finally:
        os.close(fd)
