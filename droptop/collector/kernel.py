"""The real collector: bpf/droptop.bpf.c, compiled by bcc, read with bpf(2).

Start-up does every check that can fail before anything is attached (root, BTF,
tracepoint, headers), then a short-lived child compiles and attaches the program
with bcc and hands back its fds (loader.py), so this process never holds bcc's
LLVM. A failure is one sentence and nothing is left behind. Polling reads the
counters with one batch syscall; key metadata is read once per new key; stacks and
packet samples in bounded steps of passes over their maps (details.py), a pass
started at most every STACK_REFRESH seconds.
"""

from __future__ import annotations

import operator
import os
import platform
import struct
import time
from dataclasses import replace
from pathlib import Path

from droptop.collector import loader
from droptop.collector.assemble import RawRow, ReasonNames, SnapshotAssembler
from droptop.collector.attribute import Attributor
from droptop.collector.bpfmaps import (
    BatchReader,
    BatchUnsupported,
    lookup,
    possible_cpus,
    sum_percpu_u64,
)
from droptop.collector.burst import BurstSlots, Claim, raise_to_claims
from droptop.collector.counter_rows import CounterRows, merge_rows
from droptop.collector.details import (
    MAX_CHUNK,
    SampleRings,
    StackTops,
    chunk_size,
    details_budget,
)
from droptop.collector.headers import Headers, find_headers
from droptop.collector.ksyms import KernelSymbols
from droptop.collector.limits import (
    DEFAULT_MAX_KEYS,
    STACK_ENTRIES,
    STACK_VALUE,
    check_max_keys,
    sample_entries,
    stack_keys,
)
from droptop.collector.offsets import NO_REASON_LABEL, KernelLayout, read_layout
from droptop.collector.stacks import strip_tracing_frames
from droptop.errors import DroptopError
from droptop.model import DropKey, Location, Reason, Snapshot
from droptop.names.btf import TYPEDEF, VMLINUX_BTF, Btf, BtfError, load_vmlinux
from droptop.sanitize import decode_c_string

BPF_SOURCE = Path(__file__).resolve().parent.parent / "bpf" / "droptop.bpf.c"
if not BPF_SOURCE.exists():  # running from a source checkout: bpf/ sits beside droptop/
    BPF_SOURCE = Path(__file__).resolve().parents[2] / "bpf" / "droptop.bpf.c"

MAPS = ("counts", "key_info", "cache")
"""Maps the loader always hands over; stacks and samples add theirs."""
BURST_COUNT = platform.machine() == "x86_64"
"""Hits count in the kernel's per-CPU burst slot (collector/burst.py). Its reader
relies on the CPU keeping stores in order, which x86-64 does; elsewhere every drop
adds to its counter directly."""
STACK_MAPS = ("stack_counts", "stacks")
SAMPLE_MAPS = ("samples",)
SAMPLE_BYTES = 128
"""Bytes copied from the network header by default (--sample-bytes)."""
MAX_SAMPLE_BYTES = 128
KEY_INFO = struct.Struct("<QQQIIII16s16s")
"""struct key_info in droptop.bpf.c: drop_key {location, sock_ino, cgroup, reason, ifindex,
netns, flags, comm[16]} then ifname[16]."""
FLAG_KERNEL_CONTEXT, FLAG_IRQ = 1, 2
STACK_REFRESH = 2.0
"""Seconds between passes over the stack and sample maps (they are samples anyway)."""
_CAP_SYS_ADMIN, _CAP_PERFMON, _CAP_BPF = 21, 38, 39


def _capabilities() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    except (OSError, ValueError):
        pass
    return 0


def check_privileges() -> None:
    caps = _capabilities()
    if caps & (1 << _CAP_SYS_ADMIN):
        return
    if caps & (1 << _CAP_BPF) and caps & (1 << _CAP_PERFMON):
        return
    raise DroptopError(
        "droptop needs root (or CAP_BPF and CAP_PERFMON) to load its BPF program; "
        "try: sudo droptop  (droptop --replay FILE needs no privileges)"
    )


class NoReasonNames:
    """For kernels whose tracepoint has no reason argument (before 5.17, bar backports)."""

    best_source = "none"

    def resolve(self, raw: int) -> Reason:
        return Reason(raw, NO_REASON_LABEL, "core", "none")

    def table(self) -> tuple[Reason, ...]:
        return ()


