"""The `/` prompt: filters as you type, and a bad filter is explained, not applied."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Input, Label

from droptop.filtering import Filter, FilterError, parse_filter
from droptop.sanitize import printable


class FilterBar(Horizontal):
    """A one-line prompt; hidden until `/` is pressed."""

    DEFAULT_CSS = """
    FilterBar {
        height: 1;
        display: none;
        background: $panel;
        &.-open { display: block; }
        #filter-prompt { width: 2; padding: 0; }
        #filter-input {
            width: 1fr;
            height: 1;
            border: none;
            padding: 0;
            background: $surface;
        }
        #filter-error { width: auto; max-width: 60%; color: $error; padding: 0 1; }
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Clear", id="filter_cancel", show=False)
    ]

    class Applied(Message):
        """A valid filter (possibly empty) to show from now on."""

        def __init__(self, filter: Filter) -> None:
            super().__init__()
            self.filter = filter

    class Closed(Message):
        """The prompt closed; focus goes back to the table."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.good = Filter()
        """The last filter that parsed; kept while the text is wrong."""
        self.error: str | None = None
        """Why the current text does not parse, or None."""

    def compose(self) -> ComposeResult:
        yield Label("/", id="filter-prompt")
        yield Input(
            placeholder="words  comm:nginx  if:eth0  !NOT_SPECIFIED  rate>100",
            id="filter-input",
            select_on_focus=False,
        )
        yield Label("", id="filter-error")

    def on_mount(self) -> None:
        self.query_one(Input).cursor_blink = False  # steady cursor; screenshots agree

    @property
    def is_open(self) -> bool:
        return self.has_class("-open")

    def open(self, text: str) -> None:
        self.add_class("-open")
        inp = self.query_one(Input)
        inp.value = text
        inp.cursor_position = len(text)
        inp.focus()

    def set_text(self, text: str) -> Filter:
        """Set the prompt text without opening it; raises FilterError if it is bad."""
        flt = parse_filter(text)
        self.good = flt
        self.query_one(Input).value = text
        return flt

    def close(self) -> None:
        self.remove_class("-open")
        self.post_message(self.Closed())

    def _show_error(self, error: str | None) -> None:
        self.error = error
        label = self.query_one("#filter-error", Label)
        if error is None:
            label.update("")
        else:
            # the status line still says which filter is in force
            # the error quotes the text, which may have been pasted from anywhere
            label.update(Text(f"✗ {printable(error)}", no_wrap=True))

    @on(Input.Changed, "#filter-input")
    def _changed(self, event: Input.Changed) -> None:
        event.stop()
        try:
            flt = parse_filter(event.value)
        except FilterError as e:
            self._show_error(str(e))
            return
        self._show_error(None)
        if flt != self.good:
            self.good = flt
            self.post_message(self.Applied(flt))

    @on(Input.Submitted, "#filter-input")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self.error is None:
            self.close()

    def action_cancel(self) -> None:
        """Esc while typing: drop the filter entirely and go back to the table."""
        self.query_one(Input).value = ""
        self._show_error(None)
        if self.good:
            self.good = Filter()
            self.post_message(self.Applied(self.good))
        self.close()
