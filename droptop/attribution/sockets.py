"""Socket inodes -> the process that holds the socket, the way `ss -p` finds it.

The kernel records a receiving socket's inode (sock_i_ino). Only /proc/<pid>/fd/* links
(`socket:[INODE]`) say which process holds it, and reading them all is the expensive part,
so one scan indexes every socket of every process and misses rescan at most once per
`min_rescan` seconds. Comm is raw (a task names itself); front ends sanitize.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from droptop.attribution.procfs import read_comm

MIN_RESCAN = 1.0
"""Seconds between two scans of /proc/*/fd caused by unknown inodes."""
MAX_STALE = 65536
"""Sockets kept after their owner closed them or exited; the oldest are forgotten first."""


@dataclass(frozen=True, slots=True)
class SocketOwner:
    """The process holding a socket when it was last seen."""

    inode: int
    pid: int
    """The lowest pid holding it (sockets inherited over fork are held by several)."""
    comm: str


def scan_sockets(proc: str = "/proc") -> dict[int, SocketOwner]:
    """Every socket inode held by a process, with its lowest pid. One readlink per fd."""
    index: dict[int, SocketOwner] = {}
    try:
        pids = sorted(int(p) for p in os.listdir(proc) if p.isdigit())
    except OSError:
        return index
    readlink = os.readlink
    for pid in pids:
        fd_dir = f"{proc}/{pid}/fd/"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue  # exited, or not ours to read
        comm: str | None = None
        for fd in fds:
            try:
                link = readlink(fd_dir + fd)
            except OSError:
                continue
            if not link.startswith("socket:["):
                continue
            try:
                inode = int(link[8:-1])
            except ValueError:
                continue
            if inode in index:
                continue  # a lower pid has it already
            if comm is None:
                comm = read_comm(proc, pid)
            index[inode] = SocketOwner(inode, pid, comm)
    return index


class SocketOwners:
    """Socket inode -> owner, cached; a socket whose owner exited keeps its last owner."""

    def __init__(
        self,
        *,
        proc: str = "/proc",
        min_rescan: float = MIN_RESCAN,
        max_stale: int = MAX_STALE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.proc = proc
        self.min_rescan = min_rescan
        self.max_stale = max_stale
        self._clock = clock
        self._index: dict[int, SocketOwner] = {}
        self._missed: set[int] = set()
        self._scanned_at: float | None = None
        self.scans = 0
        """How many scans ran (tests check the rate limit with it)."""
        self.last_scan_seconds = 0.0
        """Wall time of the last scan: what a miss costs on this machine."""

    def owner(self, inode: int) -> SocketOwner | None:
        """The owner, or None (inode 0, a kernel socket, or gone before any scan saw it)."""
        if inode <= 0:
            return None
        hit = self._index.get(inode)
        if hit is not None or inode in self._missed:
            return hit
        if self._scanned_at is None or self._clock() - self._scanned_at >= self.min_rescan:
            self.rescan()
            hit = self._index.get(inode)
            if hit is None:
                # Closed before any scan saw it: a later scan cannot find it either (socket
                # inodes are not reused soon), so asking again must not cost another scan.
                if len(self._missed) >= self.max_stale:
                    self._missed.clear()
                self._missed.add(inode)
        return hit

    def rescan(self) -> int:
        """Scan /proc now; returns the number of live sockets found."""
        t0 = time.perf_counter()
        self._scanned_at = self._clock()
        self.scans += 1
        live = scan_sockets(self.proc)
        stale = [i for i in self._index if i not in live]
        excess = len(stale) - self.max_stale
        for i in stale[: max(excess, 0)]:  # dicts keep insertion order: oldest first
            del self._index[i]
        for i in live:
            self._index.pop(i, None)  # re-insert: a live socket is the newest
        self._index.update(live)
        self.last_scan_seconds = time.perf_counter() - t0
        return len(live)
