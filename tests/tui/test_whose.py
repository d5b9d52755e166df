"""Pilot tests for issues 11, 12 and 14 in the TUI: whose drop, packet samples, counter rows
and benign frees, against the fake collector's script (droptop/collector/fake.py)."""

from __future__ import annotations

import pytest

from droptop.collector.counters import SPECS
from droptop.collector.fake import EVIL_COMM, HOSTILE_PAYLOAD
from droptop.frontends.tui.drilldown import DrillDownScreen
from droptop.model import DropKey
from droptop.sanitize import printable
from tests.test_sanitize import dangerous
from tests.tui.conftest import make_app, polls, run, started, wait_until
from tests.tui.test_hostile import screen_output

WIDE = (160, 110)
"""Big enough for a whole drill-down, so the screen text holds every section."""


def key_where(pilot, *, comm: str | None = None, reason: str | None = None) -> DropKey:
    return next(
        r.key
        for r in pilot.app.latest.rows
        if (comm is None or r.key.comm == comm) and (reason is None or r.reason.name == reason)
    )


def shown_keys(pilot) -> list[DropKey]:
    return pilot.app.main.table.row_keys_in_order()


async def drill(pilot, **where) -> str:
    """Open the drill-down of one row; the screen's text once its lookup is done."""
    table = pilot.app.main.table
    table.move_cursor(row=table.get_row_index(key_where(pilot, **where)))
    await pilot.pause()
    await pilot.press("enter")
    await wait_until(
        pilot,
        lambda: (
            isinstance(pilot.app.screen, DrillDownScreen) and pilot.app.screen.processes is not None
        ),
    )
    text, stream = screen_output(pilot.app)
    assert not dangerous(text) and not dangerous(stream.replace("\x1b[", ""))
    return text


# --- the table ---------------------------------------------------------------------------


def test_cells_mark_counters_benign_rows_and_interrupted_tasks():
    async def scenario(pilot):
        await started(pilot, 9)
        t = pilot.app.main.table
        assert {"ctx", "service", "netns"} <= set(t.visible_columns)

        def cell(column: str, **where) -> str:
            return t.cell_text(key_where(pilot, **where), column).plain.strip()

        assert cell("reason", reason="TcpExt:ListenOverflows") == "#TcpExt:ListenOverflows"
        assert cell("reason", reason="rx_missed_errors") == "#rx_missed_errors"
        assert cell("comm", reason="rx_missed_errors") == "-"
        assert cell("ctx", reason="rx_missed_errors") == "ctr"
        assert cell("netns", reason="TcpExt:ListenOverflows") == "blue"
        assert cell("reason", comm="rcuop/0") == "~NOT_SPECIFIED"
        assert cell("reason", comm="kworker/u8:2") == "NOT_SPECIFIED"  # not benign
        # ping was only interrupted by the timer softirq: bracketed, context irq
        assert cell("comm", comm="ping") == "[ping]"
        assert cell("ctx", comm="ping") == "irq"
        assert cell("comm", comm="nginx") == "nginx"
        assert cell("ctx", comm="nginx") == "proc"
        assert cell("ctx", comm="iperf3") == "inline"
        assert cell("service", comm="nginx") == "nginx.service"
        assert cell("service", comm="curl") == "docker:3f2a1b9c4d5e"
        assert cell("service", comm="ping") == "-"
        assert cell("netns", comm="handler12") == "pid 2210 (ovs-vswitchd)"
        assert cell("netns", comm="nginx") == "host"
        evil = cell("service", comm=EVIL_COMM)
        assert evil == "[b]x\\x1b[2J.service" and "\x1b" not in evil

    run(make_app(), scenario, size=(200, 40))


def test_80_columns_show_service_and_drop_context_first():
    async def scenario(pilot):
        await started(pilot, 9)
        cols = pilot.app.main.table.visible_columns
        assert cols == ["rate", "total", "reason", "comm", "service", "if"]

    run(make_app(), scenario, size=(80, 24))


