"""Network namespace inodes -> names a person recognises.

The kernel records a netns as the inode number of its nsfs file (`ns.inum`). Names, best
first: `host` for the initial namespace (pid 1's), the `ip netns` name (a bind mount in
/run/netns), `pid N (comm)` of the lowest pid living in it, else the inode as text. Names
are raw (a netns file or a comm can be named anything); front ends sanitize.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

MIN_RESCAN = 1.0
"""Seconds between two rescans of /run/netns and /proc caused by unknown inodes."""
HOST = "host"


@dataclass(frozen=True, slots=True)
class NetnsInfo:
    """What is known about one namespace."""

    inode: int
    name: str
    pid: int | None
    """The lowest pid seen living in it (None: no process, e.g. a bare `ip netns add`)."""
    path: str | None
    """An nsfs file to open for setns(2): /run/netns/NAME or /proc/PID/ns/net."""


def _read_comm(proc: str, pid: int) -> str:
    try:
        with open(f"{proc}/{pid}/comm", "rb") as f:
            return f.read().rstrip(b"\n").decode("utf-8", errors="backslashreplace")
    except OSError:
        return "?"


def _ns_inode(link: str) -> int | None:
    """`net:[4026531840]` -> 4026531840."""
    if link.startswith("net:[") and link.endswith("]"):
        try:
            return int(link[5:-1])
        except ValueError:
            return None
    return None


class NetnsNamer:
    """netns inode -> name, cached; a namespace that vanished keeps its last name."""

    def __init__(
        self,
        *,
        proc: str = "/proc",
        named_dirs: tuple[str, ...] = ("/run/netns",),
        min_rescan: float = MIN_RESCAN,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.proc = proc
        self.named_dirs = named_dirs
        self.min_rescan = min_rescan
        self._clock = clock
        self._info: dict[int, NetnsInfo] = {}
        self._scanned_at: float | None = None
        self.scans = 0
        """How many rescans ran (tests check the rate limit with it)."""
        self.host_inode = self._host_inode()

    def _host_inode(self) -> int | None:
        """The initial namespace: pid 1's, or kthreadd's (pid 2) when pid 1 may not be
        inspected (a hardened or sandboxed init); kernel threads never leave init_net."""
        for pid in (1, 2):
            try:
                ino = _ns_inode(os.readlink(f"{self.proc}/{pid}/ns/net"))
            except OSError:
                continue  # not root, hidepid, or an init that refuses ptrace access
            if ino is not None:
                return ino
        return None

    def name(self, inode: int) -> str:
        """A display name; "" for 0 (the kernel knew no namespace)."""
        if inode == 0:
            return ""
        info = self.info(inode)
        return info.name if info is not None else str(inode)

    def pid_in(self, inode: int) -> int | None:
        """A live pid inside the namespace (for /proc/<pid>/net/*), or None.

        Checked against /proc on every call: a cached pid may have exited or moved.
        """
        info = self.info(inode)
        if info is not None and info.pid is not None and self._lives_in(info.pid, inode):
            return info.pid
        if self._may_scan():
            self.rescan()
            info = self._info.get(inode)
            if info is not None and info.pid is not None and self._lives_in(info.pid, inode):
                return info.pid
        return None

    def populated(self) -> list[tuple[int, int]]:
        """(inode, pid) for every namespace a live process is in now, the host's first.

        Rescans at most once per min_rescan; each pid is checked to still live in its
        namespace, so a reused pid never lends one namespace's counters to another.
        """
        if self._may_scan():
            self.rescan()
        out = [
            (info.inode, info.pid)
            for info in self._info.values()
            if info.pid is not None and self._lives_in(info.pid, info.inode)
        ]
        out.sort(key=lambda ip: (ip[0] != self.host_inode, ip[1]))
        return out

    def info(self, inode: int) -> NetnsInfo | None:
        if inode == 0:
            return None
        hit = self._info.get(inode)
        if hit is None and self._may_scan():
            self.rescan()
            hit = self._info.get(inode)
        return hit

    def _lives_in(self, pid: int, inode: int) -> bool:
        try:
            return _ns_inode(os.readlink(f"{self.proc}/{pid}/ns/net")) == inode
        except OSError:
            return False

    def _may_scan(self) -> bool:
        return self._scanned_at is None or self._clock() - self._scanned_at >= self.min_rescan

    def rescan(self) -> None:
        """Re-read /run/netns and every /proc/<pid>/ns/net; vanished namespaces keep theirs."""
        self._scanned_at = self._clock()
        self.scans += 1
        named: dict[int, tuple[str, str]] = {}
        for d in self.named_dirs:
            try:
                entries = sorted(os.scandir(d), key=lambda e: e.name)
            except OSError:
                continue
            for e in entries:
                try:
                    ino = os.stat(e.path).st_ino  # the bind mount: stat follows to nsfs
                except OSError:
                    continue
                if ino not in named and ino != self.host_inode:
                    named[ino] = (e.name, e.path)
        lowest: dict[int, int] = {}
        try:
            pids = sorted(int(p) for p in os.listdir(self.proc) if p.isdigit())
        except OSError:
            pids = []
        for pid in pids:
            try:
                ino = _ns_inode(os.readlink(f"{self.proc}/{pid}/ns/net"))
            except OSError:
                continue  # exited, or a kernel thread without ns links on some kernels
            if ino is not None and ino not in lowest:
                lowest[ino] = pid
        found: dict[int, NetnsInfo] = {}
        for ino, pid in lowest.items():
            proc_path = f"{self.proc}/{pid}/ns/net"
            if ino == self.host_inode:
                found[ino] = NetnsInfo(ino, HOST, pid, proc_path)
            elif ino in named:
                found[ino] = NetnsInfo(ino, named[ino][0], pid, named[ino][1])
            else:
                found[ino] = NetnsInfo(
                    ino, f"pid {pid} ({_read_comm(self.proc, pid)})", pid, proc_path
                )
        for ino, (name, path) in named.items():
            if ino not in found:
                found[ino] = NetnsInfo(ino, name, None, path)
        if self.host_inode is not None and self.host_inode not in found:
            found[self.host_inode] = NetnsInfo(self.host_inode, HOST, None, None)
        self._info.update(found)
