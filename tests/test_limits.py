"""--max-keys is bounded by what droptop's maps cost; the cost model matches the kernel's."""

from __future__ import annotations

import json
import shutil
import subprocess
import time

import pytest

from droptop.collector import limits
from droptop.collector.limits import (
    MAX_KEYS_LIMIT,
    check_max_keys,
    map_cost_bytes,
    read_mem_available,
    stack_keys,
)
from droptop.errors import DroptopError

GiB = 1 << 30


def test_cost_grows_with_keys_and_cpus():
    small, big = map_cost_bytes(1024, 2), map_cost_bytes(1 << 20, 2)
    assert small < big
    # Per key on 2 CPUs: two hash elements (48 + 56 + 8 and 48 + 8 + 72 bytes) and
    # 2 x 24 counter bytes plus a pointer (296); the rest is buckets and the fixed maps.
    per_key = (map_cost_bytes(200_000, 2) - map_cost_bytes(100_000, 2)) / 100_000
    assert 296 < per_key < 346
    # The per-CPU counters multiply by the CPUs; the hashes do not.
    per_cpu = (map_cost_bytes(100_000, 64) - map_cost_bytes(100_000, 2)) / 62
    assert per_cpu == pytest.approx(100_001 * 24, rel=0.01)
    assert map_cost_bytes(10240, 2, stacks=False) < map_cost_bytes(10240, 2)


def test_stack_keys_bounds():
    assert [stack_keys(n) for n in (1, 256, 1000, 10240, 1 << 20)] == [
        1024,
        1024,
        4000,
        40960,
        65536,
    ]


@pytest.mark.parametrize("n", [0, -1, -(10**9)])
def test_below_one_is_a_usage_error(n):
    with pytest.raises(DroptopError) as e:
        check_max_keys(n, ncpus=2, mem_available=24 * GiB)
    assert e.value.exit_code == 2 and "at least 1" in str(e.value)


def test_above_the_fixed_limit_says_what_it_would_cost():
    check_max_keys(MAX_KEYS_LIMIT, ncpus=2, mem_available=24 * GiB)  # the limit itself is fine
    with pytest.raises(DroptopError) as e:
        check_max_keys(100_000_000, ncpus=2, mem_available=24 * GiB)
    msg = str(e.value)
    assert e.value.exit_code == 2
    assert "above the limit of 1048576 keys" in msg
    cost = map_cost_bytes(100_000_000, 2)
    assert cost > 19 * GiB  # the issue saw ~19 GB taken before it was stopped
    assert f"{cost / GiB:.1f} GiB" in msg and "\n" not in msg


def test_above_a_tenth_of_available_memory():
    avail = 1 * GiB  # a small machine: 10 % is ~102 MiB, about 370k keys on 2 CPUs
    with pytest.raises(DroptopError) as e:
        check_max_keys(1_000_000, ncpus=2, mem_available=avail)
    msg = str(e.value)
    assert e.value.exit_code == 2
    assert "more than 10% of the 1.0 GiB available" in msg
    fit = int(msg.rsplit("at most ", 1)[1].split()[0])
    assert map_cost_bytes(fit, 2) <= 0.1 * avail < map_cost_bytes(fit + 1, 2)
    check_max_keys(fit, ncpus=2, mem_available=avail)
    # Many CPUs make the per-CPU counters the bulk of it.
    with pytest.raises(DroptopError, match="more than 10%"):
        check_max_keys(500_000, ncpus=512, mem_available=24 * GiB)
    check_max_keys(10240, ncpus=512, mem_available=24 * GiB)  # the default still fits


def test_unknown_memory_keeps_the_fixed_limit(tmp_path):
    (tmp_path / "meminfo").write_text("MemTotal: 1 kB\n")
    assert read_mem_available(tmp_path / "meminfo") is None
    assert read_mem_available(tmp_path / "missing") is None
    (tmp_path / "meminfo").write_text("MemTotal: 8 kB\nMemAvailable:    2048 kB\n")
    assert read_mem_available(tmp_path / "meminfo") == 2048 * 1024


def test_defaults_read_this_machine():
    check_max_keys(10240)  # possible CPUs and MemAvailable from this machine
    with pytest.raises(DroptopError):
        check_max_keys(MAX_KEYS_LIMIT + 1)


def test_collector_refuses_before_loading_anything():
    """The constructor checks first: no root, BTF or compile is needed to be refused."""
    from droptop.collector.kernel import KernelCollector

    started = time.monotonic()
    for n in (0, 100_000_000):
        with pytest.raises(DroptopError) as e:
            KernelCollector(max_keys=n)
        assert e.value.exit_code == 2
    assert time.monotonic() - started < 0.5


def test_human_bytes():
    assert [limits.human_bytes(n) for n in (0, 1023, 1536, 5 << 20, 3 * GiB)] == [
        "0 B",
        "1023 B",
        "1.5 KiB",
        "5.0 MiB",
        "3.0 GiB",
    ]


def _fdinfo(fd: int, key: str) -> int:
    with open(f"/proc/self/fdinfo/{fd}") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {key} in fdinfo")


def _bpftool(*args: str) -> dict:
    out = subprocess.run(["bpftool", *args, "-j"], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


@pytest.mark.bpf
@pytest.mark.skipif(shutil.which("bpftool") is None, reason="no bpftool to compare with")
@pytest.mark.parametrize(("max_keys", "stacks"), [(1024, True), (100_000, False)])
def test_cost_matches_the_kernels_memlock(max_keys, stacks):
    """The model against the kernel's own accounting of every map of the loaded program:
    never below it, at most 2 % above."""
    from tests.conftest import need_bpf

    need_bpf()
    from droptop.collector.bpfmaps import possible_cpus
    from droptop.collector.kernel import KernelCollector

    with KernelCollector(max_keys=max_keys, stacks=stacks) as c:
        prog = _bpftool("prog", "show", "id", str(_fdinfo(c._prog_fd, "prog_id")))
        memlock = sum(
            _bpftool("map", "show", "id", str(mid))["bytes_memlock"] for mid in prog["map_ids"]
        )
    estimate = map_cost_bytes(max_keys, possible_cpus(), stacks=stacks)
    assert memlock <= estimate <= memlock * 1.02, (estimate, memlock)
