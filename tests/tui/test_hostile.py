"""A replayed snapshot whose every string is hostile, through every TUI screen.

The file is the one tests/test_sanitize.py builds (every string value of a full
snapshot replaced), loaded by the real ReplayCollector. Each screen is read back
twice: as the text a person sees, and as the exact character stream Textual would
write to the terminal. Neither may hold a raw control, format, bidi or separator
character, and the hostile text must still be visible in its escaped form.
"""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from droptop.collector.replay import ReplayCollector
from droptop.hostinfo import ProcessInfo
from droptop.sanitize import printable
from tests.test_sanitize import HOSTILE, dangerous, write_hostile
from tests.tui.conftest import make_app, run, started, wait_until


def screen_output(app) -> tuple[str, str]:
    """(text on screen, terminal stream) for a full redraw of the current screen.

    The same compositor call Textual's own export_screenshot makes, rendered to a
    recording console instead of an SVG.
    """
    width, height = app.size
    console = Console(
        width=width,
        height=height,
        file=io.StringIO(),
        force_terminal=True,
        color_system="truecolor",
        record=True,
        legacy_windows=False,
        safe_box=False,
    )
    update = app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    stream = update.render_segments(console)
    console.print(update)
    return console.export_text(styles=False), stream


def assert_clean(app, where: str, shown: dict[str, str]) -> None:
    text, stream = screen_output(app)
    svg = app.export_screenshot()
    bad_lines = [line for line in text.split("\n") if dangerous(line)]
    assert not bad_lines, (where, bad_lines)
    assert not dangerous(svg), (where, "svg", dangerous(svg))
    # Textual's own output is CSI sequences only: no OSC, no BEL, no 8-bit CSI.
    assert "\x1b]" not in stream and "\x07" not in stream and "\x9b" not in stream, where
    assert not dangerous(stream.replace("\x1b[", "")), (where, "stream")
    shown[where] = text


def drilled(app) -> bool:
    """The drill-down is up and its process lookup (if it makes one) has returned."""
    screen = app.screen
    if screen.__class__.__name__ != "DrillDownScreen":
        return False
    return screen.key.kernel_context or screen.processes is not None


@pytest.fixture(params=HOSTILE, ids=[f"h{i}" for i in range(len(HOSTILE))])
def hostile(request) -> str:
    return request.param


def test_every_screen_is_clean(tmp_path, hostile):
    path = write_hostile(tmp_path, hostile)
    # a directory named after the hostile value: ctrl+s reports it on the status line
    save_dir = tmp_path / hostile.replace("/", "_")
    save_dir.mkdir()
    # what psutil reports is process-controlled too: user names, arguments
    procs = [ProcessInfo(4242, hostile, f"{hostile} --flag {hostile}")]
    app = make_app(ReplayCollector(path), snapshot_dir=save_dir, process_lookup=lambda c: procs)
    shown: dict[str, str] = {}

    async def scenario(pilot) -> None:
        await started(pilot)
        assert_clean(app, "table", shown)
        await pilot.press("i")
        await pilot.pause()
        assert_clean(app, "interfaces", shown)
        table = app.main.table
        for i in range(len(app.latest.rows)):
            table.move_cursor(row=i)
            await pilot.press("enter")
            await wait_until(pilot, lambda: drilled(app))
            assert_clean(app, f"drill-down {i}", shown)
            await pilot.press("escape")
            await pilot.pause()
        await pilot.press("question_mark")
        await pilot.pause()
        app.screen.query_one("#help-body").scroll_end(animate=False)  # the notes are last
        await pilot.pause()
        assert_clean(app, "help", shown)
        await pilot.press("escape")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: app.saved_path is not None)
        assert_clean(app, "status line: saved", shown)
        app.snapshot_dir = save_dir / "missing"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert_clean(app, "status line: error", shown)

    run(app, scenario, size=(200, 50))
    escaped = printable(hostile)
    hidden = [where for where, text in shown.items() if escaped[:6] not in text]
    assert hidden == []  # shown escaped, never dropped
    if hostile == "[red]x[/]":  # literally: markup not applied
        assert [where for where, text in shown.items() if "[red]x[/]" not in text] == []


def test_every_table_cell_is_clean(tmp_path, hostile):
    """Every column, for a new row (marked +) and an old one: new columns are covered too."""
    from droptop.frontends.tui import columns
    from droptop.snapshot_file import load_snapshot

    snap = load_snapshot(write_hostile(tmp_path, hostile))
    for spec in columns.COLUMNS:
        for row in snap.rows:
            for new in (True, False):
                text = columns.cell(spec, row, snap, 60, new=new).plain
                assert not dangerous(text), (spec.key, new, text)


def test_spark_survives_non_finite_values():
    from droptop.frontends.tui.format import spark

    assert spark([1.0, float("inf"), float("nan"), -1.0], 4) == "█   "
    assert spark([1.0, 2.0], 2, peak=float("inf")) == "  "
    assert spark([float("nan")], 1, peak=float("nan")) == " "


def test_a_huge_command_line_does_not_freeze_the_drill_down(tmp_path):
    """psutil's cmdline can be megabytes (ARG_MAX); the screen shows a bounded part."""
    import time

    path = write_hostile(tmp_path, "nginx")
    procs = [ProcessInfo(1, "root", "nginx " + "\u202e-x " * 400_000)]
    app = make_app(ReplayCollector(path), process_lookup=lambda c: procs)

    async def scenario(pilot) -> None:
        await started(pilot)
        app.main.table.move_cursor(row=app.main.table.get_row_index(app.latest.rows[0].key))
        await pilot.pause()
        start = time.monotonic()
        await pilot.press("enter")
        await wait_until(pilot, lambda: drilled(app))
        text, _ = screen_output(app)
        assert time.monotonic() - start < 0.5
        assert "nginx \\u202e-x" in text and not dangerous(text)

    run(app, scenario, size=(120, 40))
