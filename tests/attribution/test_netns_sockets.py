"""NetnsNamer and SocketOwners on a fake /proc (symlinks need not resolve: only their
text is read, as the kernel's `net:[N]` and `socket:[N]` links are)."""

from __future__ import annotations

import os

from droptop.attribution.netns import NetnsNamer
from droptop.attribution.sockets import SocketOwner, SocketOwners, scan_sockets

HOST = 4026531840


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def add_pid(proc, pid, comm, netns=None, sockets=(), files=()):
    d = proc / str(pid)
    (d / "ns").mkdir(parents=True)
    (d / "fd").mkdir()
    (d / "comm").write_text(comm + "\n")
    if netns is not None:
        os.symlink(f"net:[{netns}]", d / "ns" / "net")
    for i, inode in enumerate(sockets):
        os.symlink(f"socket:[{inode}]", d / "fd" / str(10 + i))
    for i, target in enumerate(files):
        os.symlink(target, d / "fd" / str(100 + i))


def rm_pid(proc, pid):
    d = proc / str(pid)
    for sub in ("ns", "fd"):
        for f in os.listdir(d / sub):
            os.unlink(d / sub / f)
        os.rmdir(d / sub)
    os.unlink(d / "comm")
    os.rmdir(d)


def namer(tmp_path, clock=None):
    proc, run = tmp_path / "proc", tmp_path / "netns"
    run.mkdir(exist_ok=True)
    return NetnsNamer(proc=str(proc), named_dirs=(str(run),), clock=clock or Clock())


def test_host_named_anonymous_and_fallbacks(tmp_path):
    proc = tmp_path / "proc"
    add_pid(proc, 1, "systemd", HOST)
    add_pid(proc, 700, "sleep", 4026532999)
    add_pid(proc, 650, "sleep", 4026532999)
    add_pid(proc, 800, "weird\x1bname", 4026533000)
    n = namer(tmp_path)
    assert n.name(HOST) == "host"
    assert n.name(4026532999) == "pid 650 (sleep)"  # lowest pid
    assert n.name(4026533000) == "pid 800 (weird\x1bname)"  # raw: front ends sanitize
    assert n.name(0) == ""
    assert n.name(12345) == "12345"
    assert n.pid_in(HOST) == 1
    assert n.pid_in(4026532999) == 650


def test_ip_netns_names_win_over_pids(tmp_path):
    proc, run = tmp_path / "proc", tmp_path / "netns"
    run.mkdir()
    (run / "blue").write_text("")  # a real file stands in for the nsfs bind mount
    blue = os.stat(run / "blue").st_ino
    add_pid(proc, 1, "systemd", HOST)
    add_pid(proc, 900, "nginx", blue)
    n = namer(tmp_path)
    assert n.name(blue) == "blue"
    assert n.info(blue).path == str(run / "blue")
    assert n.pid_in(blue) == 900


def test_named_netns_without_processes(tmp_path):
    proc, run = tmp_path / "proc", tmp_path / "netns"
    run.mkdir()
    (run / "empty").write_text("")
    add_pid(proc, 1, "systemd", HOST)
    n = namer(tmp_path)
    ino = os.stat(run / "empty").st_ino
    assert n.name(ino) == "empty"
    assert n.pid_in(ino) is None


def test_rescan_rate_limited_and_vanished_netns_keeps_its_name(tmp_path):
    proc = tmp_path / "proc"
    clock = Clock()
    add_pid(proc, 1, "systemd", HOST)
    n = namer(tmp_path, clock)
    assert n.name(HOST) == "host"
    assert n.scans == 1
    add_pid(proc, 500, "unshare", 4026532500)
    clock.now += 0.2
    assert n.name(4026532500) == "4026532500"  # a miss within the second does not rescan
    assert n.scans == 1
    clock.now += 1
    assert n.name(4026532500) == "pid 500 (unshare)"
    assert n.scans == 2
    rm_pid(proc, 500)
    clock.now += 5
    n.rescan()
    assert n.name(4026532500) == "pid 500 (unshare)"  # gone, last name kept
    assert n.pid_in(4026532500) is None  # but no live pid to read counters from
    assert n.name(HOST) == "host"
    assert n.scans == 3  # the rescan just ran: pid_in may not rescan yet
    clock.now += 1
    assert n.pid_in(4026532500) is None
    assert n.scans == 4  # now it may (the pid could have been replaced by another)