# --- b: benign frees --------------------------------------------------------------------


def test_b_hides_benign_rows_and_the_header_says_at_what_rate():
    async def scenario(pilot):
        await started(pilot, 9)
        app = pilot.app
        benign = [r for r in app.latest.rows if r.benign is not None]
        assert [r.key.comm for r in benign] == ["rcuop/0"]
        rate = benign[0].rate
        assert rate > 0
        header = app.main.header
        assert "hidden benign" not in header.render().plain
        total = app.latest.total_packets
        await pilot.press("b")
        await pilot.pause()
        assert app.main.hide_benign
        assert benign[0].key not in shown_keys(pilot)
        assert len(shown_keys(pilot)) == len(app.latest.rows) - 1
        assert header.hidden_benign == pytest.approx(rate)
        line = header.render().plain
        assert f"hidden benign: {rate:.1f}/s" in line
        assert "benign hidden" in app.main.status.summary
        assert app.latest.total_packets == total  # hiding changes no total
        await polls(pilot)  # the rate follows the new snapshot
        now = sum(r.rate for r in app.latest.rows if r.benign is not None)
        assert header.hidden_benign == pytest.approx(now)
        await pilot.press("b")
        await pilot.pause()
        assert not app.main.hide_benign and header.hidden_benign is None
        assert benign[0].key in shown_keys(pilot)
        assert "hidden benign" not in header.render().plain

    run(make_app(), scenario, size=(120, 40))


def test_hide_benign_can_start_on():
    async def scenario(pilot):
        await started(pilot, 9)
        assert all(r.benign is None for r in pilot.app.main.table._rows)
        assert "hidden benign:" in pilot.app.main.header.render().plain

    run(make_app(hide_benign=True), scenario, size=(120, 40))


# --- filters -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("service:nginx", {("nginx", "NETFILTER_DROP")}),
        ("service:docker", {("curl", "QDISC_DROP")}),
        ("ctx:softirq-inline", {("iperf3", "SOCKET_RCVBUFF")}),
        (
            "ctx:proc",
            {("nginx", "NETFILTER_DROP"), ("curl", "QDISC_DROP"), (EVIL_COMM, "PKT_TOO_SMALL")},
        ),
        ("host:203.0.113.50", {("nginx", "NETFILTER_DROP")}),
        ("host:2001:db8::10", {("swapper/0", "NO_SOCKET")}),
        ("port:443", {("nginx", "NETFILTER_DROP"), ("curl", "QDISC_DROP")}),
        ("proto:icmp", {("ping", "NEIGH_FAILED")}),
        ("proto:arp", {("handler12", "OVS_DROP_LAST_ACTION")}),
        ("source:counter", {("", "TcpExt:ListenOverflows"), ("", "rx_missed_errors")}),
        ("netns:blue", {("ping", "NEIGH_FAILED"), ("", "TcpExt:ListenOverflows")}),
        ("cgroup:system.slice/iperf3", {("iperf3", "SOCKET_RCVBUFF")}),
    ],
)
def test_filter_by_whose_and_by_samples(text, expected):
    async def scenario(pilot):
        await started(pilot, 9)
        await pilot.press("slash", *text, "enter")
        await pilot.pause()
        by_key = {r.key: r for r in pilot.app.latest.rows}
        got = {(k.comm, by_key[k].reason.name) for k in shown_keys(pilot)}
        assert got == expected

    run(make_app(), scenario, size=(120, 40))


# --- the drill-down ----------------------------------------------------------------------


