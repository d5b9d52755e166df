"""Messages the poll loop's thread posts to the app: small, immutable, replaceable.

A newer Refreshed replaces an older one still waiting in the queue, so a UI that
falls behind skips stale frames instead of replaying them (as toolong does).
"""

from __future__ import annotations

from textual.message import Message

from droptop.model import Snapshot


class Refreshed(Message):
    """A good poll: the snapshot (with the host counters sampled at the same moment)."""

    def __init__(self, snapshot: Snapshot) -> None:
        super().__init__()
        self.snapshot = snapshot

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, Refreshed)


class PollFailed(Message):
    """A poll raised DroptopError; the app keeps showing the last good snapshot."""

    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error
