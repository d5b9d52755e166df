"""Batch mode: a frame per interval on stdout, like `top -b`, in text, JSON or CSV.

One front end of the poll loop. The first live poll is the baseline (a rate needs
two readings) and is not printed; a replayed snapshot is printed once. After
`count` frames the loop is told to stop.

A stdout that fails (ENOSPC on /dev/full, a closed descriptor) is a DroptopError,
one line and exit 1; a reader that left (`| head -1`) stays a BrokenPipeError,
which the CLI turns into a quiet exit 0, as `cat` and `top -b` do.
"""

from __future__ import annotations

import sys
from typing import TextIO

from droptop.errors import DroptopError
from droptop.filtering import Selection
from droptop.loop import PollLoop
from droptop.model import Snapshot
from droptop.render import render
from droptop.sanitize import printable


class BatchOutput:
    """Prints each selected snapshot; remembers the last one for `-o`."""

    def __init__(
        self,
        loop: PollLoop,
        *,
        fmt: str,
        selection: Selection | None = None,
        count: int = 0,
        out: TextIO | None = None,
        err: TextIO | None = None,
    ) -> None:
        self._loop = loop
        self._fmt = fmt
        self._selection = selection or Selection()
        self._count = count
        self._out = out
        self._err = err
        self.printed = 0
        self.last: Snapshot | None = None
        """The newest snapshot (all rows), for the final `-o` file."""

    def update(self, snap: Snapshot) -> None:
        first = self.last is None
        self.last = snap
        if first and snap.source == "live":
            for note in snap.notes:  # what droptop used (headers, attach mode): stderr, not data
                self._say(f"droptop: {printable(note)}")
            return  # the baseline
        self._write(render(self._selection.apply(snap), self._fmt, header=self.printed == 0))
        self.printed += 1
        if snap.source == "replay" or (self._count and self.printed >= self._count):
            self._loop.stop()

    def poll_failed(self, error: str) -> None:
        self._say(f"droptop: {printable(error)}")

    def _write(self, text: str) -> None:
        out = self._out or sys.stdout
        try:
            out.write(text)
            out.flush()
        except BrokenPipeError:
            raise
        except (OSError, ValueError) as e:  # ValueError: the file object was closed
            why = getattr(e, "strerror", None) or str(e)
            raise DroptopError(f"cannot write to stdout: {why}") from None

    def _say(self, line: str) -> None:
        """A line on stderr; never on stdout (print(file=None) would pick stdout)."""
        err = self._err or sys.stderr
        if err is None:
            return
        try:
            print(line, file=err, flush=True)
        except (OSError, ValueError):
            pass
