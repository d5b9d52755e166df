"""IdleRows (collector/idlerows.py): the idle rows kept in table order between polls.

Checked against a reference that sorts every currently idle row by (-packets, order)
after each poll: random polls of joins and leaves (as the assembler makes them: per
owner at most one leave and then at most one join a poll), with polls small enough
for the bisect path and large enough for the filter-and-merge path, plus explicit
cases (no-op leaves, re-joins, 10,000 rows in and out, and two joins, or a join and
then a leave, of one owner within one poll).
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from droptop.collector.idlerows import IdleRows

N = 150
ORDER = list(range(N))
random.Random(3).shuffle(ORDER)  # each owner's fixed order, unrelated to its name
BULK = IdleRows.BULK


class Reference:
    """The idle rows the slow, obvious way."""

    def __init__(self) -> None:
        self.idle: dict[int, tuple[int, object]] = {}  # owner -> (packets, row)

    def rows(self) -> list[object]:
        ordered = sorted(self.idle.items(), key=lambda kv: (-kv[1][0], ORDER[kv[0]]))
        return [row for _, (_, row) in ordered]


def play(polls) -> None:
    """Apply each poll (leaves, joins) to IdleRows and the reference; compare after each."""
    idle, ref = IdleRows(), Reference()
    for n, (leaves, joins, refreshed) in enumerate(polls):
        if n % 2:
            idle.leave_many(list(leaves))
        else:
            for owner in leaves:
                idle.leave(owner)
        for owner in leaves:
            ref.idle.pop(owner, None)
        many = []
        for owner, packets in joins.items():
            row = ("row", owner, packets, n)  # a new object each join: stale rows show
            if n % 3:
                idle.join(owner, packets, ORDER[owner], row)
            else:
                many.append((owner, packets, ORDER[owner], row))
            ref.idle[owner] = (packets, row)
        idle.join_many(many)
        for owner in refreshed:  # idle (settled, or joined this poll): new details only
            if owner in ref.idle:
                packets = ref.idle[owner][0]
                row = ("refreshed", owner, packets, n)
                idle.replace(owner, row)
                ref.idle[owner] = (packets, row)
        idle.settle()
        expected = ref.rows()
        assert idle.rows == expected
        assert len(idle) == len(expected)


owners = st.integers(0, N - 1)
packets = st.integers(0, 6)  # few values: many ties, broken by order
small_poll = st.tuples(
    st.sets(owners, max_size=8),
    st.dictionaries(owners, packets, max_size=8),
    st.sets(owners, max_size=8),
)  # at most 16 queued changes: the bisect path
big_poll = st.tuples(
    st.sets(owners, min_size=BULK + 1, max_size=N),
    st.dictionaries(owners, packets, min_size=BULK + 1, max_size=N),
    st.sets(owners, max_size=N),
)  # more than BULK joins alone: the merge path


def test_poll_strategies_straddle_bulk():
    assert BULK >= 8 + 8  # small polls never reach the merge path


@settings(max_examples=150, deadline=None)
@given(st.lists(small_poll, min_size=1, max_size=25))
def test_small_polls_match_the_reference(polls):
    play(polls)


@settings(max_examples=40, deadline=None)
@given(st.lists(big_poll, min_size=1, max_size=8))
def test_big_polls_match_the_reference(polls):
    play(polls)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(small_poll, big_poll), min_size=1, max_size=15))
def test_mixed_polls_match_the_reference(polls):
    play(polls)


@pytest.mark.parametrize("bulk", [False, True])
def test_leave_of_an_owner_that_is_not_idle_is_a_no_op(bulk):
    idle = IdleRows()
    idle.join(1, 5, 1, "a")
    idle.join(2, 5, 0, "b")
    idle.settle()
    assert idle.rows == ["b", "a"]
    idle.leave(99)  # never seen
    idle.leave(1)
    idle.leave(1)  # a second leave of the same owner: already gone
    if bulk:  # enough other changes for the merge path
        for owner in range(100, 100 + BULK + 1):
            idle.join(owner, 1, owner, f"r{owner}")
    idle.settle()
    assert idle.rows[0] == "b"
    assert "a" not in idle.rows
    assert len(idle) == (1 + BULK + 1 if bulk else 1)
    idle.leave(1)  # left at the last poll
    idle.leave(99)
    idle.settle()
    assert idle.rows[0] == "b" and "a" not in idle.rows


def test_settle_with_nothing_queued_keeps_the_rows():
    idle = IdleRows()
    idle.join(1, 5, 1, "a")
    idle.settle()
    rows = idle.rows
    idle.leave(42)
    idle.settle()
    assert idle.rows is rows and rows == ["a"]


@pytest.mark.parametrize("bulk", [False, True])
def test_rejoin_of_an_idle_owner_with_a_new_total_leaves_one_entry(bulk):
    idle = IdleRows()
    idle.join("x", 5, 0, "x5")
    idle.join("y", 7, 1, "y7")
    idle.settle()
    assert idle.rows == ["y7", "x5"]
    idle.join("x", 9, 0, "x9")  # x moved by bytes only, say: idle again, a new total
    if bulk:
        for owner in range(BULK + 1):
            idle.join(owner, 0, 10 + owner, f"r{owner}")
    idle.settle()
    assert idle.rows.count("x9") == 1 and "x5" not in idle.rows
    assert idle.rows[:2] == ["x9", "y7"]
    assert len(idle) == 2 + (BULK + 1 if bulk else 0)


@pytest.mark.parametrize("bulk", [False, True])
def test_leave_then_join_in_one_poll_replaces_the_entry(bulk):
    idle = IdleRows()
    idle.join("x", 5, 0, "x5")
    idle.settle()
    idle.leave("x")
    idle.join("x", 5, 0, "x5b")  # the same key: the old entry must still go
    if bulk:
        for owner in range(BULK + 1):
            idle.join(owner, 0, 10 + owner, f"r{owner}")
    idle.settle()
    assert idle.rows[0] == "x5b" and "x5" not in idle.rows


@pytest.mark.parametrize("bulk", [False, True])
def test_two_joins_of_one_owner_in_one_poll_leave_one_entry(bulk):
    idle = IdleRows()
    idle.join("x", 5, 0, "x5")
    idle.join("x", 9, 0, "x9")
    if bulk:
        for owner in range(BULK + 1):
            idle.join(owner, 0, 10 + owner, f"r{owner}")
    idle.settle()
    assert "x5" not in idle.rows and idle.rows.count("x9") == 1


@pytest.mark.parametrize("bulk", [False, True])
def test_join_then_leave_in_one_poll_leaves_nothing(bulk):
    idle = IdleRows()
    idle.join("x", 5, 0, "x5")
    idle.leave("x")
    if bulk:
        for owner in range(BULK + 1):
            idle.join(owner, 0, 10 + owner, f"r{owner}")
    idle.settle()
    assert "x5" not in idle.rows


def test_ten_thousand_joins_then_ten_thousand_leaves_at_once():
    idle = IdleRows()
    for owner in range(10_000):
        idle.join(owner, owner % 97, owner, owner)
    idle.settle()
    assert len(idle) == 10_000
    assert idle.rows == sorted(range(10_000), key=lambda o: (-(o % 97), o))
    for owner in range(10_000):
        idle.leave(owner)
    idle.settle()
    assert idle.rows == [] and len(idle) == 0


def test_ten_thousand_joins_then_leaves_in_two_halves():
    rnd = random.Random(11)
    idle = IdleRows()
    totals = {owner: rnd.randint(0, 500) for owner in range(10_000)}
    for owner, total in totals.items():
        idle.join(owner, total, owner, (owner, total))
    idle.settle()
    assert len(idle) == 10_000
    assert idle.rows == sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))
    leaving = list(totals)
    rnd.shuffle(leaving)
    for owner in leaving[:5000]:
        idle.leave(owner)
    idle.settle()
    kept = sorted(leaving[5000:])
    assert idle.rows == sorted(((o, totals[o]) for o in kept), key=lambda kv: (-kv[1], kv[0]))
    for owner in leaving[5000:]:
        idle.leave(owner)
    idle.settle()
    assert idle.rows == [] and len(idle) == 0
    idle.join(1, 3, 1, "again")  # still usable, and nothing left over from before
    idle.settle()
    assert idle.rows == ["again"]


def test_every_idle_row_leaving_at_once():
    idle = IdleRows()
    for owner in range(500):
        idle.join(owner, owner % 7, owner, ("row", owner))
    idle.settle()
    idle.leave_many(list(range(500)))  # a burst after a quiet spell wakes them all
    idle.join(7, 1, 7, "again")  # and one goes idle again in the same poll
    idle.settle()
    assert idle.rows == ["again"] and len(idle) == 1
    idle.leave_many([7, 8])  # 8 is not idle: a no-op for it
    idle.settle()
    assert idle.rows == []


@pytest.mark.parametrize("bulk", [False, True])
def test_order_holds_for_huge_totals_and_late_rows(bulk):
    # A row's place is one int (total descending, then first appearance): check it at
    # the edges, u64 totals and orders just below 2**40.
    idle = IdleRows()
    idle.BULK = 0 if bulk else 10**6
    entries = [
        ("a", 2**64 - 1, 5),
        ("b", 2**64 - 1, 2**40 - 1),
        ("c", 2**64 - 2, 0),
        ("d", 0, 0),
        ("e", 1, 2**40 - 1),
        ("f", 1, 3),
    ]
    for owner, packets, order in entries:
        idle.join(owner, packets, order, owner)
    idle.settle()
    expected = sorted(entries, key=lambda e: (-e[1], e[2]))
    assert idle.rows == [e[0] for e in expected] == ["a", "b", "c", "f", "e", "d"]
