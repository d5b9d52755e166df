"""The resolvers against the running kernel: a real cgroup, real namespaces, a real socket,
and the context classifier on stacks of real drops. Needs root; cleans up what it makes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from droptop import dropgen
from droptop.attribution.cgroups import (
    CgroupResolver,
    find_cgroup2_mount,
    service_name,
    task_cgroup_id,
)
from droptop.attribution.context import CTX_IDLE, CTX_KTHREAD, CTX_UNKNOWN, classify_samples
from droptop.attribution.netns import NetnsNamer
from droptop.attribution.sockets import SocketOwners
from tests.conftest import REQUIRE_BPF, spinners, wait_for

pytestmark = pytest.mark.bpf
RESCAN = 0.2
"""A shorter rate limit than the default second, to keep the tests quick."""
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(autouse=True)
def _root():
    if os.geteuid() != 0:
        if REQUIRE_BPF:
            pytest.fail("DROPTOP_REQUIRE_BPF=1 but not root")
        pytest.skip("needs root")


def child(code: str, comm: str) -> subprocess.Popen[str]:
    """A python child that renames itself, runs `code`, prints a line and waits."""
    prog = f"from droptop.dropgen import set_comm\nset_comm({comm!r})\n{code}\n"
    prog += "import sys, time\nsys.stdout.flush()\ntime.sleep(60)\n"
    return subprocess.Popen(
        [sys.executable, "-c", prog], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )


def stop(p: subprocess.Popen[str]) -> None:
    p.kill()
    p.wait()


@contextmanager
def cgroup(name: str) -> Iterator[str]:
    mount = find_cgroup2_mount()
    if mount is None:
        pytest.skip("no cgroup v2 mount")
    path = os.path.join(mount.path, name)
    os.mkdir(path)
    try:
        yield path
    finally:
        for _ in range(50):  # rmdir fails while the killed child is still being reaped
            try:
                os.rmdir(path)
                break
            except OSError:
                time.sleep(0.02)


@pytest.mark.parametrize("use_handles", [True, False], ids=["handle", "walk"])
def test_cgroup_of_a_real_process(use_handles):
    name = f"dt-test-{os.getpid()}-{int(use_handles)}.service"
    resolver = CgroupResolver(use_handles=use_handles, min_rescan=RESCAN)
    resolver.path(1)  # a first walk before the cgroup exists: the miss must rewalk
    with cgroup(name) as path:
        p = child("", "dtcgchild")
        try:
            with open(os.path.join(path, "cgroup.procs"), "w") as f:
                f.write(str(p.pid))
            cid = task_cgroup_id(p.pid)
            assert cid == os.stat(path).st_ino
            time.sleep(resolver.min_rescan)  # let the walk fallback rewalk
            assert resolver.method == ("handle" if use_handles else "walk")
            assert resolver.path(cid) == "/" + name
            assert service_name(resolver.path(cid)) == name
            assert resolver.path(task_cgroup_id(os.getpid())) is not None
        finally:
            stop(p)
    assert not os.path.exists(path)
    assert resolver.path(cid) == "/" + name  # removed: the last known path stays
    with cgroup(name + "-gone") as gone:
        gone_id = os.stat(gone).st_ino
    time.sleep(RESCAN)
    walks = resolver.walks
    assert resolver.path(gone_id) is None  # removed before anyone asked: unknown
    assert resolver.walks == walks + (0 if use_handles else 1)  # handles know: no walk
    resolver.close()


def initial_netns() -> int:
    """pid 1's netns, or kthreadd's where pid 1 refuses inspection (this VM's init does)."""
    try:
        return os.stat("/proc/1/ns/net").st_ino
    except PermissionError:
        with open("/proc/2/comm") as f:
            assert f.read().strip() == "kthreadd"
        return os.stat("/proc/2/ns/net").st_ino


def test_netns_names():
    namer = NetnsNamer(min_rescan=RESCAN)
    assert namer.name(initial_netns()) == "host"
    assert namer.pid_in(initial_netns()) is not None
    name = f"dt-ns-{os.getpid()}"
    dropgen.run(["ip", "netns", "add", name])
    try:
        inode = dropgen.netns_inode(name)
        time.sleep(RESCAN)
        assert namer.name(inode) == name
        assert namer.pid_in(inode) is None  # no process lives in it
        p = subprocess.Popen(["ip", "netns", "exec", name, "sleep", "60"])
        try:
            assert wait_for(lambda: namer.pid_in(inode), lambda pid: pid == p.pid, 3) == p.pid
        finally:
            stop(p)
    finally:
        dropgen.run(["ip", "netns", "del", name], check=False)
    assert namer.name(inode) == name  # deleted: the last name stays

    p = subprocess.Popen(["unshare", "-n", "sleep", "60"])
    try:

        def anon() -> int | None:
            link = os.readlink(f"/proc/{p.pid}/ns/net")
            ino = int(link[5:-1])
            return ino if ino != initial_netns() else None

        ino = wait_for(anon, lambda i: i is not None, 3)
        assert ino is not None
        time.sleep(namer.min_rescan)
        assert namer.name(ino) == f"pid {p.pid} (sleep)"
        assert namer.pid_in(ino) == p.pid
    finally:
        stop(p)


def test_socket_owner_of_a_real_process():
    comm = f"dtsk{uuid.uuid4().hex[:6]}"
    code = (
        "import os, socket\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "s.bind(('127.0.0.1', 0))\n"
        "print(os.fstat(s.fileno()).st_ino)"
    )
    owners = SocketOwners(min_rescan=RESCAN)
    owners.rescan()  # the child's socket is new: the lookup below is a miss
    p = child(code, comm)
    try:
        assert p.stdout is not None
        inode = int(p.stdout.readline())
        time.sleep(owners.min_rescan)
        owner = owners.owner(inode)
        assert owner is not None
        assert (owner.inode, owner.pid, owner.comm) == (inode, p.pid, comm)
    finally:
        stop(p)
    owners.rescan()
    assert owners.owner(inode) == owner  # owner exited: kept


def _flags(comm: str) -> int:
    if comm.startswith("swapper/"):
        return CTX_IDLE
    if comm.startswith(("kworker/", "ksoftirqd/")):
        return CTX_KTHREAD
    return 0


def test_context_of_real_drops(bpf_collector):
    """Loopback drops are the sender's (inline); ARP-failure drops in a netns while every
    CPU spins are not the spinner's (timer softirq at interrupt exit). The collector does
    not record a context code yet, so the stack alone classifies (CTX_UNKNOWN)."""
    tag = uuid.uuid4().hex[:5]
    sender, spin = f"dtin{tag}", f"dtsp{tag}"
    n = dropgen.spawn("udp", 40, comm=sender)
    with dropgen.arp_lab(str(os.getpid())) as (ns, inode), spinners(spin):

        def all_neigh(snap):
            return [
                r for r in snap.rows if r.key.netns == inode and r.reason.name == "NEIGH_FAILED"
            ]

        # An inode number is reused once its netns is gone: an earlier namespace's rows
        # under it are the baseline, not this test's drops.
        old = {r.key: r.packets for r in all_neigh(bpf_collector.poll())}
        sent = dropgen.spawn("udp", 3, comm=f"dtar{tag}", netns=ns, addr="198.18.7.77")

        def neigh_rows(snap):
            return [r for r in all_neigh(snap) if r.packets > old.get(r.key, 0)]

        snap = wait_for(
            bpf_collector.poll,
            lambda s: (
                sum(r.packets - old.get(r.key, 0) for r in neigh_rows(s)) >= sent
                and all(r.stacks for r in neigh_rows(s))
            ),
            timeout=8,
        )
    rows = neigh_rows(snap)
    assert sum(r.packets - old.get(r.key, 0) for r in rows) == sent
    for r in rows:
        ctx = classify_samples(
            CTX_UNKNOWN | _flags(r.key.comm),
            [(s.frames, s.count) for s in r.stacks],
            comm=r.key.comm,
        )
        assert ctx == "softirq-irq", (r.key.comm, r.stacks)
    inline = [r for r in snap.rows if r.key.comm == sender]
    assert sum(r.packets for r in inline) == n
    for r in inline:
        samples = [(s.frames, s.count) for s in r.stacks]
        assert samples
        assert classify_samples(CTX_UNKNOWN, samples) == "softirq-inline"
