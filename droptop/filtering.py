"""The filter language typed after `/` in the TUI: small, forgiving, and pure.

    nginx eth0            words match any column (case-insensitive) and AND together
    comm:nginx if:eth     field:value matches one column (substring, case-insensitive)
    !NOT_SPECIFIED        a leading ! negates any term
    rate>100 total>=5k    numeric comparisons on rate (packets/s), total (packets), bytes
    "two words"           quotes keep spaces inside one term

Fields: reason (name, or raw hex exactly), comm, if (name, or ifindex exactly),
netns (inode number, exactly), subsys.
Numbers take k/M/G suffixes. Bad input raises FilterError with a sentence meant to be
shown as is, so the UI can keep the last good filter and say what is wrong.

Nothing here imports Textual: batch mode could use the same filters.
"""

from __future__ import annotations

import operator
import re
import shlex
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from droptop.model import DropRow, Snapshot
from droptop.packets.decode import Decoded, decode_cached

ANY_FIELDS = ("reason", "comm", "if", "netns", "subsys", "service")
"""What a bare word is matched against: the row's own text columns."""
SAMPLE_FIELDS = ("host", "port", "proto")
"""Fields matched against a row's sampled packets (a row matches if any sample does)."""
TEXT_FIELDS = (*ANY_FIELDS, "cgroup", "ctx", "source", *SAMPLE_FIELDS)
"""Fields a `field:value` term may name."""

NUMERIC_FIELDS = ("rate", "total", "bytes")
"""Fields a comparison may name."""

_FIELD_ALIASES = {
    "iface": "if",
    "ifname": "if",
    "dev": "if",
    "ns": "netns",
    "subsystem": "subsys",
    "task": "comm",
    "packets": "total",
    "pkts": "total",
    "context": "ctx",
    "svc": "service",
    "unit": "service",
    "src": "host",
    "dst": "host",
}

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "!=": operator.ne,
    "==": operator.eq,
    ">": operator.gt,
    "<": operator.lt,
    "=": operator.eq,
}

_COMPARISON = re.compile(r"^([A-Za-z_]+)\s*(>=|<=|!=|==|>|<|=)\s*(.*)$")
_NUMBER = re.compile(r"^([0-9]*\.?[0-9]+)([kKmMgG]?)$")
_SUFFIX = {"": 1, "k": 1e3, "m": 1e6, "g": 1e9}


class FilterError(ValueError):
    """The filter text cannot be understood; str(error) says why in one sentence."""


def _field_matches(row: DropRow, field: str, needle: str) -> bool:
    """Does one column of `row` match a lower-cased needle?

    Names match by substring; numbers (netns inode, ifindex, raw reason) only
    exactly, so `netns:0` means "no namespace", not "any inode with a 0 in it".
    """
    if field == "reason":
        return needle in row.reason.name.lower() or needle == row.reason.hex
    if field == "comm":
        return needle in row.key.comm.lower()
    if field == "if":
        return needle in row.ifname.lower() or needle == str(row.key.ifindex)
    if field == "netns":
        return needle == str(row.key.netns) or (
            bool(row.who.netns_name) and needle in row.who.netns_name.lower()
        )
    if field == "subsys":
        return needle in row.reason.subsys.lower()
    if field == "service":
        return row.who.service is not None and needle in row.who.service.lower()
    if field == "cgroup":
        return row.who.cgroup is not None and needle in row.who.cgroup.lower()
    if field == "ctx":
        return needle in row.who.context.lower()
    if field == "source":
        return row.source.lower().startswith(needle)
    if field in SAMPLE_FIELDS:
        return any(_sample_matches(decode_cached(s), field, needle) for s in row.samples)
    raise AssertionError(field)  # pragma: no cover - guarded by the parser


def _sample_matches(d: Decoded, field: str, needle: str) -> bool:
    """host: an exact source or destination address; port: either port; proto: the
    transport (tcp, udp, icmp, icmpv6, arp) or the family (ipv4, ipv6)."""
    if field == "host":
        return needle in (d.src.lower(), d.dst.lower())
    if field == "port":
        return needle in (str(d.sport), str(d.dport))
    return needle in (d.proto.lower(), d.family.lower())


def _row_number(row: DropRow, field: str) -> float:
    if field == "rate":
        return row.rate
    if field == "total":
        return float(row.packets)
    return float(row.bytes)


