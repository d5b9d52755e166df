"""Column layout and cell text, without Textual."""

from __future__ import annotations

from droptop import severity
from droptop.frontends.tui import columns as cols
from droptop.frontends.tui.format import fit, human_rate, spark
from tests.factories import row, snapshot


def used(widths: dict[str, int]) -> int:
    return sum(w + 2 * cols.CELL_PADDING for w in widths.values())


def test_wide_layout_has_every_column_and_fits():
    w = cols.layout(158)
    assert list(w) == [c.key for c in cols.COLUMNS]
    assert used(w) <= 158


def test_80_columns_keep_the_important_ones():
    w = cols.layout(78)
    assert {"rate", "total", "reason", "comm", "if"} <= set(w)
    assert "netns" not in w
    assert used(w) <= 78


def test_tiny_terminal_still_draws_rate_and_reason():
    for width in (10, 20, 30, 40):
        w = cols.layout(width)
        assert "rate" in w and "reason" in w
        assert w["reason"] >= 6


def test_layout_order_is_display_order():
    for width in (40, 60, 78, 100, 200):
        keys = list(cols.layout(width))
        assert keys == [c.key for c in cols.COLUMNS if c.key in keys]


def test_rate_cell_has_mark_not_only_colour():
    snap = snapshot(row(rate=1500.0), row(rate=150.0, comm="b"), row(rate=1.0, comm="c"))
    spec = cols.BY_KEY["rate"]
    crit = cols.cell(spec, snap.rows[0], snap, 8, new=False)
    warn = cols.cell(spec, snap.rows[1], snap, 8, new=False)
    ok = cols.cell(spec, snap.rows[2], snap, 8, new=False)
    assert crit.plain.strip().startswith(severity.MARK[severity.Level.CRITICAL])
    assert warn.plain.strip().startswith("! ")
    assert ok.plain.strip() == "1.0"


def test_new_row_is_marked_with_text():
    snap = snapshot(row())
    cell = cols.cell(cols.BY_KEY["reason"], snap.rows[0], snap, 20, new=True)
    assert cell.plain.startswith("+NO_SOCKET")


def test_kernel_context_comm_in_brackets_and_escaped():
    snap = snapshot(row(comm="ksoftirqd/0", kernel_context=True), row(comm="a\x1bb"))
    spec = cols.BY_KEY["comm"]
    assert cols.cell(spec, snap.rows[0], snap, 15, new=False).plain == "[ksoftirqd/0]"
    assert cols.cell(spec, snap.rows[1], snap, 15, new=False).plain == "a\\x1bb"


def test_header_label_arrow():
    spec = cols.BY_KEY["total"]
    assert cols.header_label(spec, 7, "total", True).plain.strip() == "TOTAL▼"
    assert cols.header_label(spec, 7, "total", False).plain.strip() == "TOTAL▲"
    assert cols.header_label(spec, 7, "rate", True).plain.strip() == "TOTAL"


def test_spark_and_formatting():
    assert spark([0, 1, 2, 4], 4) == " ▃▅█"
    assert spark([5, 5], 4) == "  ██"
    assert spark([], 3) == "   "
    assert fit("abcdef", 4) == "abc…"
    assert fit("abc", 4) == "abc"
    assert human_rate(0) == "0" and human_rate(2.5) == "2.5" and human_rate(1500) == "1.5k"


def test_drilldown_hides_tracing_frames_only_at_the_top():
    from droptop.frontends.tui.drilldown import drop_frames

    frames = (
        "bpf_prog_e32d_raw_tracepoint__kfree_skb+0x36c",
        "bpf_trace_run4+0x166",
        "__traceiter_kfree_skb+0x41",
        "sk_skb_reason_drop+0x90",
        "__udp4_lib_rcv+0x4bc",
    )
    assert drop_frames(frames) == (["sk_skb_reason_drop+0x90", "__udp4_lib_rcv+0x4bc"], 3)
    assert drop_frames(("kfree_skb_reason+0x8c", "bpf_trace_run4+0x1")) == (
        ["kfree_skb_reason+0x8c", "bpf_trace_run4+0x1"],
        0,
    )
    assert drop_frames(("bpf_prog_x+0x1",)) == (["bpf_prog_x+0x1"], 0)  # never empty
