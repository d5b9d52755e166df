"""psutil helpers: process lookup by comm, droptop's own cost, NIC counter rates."""

from __future__ import annotations

import os
from collections import namedtuple
from pathlib import Path

import psutil
import pytest

from droptop.hostinfo import (
    NicMonitor,
    ProcessInfo,
    SelfMonitor,
    SelfUsage,
    processes_with_comm,
)

Uids = namedtuple("Uids", "real effective saved")


class FakeProc:
    def __init__(self, info=None, error: Exception | None = None):
        self._info = info
        self._error = error

    @property
    def info(self):
        if self._error is not None:
            raise self._error
        return self._info


def procs(*items):
    return lambda attrs=None: iter(items)


def test_finds_processes_by_comm_sorted_by_pid():
    it = procs(
        FakeProc({"pid": 20, "name": "nginx", "username": "www", "cmdline": ["nginx:", "worker"]}),
        FakeProc({"pid": 3, "name": "nginx", "username": "root", "cmdline": ["nginx"]}),
        FakeProc({"pid": 4, "name": "curl", "username": "root", "cmdline": ["curl", "x"]}),
    )
    found = processes_with_comm("nginx", process_iter=it)
    assert found == [
        ProcessInfo(3, "root", "nginx"),
        ProcessInfo(20, "www", "nginx: worker"),
    ]


def test_vanished_and_hidden_processes_are_skipped_or_shown_partially():
    it = procs(
        FakeProc(error=psutil.NoSuchProcess(5)),
        FakeProc(error=psutil.AccessDenied(6)),
        FakeProc(error=psutil.ZombieProcess(8)),
        FakeProc(
            {
                "pid": 7,
                "name": "kworker/0:1",
                "username": None,
                "uids": Uids(0, 0, 0),
                "cmdline": [],
            }
        ),
        FakeProc(
            {"pid": 9, "name": "kworker/0:1", "username": None, "uids": None, "cmdline": None}
        ),
    )
    found = processes_with_comm("kworker/0:1", process_iter=it)
    assert found == [
        ProcessInfo(7, "0", "[kworker/0:1]"),
        ProcessInfo(9, "?", "[kworker/0:1]"),
    ]


def test_truncated_comm_matches_psutil_full_name():
    # The kernel keeps 15 bytes; psutil completes long names from the command line.
    it = procs(
        FakeProc(
            {
                "pid": 11,
                "name": "very-long-daemon-name",
                "username": "u",
                "cmdline": ["/usr/bin/very-long-daemon-name"],
            }
        )
    )
    assert [p.pid for p in processes_with_comm("very-long-daem", process_iter=it)] == []
    it = procs(
        FakeProc(
            {
                "pid": 11,
                "name": "very-long-daemon-name",
                "username": "u",
                "cmdline": ["/usr/bin/very-long-daemon-name"],
            }
        )
    )
    assert [p.pid for p in processes_with_comm("very-long-daemo", process_iter=it)] == [11]


def test_limit():
    items = [
        FakeProc({"pid": i, "name": "x", "username": "u", "cmdline": ["x"]}) for i in range(10)
    ]
    assert len(processes_with_comm("x", process_iter=procs(*items), limit=3)) == 3


def test_real_process_lookup_finds_this_process():
    me = psutil.Process()
    comm = Path(f"/proc/{os.getpid()}/comm").read_text().strip()
    found = processes_with_comm(comm)
    assert me.pid in [p.pid for p in found]


def test_self_monitor_reports_rss_and_cpu():
    mon = SelfMonitor()
    sum(range(200_000))
    usage = mon.sample()
    assert isinstance(usage, SelfUsage)
    assert usage.rss > 1024 * 1024
    assert usage.cpu_percent >= 0.0


def test_self_monitor_survives_psutil_errors():
    class Gone:
        def cpu_percent(self, interval=None):
            return 0.0

        def oneshot(self):
            raise psutil.NoSuchProcess(1)

    assert SelfMonitor(Gone()).sample() == SelfUsage(0.0, 0)


Counters = namedtuple("Counters", "dropin dropout errin errout")


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_nic_rates_from_deltas():
    readings = [
        {"eth0": Counters(10, 0, 5, 0), "lo": Counters(0, 0, 0, 0)},
        {"eth0": Counters(30, 4, 5, 2), "lo": Counters(0, 0, 0, 0)},
    ]
    clock = Clock()
    mon = NicMonitor(read=lambda: readings.pop(0), clock=clock)
    first = {n.name: n for n in mon.sample()}
    assert first["eth0"].rx_drop_rate == 0.0 and first["eth0"].rx_drops == 10
    clock.now += 2.0
    second = {n.name: n for n in mon.sample()}
    eth0 = second["eth0"]
    assert eth0.rx_drop_rate == pytest.approx(10.0)
    assert eth0.tx_drop_rate == pytest.approx(2.0)
    assert eth0.rx_err_rate == 0.0
    assert eth0.tx_err_rate == pytest.approx(1.0)
    assert eth0.any_rate and not second["lo"].any_rate


def test_nic_counter_going_backwards_and_new_interfaces():
    readings = [
        {"eth0": Counters(100, 0, 0, 0)},
        {"eth0": Counters(5, 0, 0, 0), "veth1": Counters(50, 0, 0, 0)},
    ]
    clock = Clock()
    mon = NicMonitor(read=lambda: readings.pop(0), clock=clock)
    mon.sample()
    clock.now += 1.0
    second = {n.name: n for n in mon.sample()}
    assert second["eth0"].rx_drop_rate == 0.0  # driver reset: no negative rate
    assert second["veth1"].rx_drop_rate == 0.0  # new interface starts at zero


def test_nic_read_error_gives_nothing():
    def broken():
        raise OSError("no /proc/net/dev")

    assert NicMonitor(read=broken).sample() == ()


def test_real_nic_counters_include_loopback():
    names = {n.name for n in NicMonitor().sample()}
    assert "lo" in names
