"""The drop table: one row per DropKey, updated in place.

Rows are keyed by DropKey, so the cursor follows a row across refreshes and
re-sorts. A refresh adds and removes only the rows that came or went, re-sorts
only when the order changed, and rewrites (update_cell) only cells whose text
changed, and only near the viewport: rows far off screen are brought up to date
when scrolling reaches them. Columns are rebuilt only when the terminal width
admits a different set of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey

from droptop.model import DropKey, DropRow, Snapshot
from droptop.tui import columns as cols

_SCROLLBAR = 2
"""Cells kept free for the vertical scrollbar."""


def row_id(key: DropKey) -> str:
    """A stable, unique string for a DropKey (DataTable row keys are strings)."""
    return repr((key.raw_reason, key.comm, key.kernel_context, key.ifindex, key.netns))


_BLANK = Text("", end="")


class KeyedText(Text):
    """A Text that remembers its row, so DataTable.sort can order rows by our ranking."""

    row: str = ""


def _same(a: Text, b: Text) -> bool:
    return a.plain == b.plain and a.style == b.style and a.spans == b.spans


class DropTable(DataTable, inherit_bindings=False):
    """DataTable that shows Snapshot rows; the screen owns filter, sort and pause state.

    DataTable's own Enter binding is left out so that Enter reaches the screen's
    drill-down binding, which the footer shows.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        b for b in DataTable.BINDINGS if isinstance(b, Binding) and b.key != "enter"
    ]

    DEFAULT_CSS = """
    DropTable {
        height: 1fr;
        max-height: 100%;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(
            id=id,
            cursor_type="row",
            zebra_stripes=False,
            show_row_labels=False,
            cell_padding=cols.CELL_PADDING,
        )
        self.sort_key = cols.DEFAULT_SORT
        """Column key the rows are sorted by."""
        self.descending = True
        """Sort direction; numeric columns start descending."""
        self.frozen = False
        """Keep the current row order; new rows are appended."""
        self._widths: dict[str, int] = {}
        self._rows_by_id: dict[str, DropRow] = {}
        self._shown: dict[str, dict[str, Text]] = {}
        self._seen: set[DropKey] | None = None
        self._age: dict[DropKey, int] = {}
        self._snap: Snapshot | None = None
        self._visible: list[DropRow] = []
        self._stale: set[str] = set()
        """Rows whose cells lag the snapshot because they are far off screen."""
        self.cells_updated = 0
        """Cells rewritten by the last refresh (tests check that a refresh is incremental)."""

    # --- public -----------------------------------------------------------

    @property
    def visible_columns(self) -> list[str]:
        return list(self._widths)

    def cursor_row_key(self) -> DropKey | None:
        """The DropKey under the cursor, if any."""
        if not self.row_count:
            return None
        try:
            rk = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        except Exception:  # cursor outside the table while it is being rebuilt
            return None
        row = self._rows_by_id.get(rk.value or "")
        return row.key if row is not None else None

    def cursor_drop_row(self) -> DropRow | None:
        key = self.cursor_row_key()
        return None if key is None else self._rows_by_id.get(row_id(key))

    def row_keys_in_order(self) -> list[DropKey]:
        return [self._rows_by_id[r.key.value].key for r in self.ordered_rows]

    def show(self, snap: Snapshot, visible: Sequence[DropRow]) -> None:
        """Display `visible` rows of `snap`, changing only what changed.

        Rows are added, removed and ordered at once; cell text is written only for
        the rows on screen (and a page either side). Rows further away are marked
        stale and written when scrolling brings them near, so a 10,000-row map
        costs a refresh of one screenful, not of every row.
        """
        self._note_new_rows(snap)
        self._snap = snap
        self._visible = list(visible)
        if not self._widths:
            self._rebuild_columns()
        cursor = self.cursor_row_key()
        wanted = {row_id(r.key): r for r in visible}
        for rid in [rid for rid in self._rows_by_id if rid not in wanted]:
            self.remove_row(rid)
            del self._rows_by_id[rid]
            self._shown.pop(rid, None)
        self.cells_updated = 0
        for rid, row in wanted.items():
            if rid not in self._rows_by_id:
                self._add_placeholder(rid)
            self._rows_by_id[rid] = row
        self._stale = set(wanted)
        self._order()
        self._restore_cursor(cursor)
        self._flush_window()

    def set_sort(self, key: str, descending: bool | None = None) -> None:
        """Sort by column `key` (default direction for its type unless given)."""
        spec = cols.BY_KEY[key]
        self.sort_key = key
        self.descending = spec.numeric if descending is None else descending
        self._relabel()
        self._reorder_now()

    def invert(self) -> None:
        self.descending = not self.descending
        self._relabel()
        self._reorder_now()

    def move_sort(self, direction: int) -> None:
        """`<` / `>`: the sort column moves among the visible columns."""
        order = self.visible_columns or [c.key for c in cols.COLUMNS]
        i = order.index(self.sort_key) if self.sort_key in order else 0
        self.set_sort(order[(i + direction) % len(order)])

    def set_frozen(self, frozen: bool) -> None:
        self.frozen = frozen
        if not frozen:
            self._reorder_now()

    # --- internals ----------------------------------------------------------

    def _note_new_rows(self, snap: Snapshot) -> None:
        keys = {r.key for r in snap.rows}
        for k in list(self._age):
            self._age[k] += 1
            if self._age[k] >= cols.NEW_ROW_REFRESHES or k not in keys:
                del self._age[k]
        if self._seen is not None:  # the first snapshot has nothing "new"
            for k in keys - self._seen:
                self._age[k] = 0
            self._seen |= keys
        else:
            self._seen = set(keys)

    def is_new(self, key: DropKey) -> bool:
        return key in self._age

    def _cells(self, row: DropRow) -> dict[str, Text]:
        assert self._snap is not None
        new = self.is_new(row.key)
        out: dict[str, Text] = {}
        for key, width in self._widths.items():
            out[key] = cols.cell(
                cols.BY_KEY[key], row, self._snap, width, new=new, color=not self.app.no_color
            )
        return out

    def _add_placeholder(self, rid: str) -> None:
        """A new row with blank cells; _flush_window writes it when it is in view."""
        # One shared blank Text for every unwritten cell: with 10k rows, ten fresh
        # objects per row were ~20 MB. Cells are replaced, never mutated.
        cells = dict.fromkeys(self._widths, _BLANK)
        first = next(iter(cells))
        cells[first] = self._keyed(cells[first], rid)
        self.add_row(*cells.values(), key=rid)
        self._shown[rid] = cells

    def _write_row(self, rid: str) -> None:
        """Bring one row's cells up to date, touching only cells whose text changed."""
        cells = self._cells(self._rows_by_id[rid])
        old = self._shown[rid]
        first = next(iter(cells))
        for ckey, text in cells.items():
            if not _same(text, old[ckey]):
                if ckey == first:
                    text = self._keyed(text, rid)
                self.update_cell(rid, ckey, text)
                self.cells_updated += 1
        self._shown[rid] = cells

    def _window(self) -> range:
        """Row indices on screen, plus a page above and below."""
        page = max(1, self.size.height - (self.header_height if self.show_header else 0))
        top = int(self.scroll_y)
        return range(max(0, top - page), min(self.row_count, top + 2 * page))

    def _flush_window(self) -> None:
        if not self._stale:
            return
        ordered = self.ordered_rows
        for index in self._window():
            rid = ordered[index].key.value or ""
            if rid in self._stale:
                self._stale.discard(rid)
                self._write_row(rid)

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        self._flush_window()

    @staticmethod
    def _keyed(text: Text, rid: str) -> KeyedText:
        kt = KeyedText(text.plain, style=text.style, no_wrap=True, end="")
        kt.spans = list(text.spans)
        kt.row = rid
        return kt

    def _ranking(self) -> list[str]:
        spec = cols.BY_KEY.get(self.sort_key, cols.BY_KEY[cols.DEFAULT_SORT])
        rows = sorted(self._rows_by_id.items(), key=lambda kv: kv[0])  # tie-break
        rows.sort(key=lambda kv: spec.sort_key(kv[1]), reverse=self.descending)
        return [rid for rid, _ in rows]

    def _order(self) -> None:
        if self.frozen:
            return
        self._apply_ranking(self._ranking())

    def _reorder_now(self) -> None:
        """Re-sort now (also redraws the header labels, which DataTable caches)."""
        cursor = self.cursor_row_key()
        self._apply_ranking(self._ranking(), force=True)
        self._restore_cursor(cursor)

    def _apply_ranking(self, ranking: list[str], *, force: bool = False) -> None:
        current = [r.key.value for r in self.ordered_rows]
        if not self._widths or (current == ranking and not force):
            return
        rank = {rid: i for i, rid in enumerate(ranking)}
        first = next(iter(self._widths))
        self.sort(first, key=lambda cell: rank[cell.row])

    def _restore_cursor(self, cursor: DropKey | None) -> None:
        if cursor is None:
            return
        rid = row_id(cursor)
        if rid in self._rows_by_id:
            index = self.get_row_index(rid)
            if index != self.cursor_row:
                self.move_cursor(row=index, animate=False)

    def _table_width(self) -> int:
        return max(10, self.size.width - _SCROLLBAR)

    def _rebuild_columns(self) -> None:
        """(Re)create the columns for the current width; rows are re-added."""
        cursor = self.cursor_row_key()
        self._widths = cols.layout(self._table_width())
        if self.sort_key not in self._widths:
            self.sort_key = cols.DEFAULT_SORT
            self.descending = True
        self.clear(columns=True)
        self._rows_by_id.clear()
        self._shown.clear()
        for key, width in self._widths.items():
            spec = cols.BY_KEY[key]
            self.add_column(
                cols.header_label(spec, width, self.sort_key, self.descending),
                width=width,
                key=key,
            )
        if self._snap is not None:
            for row in self._visible:
                rid = row_id(row.key)
                self._add_placeholder(rid)
                self._rows_by_id[rid] = row
            self._stale = set(self._rows_by_id)
            self._order()
            self._restore_cursor(cursor)
            self._flush_window()

    def _relabel(self) -> None:
        for key, width in self._widths.items():
            spec = cols.BY_KEY[key]
            self.columns[ColumnKey(key)].label = cols.header_label(
                spec, width, self.sort_key, self.descending
            )

    def on_resize(self, event: events.Resize) -> None:
        if cols.layout(self._table_width()) != self._widths:
            self._rebuild_columns()
        self._flush_window()  # a taller table shows rows that were off screen
