"""The table's row logic without Textual: sort, invert, frozen order, new-row marks, cursor."""

from __future__ import annotations

from droptop.frontends.tui.roworder import RowOrder
from tests.factories import row, snapshot


def names(order: RowOrder) -> list[str]:
    return [r.key.comm for r in order.rows]


def test_sorts_by_rate_descending_and_inverts():
    o = RowOrder()
    o.set_visible([row(comm="a", rate=1), row(comm="b", rate=5), row(comm="c", rate=3)])
    assert names(o) == ["b", "c", "a"]
    o.invert()
    assert names(o) == ["a", "c", "b"]


def test_text_columns_sort_ascending_by_default():
    o = RowOrder()
    o.set_visible([row(comm="zz"), row(comm="aa")])
    o.set_sort("comm")
    assert not o.descending and names(o) == ["aa", "zz"]


def test_the_same_row_objects_do_not_reorder():
    o = RowOrder()
    rows = [row(comm="a", rate=1), row(comm="b", rate=5)]
    assert o.set_visible(rows)
    assert not o.set_visible(list(rows))  # same objects, same order: nothing to do


def test_cursor_follows_its_row_and_stays_put_when_it_goes():
    o = RowOrder()
    a, b, c = row(comm="a", rate=1), row(comm="b", rate=5), row(comm="c", rate=3)
    o.set_visible([a, b, c])
    o.move_cursor(2)
    assert o.cursor_key() == a.key
    o.set_visible([row(comm="a", rate=9), b, c])  # a jumps to the top
    assert o.cursor_row == 0 and o.cursor_key() == a.key
    o.move_cursor(1)
    o.set_visible([row(comm="a", rate=9), c])  # b (under the cursor) is gone
    assert o.cursor_row == 1 and o.cursor_key() == c.key
    o.move_cursor(99)
    assert o.cursor_row == 1


def test_frozen_keeps_order_and_appends_new_rows():
    o = RowOrder()
    o.set_visible([row(comm="a", rate=1), row(comm="b", rate=5)])
    o.set_frozen(True)
    o.set_visible([row(comm="a", rate=50), row(comm="b", rate=5), row(comm="new", rate=99)])
    assert names(o) == ["b", "a", "new"]
    o.set_frozen(False)
    assert names(o) == ["new", "a", "b"]


def test_new_rows_are_marked_for_a_few_refreshes_but_not_on_the_first():
    from droptop.frontends.tui.columns import NEW_ROW_REFRESHES

    o = RowOrder()
    first = row(comm="old")
    o.note_new_rows(snapshot(first))
    assert not o.is_new(first.key)
    fresh = row(comm="fresh")
    o.note_new_rows(snapshot(first, fresh))
    assert o.is_new(fresh.key)
    for _ in range(NEW_ROW_REFRESHES):
        o.note_new_rows(snapshot(first, fresh))
    assert not o.is_new(fresh.key)


def test_next_sort_key_wraps_among_visible_columns():
    o = RowOrder()
    assert o.next_sort_key(1, ["rate", "total", "comm"]) == "total"
    assert o.next_sort_key(-1, ["rate", "total", "comm"]) == "comm"
    o.set_sort("comm")
    o.keep_sort_within(["rate", "total"])  # a narrow terminal dropped COMM
    assert o.sort_key == "rate" and o.descending