@dataclass(frozen=True, slots=True)
class Term:
    """One whitespace-separated piece of a filter."""

    text: str
    """The term as typed, for display."""
    field: str | None = None
    """None: match any column. Otherwise a TEXT_FIELDS or NUMERIC_FIELDS name."""
    value: str = ""
    """Lower-cased needle for text terms."""
    op: str = ""
    """Comparison operator for numeric terms."""
    number: float = 0.0
    negate: bool = False

    def matches(self, row: DropRow) -> bool:
        if self.op:
            hit = _OPS[self.op](_row_number(row, self.field or ""), self.number)
        elif self.field is None:
            hit = any(_field_matches(row, f, self.value) for f in ANY_FIELDS)
        else:
            hit = _field_matches(row, self.field, self.value)
        return hit != self.negate


@dataclass(frozen=True, slots=True)
class Filter:
    """A parsed filter: every term must match. The empty filter matches everything."""

    text: str = ""
    terms: tuple[Term, ...] = ()

    def matches(self, row: DropRow) -> bool:
        return all(term.matches(row) for term in self.terms)

    def __bool__(self) -> bool:
        return bool(self.terms)


def parse_number(text: str) -> float:
    """`100`, `2.5k`, `1M` -> float; FilterError otherwise."""
    m = _NUMBER.match(text.strip())
    if not m:
        raise FilterError(f"{text!r} is not a number (try 100, 2.5k or 1M)")
    return float(m.group(1)) * _SUFFIX[m.group(2).lower()]


def _parse_term(token: str) -> Term:
    negate = token.startswith("!")
    body = token[1:] if negate else token
    if not body:
        raise FilterError("'!' must be followed by a term, e.g. !NOT_SPECIFIED")
    m = _COMPARISON.match(body)
    if m:
        field = _FIELD_ALIASES.get(m.group(1).lower(), m.group(1).lower())
        if field not in NUMERIC_FIELDS:
            raise FilterError(
                f"cannot compare {m.group(1)!r}: comparisons work on " + ", ".join(NUMERIC_FIELDS)
            )
        if not m.group(3):
            raise FilterError(f"{token!r} needs a number after {m.group(2)}")
        return Term(
            token,
            field=field,
            op=m.group(2),
            number=parse_number(m.group(3)),
            negate=negate,
        )
    if ":" in body:
        name, _, value = body.partition(":")
        field = _FIELD_ALIASES.get(name.lower(), name.lower())
        if field not in TEXT_FIELDS:
            raise FilterError(f"unknown field {name!r} (fields: {', '.join(TEXT_FIELDS)})")
        if not value:
            raise FilterError(f"{token!r} needs a value after the colon")
        return Term(token, field=field, value=value.lower(), negate=negate)
    return Term(token, value=body.lower(), negate=negate)


def parse_filter(text: str) -> Filter:
    """Parse filter text; raise FilterError (a ValueError) with a readable reason."""
    try:
        tokens = shlex.split(text)
    except ValueError as e:  # unbalanced quotes
        raise FilterError(f"bad quoting: {e}") from None
    return Filter(text=text.strip(), terms=tuple(_parse_term(t) for t in tokens))


NOT_SPECIFIED = "NOT_SPECIFIED"
"""Plain kfree_skb() without a reason: many harmless frees land here, so it can be hidden."""


@dataclass(frozen=True, slots=True)
class Selection:
    """Which rows a front end shows: a filter, and whether NOT_SPECIFIED rows are hidden.

    The one place that combines the two, for batch output, files and the TUI alike.
    """

    filter: Filter = Filter()
    hide_unspecified: bool = False
    hide_benign: bool = False
    """Hide rows classified as frees rather than losses (DropRow.benign)."""

    def __bool__(self) -> bool:
        return bool(self.filter) or self.hide_unspecified or self.hide_benign

    def matches(self, row: DropRow) -> bool:
        if self.hide_unspecified and row.reason.name == NOT_SPECIFIED:
            return False
        if self.hide_benign and row.benign is not None:
            return False
        return self.filter.matches(row)

    def rows(self, rows: Iterable[DropRow]) -> list[DropRow]:
        return list(rows) if not self else [r for r in rows if self.matches(r)]

    def apply(self, snap: Snapshot) -> Snapshot:
        """The snapshot with only the selected rows (the same object when nothing is hidden)."""
        if not self:
            return snap
        return replace(snap, rows=tuple(r for r in snap.rows if self.matches(r)))
