"""Issue 11 against the real kernel: whose drop a row is, proved on real drops.

Each test makes drops from processes it starts itself (unique comm, placed in cgroup v2
directories it creates, inside network namespaces it creates), reads the session's real
collector before and after, and compares the row deltas with an independent count (the
namespace's SNMP counters, or the number of packets sent). The session collector counts every
drop on the machine and netns inodes are reused once a namespace is gone, so rows are picked
by unique netns and comm and always compared as deltas from a baseline poll.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from droptop import dropgen
from droptop.attribution.cgroups import find_cgroup2_mount, service_name
from droptop.model import DropRow, Snapshot
from droptop.snapshot_file import row_to_dict
from tests.conftest import REQUIRE_BPF, spinners, wait_for

pytestmark = pytest.mark.bpf
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PID = os.getpid()


def tag() -> str:
    """Unique per call and per test process: other engineers run these tests concurrently."""
    return f"{PID % 100000}{uuid.uuid4().hex[:3]}"


# --- what a test makes, and removes again ------------------------------------------------


@contextmanager
def cgroup(name: str) -> Iterator[str]:
    """A cgroup v2 directory on the mount found at run time; yields its path below the mount."""
    mount = find_cgroup2_mount()
    if mount is None:
        if REQUIRE_BPF:
            pytest.fail("DROPTOP_REQUIRE_BPF=1 but no cgroup v2 mount")
        pytest.skip("no cgroup v2 mount")
    path = os.path.join(mount.path, name)
    os.mkdir(path)
    try:
        yield "/" + name
    finally:
        for _ in range(100):  # rmdir fails until the killed members are reaped
            try:
                os.rmdir(path)
                break
            except OSError:
                time.sleep(0.02)


def join_cgroup(cgroup_path: str, pid: int) -> None:
    mount = find_cgroup2_mount()
    assert mount is not None
    with open(mount.path + cgroup_path + "/cgroup.procs", "w") as f:
        f.write(str(pid))


@contextmanager
def netns(name: str) -> Iterator[int]:
    """`ip netns add NAME` with lo up; yields its inode. Deleted on exit."""
    dropgen.run(["ip", "netns", "del", name], check=False)
    dropgen.run(["ip", "netns", "add", name])
    try:
        dropgen.run(["ip", "-n", name, "link", "set", "lo", "up"])
        yield dropgen.netns_inode(name)
    finally:
        dropgen.run(["ip", "netns", "del", name], check=False)


class Child:
    """A python child that waits for a go line on stdin before it runs `code`.

    The wait lets the test put the child into a cgroup before it creates any socket (a
    socket's cgroup is fixed when it is created). With `ns`, the child runs under
    `ip netns exec`, which execs in place: the pid is the child's own. `code` prints one
    line (what the test needs to know) and the child then sleeps until killed.
    """

    def __init__(self, code: str, comm: str, ns: str | None = None, linger: bool = True) -> None:
        prog = (
            "import sys\n"
            "sys.stdin.readline()\n"
            f"from droptop.dropgen import set_comm\nset_comm({comm!r})\n"
            f"{code}\n"
            "sys.stdout.flush()\n"
        )
        if linger:
            prog += "import time\ntime.sleep(120)\n"
        cmd = [sys.executable, "-c", prog]
        if ns is not None:
            cmd = ["ip", "netns", "exec", ns, *cmd]
        env = {**os.environ, "PYTHONPATH": ROOT}
        self.comm = comm
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.pid = self.proc.pid

    def go(self) -> str:
        """Let it run; return the line it prints."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, f"child {self.comm} exited early ({self.proc.wait()})"
        return line.strip()

    def wait(self) -> int:
        return self.proc.wait(timeout=30)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


@contextmanager
def children(*kids: Child) -> Iterator[None]:
    try:
        yield
    finally:
        for k in kids:
            k.kill()


def own_comm(c: Child) -> str:
    with open(f"/proc/{c.pid}/comm") as f:
        return f.read().strip()


# --- reading rows --------------------------------------------------------------------------


def rows(snap: Snapshot, pick: Callable[[DropRow], bool]) -> list[DropRow]:
    return [r for r in snap.rows if r.source == "kfree_skb" and pick(r)]


def total(snap: Snapshot, pick: Callable[[DropRow], bool]) -> int:
    return sum(r.packets for r in rows(snap, pick))


def per_key(snap: Snapshot, pick: Callable[[DropRow], bool]) -> dict[object, int]:
    return {r.key: r.packets for r in rows(snap, pick)}


def new_rows(
    before: dict[object, int], snap: Snapshot, pick: Callable[[DropRow], bool]
) -> list[tuple[DropRow, int]]:
    """(row, packets since the baseline) for every picked row that moved."""
    out = []
    for r in rows(snap, pick):
        delta = r.packets - before.get(r.key, 0)
        if delta:
            out.append((r, delta))
    return out


def settle(collector, pick: Callable[[DropRow], bool], want: int, timeout: float = 6.0):
    """Poll until the picked rows hold `want` packets, then once more after the stack and
    sample maps were re-read (attribution reads the stacks)."""
    from droptop.collector.kernel import STACK_REFRESH

    wait_for(collector.poll, lambda s: total(s, pick) >= want, timeout)
    time.sleep(STACK_REFRESH + 0.1)
    return collector.poll()


# --- 1: the receiving socket's owner and cgroup ------------------------------------------------

RECEIVER = """
import os, socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1], os.fstat(s.fileno()).st_ino)
"""

SENDER = """
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range({n}):
    s.sendto(b"r" * 200, ("127.0.0.1", {port}))
print("sent")
"""


def test_rcvbuf_drops_belong_to_the_receiving_socket_its_process_and_cgroup(bpf_collector):
    t = tag()
    n = 300
    with (
        netns(f"dt-rb-{t}") as inode,
        cgroup(f"dt-a-{t}.service") as cg_a,
        cgroup(f"dt-b-{t}.service") as cg_b,
    ):
        ns = f"dt-rb-{t}"
        recv = Child(RECEIVER, f"dtrcv{t}", ns)
        with children(recv):
            join_cgroup(cg_a, recv.pid)
            port, sock_ino = (int(x) for x in recv.go().split())

            def pick(r: DropRow) -> bool:
                return r.key.netns == inode and r.reason.name == "SOCKET_RCVBUFF"

            before = per_key(bpf_collector.poll(), pick)
            errors0 = dropgen.snmp_counter("Udp", "RcvbufErrors", netns=ns)
            send = Child(SENDER.format(n=n, port=port), f"dtsnd{t}", ns, linger=False)
            with children(send):
                join_cgroup(cg_b, send.pid)
                assert send.go() == "sent"
                assert send.wait() == 0
            errors = dropgen.snmp_counter("Udp", "RcvbufErrors", netns=ns) - errors0
            assert 0 < errors < n  # a few datagrams fit the buffer; the rest are dropped
            snap = settle(bpf_collector, pick, sum(before.values()) + errors)
            got = new_rows(before, snap, pick)

            assert sum(d for _, d in got) == errors
            for row, _ in got:
                who = row.who
                assert row.key.sock_ino == sock_ino
                assert who.socket is not None
                assert (who.socket.inode, who.socket.pid, who.socket.comm) == (
                    sock_ino,
                    recv.pid,
                    recv.comm,
                )
                assert who.cgroup == cg_a, (who.cgroup, cg_a, cg_b)
                assert who.service == service_name(cg_a) == f"dt-a-{t}.service"
                assert who.netns_name == ns
                # The drop ran in the sender's sendto (loopback receives inline).
                assert row.key.comm in (f"dtsnd{t}",) or row.key.kernel_context

            d = row_to_dict(got[0][0])
            attribution = {"context", "service", "cgroup", "netns_name", "socket"}
            assert attribution | {"kernel_context"} <= d.keys()
            assert isinstance(d["context"], str) and d["context"]
            assert isinstance(d["kernel_context"], bool)
            assert (d["service"], d["cgroup"], d["netns_name"]) == (
                f"dt-a-{t}.service",
                cg_a,
                ns,
            )
            assert d["socket"] == {"inode": sock_ino, "pid": recv.pid, "comm": recv.comm}


# --- 2: a task's own drops in inline softirq take the task's cgroup ------------------------

CLOSED_SENDER = """
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range({n}):
    s.sendto(b"c" * 32, ("127.0.0.1", 9))
print("sent")
"""


def test_no_socket_drops_inline_take_the_senders_cgroup(bpf_collector):
    t = tag()
    n = 250
    comm = f"dtcsn{t}"
    with netns(f"dt-ns-{t}") as inode, cgroup(f"dt-c-{t}.service") as cg_c:
        ns = f"dt-ns-{t}"

        def pick(r: DropRow) -> bool:
            return r.key.netns == inode and r.reason.name == "NO_SOCKET"

        before = per_key(bpf_collector.poll(), pick)
        noports0 = dropgen.snmp_counter("Udp", "NoPorts", netns=ns)
        send = Child(CLOSED_SENDER.format(n=n), comm, ns, linger=False)
        with children(send):
            join_cgroup(cg_c, send.pid)
            assert send.go() == "sent"
            assert send.wait() == 0
        noports = dropgen.snmp_counter("Udp", "NoPorts", netns=ns) - noports0
        assert noports == n
        snap = settle(bpf_collector, pick, sum(before.values()) + n)
        got = new_rows(before, snap, pick)

    assert sum(d for _, d in got) == n == noports
    assert [r.key.comm for r, _ in got] == [comm]
    ((row, _),) = got
    assert row.who.cgroup == cg_c
    assert row.who.service == f"dt-c-{t}.service"
    assert row.who.context == "softirq-inline", [s.frames[:12] for s in row.stacks]
    assert row.who.blames_task is True
    assert row.who.socket is None
    assert row_to_dict(row)["kernel_context"] is False


# --- 3: timer softirq at interrupt exit is not the interrupted task's -----------------------


ARP_SENDER = """
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range({n}):
    s.sendto(b"a" * 16, ("198.18.7.%d" % (50 + i), 9))
print("sent")
"""


def test_neighbour_failure_in_timer_softirq_is_not_the_busy_processs(bpf_collector):
    t = tag()
    spin = f"dtspin{t}"
    n = 8  # one unresolved neighbour each: eight timer expiries a round
    with dropgen.arp_lab(t) as (ns, inode), spinners(spin):

        def pick(r: DropRow) -> bool:
            return r.key.netns == inode and r.reason.name == "NEIGH_FAILED"

        before = per_key(bpf_collector.poll(), pick)
        sent = 0
        for _ in range(4):  # until a timer has fired on top of a spinner at least once
            send = Child(ARP_SENDER.format(n=n), f"dtarp{t}", ns, linger=False)
            with children(send):
                assert send.go() == "sent"
                assert send.wait() == 0
            sent += n
            time.sleep(0.5)  # the neighbour entries fail after one 100 ms probe
            dropgen.run(["ip", "-n", ns, "neigh", "flush", "dev", "dtxa"])
            snap = settle(bpf_collector, pick, sum(before.values()) + sent, timeout=10)
            got = new_rows(before, snap, pick)
            if any(r.key.comm == spin for r, _ in got):
                break
    assert sum(d for _, d in got) == sent
    comms = {r.key.comm for r, _ in got}
    assert spin in comms, f"no timer fired on a spinner in {sent // n} rounds: {comms}"
    for row, _ in got:
        # A timer softirq at interrupt exit: whoever was running is only interrupted.
        assert row.who.blames_task is False, (row.key, row.who, [s.frames[:8] for s in row.stacks])
        assert row_to_dict(row)["kernel_context"] is True
        if row.key.comm == spin:
            assert row.who.context in ("softirq-irq", "softirq"), row.who
            assert row.who.cgroup is None and row.who.service is None  # no socket, not its own
        assert row.who.netns_name == ns


# --- 4: namespaces by name, and device-less drops keep theirs -------------------------------

OUTNOROUTE = """
import socket, subprocess, time
ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
ls.bind(("127.0.0.1", 0))
ls.listen()
c = socket.create_connection(ls.getsockname())
a, _ = ls.accept()
# No route any more: every segment the client sends from now on is dropped in ip_queue_xmit.
subprocess.run(["ip", "route", "flush", "table", "local"], check=True)
c.send(b"x" * 10)
time.sleep(0.3)
# Abort rather than close: one RST each (dropped too), and no retransmits after we count.
for sk in (c, a):
    sk.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\\1\\0\\0\\0\\0\\0\\0\\0")
    sk.close()
print("sent")
"""


def test_named_namespaces_host_and_a_device_less_drop(bpf_collector):
    t = tag()
    name = f"dt-n-{t}"
    host_comm, ns_comm, tcp_comm = f"dthst{t}", f"dtnsu{t}", f"dtonr{t}"
    with netns(name) as inode:

        def in_ns(r: DropRow) -> bool:
            return r.key.netns == inode

        def on_host(r: DropRow) -> bool:
            return r.key.comm == host_comm

        def no_route(r: DropRow) -> bool:
            return r.key.netns == inode and r.reason.name == "IP_OUTNOROUTES"

        snap0 = bpf_collector.poll()
        before = per_key(snap0, in_ns)
        assert not rows(snap0, on_host)
        out0 = dropgen.snmp_counter("Ip", "OutNoRoutes", netns=name)
        assert dropgen.spawn("udp", 30, comm=ns_comm, netns=name) == 30
        assert dropgen.spawn("udp", 20, comm=host_comm) == 20
        tcp = Child(OUTNOROUTE, tcp_comm, name, linger=False)
        with children(tcp):
            assert tcp.go() == "sent"
            assert tcp.wait() == 0  # exits: its sockets close (more drops: counted too)
        time.sleep(0.3)
        outnoroutes = dropgen.snmp_counter("Ip", "OutNoRoutes", netns=name) - out0
        assert outnoroutes >= 1

        def done(s: Snapshot) -> bool:
            return (
                total(s, on_host) >= 20
                and sum(d for r, d in new_rows(before, s, no_route)) >= outnoroutes
            )

        wait_for(bpf_collector.poll, done, 6)
        time.sleep(2.1)
        snap = bpf_collector.poll()
        ns_rows = new_rows(before, snap, in_ns)

    udp = [(r, d) for r, d in ns_rows if r.key.comm == ns_comm and r.reason.name == "NO_SOCKET"]
    assert sum(d for _, d in udp) == 30
    for r, _ in ns_rows:
        assert r.who.netns_name == name, (r.key, r.who)
    host = rows(snap, on_host)
    assert sum(r.packets for r in host) == 20
    assert {r.who.netns_name for r in host} == {"host"}
    nr = [(r, d) for r, d in ns_rows if r.reason.name == "IP_OUTNOROUTES"]
    assert sum(d for _, d in nr) == outnoroutes
    for r, _ in nr:
        assert r.key.ifindex == 0 and r.ifname == ""  # no device on the skb
        assert r.key.netns == inode
        assert r.who.netns_name == name
    # The client's own send, in its own syscall: its comm, its socket.
    own = [r for r, _ in nr if r.key.comm == tcp_comm]
    assert own and all(r.who.context == "process" for r in own), [
        (r.key.comm, r.key.irq, r.who.context, [st.frames for st in r.stacks]) for r, _ in nr
    ]
    assert all(r.key.sock_ino for r in own)


def test_ip_netns_names_are_read_from_a_fresh_namespace_at_once(bpf_collector):
    """A namespace created just after droptop looked at /run/netns still gets its name on the
    first row (not the bare inode kept for ever)."""
    t = tag()
    name = f"dt-n2-{t}"
    comm = f"dtnsf{t}"
    bpf_collector.poll()
    with netns(name) as inode:
        bpf_collector.poll()  # rescans happen here, before the drops

        def pick(r: DropRow) -> bool:
            return r.key.netns == inode and r.key.comm == comm

        assert dropgen.spawn("udp", 5, comm=comm, netns=name) == 5
        snap = wait_for(bpf_collector.poll, lambda s: total(s, pick) >= 5)
        listing = {e: os.stat("/run/netns/" + e).st_ino for e in os.listdir("/run/netns")}
    got = rows(snap, pick)
    assert sum(r.packets for r in got) == 5
    assert {r.who.netns_name for r in got} == {name}, (inode, listing)


def test_socket_inode_is_what_the_process_holds():
    """Sanity for the oracle above: fstat of a socket fd is the inode ss -p and the kernel
    (sock_i_ino) use."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        ino = os.fstat(s.fileno()).st_ino
        assert os.readlink(f"/proc/self/fd/{s.fileno()}") == f"socket:[{ino}]"
    finally:
        s.close()
