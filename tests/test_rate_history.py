"""RateHistory (droptop.model) and the rate arrays behind it (_Row in collector/assemble.py).

A RateHistory is a lazy view of part of an append-only array of doubles. These tests
check that it behaves like the tuple of the same rates (equality both ways, len,
indexing, slicing, iteration, hash, repr), that a view taken from _Row.record() never
changes afterwards (also when a full buffer is swapped for a fresh one), that
idle_for() adds min(polls, HISTORY_LEN) zeros, and that DropRow.history_at() pads a
RateHistory the way it pads a tuple.
"""

from __future__ import annotations

import random
from array import array
from operator import eq, ne

import pytest

from droptop.collector.assemble import _FIRST, _SPARE, _Row
from droptop.model import HISTORY_LEN, DropKey, DropRow, RateHistory
from tests.factories import row as make_row

FULL = HISTORY_LEN + _SPARE  # the smallest busy row's buffer

KEY = DropKey(3, "curl", False, 2, 4026531833)


def rec(row: _Row, rate: float) -> RateHistory:
    """_Row.record() as the view a DropRow shows of it."""
    return RateHistory(*row.record(rate))


def with_history(r: DropRow, h, history_end: int) -> DropRow:
    """r with history h (a RateHistory or a tuple) ending at poll history_end."""
    if isinstance(h, RateHistory):
        rates, start, end = h._rates, h._start, h._end
    else:
        rates, start, end = tuple(h), 0, len(h)
    out = r._replace(rates=rates, rates_start=start, rates_end=end, history_end=history_end)
    assert out.history == h
    return out


def view(values, start=0, end=None):
    rates = array("d", values)
    return RateHistory(rates, start, len(rates) if end is None else end)


# --- RateHistory as a sequence ------------------------------------------------------


def test_equals_the_tuple_of_the_same_values_both_ways():
    h = view([9.0, 1.0, 2.5, 3.0, 7.0], 1, 4)
    t = (1.0, 2.5, 3.0)
    # operator.eq/ne to spell both directions (tuple first: tuple's own == gives up)
    assert eq(h, t) is True and eq(t, h) is True
    assert ne(h, t) is False and ne(t, h) is False
    assert h == view([1.0, 2.5, 3.0])  # another array, the same values
    assert h == (1, 2.5, 3)  # ints compare equal to floats, as in a tuple


@pytest.mark.parametrize(
    "other",
    [(1.0, 2.5), (1.0, 2.5, 3.0, 7.0), (1.0, 2.5, 4.0), (), (9.0, 1.0, 2.5)],
)
def test_differs_from_other_tuples_both_ways(other):
    h = view([9.0, 1.0, 2.5, 3.0, 7.0], 1, 4)
    assert ne(h, other) is True and ne(other, h) is True
    assert eq(h, other) is False and eq(other, h) is False
    assert h != view(other)


def test_is_not_equal_to_a_list_or_other_types():
    h = view([1.0, 2.0])
    assert ne(h, [1.0, 2.0]) and ne([1.0, 2.0], h)
    assert h != "ab" and h is not None and h != 3.0


def test_len_index_slice_iter():
    h = view([0.0, 1.0, 2.0, 3.0, 4.0, 5.0], 2, 5)
    assert len(h) == 3
    assert h[0] == 2.0 and h[1] == 3.0 and h[2] == 4.0
    assert h[-1] == 4.0 and h[-3] == 2.0
    with pytest.raises(IndexError):
        h[3]
    with pytest.raises(IndexError):
        h[-4]
    assert h[1:] == (3.0, 4.0) and isinstance(h[1:], tuple)
    assert h[::-1] == (4.0, 3.0, 2.0)
    assert h[-2:] == (3.0, 4.0)
    assert list(h) == [2.0, 3.0, 4.0]
    assert tuple(h) == (2.0, 3.0, 4.0)
    assert list(reversed(h)) == [4.0, 3.0, 2.0]
    assert 3.0 in h and 5.0 not in h
    assert h.values() == (2.0, 3.0, 4.0) and type(h.values()) is tuple


def test_empty_view():
    h = view([1.0, 2.0], 2, 2)
    assert len(h) == 0 and eq(h, ()) and eq((), h) and list(h) == [] and repr(h) == "()"
    assert h != (1.0,)


def test_hash_and_repr_match_the_tuple():
    h = view([5.0, 0.0, 1.5], 0, 3)
    t = (5.0, 0.0, 1.5)
    assert hash(h) == hash(t)
    assert repr(h) == repr(t) == "(5.0, 0.0, 1.5)"
    assert {h: "x"}[t] == "x" and t in {h} and h in {t}


