"""Turn a stream of snapshots into monotonic, bounded Prometheus counters.

Snapshots carry cumulative counts that may start again from zero (the TUI's ``z``
key) and rows keyed on more fields than the exported labels. SeriesBook keeps,
per row, the last cumulative value it saw and credits only the increase to the
row's label set, so an exported counter never goes down:

- a value lower than the last one seen means a reset: the new value is the
  increase since it (``Snapshot.resets``, if the collector provides it, makes
  every row a reset at once, which also catches a row that grew past its old
  value within one interval);
- rows that vanish keep their series (their counters simply stop moving).

``--max-series``: at most ``max_series`` label sets are exported. Beyond it the
label sets with the fewest packets (all time) fold into one series whose every
label is "other". Every increase is credited to exactly one exported series at
the moment it is counted, so ``sum(rate(...))`` stays exact and no series ever
goes down, through any number of moves:

- a series that folds stops being exported (Prometheus marks it stale); only its
  *later* increases go to "other". Moving its past value into "other" would make
  rate(other) spike by drops that happened long ago. The one exception: a label
  set folded before any view exported it hands its value to "other", else those
  drops would never be seen at all;
- a folded label set that overtakes the smallest exported one by PROMOTE_FACTOR
  (a new reason in a storm) gets its own series back, resuming from the value
  it had when it folded (so it does not go down either), while "other" keeps
  everything it was credited. The factor keeps two similar series from swapping
  on every poll.

The book is touched only by the poll thread; views are immutable and shared with
the scrape threads.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

from droptop.errors import DroptopError
from droptop.frontends.exporter.labels import (
    LABEL_GETTERS,
    OTHER,
    clean,
    label_names,
    strip_offset,
)
from droptop.model import DropKey, DropRow, Snapshot

DEFAULT_MAX_SERIES = 1000
"""Label sets of the drop counters (each is 2 samples: drops and bytes). The default
labels are bounded by ~130 reasons x the node's devices, so 1000 leaves room for a
busy node with many veths while a 100-node fleet stays near 200k samples; it is also
below common per-target sample_limit settings (5k-10k)."""
PROMOTE_FACTOR = 1.25
"""A folded label set gets its own series back once its all-time packets exceed the
smallest exported label set's by this factor."""

Labels = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SeriesView:
    """The drop counters as of one update: what a scrape renders. Never mutated."""

    names: tuple[str, ...]
    """Label names, in order."""
    packets: dict[Labels, int]
    bytes: dict[Labels, int]
    text: dict[Labels, str]
    """Rendered {label="value",...} per label set; append-only and shared across views."""
    folded: int
    """Label sets currently folded into the "other" series."""
    cache: dict[str, bytes] = field(default_factory=dict, compare=False)
    """Rendered sample lines per format (filled by the first scrape of each format)."""


class _RowState:
    __slots__ = ("bytes", "labels", "locs", "packets", "row")

    def __init__(self) -> None:
        self.row: DropRow | None = None
        self.packets = 0
        self.bytes = 0
        self.locs: dict[str, int] = {}
        self.labels: Labels = ()


def increase(new: int, last: int) -> int:
    """Increase of a cumulative counter; lower than the last value means it was reset."""
    return new - last if new >= last else new


