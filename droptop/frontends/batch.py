"""Batch mode: a frame per interval on stdout, like `top -b`, in text, JSON or CSV.

One front end of the poll loop. The first live poll is the baseline (a rate needs
two readings) and is not printed; a replayed snapshot is printed once. After
`count` frames the loop is told to stop.
"""

from __future__ import annotations

import sys
from typing import TextIO

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
                print(f"droptop: {printable(note)}", file=self._err or sys.stderr)
            return  # the baseline
        out = self._out or sys.stdout
        out.write(render(self._selection.apply(snap), self._fmt, header=self.printed == 0))
        out.flush()
        self.printed += 1
        if snap.source == "replay" or (self._count and self.printed >= self._count):
            self._loop.stop()

    def poll_failed(self, error: str) -> None:
        print(f"droptop: {printable(error)}", file=self._err or sys.stderr)
