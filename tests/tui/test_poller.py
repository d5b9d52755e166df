"""The poller thread: timing, on-demand polls, reset under the lock, errors, stop."""

from __future__ import annotations

import threading
import time

from droptop.collector.fake import FakeCollector
from droptop.frontends.tui.poller import Poller, clamp_interval, step_interval


class Recorder:
    def __init__(self):
        self.snaps = []
        self.errors = []
        self.event = threading.Event()

    def snap(self, s):
        self.snaps.append(s)
        self.event.set()

    def error(self, e):
        self.errors.append(e)
        self.event.set()

    def wait(self, n, timeout=3.0):
        deadline = time.monotonic() + timeout
        while len(self.snaps) + len(self.errors) < n and time.monotonic() < deadline:
            time.sleep(0.005)
        return len(self.snaps) + len(self.errors) >= n


def start(poller):
    t = threading.Thread(target=poller.run, daemon=True)
    t.start()
    return t


def test_interval_bounds_and_steps():
    assert clamp_interval(0) == 0.2
    assert clamp_interval(99) == 10.0
    assert step_interval(1.0, -1) == 0.5
    assert step_interval(1.0, 1) == 2.0
    assert step_interval(0.2, -1) == 0.2
    assert step_interval(10.0, 1) == 10.0
    assert step_interval(0.7, 1) == 1.0 and step_interval(0.7, -1) == 0.5


def test_auto_polls_on_a_timer_and_stops():
    rec = Recorder()
    p = Poller(FakeCollector(), interval=0.2, on_snapshot=rec.snap, on_error=rec.error)
    t = start(p)
    assert rec.wait(3, timeout=2.0)
    p.stop()
    t.join(1.0)
    assert not t.is_alive()


def test_manual_mode_polls_once_then_on_request():
    rec = Recorder()
    p = Poller(FakeCollector(), interval=0.2, on_snapshot=rec.snap, on_error=rec.error, auto=False)
    t = start(p)
    assert rec.wait(1)
    time.sleep(0.3)
    assert len(rec.snaps) == 1
    p.request_poll()
    assert rec.wait(2)
    p.stop()
    t.join(1.0)
    assert not t.is_alive()


def test_reset_runs_on_the_poller_thread_before_the_next_poll():
    threads = []

    class Watching(FakeCollector):
        def reset(self):
            threads.append(threading.current_thread())
            super().reset()

    rec = Recorder()
    c = Watching()
    p = Poller(c, interval=1, on_snapshot=rec.snap, on_error=rec.error, auto=False)
    t = start(p)
    rec.wait(1)
    p.request_poll()
    rec.wait(2)
    p.request_reset()
    rec.wait(3)
    p.stop()
    t.join(1.0)
    assert threads == [t]
    assert rec.snaps[-1].total_packets < rec.snaps[-2].total_packets


def test_errors_are_reported_and_polling_continues():
    rec = Recorder()
    p = Poller(
        FakeCollector(fail_on={0}), interval=1, on_snapshot=rec.snap, on_error=rec.error, auto=False
    )
    t = start(p)
    rec.wait(1)
    p.request_poll()
    rec.wait(2)
    p.stop()
    t.join(1.0)
    assert len(rec.errors) == 1 and "poll 0" in rec.errors[0]
    assert len(rec.snaps) == 1


def test_changing_interval_replans_the_wait():
    rec = Recorder()
    p = Poller(FakeCollector(), interval=10, on_snapshot=rec.snap, on_error=rec.error)
    t = start(p)
    rec.wait(1)
    p.interval = 0.2  # without a re-plan the next poll would be 10 s away
    assert rec.wait(2, timeout=1.5)
    p.stop()
    t.join(1.0)


def test_close_collector_waits_for_a_running_poll():
    c = FakeCollector(delay=0.3)
    rec = Recorder()
    p = Poller(c, interval=1, on_snapshot=rec.snap, on_error=rec.error, auto=False)
    t = start(p)
    time.sleep(0.05)  # the first poll is running
    p.stop()
    p.close_collector(timeout=2)
    assert c.closed
    t.join(1.0)
    assert rec.snaps and not rec.errors  # the poll finished before close()
