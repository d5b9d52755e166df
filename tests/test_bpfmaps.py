from __future__ import annotations

import struct

from droptop.collector.bpfmaps import possible_cpus, sum_percpu_u64


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
