"""The details of one row: what the reason means, where the kernel dropped, and who is running.

Opened with Enter, closed with Esc (the table cursor has not moved meanwhile). It
follows the same row as new snapshots arrive. The process lookup walks /proc, so
it runs in a thread worker and the screen says so until it returns.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from droptop import severity
from droptop.collector.stacks import strip_tracing_frames
from droptop.frontends.tui.format import (
    comm_label,
    date_clock,
    human_bytes,
    human_count,
    human_rate,
    ifname_label,
    netns_label,
    safe,
)
from droptop.hostinfo import ProcessInfo
from droptop.model import DropKey, DropRow, Snapshot
from droptop.names.explain import explain
from droptop.sanitize import printable

MAX_STACKS = 5
MAX_FRAMES = 12
MAX_CMDLINE_SHOWN = 1024
"""Characters of a process's command line shown: it can be megabytes (ARG_MAX), and the
process table is drawn again on every refresh; a 2.8 MB one took 0.9 s each time."""


def _shown(text: str, limit: int) -> str:
    """At most `limit` characters of process text, cut visibly, before escaping."""
    return text if len(text) <= limit else text[:limit] + "…"


def drop_frames(frames: tuple[str, ...]) -> tuple[list[str], int]:
    """The stack without the leading tracing frames (old snapshots still have them)."""
    kept, hidden = strip_tracing_frames(frames)
    return list(kept), hidden


class DrillDownScreen(Screen):
    DEFAULT_CSS = """
    DrillDownScreen {
        #drill-body { padding: 0 1; }
        #drill-title { text-style: bold; background: $panel; padding: 0 1; }
        .drill-section { text-style: bold; margin-top: 1; color: $accent; }
        .drill-note { color: $text-muted; }
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "back", "Back", id="drill_back")]

    def __init__(
        self,
        key: DropKey,
        snapshot: Snapshot,
        *,
        process_lookup: Callable[[str], list[ProcessInfo]],
    ) -> None:
        super().__init__()
        self.key = key
        self.snapshot = snapshot
        self._lookup = process_lookup
        self.processes: list[ProcessInfo] | None = None
        """None until the lookup worker returns."""
        self.process_error: str | None = None

    @property
    def row(self) -> DropRow | None:
        for r in self.snapshot.rows:
            if r.key == self.key:
                return r
        return None

    def compose(self) -> ComposeResult:
        yield Static(id="drill-title")
        with VerticalScroll(id="drill-body"):
            yield Static(id="drill-reason")
            yield Static(id="drill-row")
            yield Static("Processes", classes="drill-section")
            yield Static(id="drill-processes")
            yield Static("Drop locations", classes="drill-section")
            yield Static(id="drill-locations")
            yield Static("Top kernel stacks", classes="drill-section", id="drill-stacks-title")
            yield Static(id="drill-stacks")
        yield Footer()

    def on_mount(self) -> None:
        self._render_all()
        if not self.key.kernel_context:
            self._find_processes(self.key.comm)

    def show(self, snapshot: Snapshot) -> None:
        """A new snapshot arrived (and the display is not paused)."""
        self.snapshot = snapshot
        self._render_all()

    def action_back(self) -> None:
        self.dismiss()

    @work(thread=True, exclusive=True, group="processes")
    def _find_processes(self, comm: str) -> None:
        try:
            found = self._lookup(comm)
            error = None
        except Exception as e:  # psutil raises many things on odd /proc setups
            found, error = [], str(e)
        self.app.call_from_thread(self._got_processes, found, error)

    def _got_processes(self, found: list[ProcessInfo], error: str | None) -> None:
        self.processes = found
        self.process_error = error
        if self.is_mounted:
            self.query_one("#drill-processes", Static).update(self._processes())

    # --- rendering -----------------------------------------------------------

    def _render_all(self) -> None:
        row = self.row
        title = Text(no_wrap=True)
        if row is None:
            title.append("row no longer present (reset or replaced)")
            self.query_one("#drill-title", Static).update(title)
            return
        title.append_text(safe(row.reason.name, "bold"))
        title.append(f"  {comm_label(row.key)}  {ifname_label(row)}")
        self.query_one("#drill-title", Static).update(title)
        self.query_one("#drill-reason", Static).update(self._reason(row))
        self.query_one("#drill-row", Static).update(self._row(row))
        total = sum(s.count for s in row.stacks)
        self.query_one("#drill-stacks-title", Static).update(
            Text(
                f"Top kernel stacks ({len(row.stacks)} distinct, {total} samples; "
                "counts are sampled stacks, not drops)"
            )
        )
        self.query_one("#drill-stacks", Static).update(self._stacks(row))
        self.query_one("#drill-locations", Static).update(self._locations(row))
        self.query_one("#drill-processes", Static).update(self._processes())

    def _reason(self, row: DropRow) -> Text:
        r = row.reason
        t = Text()
        t.append("reason ", "dim")
        t.append_text(safe(r.name, "bold"))
        t.append("  raw ", "dim")
        t.append(r.hex)
        t.append("  subsystem ", "dim")
        t.append_text(safe(r.subsys))
        t.append("  name from ", "dim")
        t.append_text(safe(r.source))
        t.append("\n")
        meaning = explain(r.name)
        if meaning is not None:
            t.append(meaning)
        elif r.source == "raw":
            t.append("No name for this value on this kernel; shown raw.", "italic")
        else:
            t.append("No explanation for this reason yet.", "italic")
        return t

    def _row(self, row: DropRow) -> Text:
        snap = self.snapshot
        level = severity.rate_level(row.rate)
        style = severity.style(level, color=not self.app.no_color)
        t = Text()
        t.append("comm ", "dim")
        t.append_text(safe(comm_label(row.key)))
        if row.key.kernel_context:
            t.append(" (kernel context)")
        t.append("  interface ", "dim")
        t.append_text(safe(ifname_label(row)))
        t.append(f" (ifindex {row.key.ifindex})")
        t.append("  netns ", "dim")
        t.append(netns_label(row.key.netns))
        t.append("\n")
        t.append("rate ", "dim")
        t.append(f"{human_rate(row.rate)}/s", style or "bold")
        if level is not severity.Level.OK:
            t.append(f" {severity.MARK[level]} {severity.WORD[level]}", style)
        t.append("  total ", "dim")
        t.append(f"{human_count(row.packets)} packets, {human_bytes(row.bytes)}")
        if snap.total_packets:
            t.append(f"  {100.0 * row.packets / snap.total_packets:.1f}% of all drops")
        if row.first_seen:
            t.append("  first seen ", "dim")
            t.append(date_clock(row.first_seen))
        return t

    def _stacks(self, row: DropRow) -> Table | Text:
        if not self.snapshot.stacks_enabled:
            return Text("Stacks were not collected (stack sampling is off).", "italic")
        if not row.stacks:
            return Text("No stack samples for this row yet.", "italic")
        total = sum(s.count for s in row.stacks) or 1
        t = Table(box=None, show_header=False, padding=(0, 2, 0, 0), pad_edge=False)
        t.add_column(justify="right", no_wrap=True)
        t.add_column(justify="right", no_wrap=True)
        t.add_column(no_wrap=True)
        for i, st in enumerate(row.stacks[:MAX_STACKS]):
            useful, hidden = drop_frames(st.frames)
            frames = Text()
            if hidden:
                frames.append(f"({hidden} tracing frames hidden)\n", "dim")
            lines = [printable(f) for f in useful[:MAX_FRAMES]]
            if len(useful) > MAX_FRAMES:
                lines.append(f"… {len(useful) - MAX_FRAMES} more frames")
            frames.append("\n".join(lines))
            t.add_row(
                Text(f"{st.count} samples"),
                Text(f"{100.0 * st.count / total:.1f}%"),
                frames,
            )
            if i < min(len(row.stacks), MAX_STACKS) - 1:
                t.add_row(Text(""), Text(""), Text(""))
        if len(row.stacks) > MAX_STACKS:
            t.add_row(
                Text(""), Text(""), Text(f"… {len(row.stacks) - MAX_STACKS} more stacks", "dim")
            )
        return t

    def _locations(self, row: DropRow) -> Table | Text:
        if not row.locations:
            return Text("No drop location recorded.", "italic")
        total = sum(loc.packets for loc in row.locations) or 1
        t = Table(box=None, show_header=False, padding=(0, 2, 0, 0), pad_edge=False)
        t.add_column(no_wrap=True)
        t.add_column(justify="right", no_wrap=True)
        t.add_column(justify="right", no_wrap=True)
        for loc in row.locations:
            t.add_row(
                safe(loc.symbol),
                Text(f"{human_count(loc.packets)} packets"),
                Text(f"{100.0 * loc.packets / total:.1f}%"),
            )
        return t

    def _processes(self) -> Table | Text:
        key = self.key
        if key.kernel_context:
            t = Text("Kernel context: ")
            t.append_text(safe(comm_label(key), "bold"))
            t.append(
                " (softirq, the idle task or a kernel thread) was running when the "
                "packets were dropped, so no process is to blame; the stacks show the path."
            )
            return t
        if self.process_error is not None:
            return Text(f"cannot list processes: {printable(self.process_error)}", "italic")
        if self.processes is None:
            return Text("looking up processes…", "italic")
        if not self.processes:
            t = Text("No live process is named ")
            t.append_text(safe(key.comm, "bold"))
            t.append(" now (it may have exited).")
            return t
        table = Table(box=None, padding=(0, 2, 0, 0), pad_edge=False)
        table.add_column("PID", justify="right", no_wrap=True)
        table.add_column("USER", no_wrap=True)
        table.add_column("COMMAND", no_wrap=True, overflow="ellipsis")
        for p in self.processes:
            table.add_row(
                Text(str(p.pid)),
                safe(_shown(p.user, 64)),
                safe(_shown(p.cmdline, MAX_CMDLINE_SHOWN)),
            )
        return table
