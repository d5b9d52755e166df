"""One line under the table: the last message (saved, reset, error) and what is hidden.

Messages stay until replaced rather than fading, so a person who looked away still
sees that a save failed, and screenshots are deterministic.
"""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from droptop.frontends.tui.format import safe


class StatusLine(Widget):
    DEFAULT_CSS = """
    StatusLine {
        height: 1;
        padding: 0 1;
        background: $panel;
    }
    """

    message: reactive[str] = reactive("")
    """The last thing that happened, in a sentence."""
    is_error: reactive[bool] = reactive(False)
    """Marks the message as an error (with the word, not only red)."""
    summary: reactive[str] = reactive("")
    """Right-hand side: visible rows, active filter, hidden NOT_SPECIFIED."""

    def say(self, message: str, *, error: bool = False) -> None:
        self.message = message
        self.is_error = error

    def render(self) -> Text:
        left = Text(no_wrap=True, overflow="ellipsis", end="")
        if self.message:
            if self.is_error:
                left.append("error: ", "bold red")
                left.append_text(safe(self.message, "red"))
            else:
                left.append_text(safe(self.message))
        right = safe(self.summary, "dim")
        width = max(0, self.size.width - 2)
        room = width - right.cell_len - 2
        if room < 10 or (self.is_error and left.cell_len > room):
            return left  # not room for both: the message wins
        left.truncate(room, overflow="ellipsis")
        left.pad_right(room - left.cell_len + 2)
        left.append_text(right)
        return left
