"""The droptop Textual app and `run_tui`, the one entry point the CLI calls.

Threads: a single thread worker runs droptop's PollLoop (collector.poll(), psutil
samples); the app is one of the loop's front ends and hands each snapshot to the UI
with post_message only. The UI thread never calls the collector, except close()
after the worker has stopped.

Signals: run_tui hands SIGINT, SIGTERM and SIGHUP to `exit_on_signal`, which only
records the signal and schedules `app.exit(128 + signum)` on the event loop with
call_soon_threadsafe (what Textual's own SIGWINCH handler does). Raising from the
handler instead ends up inside whichever message handler was running, and Textual
prints that as a crash (a Rich traceback, exit 1).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from pathlib import Path

from textual.app import App
from textual.reactive import reactive
from textual.screen import Screen

from droptop.collector import Collector
from droptop.errors import DroptopError
from droptop.frontends.tui.drilldown import DrillDownScreen
from droptop.frontends.tui.format import clock
from droptop.frontends.tui.help import HelpScreen
from droptop.frontends.tui.keys import app_bindings
from droptop.frontends.tui.main import MainScreen
from droptop.frontends.tui.messages import PollFailed, Refreshed
from droptop.hostinfo import (
    NicMonitor,
    ProcessInfo,
    SelfMonitor,
    processes_with_comm,
)
from droptop.loop import FrontEnd, PollLoop, clamp_interval, step_interval
from droptop.model import NicRates, SelfUsage, Snapshot
from droptop.outputs import pcap_beside, write_final, write_pcap
from droptop.signals import ExitSignals, exit_status
from droptop.snapshot_file import save_snapshot

CLOSE_TIMEOUT = 5.0
"""Seconds run_tui waits for a poll in progress before closing the collector anyway."""


class _Deliver:
    """The app's side of the poll loop: runs on the loop's thread, so it only posts messages."""

    def __init__(self, app: App) -> None:
        self._app = app

    def update(self, snap: Snapshot) -> None:
        with contextlib.suppress(RuntimeError):  # the event loop closed: we are exiting
            self._app.post_message(Refreshed(snap))

    def poll_failed(self, error: str) -> None:
        with contextlib.suppress(RuntimeError):
            self._app.post_message(PollFailed(error))


class DroptopApp(App[int]):
    """top for kernel packet drops.

    Args:
        collector: where snapshots come from.
        interval: seconds between polls (clamped to the loop's range).
        snapshot_dir: where ctrl+s writes.
        show_not_specified: start with NOT_SPECIFIED rows visible.
        initial_filter: filter text to start with.
        auto_poll: False polls once, then only when poll_now() is called
            (tests and screenshots, so what is drawn does not depend on timing).
        self_usage / nic_sample / process_lookup: psutil readers, replaceable so
            tests do not depend on the machine.
    """

    TITLE = "droptop"
    CSS_PATH = "droptop.tcss"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = app_bindings()

    interval: reactive[float] = reactive(1.0, init=False)
    """Seconds between polls as requested with + / -."""
    paused: reactive[bool] = reactive(False, init=False)
    """`p`: the display stays on one snapshot; polling continues underneath."""

    def __init__(
        self,
        collector: Collector,
        *,
        interval: float = 1.0,
        snapshot_dir: Path = Path("."),
        show_not_specified: bool = True,
        initial_filter: str = "",
        auto_poll: bool = True,
        self_usage: Callable[[], SelfUsage] | None = None,
        nic_sample: Callable[[], tuple[NicRates, ...]] | None = None,
        process_lookup: Callable[[str], list[ProcessInfo]] = processes_with_comm,
        front_ends: tuple[FrontEnd, ...] = (),
        pcap: Path | None = None,
        hide_benign: bool = False,
    ) -> None:
        super().__init__()
        self.collector = collector
        self.snapshot_dir = Path(snapshot_dir)
        self.process_lookup = process_lookup
        self.pcap = pcap
        """--pcap: the snapshot key also writes the samples as pcapng beside the JSON."""
        self._show_not_specified = show_not_specified
        self._hide_benign = hide_benign
        self._initial_filter = initial_filter
        self.set_reactive(DroptopApp.interval, clamp_interval(interval))
        self.poller = PollLoop(
            collector,
            interval=self.interval,
            front_ends=(_Deliver(self), *front_ends),
            nic_sample=nic_sample or NicMonitor().sample,
            self_usage=self_usage or SelfMonitor().sample,
            auto=auto_poll,
        )
        """The poll loop; it runs in a thread worker while the app runs."""
        self.latest: Snapshot | None = None
        """The newest snapshot from the collector."""
        self.displayed: Snapshot | None = None
        """The snapshot the screens show (older than latest while paused)."""
        self.refreshes = 0
        """Refreshed messages handled so far."""
        self.poll_errors = 0
        self.last_error: str | None = None
        self.saved_path: Path | None = None
        """Where the last ctrl+s wrote."""
        self.exit_signal: int | None = None
        """The first exit signal received (see exit_on_signal)."""
        self._event_loop: asyncio.AbstractEventLoop | None = None

    # --- lifecycle -------------------------------------------------------------

    def get_default_screen(self) -> Screen:
        return MainScreen(
            show_not_specified=self._show_not_specified,
            initial_filter=self._initial_filter,
            process_lookup=self.process_lookup,
            hide_benign=self._hide_benign,
        )

    @property
    def main(self) -> MainScreen:
        return next(s for s in self.screen_stack if isinstance(s, MainScreen))

    def on_mount(self) -> None:
        self._event_loop = asyncio.get_running_loop()
        if self.exit_signal is not None:  # it came while the app was starting
            self._exit_for_signal()
            return
        self.run_worker(self.poller.run, thread=True, name="poller", group="poller")

    def on_unmount(self) -> None:
        self.poller.stop()  # the executor joins the thread before app.run() returns

    # --- UI thread side ---------------------------------------------------------

    def on_refreshed(self, message: Refreshed) -> None:
        self.refreshes += 1
        self.latest = message.snapshot
        if not self.main.is_mounted:  # MainScreen.on_mount shows it
            return
        if self.last_error is not None:
            self.last_error = None
            self.main.status.say("collector recovered")
        self.main.show_extras(message.snapshot)
        if not self.paused:
            self._show_snapshot(message.snapshot)

    def on_poll_failed(self, message: PollFailed) -> None:
        self.poll_errors += 1
        self.last_error = message.error
        when = f" (still showing {clock(self.displayed.time)})" if self.displayed else ""
        if self.main.is_mounted:
            self.main.status.say(f"{message.error}{when}", error=True)

    def _show_snapshot(self, snap: Snapshot) -> None:
        self.displayed = snap
        self.main.show(snap)
        for screen in self.screen_stack:
            if isinstance(screen, DrillDownScreen) and screen.is_mounted:
                screen.show(snap)

    def poll_now(self) -> None:
        """Ask the poller for a poll now (used with auto_poll=False and after a reset)."""
        self.poller.request_poll()

    def on_main_screen_reset_requested(self) -> None:
        self.reset_counters()

    def reset_counters(self) -> None:
        """Reset on the poller thread (under its lock), then poll at once."""
        self.poller.request_reset()

    def on_main_screen_ready(self) -> None:
        """MainScreen just mounted: show whatever arrived before it could."""
        self.main.header.interval = self.interval
        if self.latest is not None:
            self.main.show_extras(self.latest)
            self._show_snapshot(self.latest)

    def watch_interval(self, seconds: float) -> None:
        self.poller.interval = seconds
        self.main.header.interval = seconds

    def watch_paused(self, paused: bool) -> None:
        self.main.header.paused = paused
        if not paused and self.latest is not None and self.latest is not self.displayed:
            self._show_snapshot(self.latest)

    def exit_on_signal(self, signum: int) -> None:
        """Called from a signal handler, between any two bytecodes of the main thread
        (which runs the event loop): only record, and let the loop do the exiting."""
        if self.exit_signal is None:
            self.exit_signal = signum
        loop = self._event_loop
        if loop is not None:  # else on_mount sees exit_signal
            with contextlib.suppress(RuntimeError):  # the loop has closed: run_tui is ending
                loop.call_soon_threadsafe(self._exit_for_signal)

    def _exit_for_signal(self) -> None:
        self.poller.stop()
        self.exit(return_code=exit_status(self.exit_signal or signal.SIGTERM))

    # --- actions ---------------------------------------------------------------

    def action_quit(self) -> None:
        self.poller.stop()
        self.exit(0)

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.latest.notes if self.latest else ()))

    def action_pause(self) -> None:
        self.paused = not self.paused
        self.main.status.say(
            "display paused; collection continues (p to resume)"
            if self.paused
            else "display resumed"
        )

    def action_interval(self, direction: int) -> None:
        new = step_interval(self.interval, direction)
        self.interval = new
        self.main.status.say(f"refresh every {new:g}s")

    def action_snapshot(self) -> None:
        snap = self.displayed
        if snap is None:
            self.main.status.say("nothing to save yet", error=True)
            return
        try:
            path = save_snapshot(snap, self.snapshot_dir)
        except DroptopError as e:
            self.main.status.say(str(e), error=True)
            return
        said = f"saved {path}"
        if self.pcap is not None:
            try:
                said += f" and {write_pcap(snap, pcap_beside(path))}"
            except DroptopError as e:
                self.main.status.say(f"saved {path}; {e}", error=True)
                self.saved_path = path
                return
        self.main.status.say(said)
        self.saved_path = path


def run_tui(
    collector: Collector,
    *,
    interval: float = 1.0,
    snapshot_dir: Path = Path("."),
    show_not_specified: bool = True,
    initial_filter: str = "",
    output: Path | None = None,
    pcap: Path | None = None,
    signals: ExitSignals | None = None,
    front_ends: tuple[FrontEnd, ...] = (),
    hide_benign: bool = False,
) -> int:
    """Run the TUI until the user quits or a signal ends it; always close the collector.

    With `output` (and `pcap`), the snapshot on screen when the app ended (the
    latest if none was shown yet) is written there, whatever ended it, after the
    terminal is restored, and a line on stderr says where. `front_ends` (the
    exporter) get every snapshot from the same poll loop. Returns the exit status:
    the app's, or 128 + the signal that ended it.
    """
    app = DroptopApp(
        collector,
        interval=interval,
        snapshot_dir=snapshot_dir,
        show_not_specified=show_not_specified,
        initial_filter=initial_filter,
        front_ends=front_ends,
        pcap=pcap,
        hide_benign=hide_benign,
    )
    signals = signals or ExitSignals()
    code: int | None = None
    # The clean-up is inside the block too: a second signal must not cut the -o write.
    with signals.stopping(app.exit_on_signal):
        try:
            app.run()
        except KeyboardInterrupt:  # SIGINT outside raw mode, droptop's handlers not installed
            code = 130
        finally:
            app.poller.stop()
            app.poller.close_collector(timeout=CLOSE_TIMEOUT)
            write_final(app.displayed or app.latest, output, pcap)
    if code is None:
        code = exit_status(app.exit_signal) if app.exit_signal else app.return_code or 0
    return code
