"""What droptop's BPF maps cost in kernel memory, and the --max-keys bound that follows.

Every map in bpf/droptop.bpf.c is preallocated when the program loads, so
``--max-keys`` is a kernel memory reservation made up front: ``--max-keys
100000000`` once pinned ~19 GB of a 24 GB machine before the first drop. The
numbers here follow the kernel's own accounting (``htab_map_mem_usage`` and
``array_map_mem_usage`` in kernel/bpf/, the ``memlock`` that ``bpftool map show``
prints) so that a refusal can say how much memory the request would have taken.

Maps sized by max_keys (struct sizes from droptop.bpf.c):

* ``key_to_idx``  hash, key struct drop_key (56 B), value u32, max_keys entries
* ``key_info``    hash, key u32, value struct key_info (72 B), max_keys entries
* ``counts``      per-CPU array of struct counters (24 B), max_keys + 1 entries:
  one value per possible CPU (/sys/devices/system/cpu/possible)
* ``stack_counts`` hash, key struct stack_key (8 B), value u64, stack_keys(max_keys)
  entries (with stacks on)

plus small fixed maps (the stack-trace map, the per-CPU cache and scratch).
"""

from __future__ import annotations

from pathlib import Path

from droptop.errors import DroptopError
from droptop.units import human_bytes

DEFAULT_MAX_KEYS = 10240
"""Rows the kernel map holds unless --max-keys says otherwise."""
MAX_KEYS_LIMIT = 1 << 20
"""At most 1,048,576 keys: ~100x the default, and ~360 MB of maps on 2 CPUs."""
MEMORY_SHARE = 0.10
"""At most this share of MemAvailable may go to droptop's maps."""

STACK_ENTRIES = 2048
"""Entries of the stack-trace map (fixed; collector/kernel.py passes it in)."""
STACK_VALUE = 127 * 8
"""A stack-trace map value: PERF_MAX_STACK_DEPTH kernel addresses."""

_DROP_KEY = 56  # struct drop_key: u64 location, sock_ino, cgroup, 4 x u32, char comm[16]
_KEY_INFO = _DROP_KEY + 16  # struct key_info: drop_key, char ifname[16]
_COUNTERS = 24  # struct counters: u64 packets, bytes, sampled_ns
_STACK_KEY = 8  # struct stack_key: u32 idx, s32 stackid
_SLOT = 120  # struct slot (the per-CPU burst cache): 10 x u64, 4 x u32, 3 x u64
_SCRATCH = 344  # struct scratch, with stacks and samples: key_info, 2 pointers, u32 + u8,
# stack_key, u64, sample_key, struct sample (184), 2 pointers, 2 x u32, 2 x u16
_SAMPLE_KEY = 8  # struct sample_key: u32 idx, u16 cpu, u16 pos
_SAMPLE = 184  # struct sample: u64, u32, 2 x u16, 2 x u8, u16, mac[32], net[129], padding
_LRU_ELEM = 56
"""struct htab_elem of an LRU hash: the LRU node is larger than the free-list one."""

# Kernel-side overheads (6.x, 64-bit), as kernel/bpf/hashtab.c and arraymap.c count them.
_HTAB_ELEM = 48
"""struct htab_elem before the key: hash node, free-list/LRU union, hash, padding."""
_BUCKET = 16
"""struct bucket: hlist_nulls_head plus its lock, one per power-of-two bucket."""
_MAP_STRUCT = 1024
"""struct bpf_htab / bpf_array themselves, rounded up."""
_LOCK_COUNT = 8
"""HASHTAB_MAP_LOCK_COUNT: per-CPU ints each hash map keeps."""


def sample_entries(max_keys: int) -> int:
    """Slots of the packet-sample LRU hash: 8 a key for the ~1k most recent, within 4k..32k."""
    return max(4096, min(max_keys, 32768))


def stack_keys(max_keys: int) -> int:
    """Entries of the stack-count map: 4 sampled stacks a key, within 1024..65536."""
    return max(1024, min(max_keys * 4, 65536))


def _round8(n: int) -> int:
    return (n + 7) // 8 * 8


def _pow2(n: int) -> int:
    return 1 << max(0, n - 1).bit_length()


