"""droptop attached as a BTF-typed raw tracepoint (tp_btf), and the raw_tp fallback.

The BTF id lookup and the verifier-log summary are tested on their own; the rest
loads the real program, makes real drops from a unique comm and checks exact
counts, sampled stacks, the forced fallback, and that a failed tp_btf attempt
falls back quietly and leaves nothing loaded.
"""

from __future__ import annotations

import ctypes
import errno
import os
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from droptop import dropgen
from droptop.collector import loader
from droptop.collector.tpbtf import TpBtfError, _verifier_reason, trace_type_id
from droptop.model import Snapshot
from tests.btf_encoder import BtfEncoder
from tests.conftest import need_bpf, wait_for

PAYLOAD = 32
UDP_HEADER = 8
PROG_TYPE_RAW_TRACEPOINT = 17
PROG_TYPE_TRACING = 26
RETURN_0 = bytes.fromhex("b7000000000000009500000000000000")
"""A whole BPF program: r0 = 0; exit."""


# --- without a kernel ---------------------------------------------------------------


def test_trace_type_id_finds_the_typedef_not_its_namesakes(tmp_path):
    enc = BtfEncoder()
    u32 = enc.int_("unsigned int", 4)
    skb = enc.struct("sk_buff", 232, [("len", u32, 896), ("btf_trace_kfree_skb", u32, 0)])
    proto = enc.func_proto(0, [("", enc.ptr(0)), ("", enc.ptr(skb))])
    enc.func("btf_trace_kfree_skb", proto, linkage=0)  # same name, wrong kind
    enc.enum("e", [("A", 0), ("B", 1)])  # vlen records before the target
    enc.typedef("xbtf_trace_kfree_skb", enc.ptr(proto))  # a longer name ending in it
    other = enc.typedef("btf_trace_consume_skb", enc.ptr(proto))
    want = enc.typedef("btf_trace_kfree_skb", enc.ptr(proto))
    path = tmp_path / "vmlinux"
    path.write_bytes(enc.to_bytes(hdr_len=32, gap=12))

    assert trace_type_id("kfree_skb", str(path)) == want
    assert trace_type_id("consume_skb", str(path)) == other
    with pytest.raises(TpBtfError, match="no btf_trace_sched_switch in"):
        trace_type_id("sched_switch", str(path))


def test_trace_type_id_errors_are_one_line(tmp_path):
    with pytest.raises(TpBtfError, match="cannot read"):
        trace_type_id("kfree_skb", str(tmp_path / "missing"))
    (tmp_path / "junk").write_bytes(b"\x00" * 64)
    with pytest.raises(TpBtfError, match="not BTF"):
        trace_type_id("kfree_skb", str(tmp_path / "junk"))


def test_verifier_reason_is_the_last_word_before_the_statistics():
    log = (
        b"func#0 @0\n0: R1=ctx() R10=fp0\n; asm volatile\n"
        b"12: (79) r2 = *(u64 *)(r1 +16)\nR1 invalid mem access 'scalar'\n"
        b"processed 13 insns (limit 1000000) max_states_per_insn 0 total_states 1\n"
    )
    assert _verifier_reason(log) == "R1 invalid mem access 'scalar'"
    assert _verifier_reason(b"") == ""


# --- real BPF -----------------------------------------------------------------------


def unique_comm(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:6]}"


def fdinfo(fd: int, pid: int | str = "self") -> dict[str, str]:
    text = Path(f"/proc/{pid}/fdinfo/{fd}").read_text()
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def prog_type(fd: int) -> int:
    return int(fdinfo(fd)["prog_type"])


def bpf_fd_kinds(pid: int) -> Counter[str]:
    """How many BPF maps, programs and links a process holds fds for."""
    kinds: Counter[str] = Counter()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith(("anon_inode:bpf-", "anon_inode:bpf_")):
            kinds[target.removeprefix("anon_inode:")] += 1
    return kinds