def split(total: int, weights: list[int]) -> list[int]:
    """`total` split proportionally to `weights`, exactly (the remainder goes to the largest)."""
    wsum = sum(weights)
    if wsum <= 0:
        return [total] + [0] * (len(weights) - 1)
    parts = [total * w // wsum for w in weights]
    parts[max(range(len(weights)), key=weights.__getitem__)] += total - sum(parts)
    return parts


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def label_text(names: tuple[str, ...], values: Labels) -> str:
    """{a="x",b="y"} with the exposition formats' escaping of backslash, newline and quote.

    Both the text format and OpenMetrics escape label values this way; the result is
    cached per label set, which is what makes a 10k-series scrape cheap.
    """
    return "{" + ",".join(f'{n}="{_escape(v)}"' for n, v in zip(names, values)) + "}"


class SeriesBook:
    """Cumulative snapshots in, monotonic bounded counters out (see the module docstring)."""

    def __init__(self, labels: tuple[str, ...] = (), max_series: int = DEFAULT_MAX_SERIES) -> None:
        if max_series < 1:
            raise DroptopError("--max-series must be at least 1", 2)
        self.names = label_names(labels)
        self.max_series = max_series
        self._by_location = "location" in self.names
        self._loc_index = self.names.index("location") if self._by_location else -1
        self._getters = [LABEL_GETTERS[n] for n in self.names if n != "location"]
        self._other: Labels = (OTHER,) * len(self.names)
        self._rows: dict[DropKey, _RowState] = {}
        self._resets: object = None
        # Exported values (members and, once folding started, OTHER); hidden values of
        # folded label sets that were exported before (resumed if they come back).
        self._p: dict[Labels, int] = {}
        self._b: dict[Labels, int] = {}
        self._hidden: dict[Labels, tuple[int, int]] = {}
        self._total: dict[Labels, int] = {}
        """All-time packets per label set, wherever credited: the folding rank."""
        self._folded: set[Labels] = set()
        self._text: dict[Labels, str] = {}
        self._changed = True
        self._view: SeriesView | None = None

    # --- input ------------------------------------------------------------------

    def add(self, snap: Snapshot) -> None:
        """Credit the increases since the previous snapshot."""
        resets = snap.resets
        if resets != self._resets:
            if self._resets is not None:
                for st in self._rows.values():
                    st.packets = st.bytes = 0
                    st.locs = {}
                    st.row = None
            self._resets = resets
        touched_folded: set[Labels] = set()
        fresh: list[Labels] = []
        rows = self._rows
        for row in snap.rows:
            if row.source != "kfree_skb":  # counter rows have a family of their own
                continue
            st = rows.get(row.key)
            if st is None:
                st = rows[row.key] = _RowState()
            elif st.row is row:  # an idle row is the same object poll after poll
                continue
            dp = increase(row.packets, st.packets)
            db = increase(row.bytes, st.bytes)
            if dp < 0 or db < 0:  # nonsense from a collector: never credit a decrease
                dp, db = max(dp, 0), max(db, 0)
            st.packets, st.bytes = row.packets, row.bytes
            if st.row is None or st.row.ifname != row.ifname or not st.labels:
                st.labels = tuple(clean(get(row)) for get in self._getters)
            st.row = row
            if self._by_location:
                credits = self._location_credits(row, st, dp, db)
            elif dp or db:
                credits = [(st.labels, dp, db)]
            else:
                credits = [(st.labels, 0, 0)] if st.labels not in self._total else []
            for labels, p, b in credits:
                self._credit(labels, p, b, touched_folded, fresh)
        self._credit_done(touched_folded, fresh)

    def _location_credits(
        self, row: DropRow, st: _RowState, dp: int, db: int
    ) -> list[tuple[Labels, int, int]]:
        """Split a row's increase over its functions (Location symbols without offset).

        Packets per function are known (the map is keyed on the location). Bytes are
        not: they are split in proportion to each function's packets.
        """
        incs: dict[str, int] = {}
        cum: dict[str, int] = {}
        for loc in row.locations:
            fn = strip_offset(loc.symbol)
            incs[fn] = incs.get(fn, 0) + increase(loc.packets, st.locs.get(loc.symbol, 0))
            cum[fn] = cum.get(fn, 0) + loc.packets
        st.locs = {loc.symbol: loc.packets for loc in row.locations}
        if not incs:
            incs = {strip_offset(""): 0}
            cum = dict(incs)
        fns = list(incs)
        weights = [incs[f] for f in fns]
        if sum(weights) <= 0:  # no per-location increase known: the top location takes it
            weights = [cum[f] for f in fns]
        ps = split(dp, weights)
        bs = split(db, ps if dp else weights)
        i = self._loc_index
        out = []
        for fn, p, b in zip(fns, ps, bs):
            labels = (*st.labels[:i], clean(fn), *st.labels[i:])
            if p or b or labels not in self._total:
                out.append((labels, p, b))
        return out

    def _credit(
        self, labels: Labels, p: int, b: int, touched: set[Labels], fresh: list[Labels]
    ) -> None:
        total = self._total.get(labels)
        if total is None:
            self._total[labels] = p
            self._p[labels] = p
            self._b[labels] = b
            self._text[labels] = label_text(self.names, labels)
            fresh.append(labels)
            self._changed = True
            return
        if not (p or b):
            return
        self._total[labels] = total + p
        self._changed = True
        if labels in self._folded:
            self._p[self._other] += p
            self._b[self._other] += b
            touched.add(labels)
        else:
            self._p[labels] += p
            self._b[labels] += b

    # --- folding ----------------------------------------------------------------

    def _members(self) -> int:
        return len(self._p) - (1 if self._other in self._p else 0)

    def _credit_done(self, touched: set[Labels], fresh: list[Labels]) -> None:
        limit = self.max_series - 1 if self._other in self._p else self.max_series
        excess = self._members() - limit
        if excess > 0:
            if self._other not in self._p:
                self._p[self._other] = self._b[self._other] = 0
                self._text[self._other] = label_text(self.names, self._other)
                excess += 1  # "other" takes one of the max_series places
            members = [k for k in self._p if k != self._other]
            for labels in heapq.nsmallest(excess, members, key=self._total.__getitem__):
                self._fold(labels)
        if touched:
            self._promote(touched)

    def _exported(self, labels: Labels) -> tuple[int, int]:
        """The value Prometheus may have seen for `labels`: in the last view, or the
        value it had when it last folded; (0, 0) if it was never exported."""
        view = self._view
        if view is not None and labels in view.packets:
            return view.packets[labels], view.bytes[labels]
        return self._hidden.get(labels, (0, 0))

    def _fold(self, labels: Labels) -> None:
        """Stop exporting `labels`: it keeps the value already exported (hidden, resumed
        if it comes back); increases no view has shown yet go to "other"."""
        p, b = self._p.pop(labels), self._b.pop(labels)
        seen_p, seen_b = self._exported(labels)
        self._folded.add(labels)
        self._hidden[labels] = (seen_p, seen_b)
        self._p[self._other] += p - seen_p
        self._b[self._other] += b - seen_b

    def _promote(self, touched: set[Labels]) -> None:
        total = self._total
        candidates = sorted(touched & self._folded, key=total.__getitem__, reverse=True)
        members = sorted((k for k in self._p if k != self._other), key=total.__getitem__)
        for cand, small in zip(candidates, members):
            if total[cand] <= PROMOTE_FACTOR * total[small]:
                break
            self._fold(small)
            self._folded.discard(cand)
            self._p[cand], self._b[cand] = self._hidden.get(cand, (0, 0))

    # --- output -----------------------------------------------------------------

    def view(self) -> SeriesView:
        """The current counters; the same object until something changes."""
        if self._changed or self._view is None:
            self._view = SeriesView(
                self.names, dict(self._p), dict(self._b), self._text, len(self._folded)
            )
            self._changed = False
        return self._view
