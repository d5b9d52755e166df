"""Prototype: droptop's program loaded as a BTF-typed raw tracepoint (tp_btf).

Why: on this machine every BPF helper call costs ~10 ns or more (the kernel runs
with the SRSO "Safe RET" mitigation, so every return goes through a thunk), and
droptop's hot path pays for a bpf_probe_read_kernel() of skb->dev and skb->len
on every drop. In a tp_btf program the same two fields are plain loads that
the verifier checks against BTF and the JIT emits inline.

bcc 0.26 compiles such a program fine but cannot load it: its loader forces
expected_attach_type to 0 for BPF_PROG_TYPE_TRACING unless the function name
starts with kfunc__/lsm__ etc. So this module takes the instructions bcc
compiled (map fds already patched in) and does the BPF_PROG_LOAD itself, with
expected_attach_type = BPF_TRACE_RAW_TP and attach_btf_id = the vmlinux BTF id
of the typedef btf_trace_kfree_skb, then attaches with BPF_RAW_TRACEPOINT_OPEN
(no name: the target comes from the BTF id). About 60 lines that droptop's
collector could carry, with the current raw tracepoint as the fallback.
"""

from __future__ import annotations

import ctypes as ct
import os
from pathlib import Path

import common

BPF_PROG_LOAD = 5
BPF_RAW_TRACEPOINT_OPEN = 17
BPF_PROG_TYPE_TRACING = 26
BPF_TRACE_RAW_TP = 23
KIND_TYPEDEF = 8
SYS_BPF = 321  # x86-64

PROTO_SRC = Path(__file__).resolve().parent / "droptop_variants.bpf.c"
FUNC = b"droptop_kfree_skb"

_libc = ct.CDLL(None, use_errno=True)
_libc.syscall.restype = ct.c_long


class ProgLoadAttr(ct.Structure):
    """The BPF_PROG_LOAD member of union bpf_attr, up to attach_btf_obj_fd."""

    _fields_ = [
        ("prog_type", ct.c_uint32),
        ("insn_cnt", ct.c_uint32),
        ("insns", ct.c_uint64),
        ("license", ct.c_uint64),
        ("log_level", ct.c_uint32),
        ("log_size", ct.c_uint32),
        ("log_buf", ct.c_uint64),
        ("kern_version", ct.c_uint32),
        ("prog_flags", ct.c_uint32),
        ("prog_name", ct.c_char * 16),
        ("prog_ifindex", ct.c_uint32),
        ("expected_attach_type", ct.c_uint32),
        ("prog_btf_fd", ct.c_uint32),
        ("func_info_rec_size", ct.c_uint32),
        ("func_info", ct.c_uint64),
        ("func_info_cnt", ct.c_uint32),
        ("line_info_rec_size", ct.c_uint32),
        ("line_info", ct.c_uint64),
        ("line_info_cnt", ct.c_uint32),
        ("attach_btf_id", ct.c_uint32),
        ("attach_btf_obj_fd", ct.c_uint32),
        ("_pad", ct.c_uint8 * 64),
    ]


class RawTpOpenAttr(ct.Structure):
    _fields_ = [("name", ct.c_uint64), ("prog_fd", ct.c_uint32), ("_pad", ct.c_uint8 * 52)]


def _bpf(cmd: int, attr: ct.Structure) -> int:
    fd = _libc.syscall(SYS_BPF, cmd, ct.byref(attr), ct.sizeof(attr))
    if fd < 0:
        err = ct.get_errno()
        raise OSError(err, os.strerror(err))
    return fd


def trace_typedef_id(tp: str) -> int:
    """vmlinux BTF id of `btf_trace_<tp>` (what the kernel attaches a tp_btf program to)."""
    common.ensure_droptop_importable()
    from droptop.btf import load_vmlinux

    ids = load_vmlinux()._ids_named(f"btf_trace_{tp}", frozenset({KIND_TYPEDEF}))
    if not ids:
        raise RuntimeError(f"btf_trace_{tp} not in vmlinux BTF")
    return ids[0]


def load_tp_btf(bpf: object, func: bytes = FUNC, tp: str = "kfree_skb") -> tuple[int, int]:
    """Load bcc-compiled `func` as tp_btf on `tp` and attach it: (prog fd, link fd)."""
    from bcc.libbcc import lib

    module = bpf.module  # type: ignore[attr-defined]
    start = lib.bpf_function_start(module, func)
    size = lib.bpf_function_size(module, func)
    if not start:
        raise RuntimeError(f"{func!r} not compiled")
    license_ = lib.bpf_module_license(module)
    log = ct.create_string_buffer(1 << 20)
    attr = ProgLoadAttr(
        prog_type=BPF_PROG_TYPE_TRACING,
        insn_cnt=size // 8,
        insns=ct.cast(start, ct.c_void_p).value,
        license=ct.cast(ct.c_char_p(license_), ct.c_void_p).value,
        log_level=0,
        prog_name=b"kfree_skb",
        expected_attach_type=BPF_TRACE_RAW_TP,
        attach_btf_id=trace_typedef_id(tp),
    )
    try:
        prog_fd = _bpf(BPF_PROG_LOAD, attr)
    except OSError:
        attr.log_level, attr.log_size = 1, len(log)
        attr.log_buf = ct.cast(log, ct.c_void_p).value
        try:
            prog_fd = _bpf(BPF_PROG_LOAD, attr)
        except OSError as e:
            tail = "\n".join(log.value.decode(errors="replace").splitlines()[-15:])
            raise RuntimeError(f"tp_btf load failed: {e}\n{tail}") from None
    try:
        link_fd = _bpf(BPF_RAW_TRACEPOINT_OPEN, RawTpOpenAttr(name=0, prog_fd=prog_fd))
    except OSError:
        os.close(prog_fd)
        raise
    return prog_fd, link_fd


LOADER = Path(__file__).resolve().parent / "tpbtf_loader.py"


def tp_btf_collector_class():
    """A BccCollector whose program is the V_TPBTF prototype, attached as tp_btf.

    droptop compiles and attaches in a loader child (droptop/collector/loader.py).
    This runs tpbtf_loader.py as that child instead: droptop's own loader with
    bcc.BPF swapped for one that loads the compiled function with load_tp_btf().
    Everything on the monitor side (map reads, rows, snapshots) is droptop's.
    """
    common.ensure_droptop_importable()
    import subprocess

    import droptop.collector.bcc as m

    real_popen = subprocess.Popen

    def popen(cmd, *args, **kw):  # type: ignore[no-untyped-def]
        if list(cmd[1:3]) == ["-m", "droptop.collector.loader"]:
            cmd = [cmd[0], str(LOADER), *cmd[3:]]
        return real_popen(cmd, *args, **kw)

    class TpBtfCollector(m.BccCollector):
        def cflags(self) -> list[str]:
            return [*super().cflags(), "-DV_TPBTF"]

        def _load(self) -> None:
            saved = m.BPF_SOURCE, m.subprocess.Popen
            m.BPF_SOURCE, m.subprocess.Popen = PROTO_SRC, popen
            try:
                super()._load()
            finally:
                m.BPF_SOURCE, m.subprocess.Popen = saved

    return TpBtfCollector
