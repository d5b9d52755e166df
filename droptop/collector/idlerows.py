"""The idle rows of a poll, kept in table order (total, descending) between polls.

Rows that did not move keep their place and their very DropRow object, so a poll
does not sort them again. Rows join (went idle) and leave (moved again) during a
poll; the changes are queued and applied when it ends: one bisect each when few,
one filter and one merge of sorted runs when many, since 10,000 rows going idle
(or waking) at once would otherwise be 10,000 list inserts of O(n) each.
"""

from __future__ import annotations

import bisect
from collections.abc import Hashable
from itertools import compress
from operator import itemgetter

from droptop.model import DropRow

_KEY = itemgetter(0)
_ORDER_BITS = 40
"""A row's place is one int, order - (packets << _ORDER_BITS): total descending, then
first appearance (orders are below 2**40). One int, not a (-packets, order) tuple: half
the objects to make and free when 10,000 rows go idle or wake together."""


def _place(packets: int, order: int) -> int:
    return order - (packets << _ORDER_BITS)


class IdleRows:
    BULK = 32
    """Queued changes above which a poll's changes are merged, not bisected in."""

    def __init__(self) -> None:
        self._keys: list[int] = []  # _place(packets, order), ascending
        self._rows: list[DropRow] = []
        self._key_of: dict[Hashable, int] = {}  # owners in the table
        self._leaving: list[int] = []  # their keys, to take out
        self._joining: dict[Hashable, tuple[int, DropRow]] = {}  # to put in

    @property
    def rows(self) -> list[DropRow]:
        """In table order, as of the last settle()."""
        return self._rows

    def __len__(self) -> int:
        return len(self._rows)

    def leave(self, owner: Hashable) -> None:
        """owner's row moved again (a no-op if it was not idle)."""
        self._joining.pop(owner, None)  # joined earlier in this poll
        key = self._key_of.pop(owner, None)
        if key is not None:
            self._leaving.append(key)

    def leave_many(self, owners: list[Hashable]) -> None:
        """leave() for each of these distinct owners; every idle row at once (a burst
        after a quiet spell) is one step instead of 10,000."""
        key_of = self._key_of
        if (
            owners
            and not self._joining
            and not self._leaving
            and len(owners) == len(key_of)
            and all(map(key_of.__contains__, owners))  # distinct: so they are all of them
        ):
            self._leaving = list(self._keys)
            self._key_of.clear()
            return
        for owner in owners:
            self.leave(owner)

    def join(self, owner: Hashable, packets: int, order: int, row: DropRow) -> None:
        """owner's row is idle now, with this total; order: its first appearance.
        Again in the same poll: the last join counts."""
        self.leave(owner)
        self._joining[owner] = (_place(packets, order), row)

    def replace(self, owner: Hashable, row: DropRow) -> None:
        """owner's idle row is now this object, with the same total (same place)."""
        queued = self._joining.get(owner)
        if queued is not None:
            self._joining[owner] = (queued[0], row)
            return
        key = self._key_of.get(owner)
        if key is None:
            return
        i = bisect.bisect_left(self._keys, key)
        if i < len(self._keys) and self._keys[i] == key:
            self._rows[i] = row

    def join_many(self, joins: list[tuple[Hashable, int, int, DropRow]]) -> None:
        """join() for each (owner, packets, order, row): rows that went idle together."""
        queued, key_of, leaving = self._joining, self._key_of, self._leaving
        for owner, packets, order, row in joins:
            key = key_of.pop(owner, None)  # leave(), inlined
            if key is not None:
                leaving.append(key)
            queued[owner] = (order - (packets << _ORDER_BITS), row)  # _place()

    def settle(self) -> None:
        """Apply the queued changes."""
        leaving, queued = self._leaving, self._joining
        if not leaving and not queued:
            return
        for owner, (key, _) in queued.items():
            self._key_of[owner] = key
        joining = list(queued.values())
        if len(leaving) + len(joining) <= self.BULK:
            keys, rows = self._keys, self._rows
            for key in leaving:
                i = bisect.bisect_left(keys, key)
                if i < len(keys) and keys[i] == key:
                    del keys[i]
                    del rows[i]
            for key, row in joining:
                i = bisect.bisect_left(keys, key)
                keys.insert(i, key)
                rows.insert(i, row)
        else:
            keys, rows = self._keys, self._rows
            if len(leaving) == len(keys):  # every idle row woke (a burst after a quiet spell)
                keys, rows = [], []
            elif leaving:
                gone = set(leaving)
                kept = [k not in gone for k in keys]
                keys, rows = list(compress(keys, kept)), list(compress(rows, kept))
            if joining:
                joining.sort(key=_KEY)
                pairs = [*zip(keys, rows), *joining]
                pairs.sort(key=_KEY)  # two sorted runs: a linear merge
                keys, rows = [k for k, _ in pairs], [r for _, r in pairs]
            self._keys, self._rows = keys, rows
        self._leaving = []
        self._joining = {}
