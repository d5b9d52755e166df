"""The main screen: header, optional interface panel, the drop table, filter prompt, status.

It owns the view state (filter, sort, frozen order, NOT_SPECIFIED and benign
frees hidden) and
turns each displayed snapshot into the rows the table shows. Data flow state
(polling, pause, interval) belongs to the app.
"""

from __future__ import annotations

from collections.abc import Callable

from textual import on
from textual.app import ComposeResult
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer

from droptop.filtering import NOT_SPECIFIED, Filter, FilterError, Selection
from droptop.frontends.tui.confirm import ConfirmScreen
from droptop.frontends.tui.drilldown import DrillDownScreen
from droptop.frontends.tui.filterbar import FilterBar
from droptop.frontends.tui.header import HeaderBar
from droptop.frontends.tui.ifaces import InterfacePanel
from droptop.frontends.tui.keys import main_screen_bindings
from droptop.frontends.tui.statusline import StatusLine
from droptop.frontends.tui.table import DropTable
from droptop.hostinfo import ProcessInfo, processes_with_comm
from droptop.model import DropRow, Snapshot


class MainScreen(Screen):
    BINDINGS = main_screen_bindings()

    class Ready(Message):
        """Mounted: the app sends what arrived before (the screen never calls up into the app)."""

    class ResetRequested(Message):
        """The user confirmed `z`: the app resets the counters on the poll loop's thread."""

    def __init__(
        self,
        *,
        show_not_specified: bool = True,
        initial_filter: str = "",
        process_lookup: Callable[[str], list[ProcessInfo]] = processes_with_comm,
        hide_benign: bool = False,
    ) -> None:
        super().__init__()
        self._process_lookup = process_lookup
        self.hide_benign = hide_benign
        """True after `b` (or --hide-benign): rows classified as benign frees are hidden."""
        self.show_not_specified = show_not_specified
        """False after `n`: NOT_SPECIFIED rows are hidden."""
        self.filter = Filter()
        """The filter in force (the last one that parsed)."""
        self._initial_filter = initial_filter
        self.snapshot: Snapshot | None = None
        """The snapshot on display."""

    def compose(self) -> ComposeResult:
        yield HeaderBar(id="header")
        yield InterfacePanel(id="ifaces")
        yield DropTable(id="drops")
        yield FilterBar(id="filter")
        yield StatusLine(id="status")
        yield Footer(compact=True)

    @property
    def table(self) -> DropTable:
        return self.query_one(DropTable)

    @property
    def header(self) -> HeaderBar:
        return self.query_one(HeaderBar)

    @property
    def status(self) -> StatusLine:
        return self.query_one(StatusLine)

    @property
    def filter_bar(self) -> FilterBar:
        return self.query_one(FilterBar)

    def on_mount(self) -> None:
        self.table.focus()
        if self._initial_filter:
            try:
                self.filter = self.filter_bar.set_text(self._initial_filter)
            except FilterError as e:
                self.status.say(f"bad --filter ignored: {e}", error=True)
        self._summarise()
        self.post_message(self.Ready())

    # --- data from the app -----------------------------------------------------

    def show(self, snap: Snapshot) -> None:
        """Display a snapshot (the app calls this unless the display is paused)."""
        self.snapshot = snap
        self.header.hidden_benign = self.hidden_benign_rate(snap)
        self.header.snapshot = snap
        self.query_one(InterfacePanel).snapshot = snap
        self.table.show(snap, self.visible_rows(snap))
        self._summarise()

    def show_extras(self, snap: Snapshot) -> None:
        """The host counters, shown even while the display is paused."""
        self.query_one(InterfacePanel).nics = snap.interfaces
        self.header.usage = snap.usage

    @property
    def selection(self) -> Selection:
        return Selection(
            self.filter,
            hide_unspecified=not self.show_not_specified,
            hide_benign=self.hide_benign,
        )

    def hidden_benign_rate(self, snap: Snapshot) -> float | None:
        """Drops/s of the benign rows `b` hides; None while they are shown."""
        if not self.hide_benign:
            return None
        return sum(r.rate for r in snap.rows if r.benign is not None)

    def visible_rows(self, snap: Snapshot) -> list[DropRow]:
        return self.selection.rows(snap.rows)

    def _redisplay(self) -> None:
        if self.snapshot is not None:
            self.show(self.snapshot)
        else:
            self._summarise()

    def _summarise(self) -> None:
        parts = []
        if self.snapshot is not None:
            shown = self.table.row_count
            parts.append(f"{shown} of {len(self.snapshot.rows)} rows")
        if self.filter:
            parts.append(f"filter: {self.filter.text}")
        if not self.show_not_specified:
            parts.append("NOT_SPECIFIED hidden")
        if self.hide_benign:
            parts.append("benign hidden")
        self.status.summary = "  ".join(parts)

    # --- actions -----------------------------------------------------------------

    def action_filter(self) -> None:
        self.filter_bar.open(self.filter.text)

    def action_back(self) -> None:
        """Esc on the table: clear the filter."""
        if self.filter:
            self.filter_bar.set_text("")
            self.filter = Filter()
            self.status.say("filter cleared")
            self._redisplay()

    def action_sort(self, direction: int) -> None:
        self.table.move_sort(direction)

    def action_invert(self) -> None:
        self.table.invert()

    def action_freeze(self) -> None:
        frozen = not self.table.frozen
        self.table.set_frozen(frozen)
        self.header.frozen = frozen
        self.status.say(
            "row order frozen: new rows go to the bottom (o to unfreeze)"
            if frozen
            else "row order follows the sort again"
        )

    def action_not_specified(self) -> None:
        self.show_not_specified = not self.show_not_specified
        self.status.say(f"{NOT_SPECIFIED} rows {'shown' if self.show_not_specified else 'hidden'}")
        self._redisplay()

    def action_benign(self) -> None:
        """`b`: hide or show rows classified as benign frees (the totals keep them)."""
        self.hide_benign = not self.hide_benign
        self.status.say(
            "benign frees hidden (still counted in the totals; b to show)"
            if self.hide_benign
            else "benign frees shown"
        )
        self.header.hidden_benign = (
            None if self.snapshot is None else self.hidden_benign_rate(self.snapshot)
        )
        self._redisplay()

    def action_interfaces(self) -> None:
        self.query_one(InterfacePanel).toggle_class("-open")

    def action_reset(self) -> None:
        def answered(yes: bool | None) -> None:
            if yes:
                self.post_message(self.ResetRequested())
                self.status.say("counters reset to zero")
            else:
                self.status.say("reset cancelled")

        self.app.push_screen(
            ConfirmScreen(
                "Reset all counters to zero?",
                "Totals restart from now; the kernel program keeps running.",
            ),
            answered,
        )

    # --- events ------------------------------------------------------------------

    @on(FilterBar.Applied)
    def _filter_applied(self, event: FilterBar.Applied) -> None:
        self.filter = event.filter
        self._redisplay()

    @on(FilterBar.Closed)
    def _filter_closed(self) -> None:
        self.table.focus()
        self._summarise()

    def action_drilldown(self) -> None:
        """Enter: open the details of the row under the cursor."""
        row = self.table.cursor_drop_row()
        if row is None or self.snapshot is None:
            return
        self.app.push_screen(
            DrillDownScreen(row.key, self.snapshot, process_lookup=self._process_lookup)
        )

    @on(DropTable.RowSelected, "#drops")
    def _row_clicked(self, event: DropTable.RowSelected) -> None:
        """A click on the row under the cursor (Enter is the screen's binding)."""
        event.stop()
        self.action_drilldown()

    @on(DropTable.HeaderSelected, "#drops")
    def _header_clicked(self, event: DropTable.HeaderSelected) -> None:
        event.stop()
        key = event.column
        if key == self.table.sort_key:
            self.table.invert()
        else:
            self.table.set_sort(key)