def _bpf_prog_stats(fd: int) -> tuple[int, int, int]:
    """(run_time_ns, run_cnt, recursion_misses) from the program fd's fdinfo."""
    vals = {"run_time_ns": 0, "run_cnt": 0, "recursion_misses": 0}
    try:
        for line in Path(f"/proc/self/fdinfo/{fd}").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in vals:
                vals[name] = int(value)
    except (OSError, ValueError):
        pass
    return vals["run_time_ns"], vals["run_cnt"], vals["recursion_misses"]


def _read_vmlinux(path: str) -> Btf:
    try:
        return load_vmlinux(path)
    except BtfError as e:
        raise DroptopError(
            f"cannot read kernel BTF ({e}); droptop needs a kernel built with "
            "CONFIG_DEBUG_INFO_BTF=y"
        ) from None


def _reason_names(vmlinux: Btf, layout: KernelLayout) -> ReasonNames:
    """Names from the running kernel, or one label when its tracepoint has no reason."""
    if not layout.has_reason:
        return NoReasonNames()
    from droptop.names.reasons import ReasonResolver

    return ReasonResolver.for_running_kernel(vmlinux)


class KernelCollector:
    """Counts drops in the kernel; poll() returns a Snapshot."""

    sample_gap_ns = 250_000_000
    """After a key's first 4 drops on a CPU, every 4096th is sampled, at most one per
    this many ns per key and CPU (a one-key flood then walks a few stacks a second)."""

    def __init__(
        self,
        *,
        max_keys: int = DEFAULT_MAX_KEYS,
        stacks: bool = True,
        samples: bool = True,
        sample_bytes: int = SAMPLE_BYTES,
        counters: bool = True,
        btf_path: str = VMLINUX_BTF,
        headers: Headers | None = None,
    ) -> None:
        check_max_keys(max_keys)  # before anything loads: the maps are preallocated
        check_privileges()
        vmlinux = _read_vmlinux(btf_path)
        self.layout: KernelLayout = read_layout(vmlinux)
        # tp_btf attaches by this id; the loader falls back to a raw tracepoint without it.
        self._tp_btf_id = vmlinux.type_id("btf_trace_kfree_skb", TYPEDEF)
        names = _reason_names(vmlinux, self.layout)
        self.headers = headers or find_headers()
        self.max_keys = max_keys
        self.stacks_enabled = stacks
        self.samples_enabled = samples and self.layout.has_samples
        self.sample_bytes = sample_bytes
        self._stack_keys = stack_keys(max_keys)
        self._fds: dict[str, int] = {}
        self._load()  # the first step that changes anything: all checks are behind us
        self.attributor = Attributor()
        self.counter_rows = (
            CounterRows(self._counter_netns, netns_name=self.attributor.netns.name)
            if counters
            else None
        )
        """Loss counters kfree_skb never sees, as rows beside the drops (counter_rows.py)."""
        self.assembler = SnapshotAssembler(
            names,
            kernel=platform.release(),
            capacity=max_keys,
            stacks_enabled=stacks,
            notes=self._notes(names),
            attribute=self.attributor.attribute,
        )
        self._keys: dict[int, tuple[DropKey, str, str]] = {}  # idx -> (key, ifname, location)
        self._stack_frames: dict[int, tuple[str, ...]] = {}
        self._last_stats: tuple[int, int] | None = None
        self._ns_per_drop: float | None = None

    def _notes(self, names: object) -> tuple[str, ...]:
        """What this run uses, for batch stderr, the help screen and snapshots."""
        attach = {"tp_btf": "BTF-typed raw tracepoint (tp_btf)", "raw_tp": "raw tracepoint"}
        return (
            f"attached to kfree_skb as a {attach.get(self.attach, self.attach)}"
            + (f" ({self.attach_note})" if self.attach_note else ""),
            f"kernel headers: {self.headers.description}",
            *getattr(names, "notes", ()),
            *self.layout.notes(),
            *self.attributor.notes,
        )

    # --- load / unload ---------------------------------------------------

    def cflags(self) -> list[str]:
        flags = [
            *self.layout.cflags(),
            f"-DMAX_KEYS={self.max_keys}",
            f"-DSAMPLE_GAP_NS={self.sample_gap_ns}ULL",
        ]
        if BURST_COUNT:
            flags.append("-DBURST_COUNT")
        if self.stacks_enabled:
            flags += [
                "-DWITH_STACKS",
                f"-DSTACK_ENTRIES={STACK_ENTRIES}",
                f"-DSTACK_KEYS={self._stack_keys}",
            ]
        if self.samples_enabled:
            flags += [
                "-DWITH_SAMPLES",
                f"-DSAMPLE_ENTRIES={sample_entries(self.max_keys)}",
                f"-DSAMPLE_BYTES={self.sample_bytes}",
            ]
        return flags

    def _map_names(self) -> list[str]:
        names = list(MAPS)
        if self.stacks_enabled:
            names += STACK_MAPS
        if self.samples_enabled:
            names += SAMPLE_MAPS
        return names

    def _load(self) -> None:
        """Have the loader child compile and attach the program; keep its fds."""
        request = {
            "source": str(BPF_SOURCE),
            "cflags": self.cflags(),
            "headers": str(self.headers.path),
            "maps": self._map_names(),
            "tp_btf": self._tp_btf_id is not None,
            "tp_btf_id": self._tp_btf_id,
        }
        reply, fds, _ = loader.run(request)
        if "error" in reply:
            for fd in fds:
                os.close(fd)
            raise DroptopError(
                f"could not compile or load the BPF program with headers from "
                f"{self.headers.description}: {reply['error']}"
            )
        self._fds = dict(zip(reply["fds"], fds))
        self.attach = reply.get("attach", "raw_tp")
        """tp_btf (skb fields read directly) or raw_tp (probe reads): see loader.py."""
        self.attach_note = reply.get("tp_btf_error")
        self._maps = reply["maps"]
        self._prog_fd = self._fds["prog"]
        self._ncpu = possible_cpus()
        # The kernel copies each per-CPU value rounded up to 8 bytes.
        self._value_size = (self._maps["counts"]["value_size"] + 7) // 8 * 8
        if self._maps["key_info"]["value_size"] != KEY_INFO.size:
            self.close()
            raise DroptopError("droptop's BPF program and its reader disagree on key_info")
        self._counts_fd = self._fds["map:counts"]
        self._key_info_fd = self._fds["map:key_info"]
        self._counts_reader: BatchReader | None = BatchReader(
            self._counts_fd, 4, self._ncpu * self._value_size, self.max_keys
        )
        # Read with or without BURST_COUNT: without it the slots claim nothing, but
        # their count of sampled drops still says when stacks and samples moved.
        self._slots = BurstSlots(
            self._fds["map:cache"], self._ncpu, self._maps["cache"]["value_size"]
        )
        self._claims: dict[int, list[Claim]] = {}
        # Passes read at most MAX_CHUNK entries a poll: buffers for that, not the map.
        stack_reader = sample_reader = None
        if self.stacks_enabled:
            m = self._maps["stack_counts"]
            stack_reader = BatchReader(
                self._fds["map:stack_counts"],
                m["key_size"],
                m["value_size"],
                min(self._stack_keys, MAX_CHUNK),
            )
        if self.samples_enabled:
            m = self._maps["samples"]
            sample_reader = BatchReader(
                self._fds["map:samples"],
                m["key_size"],
                m["value_size"],
                min(sample_entries(self.max_keys), MAX_CHUNK),
            )
        self._stack_tops = StackTops(stack_reader, self._frames)
        self._sample_rings = SampleRings(sample_reader, self.sample_bytes)
        self._details_read_at = 0.0
        self._details_sampled = -1  # the slots' count of sampled drops when a pass started
        self._details_wanted = False  # start a pass as soon as none is under way
        self._details_changed: set[int] = set()  # for the assembler's next poll
        self._last_packets: list[int] = []
        self._moved = 0  # rows this poll rebuilds, about (see _read)
        self._moved_before = 0
        self._onset = False
        self._ksyms = KernelSymbols()

    def load_symbols(self) -> None:
        """Read the kernel's symbols now; otherwise the first poll that sees a drop does
        (~0.1 s of CPU). The benchmarks call this so their flood windows time only the
        steady state."""
        self._ksyms.load()

    def close(self) -> None:
        """Detach and free the BPF program (closing the link fd detaches it). Idempotent."""
        fds, self._fds = getattr(self, "_fds", {}), {}
        for fd in fds.values():
            try:
                os.close(fd)
            except OSError:
                pass

    def __enter__(self) -> KernelCollector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- reading ----------------------------------------------------------

    def reset(self) -> None:
        self.assembler.reset()
        if self.counter_rows is not None:
            self.counter_rows.reset()

    def _counter_netns(self) -> list[tuple[int, int]]:
        """Every network namespace a process lives in (host first), as (inode, pid)."""
        return self.attributor.netns.populated()

    def _read_counters(self, n: int) -> tuple[list[int], list[int]]:
        """Per-index (packets, bytes) for indices 0..n-1, summed over CPUs, in one syscall
        (plus the burst slots, read first: see collector/burst.py)."""
        self._claims = self._slots.read()
        if n == 0:
            return [], []
        if self._counts_reader is not None:
            try:
                _, vals, got = self._counts_reader.read(n)
                packets, nbytes = sum_percpu_u64(vals, got, self._ncpu, self._value_size, 2)
                if got == n:
                    words = vals.cast("Q")
                    step = self._value_size // 8

                    def percpu(idx: int, cpu: int) -> tuple[int, int]:
                        at = (idx * self._ncpu + cpu) * step
                        return words[at], words[at + 1]

                    raise_to_claims(packets, nbytes, self._claims, percpu)
                    return packets, nbytes
            except BatchUnsupported:
                self._counts_reader = None
        # Kernels without batch ops on arrays (before 5.6): one lookup per index.
        packets, nbytes = [], []
        for i in range(n):
            p, b = self._read_counter(i)
            packets.append(p)
            nbytes.append(b)
        return packets, nbytes

    def _read_counter(self, idx: int) -> tuple[int, int]:
        """One index's (packets, bytes), raised to the claims of the slots read last."""
        raw = lookup(self._counts_fd, struct.pack("<I", idx), self._ncpu * self._value_size)
        if raw is None:
            return 0, 0
        words = memoryview(raw).cast("Q")
        step = self._value_size // 8
        packets, nbytes = [sum(words[0::step])], [sum(words[1::step])]
        claims = self._claims.get(idx)
        if claims:
            raise_to_claims(
                packets,
                nbytes,
                {0: claims},
                lambda _i, cpu: (words[cpu * step], words[cpu * step + 1]),
            )
        return packets[0], nbytes[0]

    def _learn_new_keys(self) -> None:
        """Read key_info for indices claimed since the last poll (claims form a prefix)."""
        idx = len(self._keys)
        while idx < self.max_keys:
            raw = lookup(self._key_info_fd, struct.pack("<I", idx), KEY_INFO.size)
            if raw is None:
                break
            location, sock_ino, cgroup, reason, ifindex, netns, flags, comm, ifname = (
                KEY_INFO.unpack(raw)
            )
            key = DropKey(
                raw_reason=reason,
                comm=decode_c_string(comm),
                kernel_context=bool(flags & FLAG_KERNEL_CONTEXT),
                ifindex=ifindex,
                netns=netns,
                irq=bool(flags & FLAG_IRQ),
                sock_ino=sock_ino,
                cgroup_id=cgroup,
            )
            self._keys[idx] = entry = (key, decode_c_string(ifname), self._ksyms.name(location))
            self._sample_rings.keys[idx] = (ifindex, entry[1], netns)
            self.assembler.add_slot(idx, *entry)
            idx += 1

    def _frames(self, sid: int) -> tuple[str, ...] | None:
        """A stack id's symbolized frames (read once per id), or None if it is gone.
        (sid comes from the map key as unsigned; the program stores only ids >= 0.)"""
        frames = self._stack_frames.get(sid)
        if frames is None:
            raw = lookup(self._fds["map:stacks"], struct.pack("<I", sid), STACK_VALUE)
            if raw is None:
                return None
            addrs = [a for a in memoryview(raw).cast("Q") if a]
            frames, _ = strip_tracing_frames([self._ksyms.name(a) for a in addrs])
            self._stack_frames[sid] = frames
        return frames

    def details_backlog(self) -> int:
        """Stack counts and packet samples still to be read or taken in (0: the rows'
        details are as of the last pass's end). The benchmark polls until this is 0."""
        tops, rings = self._stack_tops, self._sample_rings
        return tops.backlog + rings.backlog + tops.reading + rings.reading

    def _take_details(self) -> set[int]:
        """Indices whose stacks or samples changed with what this poll took in (a step
        of each map's pass: collector/details.py)."""
        budget = details_budget(self._moved, self._onset)
        if not budget:
            return set()
        chunk = chunk_size(self._moved)
        changed = self._stack_tops.take(budget, chunk)
        changed |= self._sample_rings.take(budget, chunk)
        return changed

    def _bpf_stats(self) -> tuple[float | None, int]:
        run_ns, run_cnt, missed = _bpf_prog_stats(self._prog_fd)
        if self._last_stats is not None and run_cnt > self._last_stats[1]:
            self._ns_per_drop = (run_ns - self._last_stats[0]) / (run_cnt - self._last_stats[1])
        self._last_stats = (run_ns, run_cnt)
        return (self._ns_per_drop if run_cnt else None), missed

    def _read(self) -> tuple[list[int], list[int]]:
        """Learn new keys, then read every counter (one syscall) and, when due, stacks
        and packet samples (both are samples, re-read on the same schedule). The
        indices whose stacks or samples changed gather in _details_changed."""
        if not self._fds:
            raise DroptopError("collector is closed")
        known = len(self._keys)
        self._learn_new_keys()
        n = len(self._keys)
        packets, nbytes = self._read_counters(n)
        # How many keys moved (C speed), or stopped moving (they go idle now): what
        # this poll's assembly will cost, and so what is left for taking in details.
        moved = sum(map(operator.ne, packets, self._last_packets)) + n - len(self._last_packets)
        self._onset = moved > 2 * self._moved_before  # a burst begins (details_budget)
        self._moved, self._moved_before = max(moved, self._moved_before), moved
        self._last_packets = packets
        # Stacks and samples are only looked at in the drill-down and in saved snapshots,
        # and their maps can be several times larger than the key map: a pass over them
        # starts at most every STACK_REFRESH seconds, or at once when a key is new.
        now = time.monotonic()
        if n > known or now - self._details_read_at >= STACK_REFRESH:
            self._details_read_at = now
            # Nothing sampled since the last pass started (counted after the maps
            # move, and read before them): the maps are as they were.
            if n > known or self._slots.sampled != self._details_sampled:
                self._details_wanted = True
            # Rows whose attribution was incomplete (a socket made a moment ago) are
            # attributed again, on the same schedule.
            self.assembler.reattribute(self.attributor.due())
        if self._details_wanted and not (self._stack_tops.reading or self._sample_rings.reading):
            # (A pass under way goes on; entries behind its cursor wait for this one.)
            self._details_wanted = False
            self._details_sampled = self._slots.sampled
            self._stack_tops.start()
            self._sample_rings.start()
        self._details_changed |= self._take_details()
        return packets, nbytes

    def read_raw(self) -> tuple[list[RawRow], tuple[int, int]]:
        """Cumulative rows and the overflow counter, straight from the maps (tests, bench)."""
        packets, nbytes = self._read()
        stacks = self._stack_tops.stacks
        rows = [
            RawRow(key, ifname, p, b, (Location(loc, p),), stacks.get(idx, ()))
            for idx, ((key, ifname, loc), p, b) in enumerate(
                zip(self._keys.values(), packets, nbytes)
            )
            if p
        ]
        return rows, self._read_counter(self.max_keys)

    def poll(self) -> Snapshot:
        packets, nbytes = self._read()
        changed, self._details_changed = self._details_changed, set()
        ns, missed = self._bpf_stats()
        snap = self.assembler.build_counts(
            packets,
            nbytes,
            stacks=self._stack_tops.stacks,
            samples=self._sample_rings.rings,
            details_changed=changed,
            overflow=self._read_counter(self.max_keys),
            map_used=len(packets),
            bpf_ns_per_drop=ns,
            bpf_missed=missed,
        )
        if self._last_stats is not None and self._last_stats[1]:
            # Cumulative run time and runs (kernel.bpf_stats_enabled=1), for the exporter.
            snap = replace(snap, bpf_run_ns=self._last_stats[0], bpf_run_count=self._last_stats[1])
        if self.counter_rows is None:
            return snap
        counters = self.counter_rows.poll()
        if not counters:
            return snap
        return replace(snap, rows=merge_rows(snap.rows, counters))
