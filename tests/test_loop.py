"""The poll loop: timing, on-demand polls, reset under the lock, errors, stop, front ends."""

from __future__ import annotations

import gc
import threading
import time

import pytest

from droptop.collector.fake import FakeCollector
from droptop.errors import DroptopError
from droptop.loop import PollLoop, check_interval, clamp_interval, gc_paused, step_interval
from droptop.model import NicRates, SelfUsage


class Recorder:
    def __init__(self):
        self.snaps = []
        self.errors = []
        self.event = threading.Event()

    def update(self, s):
        self.snaps.append(s)
        self.event.set()

    def poll_failed(self, e):
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
    assert clamp_interval(0) == 0.1
    assert clamp_interval(99999) == 3600.0
    assert step_interval(1.0, -1) == 0.5
    assert step_interval(1.0, 1) == 2.0
    assert step_interval(0.1, -1) == 0.1
    assert step_interval(60.0, 1) == 60.0
    assert step_interval(600.0, 1) == 600.0  # above the steps: + never shortens
    assert step_interval(0.7, 1) == 1.0 and step_interval(0.7, -1) == 0.5


def test_auto_polls_on_a_timer_and_stops():
    rec = Recorder()
    p = PollLoop(FakeCollector(), interval=0.2, front_ends=[rec])
    t = start(p)
    assert rec.wait(3, timeout=2.0)
    p.stop()
    t.join(1.0)
    assert not t.is_alive()


def test_manual_mode_polls_once_then_on_request():
    rec = Recorder()
    p = PollLoop(FakeCollector(), interval=0.2, front_ends=[rec], auto=False)
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
    p = PollLoop(c, interval=1, front_ends=[rec], auto=False)
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
    p = PollLoop(FakeCollector(fail_on={0}), interval=1, front_ends=[rec], auto=False)
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
    p = PollLoop(FakeCollector(), interval=10, front_ends=[rec])
    t = start(p)
    rec.wait(1)
    p.interval = 0.2  # without a re-plan the next poll would be 10 s away
    assert rec.wait(2, timeout=1.5)
    p.stop()
    t.join(1.0)


def test_close_collector_waits_for_a_running_poll():
    c = FakeCollector(delay=0.3)
    rec = Recorder()
    p = PollLoop(c, interval=1, front_ends=[rec], auto=False)
    t = start(p)
    time.sleep(0.05)  # the first poll is running
    p.stop()
    p.close_collector(timeout=2)
    assert c.closed
    t.join(1.0)
    assert rec.snaps and not rec.errors  # the poll finished before close()


@pytest.mark.parametrize("bad", [0.0, 0.05, 3601, float("nan"), float("inf"), -1])
def test_check_interval_is_the_command_lines_rule(bad):
    with pytest.raises(DroptopError) as e:
        check_interval(bad)
    assert e.value.exit_code == 2 and "0.1 and 3600" in str(e.value)
    assert check_interval(0.1) == 0.1 and check_interval(3600) == 3600


def test_every_front_end_gets_the_same_snapshot_with_host_counters():
    first, second = Recorder(), Recorder()
    nic = NicRates("eth0", 1.0, 0.0, 0.0, 0.0, 5, 0, 0, 0)
    p = PollLoop(
        FakeCollector(),
        interval=1,
        front_ends=[first, second],
        nic_sample=lambda: (nic,),
        self_usage=lambda: SelfUsage(1.5, 1024),
        auto=False,
    )
    p.poll_once()
    assert first.snaps[0] is second.snaps[0]
    assert first.snaps[0].interfaces == (nic,)
    assert first.snaps[0].usage == SelfUsage(1.5, 1024)


class GcWatcher(FakeCollector):
    """Records whether cyclic GC was on during each poll."""

    def __init__(self) -> None:
        super().__init__()
        self.gc_during: list[bool] = []

    def poll(self):
        self.gc_during.append(gc.isenabled())
        return super().poll()


class GcFrontEnd(Recorder):
    def update(self, s):
        self.gc_on = gc.isenabled()
        super().update(s)


@pytest.mark.parametrize("enabled", [True, False])
def test_gc_is_paused_for_a_poll_and_its_hand_over_and_restored(enabled):
    was = gc.isenabled()
    try:
        (gc.enable if enabled else gc.disable)()
        col, fe = GcWatcher(), GcFrontEnd()
        p = PollLoop(col, interval=1.0, front_ends=[fe], auto=False)
        p.poll_once()
        assert col.gc_during == [False] and fe.gc_on is False
        assert gc.isenabled() is enabled  # as it was, also when it was off
        with pytest.raises(RuntimeError), gc_paused():
            raise RuntimeError
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()
