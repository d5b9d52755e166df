"""The three summary lines above the table: where, how much, and what it costs.

    droptop host kernel 12:00:05  every 1s  cpu 1.2% rss 48M
    drops 2.3k/s !! critical ▃▅▇█▆ 1m  total 15.5k  rows 12  hidden benign: 7.0/s  PAUSED
    names btf  map 13/10240 (0%)  bpf 85 ns/drop

Each line is built from parts in order of importance and cut at the widget's
width, so an 80-column terminal loses the least useful part, not the layout.
"""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from droptop import severity
from droptop.frontends.tui.format import (
    clock,
    date_clock,
    human_bytes,
    human_count,
    human_rate,
    safe,
    spark,
)
from droptop.model import SelfUsage, Snapshot

BPF_STATS_HINT = "bpf ns/drop: sysctl kernel.bpf_stats_enabled=1"
SPARK_MAX = 30


class HeaderBar(Widget):
    DEFAULT_CSS = """
    HeaderBar {
        height: 3;
        padding: 0 1;
        background: $panel;
        color: $foreground;
    }
    """

    snapshot: reactive[Snapshot | None] = reactive(None)
    """The snapshot on screen (not the newest one while paused)."""
    usage: reactive[SelfUsage | None] = reactive(None)
    """droptop's own CPU and memory at the last poll."""
    interval: reactive[float] = reactive(1.0)
    """Seconds between polls, as requested (the snapshot carries the measured one)."""
    paused: reactive[bool] = reactive(False)
    """Display paused: the snapshot is not replaced although collection continues."""
    frozen: reactive[bool] = reactive(False)
    """Row order frozen with `o`."""
    hidden_benign: reactive[float | None] = reactive(None)
    """Drops/s of the benign rows hidden with `b` (None: they are shown). Totals keep them."""

    def render(self) -> Text:
        snap = self.snapshot
        width = max(1, self.size.width - 2)
        lines = [self._line_where(snap), self._line_rate(snap, width), self._line_cost(snap)]
        for line in lines:
            line.truncate(width, overflow="ellipsis")
        return Text("\n", end="").join(lines)

    def _style(self, level: severity.Level) -> str:
        return severity.style(level, color=not self.app.no_color)

    def _line_where(self, snap: Snapshot | None) -> Text:
        t = Text(no_wrap=True, end="")
        t.append("droptop ", "bold")
        if snap is None:
            t.append("waiting for the first poll…")
            return t
        if snap.source == "replay":
            t.append("REPLAY ", "bold reverse")
            t.append_text(safe(snap.hostname, "bold"))
            t.append_text(safe(f" {snap.kernel}"))
            t.append(f"  taken {date_clock(snap.time)}")
        else:
            t.append_text(safe(snap.hostname, "bold"))
            t.append_text(safe(f" {snap.kernel}"))
            t.append(f"  {clock(snap.time)}")
            t.append(f"  every {self.interval:g}s")
        u = self.usage
        if u is not None:
            t.append(f"  cpu {u.cpu_percent:.1f}% rss {human_bytes(u.rss)}", "dim")
        return t

    def _line_rate(self, snap: Snapshot | None, width: int) -> Text:
        flags = Text(no_wrap=True, end="")
        if self.hidden_benign is not None:
            flags.append(f"  hidden benign: {human_rate(self.hidden_benign)}/s")
        if self.paused:
            flags.append("  ")
            flags.append(" PAUSED ", "bold reverse")
            flags.append(" (collecting)")
        if self.frozen:
            flags.append("  ")
            flags.append(" ORDER FROZEN ", "bold reverse")
        if snap is None:
            return flags
        level = severity.rate_level(snap.total_rate)
        head = Text(no_wrap=True, end="")
        head.append("drops ")
        head.append(f"{human_rate(snap.total_rate)}/s", self._style(level) or "bold")
        if level is not severity.Level.OK:
            head.append(f" {severity.MARK[level]} {severity.WORD[level]}", self._style(level))
        tail = Text(f"  total {human_count(snap.total_packets)}  rows {len(snap.rows)}")
        tail.append_text(flags)
        room = width - head.cell_len - tail.cell_len - 6
        spark_width = min(SPARK_MAX, room)
        if spark_width >= 8:
            head.append("  ")
            head.append(spark(snap.total_history, spark_width).rjust(spark_width), "cyan")
            head.append(" 1m" if self.interval == 1.0 else f" {spark_width}×")
        head.append_text(tail)
        return head

    def _line_cost(self, snap: Snapshot | None) -> Text:
        t = Text(no_wrap=True, end="")
        if snap is None:
            return t
        if snap.source == "fake":
            t.append("FAKE DATA", self._style(severity.Level.CRITICAL))
            t.append("  ")
        t.append(f"names {snap.names_source}")
        mlevel = severity.map_level(snap.map_used, snap.map_capacity, snap.overflow_packets)
        t.append("  map ")
        if snap.map_capacity:
            pct = 100.0 * snap.map_used / snap.map_capacity
            t.append(f"{snap.map_used}/{snap.map_capacity} ({pct:.0f}%)", self._style(mlevel))
            if mlevel is severity.Level.WARNING:
                t.append(" ! nearly full", self._style(mlevel))
        else:
            t.append("-")
        if snap.overflow_packets:
            t.append(
                f"  {severity.MARK[severity.Level.CRITICAL]} OVERFLOW "
                f"{human_count(snap.overflow_packets)} drops not attributed",
                self._style(severity.Level.CRITICAL),
            )
        if snap.bpf_missed:
            t.append(f"  missed {human_count(snap.bpf_missed)}")
        if snap.source != "replay":
            if snap.bpf_ns_per_drop is not None:
                t.append(f"  bpf {snap.bpf_ns_per_drop:.0f} ns/drop")
            else:
                t.append(f"  {BPF_STATS_HINT}", "dim")
        return t
