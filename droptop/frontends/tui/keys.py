"""Every key binding in one table, so the footer, the help screen and the code agree.

Keys follow top/htop/k9s habits. Each binding has an id, so a keymap can rebind
it (App.set_keymap) and the help screen can name it. The order here is the
footer's order on the main screen: what a newcomer needs first comes first.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding

SORT_GROUP = Binding.Group("Sort", compact=True)
INTERVAL_GROUP = Binding.Group("Interval", compact=True)


@dataclass(frozen=True, slots=True)
class Key:
    id: str
    keys: str
    """Textual key string; commas separate alternatives."""
    action: str
    footer: str
    """Short label for the footer."""
    help: str
    """Sentence for the help screen."""
    scope: str
    """app: works on every screen (the app owns the action); table: the main screen only."""
    show: bool = True
    """Shown in the footer."""
    display: str | None = None
    group: Binding.Group | None = None
    priority: bool = False


KEYS: tuple[Key, ...] = (
    Key("quit", "q,f10", "quit", "Quit", "quit droptop", "app", display="q"),
    Key("help", "question_mark,f1", "help", "Help", "show this help", "app", display="?"),
    Key("filter", "slash", "filter", "Filter", "filter rows (syntax below)", "table"),
    Key(
        "drilldown",
        "enter",
        "drilldown",
        "Details",
        "details of the row: whose drop, sampled packets and flows, stacks, processes",
        "table",
        display="⏎",
    ),
    Key(
        "sort_left",
        "less_than_sign",
        "sort(-1)",
        "Sort left",
        "sort by the column to the left",
        "table",
        display="<",
        group=SORT_GROUP,
    ),
    Key(
        "sort_right",
        "greater_than_sign",
        "sort(1)",
        "Sort right",
        "sort by the column to the right",
        "table",
        display=">",
        group=SORT_GROUP,
    ),
    Key("pause", "p", "pause", "Pause", "pause the display (collection continues)", "app"),
    Key(
        "snapshot",
        "ctrl+s",
        "snapshot",
        "Save",
        "save a JSON snapshot of every row",
        "app",
        display="^s",
    ),
    Key(
        "interfaces",
        "i",
        "interfaces",
        "Ifaces",
        "show / hide interface counters (driver drops vs kernel drops)",
        "table",
    ),
    Key("invert", "I", "invert", "Invert", "invert the sort order", "table", show=False),
    Key(
        "freeze",
        "o",
        "freeze",
        "Order",
        "freeze row order (new rows go to the bottom)",
        "table",
        show=False,
    ),
    Key(
        "faster",
        "plus",
        "interval(-1)",
        "Faster",
        "refresh more often (min 0.2 s)",
        "app",
        show=False,
        display="+",
        group=INTERVAL_GROUP,
    ),
    Key(
        "slower",
        "minus",
        "interval(1)",
        "Slower",
        "refresh less often (max 10 s)",
        "app",
        show=False,
        display="-",
        group=INTERVAL_GROUP,
    ),
    Key(
        "not_specified",
        "n",
        "not_specified",
        "NOT_SPEC",
        "hide / show NOT_SPECIFIED rows",
        "table",
        show=False,
    ),
    Key(
        "benign",
        "b",
        "benign",
        "Benign",
        "hide / show benign frees (~ rows: not losses; still in the totals)",
        "table",
    ),
    Key("reset", "z", "reset", "Reset", "reset counters to zero (asks first)", "table", show=False),
    Key(
        "back",
        "escape",
        "back",
        "Clear",
        "clear the filter; on other screens: go back",
        "table",
        show=False,
    ),
    Key("interrupt", "ctrl+c", "quit", "Quit", "quit droptop", "app", show=False, priority=True),
)
BY_ID = {k.id: k for k in KEYS}


def _binding(k: Key, action: str) -> Binding:
    return Binding(
        k.keys,
        action,
        k.footer,
        show=k.show,
        key_display=k.display,
        priority=k.priority,
        id=k.id,
        group=k.group,
    )


def app_bindings() -> list[Binding]:
    """The app's BINDINGS: keys that work on every screen."""
    return [_binding(k, k.action) for k in KEYS if k.scope == "app"]


def main_screen_bindings() -> list[Binding]:
    """The main screen's BINDINGS: all keys in KEYS order (app ones forward to the app),
    so the footer lists them in the order above."""
    return [_binding(k, f"app.{k.action}" if k.scope == "app" else k.action) for k in KEYS]
