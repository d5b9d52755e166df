"""Helpers for driving DroptopApp deterministically: a fake collector, fixed psutil
readings, manual polling, UTC, and a small asyncio runner (no pytest-asyncio needed)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable

import pytest

from droptop.collector.fake import FakeCollector
from droptop.frontends.tui.app import DroptopApp
from droptop.hostinfo import NicRates, ProcessInfo, SelfUsage

FIXED_USAGE = SelfUsage(cpu_percent=1.5, rss=48 * 1024 * 1024)
FIXED_NICS = (
    NicRates("eth0", 3.0, 0.0, 1.0, 0.0, 120, 0, 40, 0),
    NicRates("lo", 0.0, 0.0, 0.0, 0.0, 0, 0, 0, 0),
    NicRates("wlan0", 0.0, 0.0, 0.0, 0.0, 7, 0, 0, 0),
)
FIXED_PROCESSES = {
    "nginx": [
        ProcessInfo(812, "root", "nginx: master process /usr/sbin/nginx -g daemon on;"),
        ProcessInfo(813, "www-data", "nginx: worker process"),
    ],
}


@pytest.fixture(autouse=True)
def utc(monkeypatch):
    """Times in the header and drill-down render the same everywhere."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def lookup(comm: str) -> list[ProcessInfo]:
    return list(FIXED_PROCESSES.get(comm, []))


def make_app(collector: FakeCollector | None = None, **kw) -> DroptopApp:
    """An app that polls only when told to, with psutil readings fixed."""
    kw.setdefault("auto_poll", False)
    kw.setdefault("self_usage", lambda: FIXED_USAGE)
    kw.setdefault("nic_sample", lambda: FIXED_NICS)
    kw.setdefault("process_lookup", lookup)
    return DroptopApp(collector or FakeCollector(), **kw)


async def wait_until(pilot, done: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the app")
        await pilot.pause(0.01)
    await pilot.pause()


def handled(app: DroptopApp) -> int:
    return app.refreshes + app.poll_errors


async def polls(pilot, n: int = 1) -> None:
    """Make the app poll `n` more times and wait until each result is on screen."""
    app: DroptopApp = pilot.app
    for _ in range(n):
        target = handled(app) + 1
        app.poll_now()
        await wait_until(pilot, lambda t=target: handled(app) >= t)


async def started(pilot, extra_polls: int = 0) -> None:
    """Wait for the first (automatic) poll, then poll `extra_polls` more times."""
    await wait_until(pilot, lambda: handled(pilot.app) >= 1)
    await polls(pilot, extra_polls)


def run(
    app: DroptopApp,
    scenario: Callable[..., Awaitable[None]],
    size: tuple[int, int] = (120, 36),
) -> None:
    """Run `scenario(pilot)` against `app` in a headless terminal."""

    async def main() -> None:
        async with app.run_test(size=size) as pilot:
            await scenario(pilot)

    asyncio.run(main())


@pytest.fixture
def no_color(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    yield
    os.environ.pop("NO_COLOR", None)