def test_scan_sockets_lowest_pid_and_only_sockets(tmp_path):
    proc = tmp_path / "proc"
    add_pid(proc, 10, "nginx", sockets=(111, 222), files=("/dev/null", "pipe:[5]"))
    add_pid(proc, 11, "nginx-worker", sockets=(111, 333))
    add_pid(proc, 12, "bad", files=("socket:[notanumber]",))
    idx = scan_sockets(str(proc))
    assert idx == {
        111: SocketOwner(111, 10, "nginx"),
        222: SocketOwner(222, 10, "nginx"),
        333: SocketOwner(333, 11, "nginx-worker"),
    }


def test_owner_cache_rate_limit_and_exited_owner_kept(tmp_path):
    proc = tmp_path / "proc"
    clock = Clock()
    add_pid(proc, 10, "dnsd", sockets=(111,))
    s = SocketOwners(proc=str(proc), clock=clock)
    assert s.owner(111) == SocketOwner(111, 10, "dnsd")
    assert s.owner(0) is None
    assert s.scans == 1
    add_pid(proc, 20, "late", sockets=(444,))
    clock.now += 0.5
    assert s.owner(444) is None  # miss within the second: no rescan
    assert s.scans == 1
    clock.now += 0.6
    assert s.owner(444) == SocketOwner(444, 20, "late")
    rm_pid(proc, 10)
    clock.now += 2
    assert s.rescan() == 1
    assert s.owner(111) == SocketOwner(111, 10, "dnsd")  # exited: last owner kept
    assert s.scans == 3


def test_stale_sockets_bounded(tmp_path):
    proc = tmp_path / "proc"
    s = SocketOwners(proc=str(proc), max_stale=2, clock=Clock())
    for pid in (10, 11, 12, 13):  # each process holds one socket, then exits
        add_pid(proc, pid, f"churn{pid}", sockets=(pid,))
        s.rescan()
        rm_pid(proc, pid)
    add_pid(proc, 20, "next", sockets=(100,))
    assert s.rescan() == 1
    kept = [i for i in (10, 11, 12, 13) if i in s._index]
    assert kept == [12, 13]  # the two most recently seen stale sockets
    assert s.owner(100) == SocketOwner(100, 20, "next")


def test_host_from_kthreadd_when_init_refuses(tmp_path):
    proc = tmp_path / "proc"
    add_pid(proc, 1, "init")  # no ns/net link readable
    add_pid(proc, 2, "kthreadd", HOST)
    add_pid(proc, 300, "sleep", 4026532300)
    n = namer(tmp_path)
    assert n.host_inode == HOST
    assert n.name(HOST) == "host"
    assert n.pid_in(HOST) == 2
    assert n.name(4026532300) == "pid 300 (sleep)"


def test_an_inode_no_scan_found_does_not_rescan_again(tmp_path):
    proc = tmp_path / "proc"
    clock = Clock()
    add_pid(proc, 10, "a", sockets=(111,))
    s = SocketOwners(proc=str(proc), clock=clock)
    assert s.owner(999) is None
    assert s.scans == 1
    clock.now += 10
    assert s.owner(999) is None  # its owner closed it before any scan: no point rescanning
    assert s.scans == 1
    add_pid(proc, 11, "b", sockets=(1000,))
    assert s.owner(1000) == SocketOwner(1000, 11, "b")  # a new inode still rescans
    assert s.scans == 2
