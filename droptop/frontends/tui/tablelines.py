"""The drop table's cells as Segments, styled the way Textual's DataTable styles them.

Drawing only: the widget (table.py) decides which lines to draw and keeps each
cell's Segments, so a changed line re-renders only its changed cells. The styling
follows DataTable's rules (row style, cursor and hover layered on top, the
cursor's foreground winning over a cell's colours), so the table looks the same
as when it was a DataTable.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.console import Console, ConsoleOptions
from rich.padding import Padding
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.renderables.styled import Styled


@dataclass(frozen=True, slots=True)
class Palette:
    """The table's component styles, resolved for the current theme and focus."""

    base: Style
    """The widget's own style (background, tint when focused)."""
    header: Style
    cursor: Style
    hover: Style
    header_hover: Style
    header_cursor: Style


class Painter:
    """Renders cells and line ends for one palette, console and cell padding."""

    def __init__(
        self, console: Console, options: ConsoleOptions, palette: Palette, padding: int
    ) -> None:
        self._console = console
        self._options = options
        self._palette = palette
        self._padding = padding
        self._styles: dict[tuple[bool, bool, bool], tuple[Style, Style, Style]] = {}

    @property
    def base(self) -> Style:
        return self._palette.base

    def _layers(self, header: bool, cursor: bool, hover: bool) -> tuple[Style, Style, Style]:
        """(row style, highlight, post style), composed as DataTable composes them."""
        key = (header, cursor, hover)
        layers = self._styles.get(key)
        if layers is None:
            p = self._palette
            over = Style()
            if hover:
                over += p.hover
                if header:
                    over += p.header_hover
            if cursor:
                over += p.cursor
                if header:
                    over += p.header_cursor
            # The cursor's foreground wins over a cell's own colours; its background
            # does not (DataTable's defaults: foreground "css", background "renderable").
            post = Style.from_color(color=over.color) + Style.null()
            layers = self._styles[key] = (p.header if header else p.base, over, post)
        return layers

    def cell(
        self,
        text: Text,
        column: int,
        width: int,
        *,
        header: bool = False,
        cursor: bool = False,
        hover: bool = False,
    ) -> list[Segment]:
        """One cell, padded on both sides, `width` + 2 * padding cells wide.

        The column index rides along as style meta: it keeps neighbouring cells'
        segments apart when the line is simplified (as DataTable's row and column
        meta do), so screenshots segment a line the same way.
        """
        row_style, over, post = self._layers(header, cursor, hover)
        pre = row_style + Style.from_meta({"column": column}) + over
        lines = self._console.render_lines(
            Styled(Padding(text, (0, self._padding)), pre_style=pre, post_style=post),
            self._options.update_dimensions(width + 2 * self._padding, 1).update(no_wrap=True),
        )
        return lines[0]

    def fill(
        self, cells: int, *, header: bool = False, cursor: bool = False, hover: bool = False
    ) -> Segment:
        """The rest of the line to the right of the last column."""
        row_style, over, _ = self._layers(header, cursor, hover)
        return Segment(
            " " * max(0, cells), row_style + over + Style.from_meta({"out_of_bounds": True})
        )
