"""The one poll loop: collector -> snapshot (+ host counters) -> every front end.

Batch output, the TUI and the exporter are front ends of the same loop: each gets
every snapshot through `update()` on the loop's thread (the main thread in batch
and headless mode, a worker thread under the TUI) and must return quickly. A
front end that needs another thread (the TUI, an HTTP server) hands the snapshot
over itself; snapshots are immutable, so handing over is just a reference.

Callers talk to a running loop only through thread-safe calls (interval,
request_poll, request_reset, stop). `collector.reset()` runs on the loop's thread
under the same lock as `poll()`, so a reset never races a poll.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Protocol

from droptop.collector import Collector
from droptop.errors import DroptopError
from droptop.model import NicRates, SelfUsage, Snapshot

MIN_INTERVAL = 0.1
MAX_INTERVAL = 3600.0
"""One range for the command line (-d) and the TUI's + / - keys."""
INTERVAL_STEPS = (0.1, 0.2, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0)
"""What + and - step through."""


def check_interval(seconds: float) -> float:
    """-d as given, or a usage error (exit 2) that names the range."""
    if not MIN_INTERVAL <= seconds <= MAX_INTERVAL:  # also false for NaN
        raise DroptopError(
            f"-d must be between {MIN_INTERVAL:g} and {MAX_INTERVAL:g} seconds", exit_code=2
        )
    return float(seconds)


def clamp_interval(seconds: float) -> float:
    return min(MAX_INTERVAL, max(MIN_INTERVAL, float(seconds)))


def step_interval(current: float, direction: int) -> float:
    """The next INTERVAL_STEPS value above (direction > 0) or below the current one."""
    if direction > 0:
        bigger = [s for s in INTERVAL_STEPS if s > current + 1e-9]
        return bigger[0] if bigger else max(current, INTERVAL_STEPS[-1])
    smaller = [s for s in INTERVAL_STEPS if s < current - 1e-9]
    return smaller[-1] if smaller else MIN_INTERVAL


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside a poll and its hand-over to the front ends.

    A poll in which 10,000 rows changed makes ~50,000 objects while the last snapshot
    still holds their predecessors; a young-generation collection landing there walked
    all of them (~20 ms, measured in bench_poll.py). Once the front ends let go of the
    last snapshot its rows are freed by reference counting (rows hold no cycles), and a
    collection after the poll finds far less to walk.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


class FrontEnd(Protocol):
    """What the loop calls; both on the loop's thread, both must return quickly."""

    def update(self, snap: Snapshot) -> None:
        """A good poll's snapshot."""
        ...

    def poll_failed(self, error: str) -> None:
        """A poll raised DroptopError; the front end keeps its last good snapshot."""
        ...


class PollLoop:
    """Polls every `interval` seconds (or only on request when auto=False).

    Args:
        collector: what to poll.
        front_ends: who gets each snapshot, in order.
        nic_sample / self_usage: host readers whose results ride on each live
            snapshot (the drivers' interface counters, droptop's own cost);
            replaceable so tests do not depend on the machine.
        auto: poll on a timer; False polls once at start and then only on
            request_poll() (tests and screenshots use this to be deterministic).
    """

    def __init__(
        self,
        collector: Collector,
        *,
        interval: float,
        front_ends: Sequence[FrontEnd] = (),
        nic_sample: Callable[[], tuple[NicRates, ...]] | None = None,
        self_usage: Callable[[], SelfUsage] | None = None,
        auto: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._collector = collector
        self._interval = clamp_interval(interval)
        self.front_ends: list[FrontEnd] = list(front_ends)
        self._nic_sample = nic_sample
        self._self_usage = self_usage
        self.auto = auto
        self._clock = clock
        self._cond = threading.Condition()
        self._collector_lock = threading.Lock()
        self._stop = False
        self._poll_requested = False
        self._reset_requested = False
        self.polls = 0
        """Polls completed (good or failed)."""
        self.last_poll_seconds = 0.0
        """How long the last collector.poll() took."""

    @property
    def interval(self) -> float:
        return self._interval

    @interval.setter
    def interval(self, seconds: float) -> None:
        with self._cond:
            self._interval = clamp_interval(seconds)
            self._cond.notify_all()  # re-plan the current wait

    def request_poll(self) -> None:
        """Poll as soon as the current poll (if any) finishes."""
        with self._cond:
            self._poll_requested = True
            self._cond.notify_all()

    def request_reset(self) -> None:
        """Reset the collector's counters on the loop's thread, then poll at once."""
        with self._cond:
            self._reset_requested = True
            self._poll_requested = True
            self._cond.notify_all()

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()

    @property
    def stopped(self) -> bool:
        return self._stop

    def run(self) -> None:
        """The loop body: poll, wait, repeat until stop()."""
        while not self._stop:
            started = self._clock()
            self.poll_once()
            if not self._wait(started):
                break

    def poll_once(self) -> None:
        with self._cond:
            reset, self._reset_requested = self._reset_requested, False
            self._poll_requested = False
        with gc_paused():
            with self._collector_lock:
                started = time.perf_counter()
                try:
                    if reset:
                        self._collector.reset()
                    snap = self._collector.poll()
                except DroptopError as e:
                    self.polls += 1
                    for fe in self.front_ends:
                        fe.poll_failed(str(e))
                    return
                self.last_poll_seconds = time.perf_counter() - started
                self.polls += 1
            snap = replace(self._with_host_counters(snap), poll_seconds=self.last_poll_seconds)
            for fe in self.front_ends:
                fe.update(snap)

    def _with_host_counters(self, snap: Snapshot) -> Snapshot:
        """droptop's own cost always; interface counters unless replayed (it keeps its own)."""
        nics = self._nic_sample is not None and snap.source != "replay"
        if not nics and self._self_usage is None:
            return snap
        return replace(
            snap,
            interfaces=self._nic_sample() if nics else snap.interfaces,  # type: ignore[misc]
            usage=self._self_usage() if self._self_usage else snap.usage,
        )

    def _wait(self, started: float) -> bool:
        """Sleep until the next poll is due; False when stopping."""
        with self._cond:
            while not self._stop:
                if self._poll_requested:
                    return True
                if self.auto:
                    remaining = started + self._interval - self._clock()
                    if remaining <= 0:
                        return True
                    self._cond.wait(remaining)
                else:
                    self._cond.wait()
            return False

    def close_collector(self, timeout: float = 5.0) -> None:
        """Close the collector once no poll is running (or after `timeout` anyway)."""
        got = self._collector_lock.acquire(timeout=timeout)
        try:
            self._collector.close()
        finally:
            if got:
                self._collector_lock.release()
