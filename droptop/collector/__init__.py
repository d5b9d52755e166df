"""Where snapshots come from: the kernel (bcc), a saved file (replay) or a fake (tests).

Every collector has the same three calls, so batch mode and the TUI never know
which one they drive.
"""

from __future__ import annotations

from typing import Protocol

from droptop.model import Snapshot


class Collector(Protocol):
    def poll(self) -> Snapshot:
        """Read the counters now and return a complete, immutable snapshot."""
        ...

    def reset(self) -> None:
        """Restart cumulative counts from zero (the kernel map is left alone)."""
        ...

    def close(self) -> None:
        """Release everything; for the bcc collector, detach the BPF program. Idempotent."""
        ...