def test_appending_to_the_array_does_not_change_a_view():
    rates = array("d", [1.0, 2.0, 3.0])
    h = RateHistory(rates, 1, 3)
    rates.extend([4.0, 5.0])
    assert h == (2.0, 3.0) and len(h) == 2 and h[-1] == 3.0


# --- _Row.record() and idle_for() ---------------------------------------------------


def buffer_holds_zeros_past_fill(row: _Row) -> bool:
    return all(v == 0.0 for v in row.rates[row.fill :])


def test_record_views_never_change_when_the_buffer_is_swapped():
    row = _Row(KEY, "eth0", 0)
    first_buffer = row.rates
    recorded: list[float] = []
    views = []
    buffers = set()
    for i in range(5 * FULL + 7):
        rate = i * 1.25 + 0.5
        recorded.append(rate)
        h = rec(row, rate)
        buffers.add(id(row.rates))
        shown = tuple(recorded[-HISTORY_LEN:])
        assert h == shown  # what it shows when taken: the last HISTORY_LEN rates
        views.append((h, shown))
        assert buffer_holds_zeros_past_fill(row)
    assert len(buffers) >= 5  # a full buffer was swapped for a fresh one, again and again
    assert len(first_buffer) < HISTORY_LEN <= 2 * HISTORY_LEN <= len(row.rates)
    for h, shown in views:
        assert h.values() == shown
        assert len(h) == len(shown) and list(h) == list(shown)
    assert len(views[-1][0]) == HISTORY_LEN


def test_rows_made_together_fill_their_buffers_at_different_polls():
    rows = [_Row(KEY, "eth0", order) for order in range(HISTORY_LEN)]
    first = {len(r.rates) for r in rows}
    assert len(first) == _FIRST  # 10,000 rows of one poll do not all swap in one
    assert max(first) * 8 <= 512  # small enough for Python's small-object allocator
    for r in rows:
        for _ in range(len(r.rates) + 1):  # a busy row: past its first buffer
            r.record(1.0)
    later = {len(r.rates) for r in rows}
    assert len(later) == min(_SPARE, HISTORY_LEN) and min(later) >= FULL >= 2 * HISTORY_LEN
    for order in range(HISTORY_LEN):  # rows that went quiet for a long time
        r = _Row(KEY, "eth0", order)
        r.record(1.0)
        buffer = r.rates
        r.idle_for(10**6)
        assert r.rates is buffer and r.floor == r.fill == 1  # woken: no fresh buffer
        while r.fill < len(r.rates):
            r.record(2.0)
        r.idle_for(10**6)  # woken with a full buffer: a fresh small one
        assert r.rates is not buffer and r.fill == r.floor == 0 and len(r.rates) < 2 * _FIRST


def test_record_and_idle_for_interleaved_keep_every_view():
    rnd = random.Random(7)
    row = _Row(KEY, "eth0", 3)
    reference: list[float] = []  # every rate ever recorded, zeros for idle polls included
    views = []
    swaps = 0
    for _ in range(3000):
        before = row.rates
        if rnd.random() < 0.2:
            polls = rnd.choice([0, 1, 2, 5, 59, 60, 61, 1000])
            row.idle_for(polls)
            reference.extend([0.0] * min(polls, HISTORY_LEN))
        else:
            rate = float(rnd.randint(0, 10_000))
            reference.append(rate)
            h = rec(row, rate)
            shown = tuple(reference[-HISTORY_LEN:])
            assert h.values() == shown
            views.append((h, shown))
        swaps += row.rates is not before
        assert buffer_holds_zeros_past_fill(row)
    assert swaps >= 10
    for h, shown in views:
        assert h.values() == shown


@pytest.mark.parametrize("polls", [1, 2, 5, 59, 60, 61, 1000])
def test_idle_for_adds_at_most_history_len_zeros(polls):
    row = _Row(KEY, "eth0", 0)
    rec(row, 3.0)
    row.idle_for(polls)
    zeros = min(polls, HISTORY_LEN)
    if zeros == HISTORY_LEN:  # idle a whole history: the zeros go ahead, nothing stored
        assert row.fill == row.floor == 1
    elif 1 + zeros <= len(row.rates):  # room for them: zeros already there, nothing written
        assert row.fill == 1 + zeros and row.floor == -1
        assert list(row.rates[: row.fill]) == [3.0] + [0.0] * zeros
    else:  # a fresh buffer with the last rates and the zeros
        assert list(row.rates[: row.fill]) == [3.0] + [0.0] * zeros
    h = rec(row, 7.0)
    assert h == ((3.0,) + (0.0,) * zeros + (7.0,))[-HISTORY_LEN:]


