"""The real collector: loads bpf/droptop.bpf.c with bcc and reads its maps.

Start-up does every check that can fail before anything is attached (root, BTF,
tracepoint, headers, bcc), so a failure is one sentence and nothing is left
behind. Polling reads counters with one batch syscall; key metadata is read
once per new key, stacks once per new stack id.
"""

from __future__ import annotations

import ctypes as ct
import os
import platform
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from droptop.collector.assemble import RawRow, SnapshotAssembler
from droptop.collector.bpfmaps import BatchReader, BatchUnsupported, sum_percpu_u64
from droptop.errors import DroptopError
from droptop.headers import Headers, find_headers
from droptop.layout import NO_REASON_LABEL, KernelLayout, read_layout
from droptop.model import DropKey, Location, Reason, Snapshot, StackSample
from droptop.sanitize import decode_c_string
from droptop.stacks import strip_tracing_frames

BPF_SOURCE = Path(__file__).resolve().parent.parent / "bpf" / "droptop.bpf.c"
if not BPF_SOURCE.exists():  # running from a source checkout: bpf/ sits beside droptop/
    BPF_SOURCE = Path(__file__).resolve().parents[2] / "bpf" / "droptop.bpf.c"

PROG_NAME = b"raw_tracepoint__kfree_skb"
DEFAULT_MAX_KEYS = 10240
STACK_ENTRIES = 2048
STACKS_PER_ROW = 8
STACK_REFRESH = 2.0
"""Seconds between reads of the stack-count map (stacks are samples anyway)."""
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


@contextmanager
def _captured_stderr():
    """bcc's compiler writes to fd 2 directly; keep it off the user's screen unless it fails."""
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        saved = os.dup(2)
        os.dup2(tmp.fileno(), 2)
        box: list[str] = []
        try:
            yield box
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            box.append(tmp.read().decode(errors="replace"))


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


