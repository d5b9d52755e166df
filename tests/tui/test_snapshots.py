"""SVG snapshot tests (pytest-textual-snapshot): what the screens look like.

Everything on screen is deterministic: the fake collector's virtual clock and
hostname, fixed psutil readings, UTC, manual polling, and no blinking cursor.
Update after an intended change with `pytest tests/tui --snapshot-update` and look
at the report before committing.
"""

from __future__ import annotations

from pathlib import Path

from droptop.collector.fake import FakeCollector
from droptop.collector.replay import ReplayCollector
from droptop.snapshot_file import save_snapshot
from tests.tui.conftest import make_app, started

POLLS = 9
"""Polls before the screenshot: every scripted row has appeared and has some history."""


async def busy(pilot) -> None:
    await started(pilot, POLLS)


def cursor_to(comm: str | None = None, reason: str | None = None):
    async def run_before(pilot) -> None:
        await busy(pilot)
        table = pilot.app.main.table
        key = next(
            r.key
            for r in pilot.app.latest.rows
            if (comm is None or r.key.comm == comm) and (reason is None or r.reason.name == reason)
        )
        table.move_cursor(row=table.get_row_index(key))
        await pilot.pause()

    return run_before


def test_table_80x24(snap_compare):
    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=busy)


def test_table_160x48(snap_compare):
    assert snap_compare(
        make_app(FakeCollector(bpf_ns_per_drop=87.0)), terminal_size=(160, 48), run_before=busy
    )


def test_table_60x20_drops_columns(snap_compare):
    assert snap_compare(make_app(), terminal_size=(60, 20), run_before=busy)


def test_table_no_color(snap_compare, no_color):
    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=busy)


def test_drilldown_process_row(snap_compare):
    assert snap_compare(
        make_app(), terminal_size=(100, 40), run_before=cursor_to("nginx"), press=["enter"]
    )


def test_drilldown_kernel_context_row(snap_compare):
    assert snap_compare(
        make_app(), terminal_size=(80, 24), run_before=cursor_to("swapper/0"), press=["enter"]
    )


def test_table_benign_hidden_80x24(snap_compare):
    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=busy, press=["b"])


def test_drilldown_samples_120x50(snap_compare):
    """Whose drop, sampled packets, flows and the NETFILTER_DROP caveat."""
    assert snap_compare(
        make_app(), terminal_size=(120, 50), run_before=cursor_to("nginx"), press=["enter"]
    )


def test_drilldown_samples_80x24(snap_compare):
    assert snap_compare(
        make_app(), terminal_size=(80, 24), run_before=cursor_to("curl"), press=["enter"]
    )


def test_drilldown_interrupted_task_80x24(snap_compare):
    assert snap_compare(
        make_app(), terminal_size=(80, 24), run_before=cursor_to("ping"), press=["enter"]
    )


def test_drilldown_counter_row_80x24(snap_compare):
    assert snap_compare(
        make_app(),
        terminal_size=(80, 24),
        run_before=cursor_to(reason="TcpExt:ListenOverflows"),
        press=["enter"],
    )


def test_help(snap_compare):
    assert snap_compare(
        make_app(), terminal_size=(100, 56), run_before=busy, press=["question_mark"]
    )


def test_poll_error_message(snap_compare):
    app = make_app(FakeCollector(fail_on={POLLS + 1}))

    async def run_before(pilot):
        await started(pilot, POLLS + 1)

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_snapshot_error_message(snap_compare):
    app = make_app(snapshot_dir=Path("/nonexistent/droptop-snapshots"))
    assert snap_compare(app, terminal_size=(80, 24), run_before=busy, press=["ctrl+s"])


def test_filter_prompt(snap_compare):
    assert snap_compare(
        make_app(), terminal_size=(80, 24), run_before=busy, press=["slash", *"eth0 !swapper"]
    )


def test_filter_error_inline(snap_compare):
    assert snap_compare(
        make_app(),
        terminal_size=(80, 24),
        run_before=busy,
        press=["slash", *"nginx", "space", "quotation_mark"],
    )


def test_interfaces_paused_frozen(snap_compare):
    assert snap_compare(make_app(), terminal_size=(100, 30), run_before=busy, press=["i", "p", "o"])


def test_reset_confirmation(snap_compare):
    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=busy, press=["z"])


def test_replay(snap_compare, tmp_path):
    collector = FakeCollector()
    for _ in range(POLLS):
        snap = collector.poll()
    path = save_snapshot(snap, tmp_path)
    assert snap_compare(make_app(ReplayCollector(path)), terminal_size=(80, 24), run_before=started)
