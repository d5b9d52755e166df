"""The drop table's row logic without a widget: sort, frozen order, new-row marks, the cursor.

Textual-free, so it is unit-tested directly; `table.DropTable` owns one and only
adds drawing, scrolling and events. The cursor is kept by row key: a re-sort moves
it with its row, and when its row goes away it stays on the same line.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence

from droptop.frontends.tui import columns as cols
from droptop.model import DropKey, DropRow, Snapshot


class RowOrder:
    """Which rows the table shows, in which order, and where the cursor is."""

    def __init__(self) -> None:
        self.sort_key = cols.DEFAULT_SORT
        """Column key the rows are sorted by."""
        self.descending = True
        """Sort direction; numeric columns start descending."""
        self.frozen = False
        """Keep the current row order; new rows are appended."""
        self.cursor_row = 0
        """Index of the row under the cursor."""
        self.visible: list[DropRow] = []
        """The rows to show, as last given (snapshot order)."""
        self.rows: list[DropRow] = []
        """The rows in display order."""
        self.index: dict[DropKey, int] = {}
        self._seen: set[DropKey] | None = None
        self._age: dict[DropKey, int] = {}

    def is_new(self, key: DropKey) -> bool:
        """Marked `+`: the row appeared within the last NEW_ROW_REFRESHES snapshots."""
        return key in self._age

    def cursor_key(self) -> DropKey | None:
        row = self.cursor_drop_row()
        return None if row is None else row.key

    def cursor_drop_row(self) -> DropRow | None:
        if 0 <= self.cursor_row < len(self.rows):
            return self.rows[self.cursor_row]
        return None

    def note_new_rows(self, snap: Snapshot) -> None:
        """Age the new-row marks and mark rows this snapshot adds (none on the first)."""
        keys = {r.key for r in snap.rows}
        for k in list(self._age):
            self._age[k] += 1
            if self._age[k] >= cols.NEW_ROW_REFRESHES or k not in keys:
                del self._age[k]
        if self._seen is not None:
            for k in keys - self._seen:
                self._age[k] = 0
            self._seen |= keys
        else:
            self._seen = keys

    def set_visible(self, visible: Sequence[DropRow]) -> bool:
        """New rows to show; True (and re-ordered) unless they are the very same objects.

        The collector reuses unchanged DropRows, so the same objects in the same order
        mean the same display order: an idle map is never re-sorted.
        """
        visible = list(visible)
        if len(visible) == len(self.visible) and all(map(operator.is_, visible, self.visible)):
            return False
        self.visible = visible
        self.reorder(keep_order=self.frozen)
        return True

    def set_sort(self, key: str, descending: bool | None = None) -> None:
        """Sort by column `key` (default direction for its type unless given)."""
        self.sort_key = key
        self.descending = cols.BY_KEY[key].numeric if descending is None else descending
        self.reorder()

    def invert(self) -> None:
        self.descending = not self.descending
        self.reorder()

    def next_sort_key(self, direction: int, visible_columns: Sequence[str]) -> str:
        """`<` / `>`: the sort column moves among the visible columns."""
        order = list(visible_columns) or [c.key for c in cols.COLUMNS]
        i = order.index(self.sort_key) if self.sort_key in order else 0
        return order[(i + direction) % len(order)]

    def set_frozen(self, frozen: bool) -> None:
        self.frozen = frozen
        if not frozen:
            self.reorder()

    def keep_sort_within(self, columns: Sequence[str]) -> None:
        """A narrower terminal dropped the sort column: fall back to the default sort."""
        if self.sort_key not in columns:
            self.sort_key = cols.DEFAULT_SORT
            self.descending = True

    def move_cursor(self, row: int) -> None:
        self.cursor_row = max(0, min(row, len(self.rows) - 1))

    def reorder(self, *, keep_order: bool = False) -> None:
        """Order the rows (frozen: keep the order, new rows last); the cursor follows its row."""
        cursor = self.cursor_key()
        if keep_order:
            fresh = {r.key: r for r in self.visible}
            rows = [fresh.pop(r.key) for r in self.rows if r.key in fresh]
            rows += fresh.values()
        else:
            spec = cols.BY_KEY.get(self.sort_key, cols.BY_KEY[cols.DEFAULT_SORT])
            rows = sorted(self.visible, key=operator.attrgetter("key"))  # ties: by key
            rows.sort(key=spec.sort_key, reverse=self.descending)
        self.rows = rows
        self.index = {r.key: i for i, r in enumerate(rows)}
        if cursor is not None and cursor in self.index:
            self.cursor_row = self.index[cursor]
        else:  # its row is gone: the cursor stays where it was
            self.cursor_row = max(0, min(self.cursor_row, len(rows) - 1))