class BccCollector:
    """Counts drops in the kernel; poll() returns a Snapshot."""

    def __init__(
        self,
        *,
        max_keys: int = DEFAULT_MAX_KEYS,
        stacks: bool = True,
        btf_path: str = "/sys/kernel/btf/vmlinux",
        headers: Headers | None = None,
    ) -> None:
        if max_keys < 1:
            raise DroptopError("--max-keys must be at least 1")
        check_privileges()
        from droptop.btf import BtfError, load_vmlinux

        try:
            vmlinux = load_vmlinux(btf_path)
        except BtfError as e:
            raise DroptopError(
                f"cannot read kernel BTF ({e}); droptop needs a kernel built with "
                "CONFIG_DEBUG_INFO_BTF=y"
            ) from None
        self.layout: KernelLayout = read_layout(vmlinux)
        if self.layout.has_reason:
            from droptop.reasons import ReasonResolver

            names = ReasonResolver.for_running_kernel(vmlinux)
        else:
            names = NoReasonNames()
        self.headers = headers or find_headers()
        self.max_keys = max_keys
        self.stacks_enabled = stacks
        self._stack_keys = max(1024, min(max_keys * 4, 65536))
        self._bpf = None
        self._load()
        notes = (
            f"kernel headers: {self.headers.description}",
            *getattr(names, "notes", ()),
        )
        self.assembler = SnapshotAssembler(
            names,
            kernel=platform.release(),
            capacity=max_keys,
            stacks_enabled=stacks,
            notes=notes,
        )
        self._keys: dict[int, tuple[DropKey, str, str]] = {}  # idx -> (key, ifname, location)
        self._stack_frames: dict[int, tuple[str, ...]] = {}
        self._ksym: dict[int, str] = {}
        self._last_stats: tuple[int, int] | None = None
        self._ns_per_drop: float | None = None

    # --- load / unload ---------------------------------------------------

    def cflags(self) -> list[str]:
        flags = [*self.layout.cflags(), f"-DMAX_KEYS={self.max_keys}"]
        if self.stacks_enabled:
            flags += [
                "-DWITH_STACKS",
                f"-DSTACK_ENTRIES={STACK_ENTRIES}",
                f"-DSTACK_KEYS={self._stack_keys}",
            ]
        return flags

    def _load(self) -> None:
        try:
            from bcc import BPF
        except ImportError:
            raise DroptopError(
                "the bcc Python module is missing; install it with `apt-get install "
                "python3-bpfcc` and run droptop from a venv made with --system-site-packages"
            ) from None
        self._BPF = BPF
        saved_env = os.environ.get("BCC_KERNEL_SOURCE")
        os.environ["BCC_KERNEL_SOURCE"] = str(self.headers.path)  # read by bcc's compiler
        try:
            with _captured_stderr() as err:
                self._bpf = BPF(src_file=str(BPF_SOURCE).encode(), cflags=self.cflags())
        except Exception as e:  # bcc raises bare Exception for compile and load errors
            detail = (err[0].strip().splitlines() or [str(e)])[-1] if err else str(e)
            raise DroptopError(
                f"could not compile or load the BPF program with headers from "
                f"{self.headers.description}: {detail}"
            ) from None
        finally:
            if saved_env is None:
                os.environ.pop("BCC_KERNEL_SOURCE", None)
            else:
                os.environ["BCC_KERNEL_SOURCE"] = saved_env
        b = self._bpf
        self._counts = b[b"counts"]
        self._key_info = b[b"key_info"]
        self._stack_counts = b[b"stack_counts"] if self.stacks_enabled else None
        self._stack_map = b[b"stacks"] if self.stacks_enabled else None
        self._prog_fd = b.funcs[PROG_NAME].fd
        from bcc.utils import get_possible_cpus

        self._ncpu = len(get_possible_cpus())
        # The kernel copies each per-CPU value rounded up to 8 bytes.
        self._value_size = (ct.sizeof(self._counts.sLeaf) + 7) // 8 * 8
        self._counts_reader: BatchReader | None = BatchReader(
            self._counts.map_fd, 4, self._ncpu * self._value_size, self.max_keys
        )
        if self._stack_counts is not None:
            self._stack_reader = BatchReader(
                self._stack_counts.map_fd,
                ct.sizeof(self._stack_counts.Key),
                ct.sizeof(self._stack_counts.Leaf),
                self._stack_keys,
            )
        self._stacks: dict[int, tuple[StackSample, ...]] = {}
        self._raw_rows: dict[int, RawRow] = {}
        self._stacks_read_at = 0.0

    def close(self) -> None:
        """Detach and free the BPF program. Safe to call twice."""
        b, self._bpf = self._bpf, None
        if b is not None:
            b.cleanup()

    def __enter__(self) -> BccCollector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- reading ----------------------------------------------------------

    def reset(self) -> None:
        self.assembler.reset()

    def _read_counters(self, n: int) -> tuple[list[int], list[int]]:
        """Per-index (packets, bytes) for indices 0..n-1, summed over CPUs, in one syscall."""
        if n == 0:
            return [], []
        if self._counts_reader is not None:
            try:
                _, vals, got = self._counts_reader.read(n)
                packets, nbytes = sum_percpu_u64(vals, got, self._ncpu, self._value_size, 2)
                if got == n:
                    return packets, nbytes
            except BatchUnsupported:
                self._counts_reader = None
        # Kernels without batch ops on arrays (before 5.6): one lookup per index.
        packets, nbytes = [], []
        for i in range(n):
            vals = self._counts[self._counts.Key(i)]
            packets.append(sum(v.packets for v in vals))
            nbytes.append(sum(v.bytes for v in vals))
        return packets, nbytes

    def _sym(self, addr: int) -> str:
        s = self._ksym.get(addr)
        if s is None:
            s = self._BPF.ksym(addr, show_offset=True).decode(errors="replace")
            if s.startswith("[unknown]"):
                s = f"0x{addr:x}"
            self._ksym[addr] = s
        return s

    def _learn_new_keys(self) -> None:
        """Read key_info for indices claimed since the last poll (claims form a prefix)."""
        idx = len(self._keys)
        while idx < self.max_keys:
            try:
                info = self._key_info[self._key_info.Key(idx)]
            except KeyError:
                break
            k = info.key
            key = DropKey(
                raw_reason=int(k.reason),
                comm=decode_c_string(bytes(k.comm)),
                kernel_context=bool(k.flags & 1),
                ifindex=int(k.ifindex),
                netns=int(k.netns),
            )
            self._keys[idx] = (key, decode_c_string(bytes(info.ifname)), self._sym(k.location))
            idx += 1

    def _read_stacks(self, new_keys: bool) -> dict[int, tuple[StackSample, ...]]:
        """Sampled stacks per counter index, re-read at most every STACK_REFRESH seconds.

        Stacks are only looked at in the drill-down and in saved snapshots, and the
        stack-count map can be several times larger than the key map.
        """
        if self._stack_counts is None:
            return {}
        now = time.monotonic()
        if not new_keys and now - self._stacks_read_at < STACK_REFRESH:
            return self._stacks
        self._stacks_read_at = now
        entries: list[tuple[int, int, int]] = []
        try:
            keys, vals, n = self._stack_reader.read()
            ks = keys.cast("i")  # struct stack_key {u32 idx; s32 stackid}
            cs = vals.cast("Q")
            entries = [(ks[2 * i], ks[2 * i + 1], cs[i]) for i in range(n)]
        except BatchUnsupported:
            entries = [(k.idx, k.stackid, v.value) for k, v in self._stack_counts.items()]
        per_idx: dict[int, list[StackSample]] = {}
        for idx, sid, count in entries:
            frames = self._stack_frames.get(sid)
            if frames is None:
                try:
                    frames, _ = strip_tracing_frames(
                        [self._sym(a) for a in self._stack_map.walk(sid)]
                    )
                except KeyError:
                    continue
                self._stack_frames[sid] = frames
            per_idx.setdefault(idx, []).append(StackSample(frames, int(count)))
        self._stacks = {
            idx: tuple(sorted(v, key=lambda st: -st.count)[:STACKS_PER_ROW])
            for idx, v in per_idx.items()
        }
        return self._stacks

    def _bpf_stats(self) -> tuple[float | None, int]:
        run_ns, run_cnt, missed = _bpf_prog_stats(self._prog_fd)
        if self._last_stats is not None and run_cnt > self._last_stats[1]:
            self._ns_per_drop = (run_ns - self._last_stats[0]) / (run_cnt - self._last_stats[1])
        self._last_stats = (run_ns, run_cnt)
        return (self._ns_per_drop if run_cnt else None), missed

    def read_raw(self) -> tuple[list[RawRow], tuple[int, int]]:
        """Cumulative rows and the overflow counter, straight from the maps."""
        if self._bpf is None:
            raise DroptopError("collector is closed")
        known = len(self._keys)
        self._learn_new_keys()
        n = len(self._keys)
        packets, nbytes = self._read_counters(n)
        over = self._counts[self._counts.Key(self.max_keys)]
        overflow = (sum(v.packets for v in over), sum(v.bytes for v in over))
        stacks = self._read_stacks(new_keys=n > known)
        rows = []
        cache = self._raw_rows
        for idx in range(n):
            p, b = packets[idx], nbytes[idx]
            if not p:
                continue
            st = stacks.get(idx, ())
            old = cache.get(idx)
            if old is not None and old.packets == p and old.bytes == b and old.stacks is st:
                rows.append(old)  # unchanged: the same object lets the assembler skip it
                continue
            key, ifname, loc = self._keys[idx]
            cache[idx] = row = RawRow(key, ifname, p, b, (Location(loc, p),), st)
            rows.append(row)
        return rows, overflow

    def poll(self) -> Snapshot:
        rows, overflow = self.read_raw()
        ns, missed = self._bpf_stats()
        return self.assembler.build(
            rows,
            overflow=overflow,
            map_used=len(self._keys),
            bpf_ns_per_drop=ns,
            bpf_missed=missed,
        )
