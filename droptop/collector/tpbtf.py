"""Load and attach a compiled BPF program as a BTF-typed raw tracepoint (tp_btf).

Why: in a tp_btf program (BPF_PROG_TYPE_TRACING, expected attach type
BPF_TRACE_RAW_TP) the tracepoint's pointer arguments are typed by the kernel's
BTF, so droptop reads skb->dev and skb->len with two plain loads that the
verifier checks and the JIT inlines, instead of a bpf_probe_read_kernel() call
on every drop (113 -> 77 ns per drop on the benchmark machine, bench/README.md).

bcc 0.26 compiles such a program but cannot load it (its loader forces the
expected attach type to 0 unless the function name is one of its own prefixes),
so the loader child hands bcc's compiled instructions (map fds already patched
in) to :func:`load_and_attach`, which does BPF_PROG_LOAD and
BPF_RAW_TRACEPOINT_OPEN itself with plain bpf(2) syscalls. Every failure is a
:class:`TpBtfError` with a one-line reason, nothing is printed, and nothing stays
loaded: the caller falls back to bcc's plain raw tracepoint.

This module needs neither bcc nor libbpf, so it can be tested on its own.
"""

from __future__ import annotations

import ctypes as ct
import os

from droptop.collector.bpfmaps import bpf_syscall
from droptop.names.btf import VMLINUX_BTF

_PROG_LOAD = 5
_RAW_TRACEPOINT_OPEN = 17
_PROG_TYPE_TRACING = 26
_TRACE_RAW_TP = 23
_LOG_SIZE = 1 << 20
"""Verifier log kept from a failed load (since 6.4 the kernel keeps the log's tail)."""


class TpBtfError(Exception):
    """tp_btf is not possible here; the message is one line, fit for a UI note."""


class _ProgLoadAttr(ct.Structure):
    """union bpf_attr for BPF_PROG_LOAD, up to attach_btf_obj_fd (5.5+); the kernel
    zero-fills what a shorter attr leaves out."""

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
    ]


class _RawTpOpenAttr(ct.Structure):
    _fields_ = [("name", ct.c_uint64), ("prog_fd", ct.c_uint32)]


def _bpf(cmd: int, attr: ct.Structure) -> int:
    """The new fd, or OSError."""
    fd = bpf_syscall(cmd, attr)
    if fd < 0:
        raise OSError(-fd, os.strerror(-fd))
    return fd


def trace_type_id(tracepoint: str, path: str = VMLINUX_BTF) -> int:
    """vmlinux BTF id of the typedef ``btf_trace_<tracepoint>``: what tp_btf attaches to.

    droptop's monitor has vmlinux parsed already and passes the id in the loader
    request; this is for callers that have not.
    """
    from droptop.names.btf import TYPEDEF, BtfError, load_vmlinux

    name = f"btf_trace_{tracepoint}"
    try:
        tid = load_vmlinux(path).type_id(name, TYPEDEF)
    except BtfError as e:
        raise TpBtfError(str(e)) from None
    if tid is None:
        raise TpBtfError(f"no {name} in {path}")
    return tid


def _verifier_reason(log: bytes) -> str:
    """The line of a verifier log that says why, without the statistics after it."""
    lines = [ln.strip() for ln in log.decode(errors="replace").splitlines() if ln.strip()]
    while lines and lines[-1].startswith(("processed ", "verification time", "stack depth")):
        lines.pop()
    return lines[-1][:200] if lines else ""


def load_and_attach(
    insns: int, insn_cnt: int, license: bytes, btf_id: int, name: bytes = b"droptop"
) -> tuple[int, int]:
    """Load ``insn_cnt`` instructions at address ``insns`` as tp_btf on the
    tracepoint whose ``btf_trace_*`` typedef has vmlinux id ``btf_id``, and attach
    it: (prog fd, link fd). Closing the link fd detaches it.

    On failure raises TpBtfError with the errno and, for a rejected program, the
    verifier's last word; the full log is never printed and nothing stays loaded.
    """
    lic = ct.create_string_buffer(license)
    attr = _ProgLoadAttr(
        prog_type=_PROG_TYPE_TRACING,
        insn_cnt=insn_cnt,
        insns=insns,
        license=ct.addressof(lic),
        prog_name=name[:15],
        expected_attach_type=_TRACE_RAW_TP,
        attach_btf_id=btf_id,
    )
    try:
        prog_fd = _bpf(_PROG_LOAD, attr)
    except OSError as first:
        # Load again with a log, only to say why: the common case pays for no log.
        log = ct.create_string_buffer(_LOG_SIZE)
        attr.log_level, attr.log_size, attr.log_buf = 1, _LOG_SIZE, ct.addressof(log)
        try:
            prog_fd = _bpf(_PROG_LOAD, attr)
        except OSError:
            why = _verifier_reason(log.raw.split(b"\0", 1)[0])
            raise TpBtfError(
                f"tp_btf load failed: {first.strerror}" + (f" ({why})" if why else "")
            ) from None
    try:
        link_fd = _bpf(_RAW_TRACEPOINT_OPEN, _RawTpOpenAttr(name=0, prog_fd=prog_fd))
    except OSError as e:
        os.close(prog_fd)
        raise TpBtfError(f"tp_btf attach failed: {e.strerror}") from None
    return prog_fd, link_fd
