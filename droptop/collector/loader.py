"""Compile and attach droptop's BPF program in a short-lived child process.

bcc links libLLVM and clang (~100 MB resident after a compile). droptop runs for
hours on a machine that is already in trouble, so the compile happens here, in a
child that hands the program, its raw-tracepoint link and its maps back as file
descriptors (SCM_RIGHTS) and exits. The monitor itself never loads bcc; it reads
the maps with plain bpf(2) syscalls (bpfmaps.py). The attachment lives as long as
the monitor holds the link fd: when droptop exits, however it exits, the kernel
detaches and frees the program.

Protocol on the socket: the parent sends one JSON request
{"source", "cflags", "headers", "maps"}; the child answers with one JSON message,
{"maps": {name: {"key_size", "value_size"}}, "fds": [names in fd order]} plus the
fds, or {"error": "..."}.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import tempfile

PROG_FUNC = b"raw_tracepoint__kfree_skb"
TRACEPOINT = b"kfree_skb"


def _last_line(text: str, fallback: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    errors = [ln for ln in lines if "error" in ln.lower()]
    return (errors or lines or [fallback])[-1].strip()


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
    # bcc's compiler writes warnings and errors to fd 2: keep them for the message.
    with tempfile.TemporaryFile() as err:
        saved = os.dup(2)
        os.dup2(err.fileno(), 2)
        try:
            # RAW_TRACEPOINT_PROBE(kfree_skb) makes bcc attach it as it loads.
            b = BPF(src_file=request["source"].encode(), cflags=request["cflags"])
        except Exception as e:  # bcc raises bare Exception for compile and load errors
            os.dup2(saved, 2)
            err.seek(0)
            return {"error": _last_line(err.read().decode(errors="replace"), str(e))}, []
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    import ctypes as ct

    names, fds, maps = [], [], {}
    for name in request["maps"]:
        table = b[name.encode()]
        leaf = getattr(table, "sLeaf", table.Leaf)  # per-CPU tables: one CPU's value
        maps[name] = {"key_size": ct.sizeof(table.Key), "value_size": ct.sizeof(leaf)}
        names.append(f"map:{name}")
        fds.append(table.map_fd)
    names.append("prog")
    fds.append(b.funcs[PROG_FUNC].fd)
    names.append("link")
    fds.append(b.raw_tracepoint_fds[TRACEPOINT])
    return {"maps": maps, "fds": names}, fds


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
