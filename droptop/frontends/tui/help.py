"""The help screen, generated from the key table, the columns and the filter grammar."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from droptop import filtering, severity
from droptop.attribution.context import CONTEXTS
from droptop.frontends.tui.columns import COLUMNS
from droptop.frontends.tui.format import CONTEXT_SHORT, CONTEXT_WORDS, MARKS
from droptop.frontends.tui.keys import KEYS
from droptop.sanitize import printable

_KEY_NAMES = {
    "question_mark": "?",
    "slash": "/",
    "escape": "Esc",
    "less_than_sign": "<",
    "greater_than_sign": ">",
    "plus": "+",
    "minus": "-",
    "enter": "Enter",
    "f1": "F1",
    "f10": "F10",
}

FILTER_HELP = (
    ("nginx eth0", "words match any of " + ", ".join(filtering.ANY_FIELDS) + "; all must match"),
    ("comm:nginx", "one field: " + ", ".join(filtering.TEXT_FIELDS)),
    ("service:nginx  cgroup:docker", "the socket's or task's cgroup: its service or path"),
    ("ctx:softirq-irq  ctx:inline", "context (substring): " + ", ".join(CONTEXTS)),
    ("netns:blue  netns:4026531840", "namespace by name or inode (exact)"),
    ("source:counter", "counter rows only (source:kfree_skb: drops only)"),
    (
        "host:10.0.0.1  port:443  proto:tcp",
        "by samples: rows with a sampled packet from/to that address or port, of that "
        "protocol (tcp, udp, icmp, arp, ipv4, ipv6)",
    ),
    ("!NOT_SPECIFIED", "a leading ! negates a term"),
    ("rate>100  total>=5k", "compare " + ", ".join(filtering.NUMERIC_FIELDS)),
    ('"two words"', "quotes keep spaces inside one term"),
)


def pretty_keys(keys: str) -> str:
    return " / ".join(_KEY_NAMES.get(k, k) for k in keys.split(","))


def keys_table() -> Table:
    t = Table(box=None, padding=(0, 2, 0, 0), show_edge=False, pad_edge=False)
    t.add_column("KEY", style="bold", no_wrap=True)
    t.add_column("WHAT IT DOES")
    t.add_column("ID", style="dim", no_wrap=True)
    for k in KEYS:
        t.add_row(Text(pretty_keys(k.keys)), Text(k.help), Text(k.id))
    t.add_row(Text("click header"), Text("sort by that column (again: invert)"), Text(""))
    return t


def _two_columns(title: str, rows: Iterable[tuple[str, str]]) -> Table:
    """A bold name and what it means, one line each: the help screen's reference tables."""
    t = Table(box=None, padding=(0, 2, 0, 0), show_edge=False, pad_edge=False)
    t.add_column(title, style="bold", no_wrap=True)
    t.add_column("MEANING")
    for name, meaning in rows:
        t.add_row(Text(name), Text(meaning))
    return t


def filter_table() -> Table:
    return _two_columns("FILTER", FILTER_HELP)


def columns_table() -> Table:
    return _two_columns("COLUMN", ((c.label, c.help) for c in COLUMNS))


def marks_table() -> Table:
    return _two_columns("MARK", MARKS)


def contexts_table() -> Table:
    t = Table(box=None, padding=(0, 2, 0, 0), show_edge=False, pad_edge=False)
    t.add_column("CONTEXT", style="bold", no_wrap=True)
    t.add_column("CTX", no_wrap=True)
    t.add_column("MEANING")
    for name in CONTEXTS:
        t.add_row(
            Text(name), Text(CONTEXT_SHORT[name]), Text(CONTEXT_WORDS[name].partition(": ")[2])
        )
    return t


class HelpScreen(Screen):
    """Esc, ? or F1 go back to where you were; q still quits."""

    DEFAULT_CSS = """
    HelpScreen {
        #help-body { padding: 0 1; }
        .help-title { text-style: bold; margin-top: 1; color: $accent; }
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,f1", "close", "Back", id="help_close", priority=True),
    ]

    def __init__(self, notes: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.notes = notes
        """Facts about this run (kernel headers used, how the program is attached)."""

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-body"):
            yield Static(
                Text("droptop: top for packets the Linux kernel drops", style="bold"),
                classes="help-title",
            )
            yield Static(
                "Rows are (reason, comm, interface, netns) keys counted in the kernel at the "
                "kfree_skb tracepoint, beside loss counters that kfree_skb never sees (#). "
                "Comm is the task running at the drop; in brackets it did not make the "
                "drop: kernel context (softirq, idle, kernel thread), or a task a softirq "
                "only interrupted. The service and cgroup are the receiving socket's, else "
                "the task's when the task made the drop.",
                markup=False,
            )
            yield Static("Keys", classes="help-title")
            yield Static(keys_table())
            yield Static("Filter", classes="help-title")
            yield Static(filter_table())
            yield Static("Severity", classes="help-title")
            yield Static(severity.legend(), markup=False)
            yield Static("Columns", classes="help-title")
            yield Static(columns_table())
            yield Static("Marks", classes="help-title")
            yield Static(marks_table())
            yield Static("Contexts (CTX, ctx:)", classes="help-title")
            yield Static(contexts_table())
            if self.notes:
                yield Static("This run", classes="help-title")
                yield Static(Text("\n".join(printable(n) for n in self.notes)))
        yield Footer()

    def action_close(self) -> None:
        self.dismiss()
