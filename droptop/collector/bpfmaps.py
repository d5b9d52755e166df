"""Read BPF maps with plain bpf(2) syscalls: no bcc, no libbpf in this process.

droptop's long-running process only holds map and program fds (handed over by
the short-lived loader, see loader.py) and reads them here. A whole map is read
with one BPF_MAP_LOOKUP_BATCH call instead of two syscalls per key (bcc's
`items()`: ~23 ms for 10k keys here, against ~3 ms for one batch call).
"""

from __future__ import annotations

import ctypes as ct
import errno
import operator
import os
import platform

_NR_BPF = {
    "x86_64": 321,
    "aarch64": 280,
    "armv7l": 386,
    "ppc64le": 361,
    "s390x": 351,
    "riscv64": 280,
}.get(platform.machine(), 321)
_MAP_LOOKUP_ELEM = 1
_MAP_LOOKUP_BATCH = 24

_libc = ct.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ct.c_long


class BatchUnsupported(Exception):
    """The kernel has no batch lookup for this map (before 5.6, or this map type)."""


class _ElemAttr(ct.Structure):
    _fields_ = [
        ("map_fd", ct.c_uint32),
        ("pad", ct.c_uint32),
        ("key", ct.c_uint64),
        ("value", ct.c_uint64),
        ("flags", ct.c_uint64),
    ]


class _BatchAttr(ct.Structure):
    _fields_ = [
        ("in_batch", ct.c_uint64),
        ("out_batch", ct.c_uint64),
        ("keys", ct.c_uint64),
        ("values", ct.c_uint64),
        ("count", ct.c_uint32),
        ("map_fd", ct.c_uint32),
        ("elem_flags", ct.c_uint64),
        ("flags", ct.c_uint64),
    ]


def bpf_syscall(cmd: int, attr: ct.Structure) -> int:
    """bpf(2): the result (0 or a new fd), or -errno."""
    rc = _syscall(_NR_BPF, cmd, ct.byref(attr), ct.sizeof(attr))
    return -ct.get_errno() if rc < 0 else int(rc)


def possible_cpus(path: str = "/sys/devices/system/cpu/possible") -> int:
    """Number of possible CPUs: the number of values a per-CPU map returns per key."""
    with open(path) as f:
        text = f.read().strip()
    n = 0
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        n += int(hi or lo) - int(lo) + 1
    return n


def lookup(fd: int, key: bytes, value_size: int) -> bytes | None:
    """One element, or None when the key is absent."""
    kbuf = ct.create_string_buffer(key, len(key))
    vbuf = ct.create_string_buffer(value_size)
    attr = _ElemAttr(map_fd=fd, key=ct.addressof(kbuf), value=ct.addressof(vbuf))
    rc = bpf_syscall(_MAP_LOOKUP_ELEM, attr)
    if rc == -errno.ENOENT:
        return None
    if rc:
        raise OSError(-rc, f"bpf map lookup: {os.strerror(-rc)}")
    return vbuf.raw


class BatchReader:
    """Reusable buffers for reading up to `capacity` entries of one map."""

    def __init__(self, fd: int, key_size: int, value_size: int, capacity: int) -> None:
        self.fd = fd
        self.key_size = key_size
        self.value_size = value_size
        self.capacity = capacity
        self._keys = ct.create_string_buffer(key_size * capacity)
        self._vals = ct.create_string_buffer(value_size * capacity)
        # The cursor is a key for arrays and a bucket number (u32) for hashes.
        size = max(key_size, 8)
        self._in = ct.create_string_buffer(size)
        self._out = ct.create_string_buffer(size)
        self._resume = False

    def read(self, limit: int | None = None) -> tuple[memoryview, memoryview, int]:
        """(keys, values, n): raw bytes of the first n entries (n <= limit <= capacity)."""
        want = self.capacity if limit is None else min(limit, self.capacity)
        got, done = self._batch(0, want, resume=False)
        while got < want and not done:
            more, done = self._batch(got, want - got, resume=True)
            if more == 0:
                break
            got += more
        return self._views(got)

    def read_next(self, limit: int) -> tuple[memoryview, memoryview, int, bool]:
        """(keys, values, n, done): the next n <= limit entries of a pass over the map,
        from where the last call stopped. done: the pass reached the end of the map,
        and the next call starts a new one. (A hash map's cursor is a bucket: entries
        added behind it meanwhile wait for the next pass.)"""
        got, done = self._batch(0, min(limit, self.capacity), resume=self._resume)
        self._resume = not done
        keys, vals, n = self._views(got)
        return keys, vals, n, done

    def restart(self) -> None:
        """The next read_next() starts a new pass."""
        self._resume = False

    def _batch(self, at: int, count: int, resume: bool) -> tuple[int, bool]:
        """One batch lookup of up to `count` entries into the buffers from entry `at`:
        (how many, reached the end). A hash map stops short before a bucket that does
        not fit in what is left; the next call starts with it."""
        attr = _BatchAttr(
            in_batch=ct.addressof(self._in) if resume else 0,
            out_batch=ct.addressof(self._out),
            keys=ct.addressof(self._keys) + at * self.key_size,
            values=ct.addressof(self._vals) + at * self.value_size,
            count=count,
            map_fd=self.fd,
        )
        rc = bpf_syscall(_MAP_LOOKUP_BATCH, attr)
        if rc == -errno.ENOENT:
            return attr.count, True  # count is valid on ENOENT too
        if rc:
            raise BatchUnsupported(errno.errorcode.get(-rc, str(-rc)))
        ct.memmove(self._in, self._out, len(self._out))
        return attr.count, attr.count == 0

    def _views(self, got: int) -> tuple[memoryview, memoryview, int]:
        keys = memoryview(self._keys).cast("B")[: got * self.key_size]
        vals = memoryview(self._vals).cast("B")[: got * self.value_size]
        return keys, vals, got


def sum_percpu_u64(
    values: memoryview, n: int, ncpu: int, slot: int, fields: int
) -> list[list[int]]:
    """Per-CPU values of `fields` u64s each (slot bytes per CPU) -> per-entry sums per field.

    Strided slices of one memoryview do the summing in C; no per-entry Python work.
    """
    words = values[: n * ncpu * slot].cast("Q")
    stride = ncpu * slot // 8
    out = []
    for f in range(fields):
        acc = words[f::stride].tolist()
        for cpu in range(1, ncpu):
            off = cpu * slot // 8 + f
            acc = list(map(operator.add, acc, words[off::stride].tolist()))
        out.append(acc)
    return out
