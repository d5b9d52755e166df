"""Which labels the drop counters carry, and how each is read from a row.

The default label set (reason, subsys, device) is bounded by the kernel's reason
table and the machine's interfaces. Everything else is opt-in with ``--labels``:
comm is unbounded and, in softirq, names whatever task the interrupt hit.

LABEL_GETTERS is the one place that knows where a label's value lives (the
attribution fields are in ``DropRow.who``). Every value passes
droptop.sanitize.printable here: the exporter is a front end.
"""

from __future__ import annotations

from collections.abc import Callable

from droptop.errors import DroptopError
from droptop.model import DropRow
from droptop.sanitize import printable

OPTIONAL_LABELS = ("netns", "service", "cgroup", "comm", "location", "context")
"""Labels --labels may add, in the order they appear on a series."""
NO_DEVICE = "none"
"""device label of drops without a device (skb->dev NULL): never an empty or bare ifindex."""
UNKNOWN_LOCATION = "unknown"
OTHER = "other"
"""Every label of the series that --max-series folds the smallest series into."""


def _netns(row: DropRow) -> str:
    if row.who.netns_name:
        return row.who.netns_name
    return str(row.key.netns) if row.key.netns else NO_DEVICE


LABEL_GETTERS: dict[str, Callable[[DropRow], str]] = {
    "reason": lambda row: row.reason.name,
    "subsys": lambda row: row.reason.subsys,
    "device": lambda row: row.ifname or NO_DEVICE,
    "netns": _netns,
    "service": lambda row: row.who.service or "",
    "cgroup": lambda row: row.who.cgroup or "",
    "comm": lambda row: row.key.comm,
    "context": lambda row: row.who.context,
}
"""Label name -> value for a row (raw; clean() makes it safe). location is per Location,
not per row: see strip_offset()."""


def clean(value: str) -> str:
    """A label value that cannot break the exposition or a person's terminal.

    printable() escapes control characters; quotes and backslashes are escaped by
    the renderer. Lone surrogates would make the UTF-8 encoding of a scrape fail.
    """
    value = printable(value)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "backslashreplace").decode("ascii", "replace")
    return value


def strip_offset(symbol: str) -> str:
    """ "__udp4_lib_rcv+0x4bc" -> "__udp4_lib_rcv": offsets change with every kernel build."""
    if not symbol:
        return UNKNOWN_LOCATION
    return symbol.split("+", 1)[0] or UNKNOWN_LOCATION


def parse_labels(text: str) -> tuple[str, ...]:
    """ "netns,service" -> ("netns", "service") in OPTIONAL_LABELS order; DroptopError(2) else."""
    wanted = [w.strip() for w in text.split(",") if w.strip()]
    unknown = [w for w in wanted if w not in OPTIONAL_LABELS]
    if unknown:
        raise DroptopError(
            f"--labels: unknown label {printable(unknown[0])!r} "
            f"(choose from {', '.join(OPTIONAL_LABELS)})",
            2,
        )
    return tuple(name for name in OPTIONAL_LABELS if name in wanted)


def label_names(optional: tuple[str, ...]) -> tuple[str, ...]:
    """The full label names of the drop counters for the chosen optional labels."""
    for name in optional:
        if name not in OPTIONAL_LABELS:
            raise DroptopError(f"unknown exporter label {printable(name)!r}", 2)
    return ("reason", "subsys", "device", *(n for n in OPTIONAL_LABELS if n in optional))
