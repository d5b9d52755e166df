"""The drop table: one line per DropRow, drawn with Textual's line API.

A refresh costs what changed on screen, not what is in the map. Rows are ordered
as a list of DropRows; a row's cells are computed only while it is on screen, and
only again when the row object changed (the collector reuses the DropRow of a row
that did not change) or something it shows from the snapshot did (the share of the
total, the trend shifting left). Each line's Strip is kept per row, and after a
refresh only the screen lines whose row, cells, cursor or hover changed are
redrawn, and of those only the changed cells are rendered again. With 1,000 idle
rows a poll redraws no line of the table.

The cursor follows its row (by DropKey) across re-sorts; the look, keys and mouse
handling are those of the DataTable this replaced.
"""

from __future__ import annotations

import operator
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import ClassVar

from rich.segment import Segment
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size, Spacing
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from droptop.frontends.tui import columns as cols
from droptop.frontends.tui.roworder import RowOrder
from droptop.frontends.tui.tablelines import Painter, Palette
from droptop.model import DropKey, DropRow, Snapshot

_SCROLLBAR = 2
"""Cells kept free for the vertical scrollbar."""
HEADER = 1
"""Lines of column header above the rows (they do not scroll)."""
_KEEP_LINES = 3
"""Rows' cached lines are kept for this many screenfuls around the view."""


_Variant = tuple[bool, bool]
"""(cursor, hover): the ways one row's line can be drawn."""


@dataclass(slots=True)
class _Line:
    """What one row shows, and what of it has been drawn."""

    row: DropRow
    sig: tuple[bool, int, int]
    """(new, total packets, trend shift): what the cells depend on besides the row."""
    cells: tuple[Text, ...]
    """A new tuple only when some text changed, so identity means "unchanged on screen".
    A cell whose text did not change keeps its Text object."""
    strips: dict[_Variant, Strip] = field(default_factory=dict)
    """Drawn lines for the current cells."""
    parts: dict[_Variant, list[tuple[Text, list[Segment]]]] = field(default_factory=dict)
    """Each cell's Segments as last drawn, so a redraw renders only cells that changed."""


_Stamp = tuple[object, bool, bool] | None
"""What a screen line shows: (cells or header version, cursor, hover); None = blank."""


def _same_text(a: Text, b: Text) -> bool:
    return a.plain == b.plain and a.style == b.style and a.spans == b.spans


def _same_stamp(a: _Stamp, b: _Stamp) -> bool:
    if a is None or b is None:
        return a is b
    return a[0] is b[0] and a[1] == b[1] and a[2] == b[2]