def test_drilldown_whose_drop_samples_flows_and_caveat():
    async def scenario(pilot):
        await started(pilot, 9)
        text = await drill(pilot, comm="nginx")
        assert "Whose drop" in text
        assert "process: the task's own code path" in text
        assert "socket pid 812 nginx (inode 91234)" in text
        assert "service nginx.service  cgroup /system.slice/nginx.service" in text
        assert "netns host (inode 4026531840)" in text
        assert "Sampled packets (8 samples, not counts; newest last)" in text
        lines = [ln for ln in text.splitlines() if "192.0.2.10:443 →" in ln]
        assert len(lines) == 8
        assert all("tcp" in ln and "flags P." in ln and ln.rstrip().endswith("100") for ln in lines)
        times = [ln.split()[0] for ln in lines]
        assert times == sorted(times)  # newest last
        assert "Top flows among samples" in text
        flows = [ln.split() for ln in text.splitlines() if ln.strip().startswith("tcp 192.0.2")]
        assert flows == [
            ["tcp", "192.0.2.10:443", ">", "203.0.113.50:52001", "6", "75%"],
            ["tcp", "192.0.2.10:443", ">", "203.0.113.51:40022", "2", "25%"],
        ]
        assert "Careful: Also counts packets a firewall rule rejected" in text

    run(make_app(), scenario, size=WIDE)


def test_drilldown_of_an_interrupted_task_says_it_is_not_the_culprit():
    async def scenario(pilot):
        await started(pilot, 9)
        text = await drill(pilot, comm="ping")
        assert "comm [ping] (interrupted)" in text
        assert "softirq-irq: at interrupt exit" in text and "only" in text
        assert "Processes (only interrupted by the drop: not the culprit)" in text
        assert "netns blue (inode 4026532600)" in text
        assert "echo request" in text
        assert "service -  cgroup -" in text

    run(make_app(), scenario, size=WIDE)


def test_drilldown_of_a_socket_owner_in_softirq():
    async def scenario(pilot):
        await started(pilot, 9)
        text = await drill(pilot, comm="iperf3")
        assert "softirq-inline: run inside this task's own syscall" in text
        assert "socket pid 4242 iperf3 (inode 81234)" in text
        assert "127.0.0.1:43210 → 127.0.0.1:5201" in text

    run(make_app(), scenario, size=WIDE)


def test_drilldown_of_a_counter_row_has_its_meaning_and_no_stacks():
    async def scenario(pilot):
        await started(pilot, 9)
        text = await drill(pilot, reason="TcpExt:ListenOverflows")
        spec = SPECS[("snmp", "TcpExt:ListenOverflows")]
        assert "COUNTER TcpExt:ListenOverflows" in text
        assert "# counter TcpExt:ListenOverflows  from snmp" in text
        assert spec.why[:60] in " ".join(text.split())
        assert "TCP_LISTEN_OVERFLOW" in text and "Also seen as" in text
        assert "netns blue" in text
        for absent in ("Drop locations", "Top kernel stacks", "Processes", "Top flows"):
            assert absent not in text
        assert "% of all drops" not in text  # counters are not in the drop total

    run(make_app(), scenario, size=WIDE)


def test_drilldown_of_a_benign_row_says_why():
    async def scenario(pilot):
        await started(pilot, 9)
        text = await drill(pilot, comm="rcuop/0")
        assert "benign free" in text
        assert "~ Benign free, not a loss: datagrams still queued when a UDP socket" in text
        assert "no process holds it now (inode 77123)" in text

    run(make_app(), scenario, size=WIDE)


def test_hostile_payload_cgroup_and_comm_show_escaped():
    async def scenario(pilot):
        await started(pilot, 9)
        text = await drill(pilot, comm=EVIL_COMM)
        assert printable(HOSTILE_PAYLOAD.decode("latin-1")) in text
        assert "\\x1b[2J\\x1b]0;owned\\x07[red]pwn[/red]\\x9b31m" in text  # literally
        assert "/system.slice/[b]x\\x1b[2J.service" in text
        assert "veth[b]1" in text
        assert "\x1b" not in text and "\x9b" not in text and "\x07" not in text

    run(make_app(), scenario, size=WIDE)