def hash_cost(entries: int, key_size: int, value_size: int, ncpus: int) -> int:
    """A preallocated BPF_MAP_TYPE_HASH: every element up front, plus one spare per CPU."""
    elem = _HTAB_ELEM + _round8(key_size) + _round8(value_size)
    return (
        _MAP_STRUCT
        + _BUCKET * _pow2(entries)
        + 4 * ncpus * _LOCK_COUNT
        + elem * (entries + ncpus)
        + 8 * ncpus
    )


def percpu_array_cost(entries: int, value_size: int, ncpus: int) -> int:
    """A BPF_MAP_TYPE_PERCPU_ARRAY: one value per possible CPU, plus a pointer each."""
    return _MAP_STRUCT + entries * 8 + entries * _round8(value_size) * ncpus


def array_cost(entries: int, value_size: int) -> int:
    return _MAP_STRUCT + entries * _round8(value_size)


def stack_trace_cost(entries: int) -> int:
    """A BPF_MAP_TYPE_STACK_TRACE: power-of-two buckets, each a preallocated stack."""
    n = _pow2(entries)
    return _MAP_STRUCT + n * 8 + n * (24 + STACK_VALUE)


def map_cost_bytes(max_keys: int, ncpus: int, *, stacks: bool = True, samples: bool = True) -> int:
    """Kernel memory (bytes) all of droptop's maps take for ``max_keys`` on ``ncpus``
    possible CPUs: what loading the program reserves, before any drop is counted."""
    cost = (
        hash_cost(max_keys, _DROP_KEY, 4, ncpus)  # key_to_idx
        + hash_cost(max_keys, 4, _KEY_INFO, ncpus)  # key_info
        + percpu_array_cost(max_keys + 1, _COUNTERS, ncpus)  # counts (+1: overflow)
        + array_cost(1, 4)  # next_idx
        + percpu_array_cost(1, _SLOT, ncpus)  # cache
        + percpu_array_cost(1, _SCRATCH, ncpus)  # scratch
    )
    if stacks:
        cost += stack_trace_cost(STACK_ENTRIES)
        cost += hash_cost(stack_keys(max_keys), _STACK_KEY, 8, ncpus)  # stack_counts
    if samples:
        n = sample_entries(max_keys)
        cost += hash_cost(n, _SAMPLE_KEY, _SAMPLE, ncpus) + n * (_LRU_ELEM - _HTAB_ELEM)
    return cost


def read_mem_available(meminfo: str | Path = "/proc/meminfo") -> int | None:
    """MemAvailable in bytes, or None where /proc/meminfo does not say."""
    try:
        for line in Path(meminfo).read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _most_keys_within(budget: float, ncpus: int) -> int:
    """The largest max_keys whose maps fit in ``budget`` bytes (0 if none does)."""
    lo, hi = 0, MAX_KEYS_LIMIT
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if map_cost_bytes(mid, ncpus) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return lo


def check_max_keys(n: int, *, ncpus: int | None = None, mem_available: int | None = None) -> None:
    """Refuse a --max-keys that is not at least 1, above MAX_KEYS_LIMIT, or whose maps
    would take more than MEMORY_SHARE of MemAvailable: DroptopError(..., 2), a usage
    error, raised before anything is loaded. The message says what it would cost."""
    if n < 1:
        raise DroptopError(f"--max-keys must be at least 1 (got {n})", 2)
    if ncpus is None:
        from droptop.collector.bpfmaps import possible_cpus

        ncpus = possible_cpus()
    if mem_available is None:
        mem_available = read_mem_available()
    cost = map_cost_bytes(n, ncpus)
    if n > MAX_KEYS_LIMIT:
        raise DroptopError(
            f"--max-keys {n} is above the limit of {MAX_KEYS_LIMIT} keys: its maps would "
            f"take {human_bytes(cost)} of kernel memory on {ncpus} CPUs",
            2,
        )
    if mem_available is not None and cost > MEMORY_SHARE * mem_available:
        fit = _most_keys_within(MEMORY_SHARE * mem_available, ncpus)
        raise DroptopError(
            f"--max-keys {n} would take {human_bytes(cost)} of kernel memory, more than "
            f"{MEMORY_SHARE:.0%} of the {human_bytes(mem_available)} available; "
            f"at most {fit} keys fit",
            2,
        )