class DropTable(ScrollView, can_focus=True, inherit_bindings=False):
    """Shows Snapshot rows; the screen owns filter, sort and pause state.

    Enter is left to the screen's drill-down binding, which the footer shows; a
    click on the row under the cursor posts RowSelected, a click on a column
    title posts HeaderSelected.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor_up", "Cursor up", show=False),
        Binding("down", "cursor_down", "Cursor down", show=False),
        Binding("right", "scroll_right", "Scroll right", show=False),
        Binding("left", "scroll_left", "Scroll left", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("ctrl+home", "first_row", "Top", show=False),
        Binding("ctrl+end", "last_row", "Bottom", show=False),
        Binding("home", "left_edge", "Home", show=False),
        Binding("end", "right_edge", "End", show=False),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "droptable--cursor",
        "droptable--hover",
        "droptable--header",
        "droptable--header-cursor",
        "droptable--header-hover",
    }

    # DataTable's look, so replacing it changed nothing on screen.
    DEFAULT_CSS = """
    DropTable {
        background: $surface;
        color: $foreground;
        height: 1fr;
        max-height: 100%;
        &:focus {
            background-tint: $foreground 5%;
            & > .droptable--cursor {
                background: $block-cursor-background;
                color: $block-cursor-foreground;
                text-style: $block-cursor-text-style;
            }
            & > .droptable--header {
                background-tint: $foreground 5%;
            }
        }
        & > .droptable--header {
            text-style: bold;
            background: $panel;
            color: $foreground;
        }
        &:ansi > .droptable--header {
            background: ansi_bright_blue;
            color: ansi_default;
        }
        & > .droptable--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
        & > .droptable--header-cursor {
            background: $accent-darken-1;
            color: $foreground;
        }
        & > .droptable--header-hover {
            background: $accent 30%;
        }
        & > .droptable--hover {
            background: $block-hover-background;
        }
    }
    """

    class RowSelected(Message):
        """The row under the cursor was clicked."""

        def __init__(self, table: DropTable, key: DropKey) -> None:
            super().__init__()
            self.table = table
            self.key = key

        @property
        def control(self) -> DropTable:
            return self.table

    class HeaderSelected(Message):
        """A column title was clicked."""

        def __init__(self, table: DropTable, column: str) -> None:
            super().__init__()
            self.table = table
            self.column = column

        @property
        def control(self) -> DropTable:
            return self.table

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.order = RowOrder()
        """Sort, frozen order, new-row marks and the cursor (pure logic, roworder.py)."""
        self._widths: dict[str, int] = {}
        self._snap: Snapshot | None = None
        self._lines: dict[DropKey, _Line] = {}
        self._labels: tuple[Text, ...] = ()
        self._header_strips: dict[bool, Strip] = {}
        self._painted: dict[int, _Stamp] = {}
        """Screen line -> what was last drawn there."""
        self._look: tuple[object, ...] | None = None
        """What every Strip depends on (width, scroll, styles); a change drops them all."""
        self._painter: Painter | None = None
        self._hover_row = 0
        """Row under the mouse (-1: the header)."""
        self._hover_shown = False
        """Show the hover highlight (after mouse movement, until a key moves the cursor)."""
        self.lines_redrawn = 0
        """Screen lines the last refresh asked to redraw (tests check a refresh is minimal)."""
        self.rows_computed = 0
        """Rows whose cells were computed since the last show() (tests check laziness)."""

    # --- public -------------------------------------------------------------------

    @property
    def sort_key(self) -> str:
        return self.order.sort_key

    @property
    def descending(self) -> bool:
        return self.order.descending

    @property
    def frozen(self) -> bool:
        return self.order.frozen

    @property
    def cursor_row(self) -> int:
        return self.order.cursor_row

    @property
    def _rows(self) -> list[DropRow]:
        return self.order.rows

    @property
    def visible_columns(self) -> list[str]:
        return list(self._widths)

    @property
    def column_widths(self) -> dict[str, int]:
        """Column key -> content width (each column also has CELL_PADDING on both sides)."""
        return dict(self._widths)

    @property
    def row_count(self) -> int:
        return len(self._rows)

    @property
    def hover_row(self) -> int | None:
        """Row index highlighted under the mouse (-1: the column titles), if any."""
        return self._hover_row if self._hover_shown else None

    def header_label(self, key: str) -> Text:
        return self._labels[list(self._widths).index(key)]

    def get_row_index(self, key: DropKey) -> int:
        return self.order.index[key]

    def cursor_row_key(self) -> DropKey | None:
        """The DropKey under the cursor, if any."""
        return self.order.cursor_key()

    def cursor_drop_row(self) -> DropRow | None:
        return self.order.cursor_drop_row()

    def row_keys_in_order(self) -> list[DropKey]:
        return [r.key for r in self._rows]

    def cell_text(self, key: DropKey, column: str) -> Text:
        """The text shown (or to be shown) in one cell."""
        line = self._line_for(self._rows[self.order.index[key]])
        return line.cells[list(self._widths).index(column)]

    def is_new(self, key: DropKey) -> bool:
        return self.order.is_new(key)

    def show(self, snap: Snapshot, visible: Sequence[DropRow]) -> None:
        """Display `visible` rows of `snap`, redrawing only screen lines that changed."""
        self.order.note_new_rows(snap)
        self._snap = snap
        self.rows_computed = 0
        if not self._widths:
            self._rebuild_columns()
        with self._reordering():
            self.order.set_visible(visible)
        self._prune_lines()
        self._sync_view()

    def move_cursor(self, *, row: int, animate: bool = False, scroll: bool = True) -> None:
        self.order.move_cursor(row)
        if scroll:
            self._scroll_to_cursor(animate)
        self._sync_view()

    def set_sort(self, key: str, descending: bool | None = None) -> None:
        """Sort by column `key` (default direction for its type unless given)."""
        with self._reordering():
            self.order.set_sort(key, descending)
        self._relabel()
        self._sync_view()

    def invert(self) -> None:
        with self._reordering():
            self.order.invert()
        self._relabel()
        self._sync_view()

    def move_sort(self, direction: int) -> None:
        """`<` / `>`: the sort column moves among the visible columns."""
        self.set_sort(self.order.next_sort_key(direction, self.visible_columns))

    def set_frozen(self, frozen: bool) -> None:
        with self._reordering():
            self.order.set_frozen(frozen)
        if not frozen:
            self._sync_view()

    # --- rows and order -------------------------------------------------------------

    @contextmanager
    def _reordering(self) -> Iterator[None]:
        """Around a change of order: resize the scroll area, follow the cursor if it moved."""
        count, cursor = len(self._rows), self.cursor_row
        yield
        if len(self._rows) != count:
            self.virtual_size = Size(self._table_width_used(), len(self._rows) + HEADER)
        if self.cursor_row != cursor:
            self._scroll_to_cursor()

    def _line_for(self, row: DropRow) -> _Line:
        """The row's cells, computed again only if the row or what it shows changed."""
        snap = self._snap
        assert snap is not None
        widths = self._widths
        trend = widths.get("trend", 0)
        sig = (
            self.order.is_new(row.key),
            snap.total_packets if "share" in widths else 0,
            min(snap.poll - row.history_end, trend) if trend else 0,
        )
        line = self._lines.get(row.key)
        if line is not None and line.row is row and line.sig == sig:
            return line
        self.rows_computed += 1
        if line is not None and line.row is row and line.sig[0] == sig[0]:
            # Same row: only the cells that read the snapshot can have changed.
            stale = {"share"} if line.sig[1] != sig[1] else set()
            if line.sig[2] != sig[2]:
                stale.add("trend")
        else:
            stale = set(widths)
        color = not self.app.no_color
        cells = []
        for i, (key, width) in enumerate(widths.items()):
            old = line.cells[i] if line is not None else None
            if old is not None and key not in stale:
                cells.append(old)
                continue
            text = cols.cell(cols.BY_KEY[key], row, snap, width, new=sig[0], color=color)
            cells.append(old if old is not None and _same_text(text, old) else text)
        if line is None:
            line = self._lines[row.key] = _Line(row, sig, tuple(cells))
        else:
            line.row, line.sig = row, sig
            if not all(map(operator.is_, cells, line.cells)):
                line.cells = tuple(cells)
                line.strips.clear()
        return line

    def _prune_lines(self) -> None:
        """Forget cached lines far from the view, so scrolling a 10k-row map stays small."""
        page = max(1, self.size.height)
        if len(self._lines) <= 2 * _KEEP_LINES * page:
            return
        top = int(self.scroll_y)
        near = self._rows[max(0, top - _KEEP_LINES * page) : top + _KEEP_LINES * page]
        self._lines = {r.key: self._lines[r.key] for r in near if r.key in self._lines}

    # --- columns ----------------------------------------------------------------------

    def _table_width(self) -> int:
        return max(10, self.size.width - _SCROLLBAR)

    def _table_width_used(self) -> int:
        return sum(w + 2 * cols.CELL_PADDING for w in self._widths.values())

    def _rebuild_columns(self) -> None:
        """Choose the columns for the current width; every cached line is dropped."""
        self._widths = cols.layout(self._table_width())
        self.order.keep_sort_within(list(self._widths))
        self._lines.clear()
        self._relabel()
        self.virtual_size = Size(self._table_width_used(), len(self._rows) + HEADER)
        if self._snap is not None:
            with self._reordering():
                self.order.reorder(keep_order=self.frozen)
        self.refresh()

    def _relabel(self) -> None:
        self._labels = tuple(
            cols.header_label(cols.BY_KEY[key], width, self.sort_key, self.descending)
            for key, width in self._widths.items()
        )
        self._header_strips = {}

    def on_resize(self, event: events.Resize) -> None:
        if cols.layout(self._table_width()) != self._widths:
            self._rebuild_columns()
        self._sync_view()

    # --- drawing ------------------------------------------------------------------------

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._look = None  # theme or focus changed: every Strip is stale
        self.refresh()

    def _stamp(self, y: int) -> _Stamp:
        """What screen line `y` should show now."""
        if y < HEADER:
            hover = self._hover_shown and self._hover_row == -1
            return (self._labels, False, hover)
        index = y - HEADER + int(self.scroll_y)
        if index >= len(self._rows):
            return None
        line = self._line_for(self._rows[index])
        hover = self._hover_shown and index == self._hover_row
        return (line.cells, index == self.cursor_row, hover)

    def _sync_view(self) -> None:
        """Ask Textual to redraw the screen lines whose content changed, and only those."""
        if not self.is_mounted or self._snap is None:
            return
        width, height = self.size
        dirty = [y for y in range(height) if not _same_stamp(self._stamp(y), self._painted.get(y))]
        self.lines_redrawn = len(dirty)
        start = 0
        for i, y in enumerate(dirty):  # one region per run of adjacent lines
            if i + 1 == len(dirty) or dirty[i + 1] != y + 1:
                first = dirty[start]
                self.refresh(Region(0, first, width, y - first + 1))
                start = i + 1

    def _check_look(self) -> None:
        look = (
            self.size.width,
            int(self.scroll_x),
            self.rich_style,
            self.get_pseudo_class_state(),
            tuple(self._widths.items()),
        )
        if look == self._look:
            return
        self._look = look
        palette = Palette(
            base=self.rich_style,
            header=self.get_component_styles("droptable--header").rich_style,
            cursor=self.get_component_rich_style("droptable--cursor"),
            hover=self.get_component_rich_style("droptable--hover"),
            header_hover=self.get_component_rich_style("droptable--header-hover"),
            header_cursor=self.get_component_rich_style("droptable--header-cursor"),
        )
        self._painter = Painter(
            self.app.console, self.app.console_options, palette, cols.CELL_PADDING
        )
        for line in self._lines.values():
            line.strips.clear()
            line.parts.clear()
        self._header_strips = {}

    def render_lines(self, crop: Region) -> list[Strip]:
        self._check_look()
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        stamp = self._stamp(y)
        self._painted[y] = stamp
        painter = self._painter
        assert painter is not None
        if stamp is None:
            return Strip.blank(self.size.width, painter.base)
        hover = stamp[2]
        if y < HEADER:
            strip = self._header_strips.get(hover)
            if strip is None:
                parts = [
                    painter.cell(text, i, width, header=True, hover=hover)
                    for i, (text, width) in enumerate(zip(self._labels, self._widths.values()))
                ]
                strip = self._header_strips[hover] = self._strip(parts, header=True, hover=hover)
            return strip
        line = self._lines[self._rows[y - HEADER + int(self.scroll_y)].key]  # _stamp() made it
        variant = (stamp[1], hover)
        strip = line.strips.get(variant)
        if strip is None:
            old = line.parts.get(variant, ())
            parts = [
                part
                if i < len(old) and (part := old[i])[0] is text
                else (text, painter.cell(text, i, width, cursor=variant[0], hover=hover))
                for i, (text, width) in enumerate(zip(line.cells, self._widths.values()))
            ]
            line.parts[variant] = parts
            strip = line.strips[variant] = self._strip(
                [segments for _, segments in parts], cursor=variant[0], hover=hover
            )
        return strip

    def _strip(
        self,
        parts: list[list[Segment]],
        *,
        header: bool = False,
        cursor: bool = False,
        hover: bool = False,
    ) -> Strip:
        """Cells, then the fill to the widget's width, cropped to the horizontal scroll."""
        painter = self._painter
        assert painter is not None
        width = self.size.width
        segments = [segment for part in parts for segment in part]
        fill = width - self._table_width_used()
        segments.append(painter.fill(fill, header=header, cursor=cursor, hover=hover))
        x = int(self.scroll_x)
        strip = Strip(segments).crop(x, x + width)
        return strip.adjust_cell_length(width, painter.base).simplify()

    # --- cursor, keys and mouse ---------------------------------------------------------

    def _scroll_to_cursor(self, animate: bool = False) -> None:
        if not self._rows:
            return
        width = max(self.size.width, self._table_width_used())
        region = Region(int(self.scroll_x), self.cursor_row + HEADER, width, 1)
        self.scroll_to_region(region, animate=animate, spacing=Spacing(HEADER, 0, 0, 0), force=True)

    def _set_hover(self, shown: bool, row: int | None = None) -> None:
        self._hover_shown = shown
        if row is not None:
            self._hover_row = row
        self._sync_view()

    def _page(self) -> int:
        return self.scrollable_content_region.height - HEADER

    def action_cursor_up(self) -> None:
        self._set_hover(False)
        self.move_cursor(row=self.cursor_row - 1)

    def action_cursor_down(self) -> None:
        self._set_hover(False)
        self.move_cursor(row=self.cursor_row + 1)

    def action_page_down(self) -> None:
        self._set_hover(False)
        page = self._page()
        self.scroll_relative(y=page, animate=False, force=True)
        self.move_cursor(row=self.cursor_row + page, scroll=False)

    def action_page_up(self) -> None:
        self._set_hover(False)
        page = self._page()
        self.scroll_relative(y=-page, animate=False)
        self.move_cursor(row=self.cursor_row - page, scroll=False)

    def action_first_row(self) -> None:
        self._set_hover(False)
        self.move_cursor(row=0)

    def action_last_row(self) -> None:
        self._set_hover(False)
        self.move_cursor(row=len(self._rows) - 1)

    def action_left_edge(self) -> None:
        self._set_hover(False)
        self.scroll_x = 0

    def action_right_edge(self) -> None:
        self._set_hover(False)
        self.scroll_x = self.max_scroll_x

    def _column_at(self, x: int) -> str | None:
        edge = 0
        for key, width in self._widths.items():
            edge += width + 2 * cols.CELL_PADDING
            if x < edge:
                return key
        return None

    def _row_at(self, y: int) -> int | None:
        """Row index on screen line `y`; -1 for the header; None below the last row."""
        if y < HEADER:
            return -1
        index = y - HEADER + int(self.scroll_y)
        return index if index < len(self._rows) else None

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        row = self._row_at(offset.y)
        if row is None:
            self._set_hover(False)
            return
        self._set_hover(True, row)
        if row == -1:  # a title sorts; the cursor stays
            column = self._column_at(offset.x + int(self.scroll_x))
            if column is not None:
                self.post_message(self.HeaderSelected(self, column))
            return
        again = row == self.cursor_row
        self.move_cursor(row=row, animate=True)
        if again:
            self.post_message(self.RowSelected(self, self._rows[row].key))
        event.stop()

    def on_mouse_move(self, event: events.MouseMove) -> None:
        offset = event.get_content_offset(self)
        row = None if offset is None else self._row_at(offset.y)
        if row is None:
            self._set_hover(False)
        else:
            self._set_hover(True, row)

    def on_leave(self, event: events.Leave) -> None:
        self._set_hover(False)

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        self._prune_lines()
