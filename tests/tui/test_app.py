"""Pilot tests: every key and the behaviours behind them, against the fake collector."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest
from textual.widgets import Input

from droptop.collector.fake import EVIL_COMM, FakeCollector
from droptop.collector.replay import ReplayCollector
from droptop.frontends.tui.columns import CELL_PADDING, COLUMNS
from droptop.frontends.tui.confirm import ConfirmScreen
from droptop.frontends.tui.drilldown import DrillDownScreen
from droptop.frontends.tui.filterbar import FilterBar
from droptop.frontends.tui.help import HelpScreen
from droptop.frontends.tui.ifaces import InterfacePanel
from droptop.frontends.tui.main import MainScreen
from droptop.frontends.tui.statusline import StatusLine
from droptop.frontends.tui.table import DropTable
from droptop.loop import INTERVAL_STEPS, MIN_INTERVAL
from droptop.model import DropKey
from droptop.snapshot_file import load_snapshot, save_snapshot
from tests.tui.conftest import make_app, polls, run, started, wait_until


def table(pilot) -> DropTable:
    return pilot.app.main.table


def key_for(pilot, comm: str) -> DropKey:
    return next(r.key for r in pilot.app.latest.rows if r.key.comm == comm)


def status(pilot) -> StatusLine:
    return pilot.app.main.status


def comms(pilot) -> list[str]:
    return [k.comm for k in table(pilot).row_keys_in_order()]


async def put_cursor_on(pilot, comm: str) -> None:
    t = table(pilot)
    t.move_cursor(row=t.get_row_index(key_for(pilot, comm)))
    await pilot.pause()
    assert t.cursor_row_key().comm == comm


# --- data flow ---------------------------------------------------------------------


def test_rows_appear_sorted_by_rate():
    async def scenario(pilot):
        await started(pilot, 7)
        t = table(pilot)
        assert t.row_count == 15  # 13 drop rows and 2 counter rows
        rates = [pilot.app.displayed.rows[0].rate]
        order = t.row_keys_in_order()
        by_key = {r.key: r for r in pilot.app.displayed.rows}
        rates = [by_key[k].rate for k in order]
        assert rates == sorted(rates, reverse=True)
        assert order[0].comm == "swapper/0"  # NO_SOCKET at ~1.2k/s
        assert t.sort_key == "rate" and t.descending

    run(make_app(), scenario)


def test_cursor_follows_its_row_across_refreshes():
    async def scenario(pilot):
        await started(pilot, 4)
        await put_cursor_on(pilot, "iperf3")  # bursts every 4th poll: its rank moves
        positions = set()
        for _ in range(4):
            await polls(pilot)
            t = table(pilot)
            assert t.cursor_row_key().comm == "iperf3"
            positions.add(t.cursor_row)
        assert len(positions) > 1, "the row should have moved while the cursor followed it"

    run(make_app(), scenario)


def test_refresh_redraws_only_lines_that_changed():
    async def scenario(pilot):
        await started(pilot, 7)
        t = table(pilot)
        keys_before = set(t.row_keys_in_order())
        await polls(pilot)
        assert set(t.row_keys_in_order()) == keys_before
        # every scripted row's share and trend move each poll; the blank lines
        # below the rows and the column titles are not drawn again
        assert 0 < t.lines_redrawn <= t.row_count < t.size.height - 1

    run(make_app(), scenario)


def test_idle_rows_redraw_nothing():

    from tests.factories import row, snapshot

    rows = [row(comm=f"p{i:04d}", rate=0.0, packets=1) for i in range(1000)]
    busy = row(comm="busy", rate=50.0, packets=100)

    async def scenario(pilot):
        await started(pilot)
        pilot.app.paused = True  # keep the fake collector's snapshots out of the way
        main = pilot.app.main
        t = table(pilot)
        main.show(snapshot(busy, *rows, poll=100))
        await pilot.pause()
        main.show(snapshot(busy, *rows, poll=101))  # same row objects: nothing to draw
        await pilot.pause()
        assert t.lines_redrawn == 0
        assert t.rows_computed == 0
        moved = busy._replace(packets=150)  # same rate and place, new total
        main.show(snapshot(moved, *rows, poll=102))
        await pilot.pause()
        assert t.lines_redrawn == 1  # its line; share and trend of the rest unchanged

    run(make_app(), scenario, size=(120, 40))


def test_new_rows_are_marked_for_a_few_refreshes():
    async def scenario(pilot):
        await started(pilot, 2)
        t = table(pilot)
        # Rows of the first poll are not new; counter rows start a poll later (a counter's
        # first reading is its baseline), so they are left out here.
        assert not any(t.is_new(k) for k in t.row_keys_in_order() if not k.counter)
        await polls(pilot)  # poll 3: QDISC_DROP (comm curl) appears
        curl = key_for(pilot, "curl")
        assert t.is_new(curl)
        assert t.cell_text(curl, "reason").plain.startswith("+QDISC_DROP")
        await polls(pilot, 3)
        assert not t.is_new(curl)
        assert t.cell_text(curl, "reason").plain.strip() == "QDISC_DROP"

    run(make_app(), scenario)


def test_comm_and_ifname_are_shown_escaped_not_interpreted():
    async def scenario(pilot):
        await started(pilot, 1)
        t = table(pilot)
        key = key_for(pilot, EVIL_COMM)
        comm = t.cell_text(key, "comm")
        assert comm.plain.startswith("[red]evil\\x1b")
        assert "\x1b" not in comm.plain
        assert not comm.spans  # no style came from the name
        assert t.cell_text(key, "if").plain.strip() == "veth[b]1"

    run(make_app(), scenario, size=(200, 40))  # wide enough for the whole comm and interface


def test_slow_poll_does_not_freeze_keys():
    collector = FakeCollector(delay=0.6)

    async def scenario(pilot):
        await started(pilot)
        pilot.app.poll_now()  # the poller thread is now busy for 0.6 s
        await pilot.pause(0.05)
        t0 = time.monotonic()
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, HelpScreen), 0.4)
        assert time.monotonic() - t0 < 0.4

    run(make_app(collector), scenario)


def test_poll_error_is_shown_and_last_snapshot_kept():
    collector = FakeCollector(fail_on={2})

    async def scenario(pilot):
        await started(pilot, 1)
        shown = pilot.app.displayed
        await polls(pilot)  # poll 2 fails
        assert pilot.app.displayed is shown
        assert status(pilot).is_error
        assert "cannot read the drop map" in status(pilot).message
        assert table(pilot).row_count == len(shown.rows)
        await polls(pilot)
        assert pilot.app.displayed is not shown
        assert not status(pilot).is_error

    run(make_app(collector), scenario)


# --- keys ----------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["q", "f10", "ctrl+c"])
def test_quit_keys_exit(key):
    async def scenario(pilot):
        await started(pilot)
        await pilot.press(key)
        await pilot.pause()
        assert pilot.app._exit
        assert pilot.app.poller.stopped

    app = make_app()
    run(app, scenario)
    assert app.return_code == 0


@pytest.mark.parametrize("key", ["question_mark", "f1"])
def test_help_opens_and_escape_returns(key):
    async def scenario(pilot):
        await started(pilot)
        await pilot.press(key)
        assert isinstance(pilot.app.screen, HelpScreen)
        await pilot.press("escape")
        assert isinstance(pilot.app.screen, MainScreen)

    run(make_app(), scenario)


def test_filter_types_applies_and_escape_clears():
    async def scenario(pilot):
        await started(pilot, 1)
        await pilot.press("slash")
        bar = pilot.app.main.query_one(FilterBar)
        assert bar.is_open
        await pilot.press(*"comm:nginx")
        await pilot.pause()
        assert comms(pilot) == ["nginx"]
        await pilot.press("enter")
        assert not bar.is_open
        assert pilot.app.focused is table(pilot)
        assert "filter: comm:nginx" in status(pilot).summary
        await pilot.press("escape")  # on the table: clears the filter
        assert table(pilot).row_count == len(pilot.app.displayed.rows)

    run(make_app(), scenario)


def test_bad_filter_shows_error_and_keeps_last_good_one():
    async def scenario(pilot):
        await started(pilot, 1)
        await pilot.press("slash", *"nginx")
        await pilot.pause()
        assert comms(pilot) == ["nginx"]
        await pilot.press("space", "quotation_mark")  # unbalanced quote: an error at once
        await pilot.pause()
        bar = pilot.app.main.query_one(FilterBar)
        assert bar.error is not None and "quot" in bar.error
        assert comms(pilot) == ["nginx"]  # last good filter still applies
        bar.query_one(Input).value = "nginx bogus:1"
        await pilot.pause()
        assert "unknown field 'bogus'" in bar.error
        assert comms(pilot) == ["nginx"]
        await pilot.press("enter")
        assert bar.is_open  # a bad filter cannot be submitted
        await pilot.press("escape")  # in the prompt: drop the filter, close
        assert not bar.is_open
        assert table(pilot).row_count == len(pilot.app.displayed.rows)

    run(make_app(), scenario)


def test_filter_words_negation_and_numbers():
    async def scenario(pilot):
        await started(pilot, 7)
        await pilot.press("slash", *"eth0 !swapper rate>=20", "enter")
        await pilot.pause()
        # The driver counter row of eth0 (rx_missed_errors, no comm) matches too.
        assert set(comms(pilot)) == {"nginx", "curl", ""}

    run(make_app(), scenario)


def test_initial_filter_is_applied():
    async def scenario(pilot):
        await started(pilot, 1)
        assert comms(pilot) == ["nginx"]

    run(make_app(initial_filter="if:eth0 comm:ngin"), scenario)


def test_sort_keys_move_and_invert():
    async def scenario(pilot):
        await started(pilot, 7)
        t = table(pilot)
        await pilot.press("greater_than_sign")
        assert t.sort_key == "total" and t.descending
        await pilot.press("less_than_sign", "less_than_sign")
        assert t.sort_key == t.visible_columns[-1]
        await pilot.press("greater_than_sign", "greater_than_sign", "greater_than_sign")
        assert t.sort_key == "share"
        # a text column sorts ascending; I inverts
        while t.sort_key != "comm":
            await pilot.press("greater_than_sign")
        assert not t.descending
        assert comms(pilot) == sorted(comms(pilot))
        await pilot.press("I")
        assert t.descending
        assert comms(pilot) == sorted(comms(pilot), reverse=True)
        assert "▼" in t.header_label("comm").plain

    run(make_app(), scenario)


def test_sort_keeps_cursor_on_row():
    async def scenario(pilot):
        await started(pilot, 7)
        await put_cursor_on(pilot, "curl")
        await pilot.press("I")
        assert table(pilot).cursor_row_key().comm == "curl"

    run(make_app(), scenario)


def test_clicking_a_header_sorts_and_again_inverts():
    async def scenario(pilot):
        await started(pilot, 3)
        t = table(pilot)
        x = 0
        for key, width in t.column_widths.items():
            if key == "reason":
                break
            x += width + 2 * CELL_PADDING
        await pilot.click(DropTable, offset=(x + 2, 0))
        assert t.sort_key == "reason" and not t.descending
        await pilot.click(DropTable, offset=(x + 2, 0))
        assert t.sort_key == "reason" and t.descending

    run(make_app(), scenario)


def test_pause_stops_display_but_not_collection():
    async def scenario(pilot):
        await started(pilot, 1)
        await pilot.press("p")
        assert pilot.app.paused and pilot.app.main.header.paused
        shown = pilot.app.displayed
        await polls(pilot, 2)
        assert pilot.app.latest is not shown
        assert pilot.app.displayed is shown
        assert pilot.app.main.header.snapshot is shown
        await pilot.press("p")
        assert pilot.app.displayed is pilot.app.latest

    run(make_app(), scenario)


def test_freeze_keeps_order_and_appends_new_rows():
    async def scenario(pilot):
        await started(pilot, 1)
        await pilot.press("o")
        assert table(pilot).frozen and pilot.app.main.header.frozen
        before = comms(pilot)
        await polls(pilot, 6)  # curl, rcuop/0, swapper/1, ping and ListenOverflows appear
        after = comms(pilot)
        assert after[: len(before)] == before
        assert set(after[len(before) :]) == {"curl", "rcuop/0", "swapper/1", "ping", ""}
        await pilot.press("o")
        assert not table(pilot).frozen
        assert comms(pilot)[0] == "swapper/0"

    run(make_app(), scenario)


def test_interval_keys_step_within_bounds():
    async def scenario(pilot):
        app = pilot.app
        await started(pilot)
        await pilot.press("plus")
        assert app.interval == 0.5 and app.poller.interval == 0.5
        await pilot.press("plus", "plus", "plus")
        assert app.interval == MIN_INTERVAL
        for _ in range(10):
            await pilot.press("minus")
        assert app.interval == INTERVAL_STEPS[-1]
        assert app.main.header.interval == INTERVAL_STEPS[-1]

    run(make_app(), scenario)


def test_not_specified_toggle():
    async def scenario(pilot):
        await started(pilot, 1)
        assert "kworker/u8:2" in comms(pilot)
        await pilot.press("n")
        assert "kworker/u8:2" not in comms(pilot)
        assert "NOT_SPECIFIED hidden" in status(pilot).summary
        await pilot.press("n")
        assert "kworker/u8:2" in comms(pilot)

    run(make_app(), scenario)


def test_not_specified_can_start_hidden():
    async def scenario(pilot):
        await started(pilot, 1)
        assert "kworker/u8:2" not in comms(pilot)

    run(make_app(show_not_specified=False), scenario)


def test_reset_asks_first():
    collector = FakeCollector()

    async def scenario(pilot):
        await started(pilot, 3)
        await pilot.press("z")
        assert isinstance(pilot.app.screen, ConfirmScreen)
        await pilot.press("n")
        assert isinstance(pilot.app.screen, MainScreen)
        assert collector.resets == 0
        before = pilot.app.displayed.total_packets
        target = pilot.app.refreshes + 1
        await pilot.press("z", "y")
        await wait_until(pilot, lambda: pilot.app.refreshes >= target)
        assert collector.resets == 1
        assert pilot.app.displayed.total_packets < before
        assert "reset" in status(pilot).message

    run(make_app(collector), scenario)


def test_interfaces_panel_toggles():
    async def scenario(pilot):
        await started(pilot, 1)
        panel = pilot.app.main.query_one(InterfacePanel)
        assert not panel.display
        await pilot.press("i")
        assert panel.display
        assert {n.name for n in panel.nics} == {"eth0", "lo", "wlan0"}
        await pilot.press("i")
        assert not panel.display

    run(make_app(), scenario)


def test_enter_drills_down_and_escape_returns_to_same_row():
    async def scenario(pilot):
        await started(pilot, 3)
        await put_cursor_on(pilot, "nginx")
        await pilot.press("enter")
        screen = pilot.app.screen
        assert isinstance(screen, DrillDownScreen)
        assert screen.key == key_for(pilot, "nginx")
        await wait_until(pilot, lambda: screen.processes is not None)
        assert [p.pid for p in screen.processes] == [812, 813]
        await polls(pilot)  # the screen follows its row
        assert screen.snapshot is pilot.app.displayed
        await pilot.press("escape")
        assert isinstance(pilot.app.screen, MainScreen)
        assert table(pilot).cursor_row_key().comm == "nginx"
        # Back on the same row, wherever the polls meanwhile sorted it.
        assert table(pilot).cursor_row == table(pilot).get_row_index(key_for(pilot, "nginx"))

    run(make_app(), scenario)


def test_drilldown_kernel_context_row_says_so():
    async def scenario(pilot):
        await started(pilot, 2)
        await put_cursor_on(pilot, "swapper/0")
        await pilot.press("enter")
        screen = pilot.app.screen
        assert isinstance(screen, DrillDownScreen)
        text = str(screen.query_one("#drill-processes").render())
        assert "kernel context" in text.lower()
        stacks = str(screen.query_one("#drill-stacks").render())
        assert stacks  # rendered without error

    run(make_app(), scenario)


def test_ctrl_s_saves_snapshot(tmp_path):
    async def scenario(pilot):
        await started(pilot, 2)
        await pilot.press("ctrl+s")
        path = pilot.app.saved_path
        assert path is not None and path.parent == tmp_path
        assert str(path) in status(pilot).message
        saved = load_snapshot(path)
        assert len(saved.rows) == len(pilot.app.displayed.rows)
        assert saved.reason_table and saved.rows[0].stacks

    run(make_app(snapshot_dir=tmp_path), scenario)


def test_ctrl_s_into_missing_directory_reports_error(tmp_path):
    async def scenario(pilot):
        await started(pilot, 1)
        await pilot.press("ctrl+s")
        assert status(pilot).is_error
        assert "not a directory" in status(pilot).message
        assert not pilot.app._exit

    run(make_app(snapshot_dir=tmp_path / "nope"), scenario)


def test_ctrl_s_into_unwritable_directory_reports_error(tmp_path):
    if os.geteuid() == 0:
        target = Path("/proc")  # not even root can create files there
    else:
        target = tmp_path
        tmp_path.chmod(0o500)

    async def scenario(pilot):
        await started(pilot, 1)
        await pilot.press("ctrl+s")
        assert status(pilot).is_error
        assert "cannot write" in status(pilot).message
        assert pilot.app.saved_path is None

    try:
        run(make_app(snapshot_dir=target), scenario)
    finally:
        tmp_path.chmod(0o700)


def test_replay_works_the_same(tmp_path):
    snap = asyncio.run(_fake_snapshot())
    path = save_snapshot(snap, tmp_path)
    collector = ReplayCollector(path)

    async def scenario(pilot):
        await started(pilot)
        assert pilot.app.displayed.source == "replay"
        assert table(pilot).row_count == len(snap.rows)
        header = pilot.app.main.header.render().plain
        assert "REPLAY" in header
        await put_cursor_on(pilot, "nginx")
        await pilot.press("enter")
        assert isinstance(pilot.app.screen, DrillDownScreen)
        await pilot.press("escape", "z", "y")
        await wait_until(pilot, lambda: pilot.app.displayed.total_packets == 0)

    run(make_app(collector), scenario)


async def _fake_snapshot():
    c = FakeCollector()
    for _ in range(5):
        snap = c.poll()
    return snap


def test_narrow_terminal_drops_columns_instead_of_refusing():
    async def scenario(pilot):
        await started(pilot, 1)
        t = table(pilot)
        assert t.visible_columns[:2] == ["rate", "total"]
        assert "reason" in t.visible_columns and "comm" in t.visible_columns
        assert "netns" not in t.visible_columns
        await pilot.resize_terminal(50, 20)
        await pilot.pause()
        assert "rate" in t.visible_columns and "reason" in t.visible_columns
        assert len(t.visible_columns) < 4
        await pilot.resize_terminal(160, 40)
        await pilot.pause()
        assert len(t.visible_columns) == len(COLUMNS)
        assert t.row_count == len(pilot.app.displayed.rows)

    run(make_app(), scenario, size=(80, 24))


def test_many_rows_refresh_only_what_is_in_view():

    from tests.factories import row, snapshot

    rows = [row(comm=f"p{i:04d}", rate=float(1000 - i), packets=10_000 - i) for i in range(400)]
    first = snapshot(*rows)
    second = snapshot(*[r._replace(packets=r.packets + 1) for r in rows])

    async def scenario(pilot):
        await started(pilot)
        pilot.app.paused = True  # keep the fake collector's snapshots out of the way
        main = pilot.app.main
        main.show(first)
        await pilot.pause()
        t = table(pilot)
        assert t.row_count == 400
        main.show(second)
        await pilot.pause()
        assert t.rows_computed <= t.size.height  # a screenful, not 400 rows
        assert t.lines_redrawn <= t.size.height
        last = rows[-1].key
        t.move_cursor(row=t.get_row_index(last))
        await pilot.pause()
        assert t.cell_text(last, "total").plain.strip() == "9.6k"
        assert t.cursor_row_key() == last
        assert t.scroll_y == t.max_scroll_y

    run(make_app(), scenario, size=(80, 24))


def test_keys_move_the_cursor_and_page():
    async def scenario(pilot):
        await started(pilot, 7)
        t = table(pilot)
        assert t.cursor_row == 0
        await pilot.press("down", "down")
        assert t.cursor_row == 2
        await pilot.press("up")
        assert t.cursor_row == 1
        await pilot.press("ctrl+end")
        assert t.cursor_row == t.row_count - 1
        await pilot.press("ctrl+home")
        assert t.cursor_row == 0
        await pilot.press("pagedown")
        assert t.cursor_row == t.row_count - 1  # 12 rows fit on one page
        await pilot.press("pageup")
        assert t.cursor_row == 0

    run(make_app(), scenario, size=(120, 20))


def test_paging_through_many_rows_scrolls_with_the_cursor():
    from tests.factories import row, snapshot

    rows = [row(comm=f"p{i:04d}", rate=float(1000 - i), packets=10_000 - i) for i in range(400)]

    async def scenario(pilot):
        await started(pilot)
        pilot.app.paused = True
        pilot.app.main.show(snapshot(*rows))
        await pilot.pause()
        t = table(pilot)
        page = t.scrollable_content_region.height - 1
        await pilot.press("pagedown")
        assert t.cursor_row == page
        assert t.scroll_y == page
        await pilot.press("down")
        assert t.cursor_row_key().comm == f"p{page + 1:04d}"
        await pilot.press("ctrl+end")
        assert t.scroll_y == t.max_scroll_y
        shown = pilot.app.export_screenshot()
        assert "p0399" in shown

    run(make_app(), scenario, size=(80, 24))


def test_hover_highlights_a_row_until_a_key_moves_the_cursor():
    async def scenario(pilot):
        await started(pilot, 7)
        t = table(pilot)
        plain = t.render_line(3)
        await pilot.hover(DropTable, offset=(20, 3))
        assert t.hover_row == 2
        assert t.render_line(3) != plain  # drawn with the hover style
        await pilot.press("down")
        assert t.hover_row is None
        assert t.render_line(3).text == plain.text

    run(make_app(), scenario)


def test_clicking_a_row_selects_it_and_again_drills_down():
    async def scenario(pilot):
        await started(pilot, 7)
        t = table(pilot)
        await pilot.click(DropTable, offset=(20, 3))  # header line, then rows 0, 1, 2
        assert t.cursor_row == 2
        assert isinstance(pilot.app.screen, MainScreen)
        await pilot.click(DropTable, offset=(20, 3))
        screen = pilot.app.screen
        assert isinstance(screen, DrillDownScreen)
        assert screen.key == t.row_keys_in_order()[2]

    run(make_app(), scenario)
