"""Compile and attach droptop's BPF program in a short-lived child process.

bcc links libLLVM and clang (~100 MB resident after a compile). droptop runs for
hours on a machine that is already in trouble, so the compile happens here, in a
child that hands the program, its tracepoint link and its maps back as file
descriptors (SCM_RIGHTS) and exits. The monitor itself never loads bcc; it reads
the maps with plain bpf(2) syscalls (bpfmaps.py). The attachment lives as long as
the monitor holds the link fd: when droptop exits, however it exits, the kernel
detaches and frees the program.

Two ways to attach, tried in order:
1. tp_btf: compiled with -DTP_BTF, loaded and attached by tpbtf.py (bcc cannot
   load that program type). Cheaper per drop: skb fields are plain loads.
2. raw_tp: the RAW_TRACEPOINT_PROBE that bcc compiles, loads and attaches itself.
   Used when tp_btf is turned off or any step of it fails (kernel before 5.5, no
   BTF id, verifier rejection); the failed attempt's module and maps are freed
   first and its verifier log is reduced to one line in the reply.

Protocol on the socket: the parent sends one JSON request
{"source", "cflags", "headers", "maps"} plus optionally "tp_btf" (false: go
straight to raw_tp) and "tp_btf_id" (vmlinux BTF id of btf_trace_kfree_skb, else
found here). DROPTOP_NO_TP_BTF=1 in the environment also turns tp_btf off. The
child answers with one JSON message,
{"maps": {name: {"key_size", "value_size"}}, "fds": [names in fd order],
"attach": "tp_btf" | "raw_tp"[, "tp_btf_error": why tp_btf is not used]}
plus the fds ("map:NAME"..., "prog", "link"), or {"error": "..."}.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

PROG_FUNC = b"raw_tracepoint__kfree_skb"
TP_BTF_FUNC = b"droptop_kfree_skb"
TRACEPOINT = b"kfree_skb"
NO_TP_BTF_ENV = "DROPTOP_NO_TP_BTF"


def _last_line(text: str, fallback: str) -> str:
    """The line that says what went wrong: clang's first `error:` line (its last line
    is only "N errors generated."), else the last line mentioning an error."""
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    compiler = [ln for ln in lines if "error:" in ln]
    if compiler:
        return compiler[0].strip()
    for i, ln in enumerate(lines):
        if "Failed to load program" in ln:  # the verifier's log follows: its last word
            from droptop.collector.tpbtf import _verifier_reason

            why = _verifier_reason("\n".join(lines[i + 1 :]).encode())
            return f"{ln.strip()} ({why})" if why else ln.strip()
    errors = [ln for ln in lines if "error" in ln.lower()]
    return (errors or lines or [fallback])[-1].strip()


def _compile(bpf_class: Any, source: str, cflags: list[str]) -> tuple[Any, str | None]:
    """(bcc module, None) or (None, the compiler's or loader's last word)."""
    # bcc's compiler writes warnings and errors to fd 2: keep them for the message.
    with tempfile.TemporaryFile() as err:
        saved = os.dup(2)
        os.dup2(err.fileno(), 2)
        try:
            return bpf_class(src_file=source.encode(), cflags=cflags), None
        except Exception as e:  # bcc raises bare Exception for compile and load errors
            os.dup2(saved, 2)
            err.seek(0)
            return None, _last_line(err.read().decode(errors="replace"), str(e))
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _tp_btf_off(request: dict) -> str | None:
    """Why tp_btf is not to be tried, or None."""
    if os.environ.get(NO_TP_BTF_ENV, "") not in ("", "0"):
        return f"tp_btf turned off ({NO_TP_BTF_ENV})"
    if request.get("tp_btf", True) is False:
        return "tp_btf turned off"
    return None


def _attach_tp_btf(bpf_class: Any, request: dict) -> tuple[Any, int, int]:
    """Compile with -DTP_BTF, load and attach: (bcc module, prog fd, link fd).

    Raises TpBtfError; whatever it had made by then is closed first.
    """
    from bcc.libbcc import lib

    from droptop.collector import tpbtf

    btf_id = request.get("tp_btf_id") or tpbtf.trace_type_id(TRACEPOINT.decode())
    b, error = _compile(bpf_class, request["source"], [*request["cflags"], "-DTP_BTF"])
    if b is None:
        raise tpbtf.TpBtfError(f"tp_btf compile failed: {error}")
    try:
        start = lib.bpf_function_start(b.module, TP_BTF_FUNC)
        size = lib.bpf_function_size(b.module, TP_BTF_FUNC)
        if not start or not size:
            raise tpbtf.TpBtfError("tp_btf entry point not compiled")
        # Named as bcc names the raw_tp program, so `bpftool prog` shows kfree_skb
        # either way (its type says which: tracing or raw_tracepoint).
        prog_fd, link_fd = tpbtf.load_and_attach(
            start, size // 8, lib.bpf_module_license(b.module), btf_id, name=TRACEPOINT
        )
    except BaseException:
        b.cleanup()  # frees the module and its maps: nothing of this attempt stays
        raise
    return b, prog_fd, link_fd


def load(request: dict) -> tuple[dict, list[int]]:
    """Compile, load and attach; return (reply, fds). Runs in the child only."""
    os.environ["BCC_KERNEL_SOURCE"] = request["headers"]
    try:
        from bcc import BPF
    except ImportError:
        return {
            "error": "the bcc Python module is missing; install it with `apt-get install "
            "python3-bpfcc` and run droptop from a venv made with --system-site-packages"
        }, []
    from droptop.collector.tpbtf import TpBtfError

    why_not = _tp_btf_off(request)
    if why_not is None:
        try:
            b, prog_fd, link_fd = _attach_tp_btf(BPF, request)
        except TpBtfError as e:
            why_not = str(e)
        except Exception as e:  # whatever went wrong, raw_tp is still there to try
            why_not = f"tp_btf failed: {type(e).__name__}: {e}"
    if why_not is not None:
        # RAW_TRACEPOINT_PROBE(kfree_skb) makes bcc attach it as it loads.
        b, error = _compile(BPF, request["source"], request["cflags"])
        if b is None:
            return {"error": error}, []
        prog_fd = b.funcs[PROG_FUNC].fd
        link_fd = b.raw_tracepoint_fds[TRACEPOINT]
    import ctypes as ct

    names, fds, maps = [], [], {}
    for name in request["maps"]:
        table = b[name.encode()]
        leaf = getattr(table, "sLeaf", table.Leaf)  # per-CPU tables: one CPU's value
        maps[name] = {"key_size": ct.sizeof(table.Key), "value_size": ct.sizeof(leaf)}
        names.append(f"map:{name}")
        fds.append(table.map_fd)
    names += ["prog", "link"]
    fds += [prog_fd, link_fd]
    reply: dict[str, Any] = {"maps": maps, "fds": names}
    if why_not is None:
        reply["attach"] = "tp_btf"
    else:
        reply["attach"] = "raw_tp"
        reply["tp_btf_error"] = why_not
    return reply, fds


def run(request: dict, inspect: Callable[[int], None] | None = None) -> tuple[dict, list[int], str]:
    """Parent side: start the child, send `request`; (reply, fds, child's stderr).

    A child that dies before replying gives {"error": <its stderr>}. ``inspect(pid)``
    (tests) runs while the child still holds everything it made.
    """
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    env = dict(os.environ)
    src_root = str(Path(__file__).resolve().parents[2])  # works from a source checkout too
    env["PYTHONPATH"] = src_root + os.pathsep + env.get("PYTHONPATH", "")
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "droptop.collector.loader", str(child.fileno())],
            pass_fds=[child.fileno()],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
        )
    finally:
        child.close()
    fds: list[int] = []
    msg = b""
    try:
        parent.sendall(json.dumps(request).encode())
        msg, fds, _, _ = socket.recv_fds(parent, 1 << 16, 16)
        if inspect is not None:
            inspect(proc.pid)
        parent.send(b"k")  # the child may exit now
    except OSError:
        pass  # the child died; its stderr says why
    finally:
        parent.close()
        _, err = proc.communicate(timeout=60)
    stderr = err.decode(errors="replace")
    reply = json.loads(msg) if msg else {"error": stderr.strip() or "the loader process failed"}
    return reply, fds, stderr


def main(argv: list[str]) -> int:
    sock = socket.socket(fileno=int(argv[1]))
    request = json.loads(sock.recv(1 << 16))
    try:
        reply, fds = load(request)
    except Exception as e:  # anything unforeseen still reaches the parent as a sentence
        reply, fds = {"error": f"{type(e).__name__}: {e}"}, []
    socket.send_fds(sock, [json.dumps(reply).encode()], fds)
    # Wait until the parent has taken the fds before this process (and bcc's
    # clean-up at exit) closes its copies.
    sock.recv(1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
