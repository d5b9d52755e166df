"""run_tui: the CLI's entry point always closes the collector, whatever ends the app."""

from __future__ import annotations

import pytest

from droptop.collector.fake import FakeCollector
from droptop.frontends.tui import app as app_module
from droptop.frontends.tui.app import DroptopApp, run_tui
from droptop.model import Snapshot
from tests.tui.conftest import started


def headless(monkeypatch, pilot_body):
    """Make DroptopApp.run() headless and drive it with `pilot_body`."""
    original = DroptopApp.run

    def run(self, **kw):
        return original(self, headless=True, size=(80, 24), auto_pilot=pilot_body)

    monkeypatch.setattr(DroptopApp, "run", run)


@pytest.mark.parametrize("key", ["q", "f10", "ctrl+c"])
def test_quit_closes_collector_and_returns_zero(monkeypatch, key):
    collector = FakeCollector()

    async def body(pilot):
        await started(pilot)
        assert not collector.closed
        await pilot.press(key)

    headless(monkeypatch, body)
    assert run_tui(collector, interval=0.2) == 0
    assert collector.closed


def test_crash_still_closes_collector(monkeypatch):
    class Broken(FakeCollector):
        def poll(self) -> Snapshot:
            if self.polls >= 1:
                raise ValueError("a bug, not a DroptopError")
            return super().poll()

    collector = Broken()

    async def body(pilot):
        await started(pilot)
        pilot.app.poll_now()

    headless(monkeypatch, body)
    assert run_tui(collector, interval=5) == 1
    assert collector.closed


def test_keyboard_interrupt_closes_collector(monkeypatch):
    collector = FakeCollector()

    def run(self, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(DroptopApp, "run", run)
    assert run_tui(collector) == 130
    assert collector.closed


def test_interval_is_clamped_to_the_command_lines_range():
    app = DroptopApp(FakeCollector(), interval=0.01)
    assert app.interval == 0.1 and app.poller.interval == 0.1
    app = DroptopApp(FakeCollector(), interval=3600)
    assert app.interval == 3600.0  # what -d accepts, the TUI keeps (no silent clamp)


def test_signature_is_stable():
    import inspect

    sig = inspect.signature(app_module.run_tui)
    assert list(sig.parameters) == [
        "collector",
        "interval",
        "snapshot_dir",
        "show_not_specified",
        "initial_filter",
    ]
