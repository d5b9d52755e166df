"""run_tui: the CLI's entry point always closes the collector, whatever ends the app."""

from __future__ import annotations

import signal

import pytest

from droptop.collector.fake import FakeCollector
from droptop.frontends.tui import app as app_module
from droptop.frontends.tui.app import DroptopApp, run_tui
from droptop.model import Snapshot
from droptop.signals import ExitSignals, Terminated
from droptop.snapshot_file import load_snapshot
from tests.tui.conftest import polls, started


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
        "output",
        "pcap",
        "signals",
        "front_ends",
        "hide_benign",
    ]


# --- -o: the snapshot on screen is written, whatever ends the app ---------------


def _ended_by(how: str, signals: ExitSignals):
    async def body(pilot):
        await started(pilot, extra_polls=2)
        if how.startswith("SIG"):
            # What the handler does, on the main thread, while the app runs.
            signals.handle(getattr(signal, how))
        else:
            await pilot.press(how)

    return body


@pytest.mark.parametrize(
    ("how", "code"), [("q", 0), ("ctrl+c", 0), ("SIGTERM", 143), ("SIGHUP", 129), ("SIGINT", 130)]
)
def test_output_written_at_exit_whatever_ends_the_app(monkeypatch, tmp_path, capsys, how, code):
    out = tmp_path / "t.json"
    collector = FakeCollector()
    signals = ExitSignals()
    headless(monkeypatch, _ended_by(how, signals))
    assert run_tui(collector, interval=5, output=out, signals=signals) == code
    assert collector.closed
    saved = load_snapshot(out)
    assert saved.time == 1_700_000_002.0  # the third poll, the one on screen
    assert {r.key.comm for r in saved.rows} >= {"nginx"}
    assert capsys.readouterr().err == f"droptop: wrote {out}\n"


def test_output_is_the_displayed_snapshot_while_paused(monkeypatch, tmp_path):
    out = tmp_path / "t.json"
    shown = []

    async def body(pilot):
        await started(pilot)
        await pilot.press("p")
        await polls(pilot, 2)  # collected, not shown
        shown.append((pilot.app.displayed.time, pilot.app.latest.time))
        await pilot.press("q")

    headless(monkeypatch, body)
    assert run_tui(FakeCollector(), interval=5, output=out) == 0
    ((displayed, latest),) = shown
    assert displayed < latest
    assert load_snapshot(out).time == displayed


def test_output_format_follows_the_extension(monkeypatch, tmp_path):
    out = tmp_path / "t.csv"
    headless(monkeypatch, _ended_by("q", ExitSignals()))
    assert run_tui(FakeCollector(), interval=5, output=out) == 0
    lines = out.read_text().splitlines()
    assert lines[0].startswith("time,reason,raw") and len(lines) > 3


def test_signal_while_the_app_starts_still_exits_cleanly(monkeypatch, tmp_path):
    """A signal between run_tui's start and the app's mount is not lost."""
    signals = ExitSignals()
    original = DroptopApp.run

    def run(self, **kw):
        signals.handle(signal.SIGTERM)  # before the event loop exists
        return original(self, headless=True, size=(80, 24))

    monkeypatch.setattr(DroptopApp, "run", run)
    collector = FakeCollector()
    assert run_tui(collector, interval=5, signals=signals) == 143
    assert collector.closed


def test_a_signal_after_the_app_ended_raises_for_the_cli(monkeypatch, tmp_path):
    """Outside the app (clean-up), a signal raises Terminated: main() returns 128 + it."""
    signals = ExitSignals()
    headless(monkeypatch, _ended_by("q", signals))
    assert run_tui(FakeCollector(), interval=5, signals=signals) == 0
    with pytest.raises(Terminated):
        signals.handle(signal.SIGTERM)


def test_a_second_signal_during_clean_up_does_not_cut_the_output(monkeypatch, tmp_path):
    """SIGTERM twice (a script's `kill; kill`): the second lands while the collector closes."""
    out = tmp_path / "t.json"
    signals = ExitSignals()

    class SignalledWhileClosing(FakeCollector):
        def close(self) -> None:
            signals.handle(signal.SIGTERM)
            super().close()

    collector = SignalledWhileClosing()
    headless(monkeypatch, _ended_by("SIGTERM", signals))
    assert run_tui(collector, interval=5, output=out, signals=signals) == 143
    assert collector.closed and load_snapshot(out).rows
