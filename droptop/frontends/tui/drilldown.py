"""The details of one row: what the reason means, whose drop it is, which packets, and where.

Opened with Enter, closed with Esc (the table cursor has not moved meanwhile). It
follows the same row as new snapshots arrive. Sections, top to bottom: the reason
(its explanation, the caveat where the kernel's name misleads, why a benign row is
a free, what a counter row counts), the row's numbers, "Whose drop" (context in
words, socket owner, cgroup and service, namespace), the sampled packets and the
top flows among them (samples, not counts), the processes with that comm, the drop
locations and the kernel stacks. The process lookup walks /proc, so it runs in a
thread worker and the screen says so until it returns.

Every string that came from the kernel, a process, a file or a packet is shown
through `safe()` / `printable` as Text, never as markup.
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
from droptop.collector.counters import SPECS
from droptop.collector.stacks import strip_tracing_frames
from droptop.frontends.tui.format import (
    CONTEXT_WORDS,
    clock,
    date_clock,
    human_bytes,
    human_count,
    human_rate,
    ifname_label,
    is_counter,
    netns_label,
    row_netns_label,
    safe,
    task_label,
)
from droptop.hostinfo import ProcessInfo
from droptop.model import DropKey, DropRow, PacketSample, Snapshot
from droptop.names.caveats import caveat
from droptop.names.explain import explain
from droptop.packets.decode import ARP_OPS, ICMP6_TYPES, ICMP_TYPES, Decoded, decode_cached
from droptop.packets.flows import FLOWS_TITLE, endpoint, top_flows
from droptop.sanitize import printable

MAX_STACKS = 5
MAX_FRAMES = 12
MAX_FLOWS = 5
PAYLOAD_SHOWN = 48
"""Bytes of the newest sample's payload shown (escaped): enough to recognise a protocol."""


def samples_title(n: int) -> str:
    """The heading says what these are: a few kept packets, not a count of drops."""
    return f"Sampled packets ({n} samples, not counts; newest last)"


MAX_CMDLINE_SHOWN = 1024
"""Characters of a process's command line shown: it can be megabytes (ARG_MAX), and the
process table is drawn again on every refresh; a 2.8 MB one took 0.9 s each time."""


def _shown(text: str, limit: int) -> str:
    """At most `limit` characters of process text, cut visibly, before escaping."""
    return text if len(text) <= limit else text[:limit] + "…"


def sample_time(t: float) -> str:
    """HH:MM:SS.mmm: samples of one poll differ below the second."""
    return f"{clock(t)}.{int((t % 1) * 1000):03d}"


def sample_info(d: Decoded) -> str:
    """TCP flags, the ICMP type, the ARP operation, VLAN tags, and whether it was cut."""
    parts = []
    if d.vlan:
        parts.append("vlan " + ",".join(str(v) for v in d.vlan))
    if d.proto == "tcp" and d.tcp_flags:
        parts.append(f"flags {d.tcp_flags}")
    elif d.proto in ("icmp", "icmpv6") and d.icmp_type is not None:
        names = ICMP6_TYPES if d.proto == "icmpv6" else ICMP_TYPES
        name = names.get(d.icmp_type, f"type {d.icmp_type}")
        parts.append(f"{name}" + (f" code {d.icmp_code}" if d.icmp_code else ""))
    elif d.family == "arp" and d.arp_op is not None:
        parts.append(ARP_OPS.get(d.arp_op, f"op {d.arp_op}"))
    if d.fragment is not None:
        parts.append(f"frag {d.fragment}")
    if d.truncated:
        parts.append("truncated")
    if d.malformed:
        parts.append("malformed")
    return ", ".join(parts)