@pytest.mark.parametrize("polls", [0, -1, -100])
def test_idle_for_nothing_adds_nothing(polls):
    row = _Row(KEY, "eth0", 0)
    rec(row, 3.0)
    row.idle_for(polls)
    assert row.fill == 1 and rec(row, 4.0) == (3.0, 4.0)


@pytest.mark.parametrize("left", [1, 0])
def test_idle_for_a_whole_history_at_the_end_of_the_buffer(left):
    row = _Row(KEY, "eth0", 0)
    full = row.rates
    views = [rec(row, float(i + 1)) for i in range(len(full) - left)]
    kept = [v.values() for v in views]
    row.idle_for(1000)
    if left:  # room for one more: the same buffer, the zeros ahead of what comes next
        assert row.rates is full and row.floor == row.fill == len(full) - 1
    else:  # full: a fresh buffer
        assert row.rates is not full and row.floor == row.fill == 0
    h = rec(row, 42.0)
    assert h == (0.0,) * (HISTORY_LEN - 1) + (42.0,) and len(h) == HISTORY_LEN
    assert [v.values() for v in views] == kept  # views taken before are untouched
    for i in range(HISTORY_LEN):
        h = rec(row, float(i))
    assert h == tuple(float(i) for i in range(HISTORY_LEN))
    assert row.rates is not full and len(h) == HISTORY_LEN


# --- DropRow.history_at() with a RateHistory -----------------------------------------


def test_history_at_pads_a_rate_history_like_a_tuple():
    h = view([9.0, 1.0, 2.0, 3.0], 1, 4)
    rh = with_history(make_row(), h, 10)
    tp = with_history(make_row(), (1.0, 2.0, 3.0), 10)
    assert rh == tp  # a DropRow with a RateHistory equals one with the tuple
    cases = {
        (10, 60): (1.0, 2.0, 3.0),
        (9, 60): (1.0, 2.0, 3.0),  # asked about an earlier poll: no padding
        (11, 60): (1.0, 2.0, 3.0, 0.0),
        (12, 60): (1.0, 2.0, 3.0, 0.0, 0.0),
        (12, 4): (2.0, 3.0, 0.0, 0.0),
        (10, 2): (2.0, 3.0),
        (12, 2): (0.0, 0.0),
        (1000, 60): (0.0,) * 60,
        (1000, 5): (0.0,) * 5,
    }
    for (poll, length), expected in cases.items():
        got = rh.history_at(poll, length)
        assert got == expected, (poll, length)
        assert type(got) is tuple
        assert got == tp.history_at(poll, length)


def test_history_at_of_a_full_history_is_capped_at_length():
    row = _Row(KEY, "eth0", 0)
    for i in range(HISTORY_LEN + 5):
        h = rec(row, float(i))
    r = with_history(make_row(), h, 100)
    assert r.history_at(100) == tuple(float(i) for i in range(5, HISTORY_LEN + 5))
    assert r.history_at(103) == tuple(float(i) for i in range(8, HISTORY_LEN + 5)) + (0.0,) * 3
    assert len(r.history_at(103)) == 60
    assert r.history_at(103, length=10) == (
        *(float(i) for i in range(HISTORY_LEN - 2, HISTORY_LEN + 5)),
        0.0,
        0.0,
        0.0,
    )


def test_a_view_with_zeros_ahead_is_a_whole_history_with_them():
    rates = array("d", [float(i) for i in range(100)])
    h = RateHistory(rates, -56, 70)  # start < 0: 56 zeros, then the 4 rates before [70]
    expected = (0.0,) * 56 + (66.0, 67.0, 68.0, 69.0)
    assert h.values() == expected and len(h) == HISTORY_LEN == len(expected)
    assert list(h) == list(expected) and h[0] == 0.0 and h[-1] == 69.0
    assert h[55:57] == (0.0, 66.0)
    assert h == expected and hash(h) == hash(expected)
    assert h != RateHistory(rates, 66, 70)  # the same rates without the zeros


def test_zeros_ahead_carry_over_into_the_next_buffer():
    row = _Row(KEY, "eth0", 5)
    rec(row, 1.0)
    row.idle_for(len(row.rates) + 1000)  # a long sleep: zeros ahead
    assert row.floor == 1
    recorded = [0.0] * HISTORY_LEN
    views = []
    for i in range(3 * FULL):  # through the small buffer, into full-size ones
        recorded.append(float(i + 2))
        h = rec(row, float(i + 2))
        views.append((h, tuple(recorded[-HISTORY_LEN:])))
        assert h == views[-1][1] and len(h) == HISTORY_LEN
        assert buffer_holds_zeros_past_fill(row)
    assert row.floor == -1  # the zeros ahead have gone out of view
    assert all(h.values() == shown for h, shown in views)
