"""Network namespace inodes -> names a person recognises.

The kernel records a netns as the inode number of its nsfs file (`ns.inum`). Names, best
first: `host` for the initial namespace (pid 1's), the `ip netns` name (a bind mount in
/run/netns), `pid N (comm)` of the lowest pid living in it, else the inode as text. Names
are raw (a netns file or a comm can be named anything); front ends sanitize.

An inode number is reused as soon as its namespace is freed, so a cached name is only
trusted while the file it was found through (the bind mount, or the process's ns link)
still is that inode; otherwise the inode is looked up again (`current_name`: at once,
once; `name`: when the rescan limit allows).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from droptop.attribution.procfs import read_comm

MIN_RESCAN = 1.0
"""Seconds between two rescans of /run/netns and /proc caused by unknown inodes."""
HOST = "host"
MAX_TRIED = 4096
"""Inodes remembered as already rescanned for; beyond it the memory is simply dropped."""


@dataclass(frozen=True, slots=True)
class NetnsInfo:
    """What is known about one namespace."""

    inode: int
    name: str
    pid: int | None
    """The lowest pid seen living in it (None: no process, e.g. a bare `ip netns add`)."""
    path: str | None
    """An nsfs file to open for setns(2): /run/netns/NAME or /proc/PID/ns/net."""


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
        self._tried: dict[int, NetnsInfo | None] = {}
        """inode -> the entry (None: none) that current_name's unlimited rescan already
        failed to replace; a further rescan for it waits for the rate limit."""
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
        """What is known about a namespace; a vanished one keeps its last entry.

        A cached entry whose file no longer is this inode (the namespace went away, and
        the number may be another namespace's by now) is looked up again when the rate
        limit allows; until then the last entry stands.
        """
        if inode == 0:
            return None
        hit = self._info.get(inode)
        if hit is not None and (self._still(hit) or not self._may_scan()):
            return hit
        if self._may_scan():
            self.rescan()
            hit = self._info.get(inode)
        return hit

    def current_name(self, inode: int) -> str:
        """`name`, for a namespace a drop was just seen in (a row being attributed).

        A row is named once, so a stale answer would stay for good. An unknown inode, or
        one whose cached entry no longer checks out (its namespace is gone; the number may
        be another namespace's by now), is looked up in /run/netns at once (a few stats),
        then by one rescan of /proc at once for each such entry. When only the rate limit
        stands between us and the answer, the bare inode comes back, which the attributor
        counts as not known yet and asks again about later. An entry that a rescan could
        not replace is a vanished namespace: it keeps its last name.
        """
        if inode == 0:
            return ""
        hit = self._info.get(inode)
        if hit is not None and self._still(hit):
            return hit.name
        named = self._named(inode)
        if named is not None:
            self._info[inode] = info = NetnsInfo(inode, named[0], None, named[1])
            return info.name
        if self._tried.get(inode, False) is not hit:
            if len(self._tried) >= MAX_TRIED:
                self._tried.clear()
            self.rescan()
            fresh = self._info.get(inode)
            if fresh is not None and fresh is not hit:
                self._tried.pop(inode, None)
                return fresh.name
            self._tried[inode] = hit
            return hit.name if hit is not None else str(inode)
        if self._may_scan():
            self.rescan()
            fresh = self._info.get(inode)
            if fresh is not None and fresh is not hit:
                self._tried.pop(inode, None)
                return fresh.name
            return hit.name if hit is not None else str(inode)
        return str(inode)

    def _named_mounts(self) -> Iterator[tuple[int, str, str]]:
        """(inode, name, path) of each `ip netns` bind mount, in name order per directory."""
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
                yield ino, e.name, e.path

    def _named(self, inode: int) -> tuple[str, str] | None:
        """(name, path) of the `ip netns` bind mount that is this inode now, if any."""
        return next(((n, p) for ino, n, p in self._named_mounts() if ino == inode), None)

    def _still(self, info: NetnsInfo) -> bool:
        """The entry's file still is this inode (one readlink or stat): not a stale name."""
        if info.inode == self.host_inode:
            return True
        if info.path is None:
            return False
        try:
            if info.path.startswith(self.proc + "/"):
                return _ns_inode(os.readlink(info.path)) == info.inode
            return os.stat(info.path).st_ino == info.inode
        except OSError:
            return False

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
        for ino, name, path in self._named_mounts():
            if ino not in named and ino != self.host_inode:
                named[ino] = (name, path)
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
                    ino, f"pid {pid} ({read_comm(self.proc, pid)})", pid, proc_path
                )
        for ino, (name, path) in named.items():
            if ino not in found:
                found[ino] = NetnsInfo(ino, name, None, path)
        if self.host_inode is not None and self.host_inode not in found:
            found[self.host_inode] = NetnsInfo(self.host_inode, HOST, None, None)
        self._info.update(found)
