"""The loop that drives a Collector from a worker thread, so the UI thread never blocks.

The UI talks to it only through thread-safe calls (interval, request_poll,
request_reset, stop); the poller talks back only through the two callbacks it was
given, which the app implements with post_message. `collector.reset()` runs on the
poller thread under the same lock as `poll()`, so a reset never races a poll.

Nothing here imports Textual.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from droptop.collector import Collector
from droptop.errors import DroptopError
from droptop.model import Snapshot

MIN_INTERVAL = 0.2
MAX_INTERVAL = 10.0
INTERVAL_STEPS = (0.2, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0)
"""What + and - step through."""


def clamp_interval(seconds: float) -> float:
    return min(MAX_INTERVAL, max(MIN_INTERVAL, float(seconds)))


def step_interval(current: float, direction: int) -> float:
    """The next INTERVAL_STEPS value above (direction > 0) or below the current one."""
    if direction > 0:
        bigger = [s for s in INTERVAL_STEPS if s > current + 1e-9]
        return bigger[0] if bigger else MAX_INTERVAL
    smaller = [s for s in INTERVAL_STEPS if s < current - 1e-9]
    return smaller[-1] if smaller else MIN_INTERVAL


class Poller:
    """Polls every `interval` seconds (or only on request when auto=False).

    Args:
        collector: what to poll.
        on_snapshot: called on the poller thread with each good snapshot.
        on_error: called on the poller thread with a DroptopError's message.
        auto: poll on a timer; False polls once at start and then only on
            request_poll() (tests and screenshots use this to be deterministic).
    """

    def __init__(
        self,
        collector: Collector,
        *,
        interval: float,
        on_snapshot: Callable[[Snapshot], None],
        on_error: Callable[[str], None],
        auto: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._collector = collector
        self._interval = clamp_interval(interval)
        self._on_snapshot = on_snapshot
        self._on_error = on_error
        self.auto = auto
        self._clock = clock
        self._cond = threading.Condition()
        self._collector_lock = threading.Lock()
        self._stop = False
        self._poll_requested = False
        self._reset_requested = False
        self.polls = 0
        """Polls completed (good or failed)."""

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
        """Reset the collector's counters on the poller thread, then poll at once."""
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
        """The thread body: poll, wait, repeat until stop()."""
        while not self._stop:
            started = self._clock()
            self.poll_once()
            if not self._wait(started):
                break

    def poll_once(self) -> None:
        with self._cond:
            reset, self._reset_requested = self._reset_requested, False
            self._poll_requested = False
        with self._collector_lock:
            try:
                if reset:
                    self._collector.reset()
                snap = self._collector.poll()
            except DroptopError as e:
                self.polls += 1
                self._on_error(str(e))
                return
            self.polls += 1
        self._on_snapshot(snap)

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