def payload_text(sample: PacketSample, d: Decoded) -> str:
    """The bytes after the decoded headers, as text with every control escaped (\\x1b)."""
    data = sample.captured[d.payload_offset : d.payload_offset + PAYLOAD_SHOWN]
    text = printable(data.decode("latin-1"))
    return text + ("…" if len(sample.captured) - d.payload_offset > PAYLOAD_SHOWN else "")


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
            yield Static("Whose drop", classes="drill-section", id="drill-who-title")
            yield Static(id="drill-who")
            yield Static("Sampled packets", classes="drill-section", id="drill-samples-title")
            yield Static(id="drill-samples")
            yield Static(FLOWS_TITLE, classes="drill-section", id="drill-flows-title")
            yield Static(id="drill-flows")
            yield Static("Processes", classes="drill-section", id="drill-processes-title")
            yield Static(id="drill-processes")
            yield Static("Drop locations", classes="drill-section", id="drill-locations-title")
            yield Static(id="drill-locations")
            yield Static("Top kernel stacks", classes="drill-section", id="drill-stacks-title")
            yield Static(id="drill-stacks")
        yield Footer()

    def on_mount(self) -> None:
        self._render_all()
        if not self.key.kernel_context and not self.key.counter and self.key.comm:
            self._find_processes(self.key.comm)
        else:
            self.processes = []  # nothing to look up: a counter row, or no comm

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
        if is_counter(row):
            title.append("COUNTER ", "bold reverse")
        title.append_text(safe(row.reason.name, "bold"))
        if row.benign is not None:
            title.append("  benign free", "italic")
        if not is_counter(row):
            title.append(f"  {task_label(row)}")
        title.append(f"  {ifname_label(row)}  {row_netns_label(row)}")
        self.query_one("#drill-title", Static).update(title)
        self.query_one("#drill-reason", Static).update(self._reason(row))
        self.query_one("#drill-row", Static).update(self._row(row))
        self.query_one("#drill-who", Static).update(self._who(row))
        self._render_samples(row)
        counter = is_counter(row)
        for name in ("processes", "locations", "stacks"):  # a counter has no task, no stacks
            self.query_one(f"#drill-{name}-title", Static).display = not counter
            self.query_one(f"#drill-{name}", Static).display = not counter
        if counter:
            return
        self.query_one("#drill-processes-title", Static).update(
            Text(
                "Processes"
                if row.who.blames_task or row.key.kernel_context
                else "Processes (only interrupted by the drop: not the culprit)"
            )
        )
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
        if is_counter(row):
            return self._counter(row)
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
        note = caveat(r.name, [loc.symbol for loc in row.locations])
        if note is not None:
            t.append("\n")
            t.append("Careful: ", "bold")
            t.append(note)
        if row.benign is not None:
            t.append("\n")
            t.append("~ Benign free, not a loss: ", "bold")
            t.append_text(safe(row.benign))
            t.append(" (still counted in the totals; b hides such rows)")
        return t

    def _counter(self, row: DropRow) -> Text:
        """What a counter row counts: the counter's own table (collector/counters.py)."""
        source, _, name = row.key.counter.partition(":")
        spec = SPECS.get((source, name))
        t = Text()
        t.append("# counter ", "dim")
        t.append_text(safe(name or row.reason.name, "bold"))
        t.append("  from ", "dim")
        t.append_text(safe(source or row.reason.subsys))
        t.append(" (a kernel SNMP or driver loss counter, not a kfree_skb drop)\n")
        if spec is not None:
            t.append_text(safe(spec.why))
            if spec.also_seen_as:
                t.append("\n")
                t.append("Also seen as: ", "bold")
                t.append(
                    "some of the same packets show as kfree_skb reason "
                    + ", ".join(printable(a) for a in spec.also_seen_as)
                    + " where the kernel frees them as drops; those rows are apart from this one."
                )
        else:
            t.append("No description for this counter.", "italic")
        t.append("\n")
        t.append(
            "A counter has no task, no socket and no stacks; its rate and total are the "
            "counter's own increase since droptop started, and it is not in the drop total.",
            "italic",
        )
        return t

    def _row(self, row: DropRow) -> Text:
        snap = self.snapshot
        level = severity.rate_level(row.rate)
        style = severity.style(level, color=not self.app.no_color)
        t = Text()
        if not is_counter(row):
            t.append("comm ", "dim")
            t.append_text(safe(task_label(row)))
            if row.key.kernel_context:
                t.append(" (kernel context)")
            elif not row.who.blames_task:
                t.append(" (interrupted)")
            t.append("  ")
        t.append("interface ", "dim")
        t.append_text(safe(ifname_label(row)))
        if row.key.ifindex:
            t.append(f" (ifindex {row.key.ifindex})")
        t.append("  netns ", "dim")
        t.append_text(safe(row_netns_label(row)))
        t.append("\n")
        t.append("rate ", "dim")
        t.append(f"{human_rate(row.rate)}/s", style or "bold")
        if level is not severity.Level.OK:
            t.append(f" {severity.MARK[level]} {severity.WORD[level]}", style)
        t.append("  total ", "dim")
        if is_counter(row):  # a counter counts packets only, and is not in the drop total
            t.append(f"{human_count(row.packets)} since start")
        else:
            t.append(f"{human_count(row.packets)} packets, {human_bytes(row.bytes)}")
        if snap.total_packets and not is_counter(row):
            t.append(f"  {100.0 * row.packets / snap.total_packets:.1f}% of all drops")
        if row.first_seen:
            t.append("  first seen ", "dim")
            t.append(date_clock(row.first_seen))
        return t

    def _who(self, row: DropRow) -> Text:
        """Context in words, the socket's owner, the cgroup and its service, the namespace."""
        who = row.who
        t = Text()
        t.append("context ", "dim")
        if is_counter(row):
            t.append("none: a counter belongs to no task and no socket")
        elif who.context:
            t.append_text(safe(CONTEXT_WORDS.get(who.context, who.context)))
        else:
            t.append("not known (no attribution for this row)", "italic")
        if not is_counter(row):
            t.append("\nsocket ", "dim")
            sock = who.socket
            if sock is None:
                t.append("none known (no socket on the packet, or not a full socket)")
            else:
                if sock.pid is not None:
                    t.append(f"pid {sock.pid} ")
                    t.append_text(safe(sock.comm or "?", "bold"))
                else:
                    t.append("no process holds it now")
                t.append(f" (inode {sock.inode})")
            t.append("\nservice ", "dim")
            t.append_text(safe(who.service, "bold") if who.service else Text("-"))
            t.append("  cgroup ", "dim")
            t.append_text(safe(who.cgroup) if who.cgroup else Text("-"))
        t.append("\nnetns ", "dim")
        t.append_text(safe(who.netns_name or "-"))
        if who.netns_name != str(row.key.netns):
            t.append(f" (inode {netns_label(row.key.netns)})")
        return t

    def _render_samples(self, row: DropRow) -> None:
        """The sampled packets and the flows among them; both hidden when there are none."""
        shown = bool(row.samples)
        decoded = [decode_cached(s) for s in row.samples]
        self.query_one("#drill-samples-title", Static).update(
            Text(samples_title(len(row.samples)) if shown else "Sampled packets")
        )
        self.query_one("#drill-samples", Static).update(
            self._samples(row, decoded)
            if shown
            else Text(
                "none: a counter has no packets"
                if is_counter(row)
                else "No packet samples for this row (sampling off, or none kept yet).",
                "italic",
            )
        )
        self.query_one("#drill-flows-title", Static).display = shown
        flows = self.query_one("#drill-flows", Static)
        flows.display = shown
        if shown:
            flows.update(self._flows(decoded))

    def _samples(self, row: DropRow, decoded: list[Decoded]) -> Table | Text:
        t = Table(box=None, padding=(0, 1, 0, 0), pad_edge=False)  # 8 columns in 80 cells
        t.add_column("TIME", no_wrap=True)
        t.add_column("IF", no_wrap=True)
        t.add_column("PROTO", no_wrap=True)
        t.add_column("SOURCE", no_wrap=True)
        t.add_column("", no_wrap=True)
        t.add_column("DESTINATION", no_wrap=True)
        t.add_column("INFO", no_wrap=True)
        t.add_column("LEN", justify="right", no_wrap=True)
        for sample, d in zip(row.samples, decoded):
            t.add_row(
                Text(sample_time(sample.time)),
                safe(sample.ifname or "-"),
                safe(d.proto or d.family),
                safe(endpoint(d.src, d.sport)),
                Text("→"),
                safe(endpoint(d.dst, d.dport)),
                safe(sample_info(d)),
                Text(str(d.len)),
            )
        newest, d = row.samples[-1], decoded[-1]
        payload = Text()
        if newest.captured[d.payload_offset :].strip(b"\0"):  # not worth a line when all zero
            payload.append("newest payload (escaped): ", "dim")
            payload.append_text(safe(payload_text(newest, d)))
        grid = Table.grid()
        grid.add_row(t)
        if payload:
            grid.add_row(payload)
        return grid

    def _flows(self, decoded: list[Decoded]) -> Table:
        flows = top_flows(decoded, MAX_FLOWS)
        t = Table(box=None, padding=(0, 2, 0, 0), pad_edge=False)
        t.add_column("FLOW (5-tuple)", no_wrap=True)
        t.add_column("SAMPLES", justify="right", no_wrap=True)
        t.add_column("SHARE", justify="right", no_wrap=True)
        for f in flows:
            t.add_row(safe(f.label), Text(str(f.samples)), Text(f"{100.0 * f.share:.0f}%"))
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
            t.append_text(safe(f"[{printable(key.comm)}]", "bold"))
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