def run_loader(
    collector, extra: dict | None = None, inspect: Callable[[int], None] | None = None
) -> tuple[dict, dict[str, int], str]:
    """Run the loader child exactly as KernelCollector._load does, for the request that
    ``collector`` would send plus ``extra``: (reply, fds by name, child's stderr).
    ``inspect(pid)`` runs while the child still holds everything it made."""
    from droptop.collector.kernel import BPF_SOURCE

    request = {
        "source": str(BPF_SOURCE),
        "cflags": collector.cflags(),
        "headers": str(collector.headers.path),
        "maps": collector._map_names(),
        **(extra or {}),
    }
    reply, fds, stderr = loader.run(request, inspect=inspect)
    return reply, dict(zip(reply.get("fds", ()), fds)), stderr


def close_all(fds: dict[str, int]) -> None:
    for fd in fds.values():
        os.close(fd)


def udp_drops_count_exactly(collector, comm: str, n: int = 400) -> None:
    """n datagrams to a closed port from ``comm`` in a private netns: one row, exact
    packets and bytes (skb->len at the drop is UDP header + payload)."""
    with dropgen.private_netns() as ns:
        sent = dropgen.spawn("udp", n, comm=comm, netns=ns)

        def mine(s: Snapshot) -> list:
            return [r for r in s.rows if r.key.comm == comm]

        snap = wait_for(collector.poll, lambda s: sum(r.packets for r in mine(s)) >= n)
    assert sent == n
    rows = mine(snap)
    assert [r.reason.name for r in rows] == ["NO_SOCKET"]
    assert rows[0].packets == n
    assert rows[0].bytes == n * (PAYLOAD + UDP_HEADER)
    assert rows[0].ifname == "lo"


@pytest.mark.bpf
def test_loader_attaches_tp_btf_on_this_kernel(bpf_collector):
    reply, fds, stderr = run_loader(bpf_collector)
    try:
        assert reply["attach"] == "tp_btf", reply.get("tp_btf_error")
        assert "tp_btf_error" not in reply
        assert list(fds) == [
            "map:counts",
            "map:key_info",
            "map:cache",
            "map:stack_counts",
            "map:stacks",
            "map:samples",
            "prog",
            "link",
        ]
        assert prog_type(fds["prog"]) == PROG_TYPE_TRACING
        assert fdinfo(fds["link"])["link_type"].strip() == "raw_tracepoint"
        assert stderr == ""
    finally:
        close_all(fds)


@pytest.mark.bpf
def test_collector_uses_tp_btf_and_counts_exactly(bpf_collector):
    assert prog_type(bpf_collector._prog_fd) == PROG_TYPE_TRACING
    if hasattr(bpf_collector, "attach"):  # once bcc.py records the loader's reply
        assert bpf_collector.attach == "tp_btf"
    udp_drops_count_exactly(bpf_collector, unique_comm("dt-btf"))


@pytest.mark.bpf
def test_tp_btf_stacks_are_sampled_and_symbolized(bpf_collector):
    assert prog_type(bpf_collector._prog_fd) == PROG_TYPE_TRACING
    comm = unique_comm("dt-bst")
    dropgen.spawn("udp", 50, comm=comm)

    def rows(s: Snapshot) -> list:
        return [r for r in s.rows if r.key.comm == comm]

    snap = wait_for(bpf_collector.poll, lambda s: any(r.stacks for r in rows(s)))
    (row,) = rows(snap)
    assert row.stacks
    frames = row.stacks[0].frames
    assert any(f.startswith("__udp4_lib_rcv+0x") for f in frames), frames
    # tp_btf runs from the same bpf_trace_run* trampolines as raw_tp: they are
    # stripped, so the first frame is still the function that freed the packet.
    assert frames[0].startswith(("kfree_skb_reason+0x", "sk_skb_reason_drop+0x")), frames[:3]
    assert 1 <= sum(s.count for s in row.stacks) < row.packets


@pytest.mark.bpf
def test_forced_fallback_counts_exactly(monkeypatch):
    need_bpf()
    from droptop.collector.kernel import KernelCollector

    monkeypatch.setenv("DROPTOP_NO_TP_BTF", "1")  # inherited by the loader child
    with KernelCollector() as c:
        assert prog_type(c._prog_fd) == PROG_TYPE_RAW_TRACEPOINT
        udp_drops_count_exactly(c, unique_comm("dt-raw"))


