"""droptop's own handlers for SIGINT, SIGTERM and SIGHUP: each ends droptop the same way.

A script that starts droptop in the background (`droptop -b -o f.json &`) leaves
SIGINT ignored, and Python keeps an ignored disposition; tcpdump, perf and
bpftrace install their own handlers so `kill -INT` still ends them, and so does
droptop. Each of the three signals ends the run through the normal exit path
(the `-o` file is written, the collector is closed, which detaches the BPF
program) with exit status 128 + the signal's number: 130, 143, 129.

How a signal ends the run depends on what is running, so the code that runs says
so with `stopping(callback)`:

- inside it (batch mode's poll loop, the TUI's event loop) the first signal calls
  `callback(signum)`, which asks for a clean stop and returns at once: nothing is
  cut off half-way (no half-printed JSON line, no exception raised inside one of
  Textual's message handlers, which is what printed a Rich traceback and exit 1);
- outside it (start-up, loading the BPF program, clean-up) the handler raises
  Terminated, as Python's own SIGINT handler raises KeyboardInterrupt, and the
  callers' `finally` blocks clean up.

SIGHUP is left alone when it was already ignored at start (nohup), as tcpdump
does, so `nohup droptop -b -o f.json &` outlives the session it was started from.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterator
from types import FrameType

EXIT_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
"""The signals that end droptop cleanly."""


def exit_status(signum: int) -> int:
    """What a shell reports for a process killed by `signum`; droptop exits with the same."""
    return 128 + signum


class Terminated(Exception):
    """A signal, raised where no clean stop was asked for, so the `finally` blocks run."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return exit_status(self.signum)


class ExitSignals:
    """The handlers for EXIT_SIGNALS and what the first signal asked for.

    Only the CLI calls install(): tests and other embedders that never install
    it get the callbacks registered by stopping() but no process-wide handlers.
    """

    def __init__(self) -> None:
        self.received: int | None = None
        """The first exit signal received (later ones do not change the exit status)."""
        self._callback: Callable[[int], None] | None = None
        self._previous: dict[int, object] = {}

    @property
    def exit_code(self) -> int | None:
        """128 + the first signal, or None while no signal has come."""
        return None if self.received is None else exit_status(self.received)

    def install(self) -> None:
        for signum in EXIT_SIGNALS:
            before = signal.getsignal(signum)
            if signum == signal.SIGHUP and before == signal.SIG_IGN:
                continue  # nohup asked for this; tcpdump keeps it too
            self._previous[signum] = before
            signal.signal(signum, self.handle)

    def restore(self) -> None:
        for signum, before in self._previous.items():
            signal.signal(signum, before)  # type: ignore[arg-type]
        self._previous.clear()

    def handle(self, signum: int, frame: FrameType | None = None) -> None:
        """The handler itself (also what tests call to act as a signal)."""
        if self.received is None:
            self.received = signum
        callback = self._callback
        if callback is None:
            raise Terminated(self.received)
        callback(signum)

    @contextlib.contextmanager
    def stopping(self, callback: Callable[[int], None]) -> Iterator[None]:
        """While inside, a signal calls `callback(signum)` instead of raising Terminated.

        The callback runs in the main thread between two bytecodes of whatever it
        was doing, so it may only set flags, notify a condition or hand work to an
        event loop with call_soon_threadsafe. It may raise Terminated itself (batch
        mode does on a second signal, to get out of a write that blocks).
        """
        outer, self._callback = self._callback, callback
        try:
            yield
        finally:
            self._callback = outer
