"""What psutil can add to a drop table: who has that comm, what droptop costs, NIC counters.

Everything here is read-only and tolerant: processes exit and hide between two
calls, and /proc may be restricted. Readers are injectable so tests never depend
on the machine they run on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import psutil

from droptop.model import NicRates, SelfUsage
from droptop.stats import per_second

COMM_LEN = 15
"""TASK_COMM_LEN minus the NUL: the kernel truncates task names to this many bytes."""


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    """A live process whose task name equals a row's comm."""

    pid: int
    user: str
    """User name, or the uid as text when it has no name, or "?" when hidden."""
    cmdline: str
    """Arguments joined by spaces; "[comm]" when the process hides them (kernel threads)."""


def _comm_matches(name: str, comm: str) -> bool:
    """psutil's name() may be longer than comm (it completes it from cmdline)."""
    if name == comm:
        return True
    return len(comm) >= COMM_LEN and name.startswith(comm)


def processes_with_comm(
    comm: str,
    *,
    process_iter: Callable[..., Iterable[Any]] = psutil.process_iter,
    limit: int = 50,
) -> list[ProcessInfo]:
    """Live processes named `comm`, by pid; processes that vanish or hide are skipped."""
    found: list[ProcessInfo] = []
    for proc in process_iter(["pid", "name", "username", "cmdline", "uids"]):
        try:
            info = proc.info
            name = info.get("name") or ""
            if not _comm_matches(name, comm):
                continue
            user = info.get("username")
            if not user:
                uids = info.get("uids")
                user = str(uids.real) if uids is not None else "?"
            args = info.get("cmdline") or []
            cmdline = " ".join(args) if args else f"[{name}]"
            found.append(ProcessInfo(int(info["pid"]), user, cmdline))
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        if len(found) >= limit:
            break
    found.sort(key=lambda p: p.pid)
    return found


# --- droptop's own cost ------------------------------------------------------


class SelfMonitor:
    """Samples droptop's own CPU % and RSS; the first CPU sample reads 0.0."""

    def __init__(self, process: psutil.Process | None = None) -> None:
        self._proc = process or psutil.Process()
        self._proc.cpu_percent(interval=None)  # prime the delta

    def sample(self) -> SelfUsage:
        try:
            with self._proc.oneshot():
                return SelfUsage(
                    self._proc.cpu_percent(interval=None),
                    self._proc.memory_info().rss,
                )
        except psutil.Error:
            return SelfUsage(0.0, 0)


# --- interface counters ------------------------------------------------------


def _read_pernic() -> Mapping[str, Any]:
    return psutil.net_io_counters(pernic=True, nowrap=True)


class NicMonitor:
    """Turns psutil.net_io_counters(pernic=True) readings into per-second rates.

    The first sample has zero rates. An interface that appears mid-run starts at
    zero; counters that go backwards (driver reset) restart the delta.
    """

    def __init__(
        self,
        read: Callable[[], Mapping[str, Any]] = _read_pernic,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read = read
        self._clock = clock
        self._last: dict[str, tuple[int, int, int, int]] = {}
        self._last_time: float | None = None

    def sample(self) -> tuple[NicRates, ...]:
        try:
            counters = self._read()
        except OSError:
            return ()
        now = self._clock()
        interval = 0.0 if self._last_time is None else now - self._last_time
        out = []
        current: dict[str, tuple[int, int, int, int]] = {}
        for name, c in sorted(counters.items()):
            vals = (int(c.dropin), int(c.dropout), int(c.errin), int(c.errout))
            current[name] = vals
            prev = self._last.get(name, vals)
            rates = [per_second(v - p, interval) for v, p in zip(vals, prev, strict=True)]
            out.append(NicRates(name, *rates, *vals))
        self._last = current
        self._last_time = now
        return tuple(out)
