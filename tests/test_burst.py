"""The burst-slot reader: clean readings only, totals raised to what the slots prove
and never lowered (collector/burst.py). The kernel side is tested in test_bpf_drops."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from droptop.collector import burst
from droptop.collector.burst import BurstSlots, clean_slots, raise_to_claims

SIZE = 112  # struct slot on tp_btf: the reader needs only bytes 56..83


def slot(seq: int, idx: int, n: int, nb: int, sampled: int = 0) -> bytes:
    raw = bytearray(SIZE)
    struct.pack_into("<QQQI", raw, 56, seq, n, nb, idx)
    struct.pack_into("<Q", raw, 96, sampled)
    return bytes(raw)


def test_the_reader_reads_the_fields_where_the_program_puts_them():
    text = (Path(__file__).resolve().parents[1] / "bpf" / "droptop.bpf.c").read_text()
    body = text[text.index("struct slot {") : text.index("};", text.index("struct slot {"))]
    lines = [line.split() for line in body.splitlines()[1:]]
    fields = [words[1].rstrip(";") for words in lines if words and not words[0].startswith("#")]
    # Every field up to nb is a u64; idx, a u32, follows.
    assert fields[:11] == [
        "task", "dev", "sk", "location", "jiffies", "ctxv", "reason", "seq", "n", "nb", "idx"
    ]  # fmt: skip
    assert "u64 nb;" in body and "u32 idx;" in body
    assert burst.SLOT_FIELDS.size == 84
    assert fields[11:15] == ["irq", "len", "pad", "sampled"]  # three u32 after idx, a u64
    assert burst.SAMPLED.size == 104


def test_only_cpus_with_the_same_even_seq_in_both_reads_are_clean():
    first = slot(4, 7, 100, 4000) + slot(5, 2, 9, 90) + slot(6, 3, 1, 10)
    second = slot(4, 7, 120, 4800) + slot(6, 2, 9, 90) + slot(8, 1, 1, 10)
    # CPU 0: stable, even; CPU 1: odd (the miss path was running); CPU 2: seq moved.
    assert clean_slots(first, second, 3, SIZE) == {0: (7, 100, 4000)}


def test_claims_raise_totals_per_cpu_and_never_lower_them():
    packets, nbytes = [10, 50, 5], [100, 500, 50]
    percpu = {(0, 0): (4, 40), (0, 1): (6, 60), (1, 0): (50, 500), (1, 1): (0, 0)}
    claims = {
        0: [(0, 9, 90), (1, 6, 60)],  # CPU 0 holds 5 more than its counter; CPU 1 none
        1: [(0, 45, 450)],  # a slot older than its store-back: the counter wins
        7: [(0, 99, 999)],  # a key claimed after the counters were read: next poll
    }
    raise_to_claims(packets, nbytes, claims, lambda i, c: percpu[(i, c)])
    assert packets == [15, 50, 5]
    assert nbytes == [150, 500, 50]


def test_packets_and_bytes_are_raised_independently():
    packets, nbytes = [3], [0]
    raise_to_claims(packets, nbytes, {0: [(0, 2, 64)]}, lambda i, c: (3, 0))
    assert (packets, nbytes) == ([3], [64])


def test_a_cpu_whose_slot_keeps_moving_keeps_its_last_clean_reading(monkeypatch):
    reads = iter(
        [
            slot(2, 1, 10, 100) + slot(2, 4, 3, 30),  # poll 1: both clean
            slot(2, 1, 10, 100) + slot(2, 4, 3, 30),
            # poll 2: CPU 1 is mid-miss in every try; CPU 0 moved on cleanly
            *[slot(4, 5, 1, 1) + slot(3, 9, 0, 0), slot(4, 5, 1, 1) + slot(3, 9, 0, 0)] * 3,
        ]
    )
    monkeypatch.setattr(burst, "lookup", lambda fd, key, size: next(reads))
    slots = BurstSlots(fd=-1, ncpu=2, value_size=SIZE)
    assert slots.read() == {1: [(0, 10, 100)], 4: [(1, 3, 30)]}
    assert slots.read() == {5: [(0, 1, 1)], 4: [(1, 3, 30)]}


@pytest.mark.parametrize("missing", [0, 1])
def test_no_slot_map_value_means_no_claims(monkeypatch, missing):
    values = [slot(2, 1, 10, 100), None]
    monkeypatch.setattr(burst, "lookup", lambda fd, key, size: values[missing])
    assert BurstSlots(fd=-1, ncpu=1, value_size=SIZE).read() == (
        {} if missing else {1: [(0, 10, 100)]}
    )


def test_sampled_drops_are_summed_over_cpus(monkeypatch):
    values = slot(2, 1, 10, 100, sampled=7) + slot(5, 1, 0, 0, sampled=3)
    monkeypatch.setattr(burst, "lookup", lambda fd, key, size: values)
    slots = BurstSlots(fd=-1, ncpu=2, value_size=SIZE)
    assert slots.sampled == 0
    slots.read()
    assert slots.sampled == 10  # a CPU mid-miss still counts: the count is one word