@pytest.mark.bpf
def test_loader_request_can_turn_tp_btf_off(bpf_collector):
    reply, fds, _ = run_loader(bpf_collector, {"tp_btf": False})
    close_all(fds)
    assert reply["attach"] == "raw_tp"
    assert reply["tp_btf_error"] == "tp_btf turned off"


@pytest.mark.bpf
def test_rejected_tp_btf_falls_back_quietly_and_leaves_nothing(bpf_collector):
    """The program attached to a tracepoint whose first argument is no sk_buff: the
    verifier rejects the skb loads. The loader falls back to raw_tp, its reply says
    why in one line, its stderr stays empty, and while it still runs it holds exactly
    what a plain raw_tp load holds: no map or program left over from the attempt."""
    held: dict[str, Counter[str]] = {}
    wrong = trace_type_id("sched_switch")  # (bool preempt, task *prev, task *next, ...)

    reply, fds, stderr = run_loader(
        bpf_collector,
        {"tp_btf_id": wrong},
        inspect=lambda pid: held.__setitem__("failed", bpf_fd_kinds(pid)),
    )
    try:
        assert reply["attach"] == "raw_tp"
        assert prog_type(fds["prog"]) == PROG_TYPE_RAW_TRACEPOINT
        assert stderr == ""
        why = reply["tp_btf_error"]
        assert why.startswith("tp_btf load failed: Permission denied"), why
        assert "invalid mem access" in why
        assert "\n" not in why and len(why) < 300
    finally:
        close_all(fds)

    reply, fds, _ = run_loader(
        bpf_collector,
        {"tp_btf": False},
        inspect=lambda pid: held.__setitem__("plain", bpf_fd_kinds(pid)),
    )
    close_all(fds)
    assert held["failed"] == held["plain"]
    assert held["plain"]["bpf-prog"] == 1


@pytest.mark.bpf
def test_load_and_attach_leaves_nothing_behind(monkeypatch):
    """Attached, detached by closing; a refused load or attach leaves no fd open."""
    need_bpf()
    from droptop.collector import tpbtf

    insns = ctypes.create_string_buffer(RETURN_0)
    addr, kfree_skb = ctypes.addressof(insns), trace_type_id("kfree_skb")
    before = bpf_fd_kinds(os.getpid())

    prog, link = tpbtf.load_and_attach(addr, 2, b"GPL", kfree_skb, name=b"dt_test")
    assert prog_type(prog) == PROG_TYPE_TRACING
    assert fdinfo(link)["link_type"].strip() == "raw_tracepoint"
    os.close(link)
    os.close(prog)

    with pytest.raises(TpBtfError, match="tp_btf load failed: Invalid argument"):
        tpbtf.load_and_attach(addr, 2, b"GPL", 1)  # type 1 is no btf_trace_* typedef

    real_bpf = tpbtf._bpf

    def refuse_attach(cmd: int, attr: ctypes.Structure) -> int:
        if cmd == tpbtf._RAW_TRACEPOINT_OPEN:
            raise OSError(errno.EBUSY, os.strerror(errno.EBUSY))
        return real_bpf(cmd, attr)

    monkeypatch.setattr(tpbtf, "_bpf", refuse_attach)
    with pytest.raises(TpBtfError, match="tp_btf attach failed: Device or resource busy"):
        tpbtf.load_and_attach(addr, 2, b"GPL", kfree_skb)
    assert bpf_fd_kinds(os.getpid()) == before


def test_a_bcc_load_failure_names_the_verifier_reason_not_its_statistics():
    from droptop.collector.loader import _last_line

    text = (
        "/virtual/main.c:9:9: warning: 'THREAD_SIZE' macro redefined\n"
        "1 warning generated.\n"
        "bpf: Failed to load program: Invalid argument\n"
        "0: R1=ctx() R10=fp0\n"
        "59: (af) r2 ^= r6\n"
        "math between ctx pointer and register with unbounded min value is not allowed\n"
        "processed 58 insns (limit 1000000) max_states_per_insn 0 total_states 3\n"
    )
    assert _last_line(text, "Failed to load BPF program") == (
        "bpf: Failed to load program: Invalid argument (math between ctx pointer and "
        "register with unbounded min value is not allowed)"
    )
