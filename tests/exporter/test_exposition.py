"""The exposition over HTTP: formats, hostile labels, the fast path against prometheus_client,
and a scrape and a poll that never wait for each other."""

from __future__ import annotations

import threading
import time

import pytest
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import CounterMetricFamily
from prometheus_client.openmetrics.parser import text_string_to_metric_families as om_parse
from prometheus_client.parser import text_string_to_metric_families as text_parse

from droptop.frontends.exporter import EXPORTED_NAMES, BuildInfo, render
from droptop.frontends.exporter import labels as labels_mod
from tests.exporter.helpers import (
    OPENMETRICS_ACCEPT,
    PROMETHEUS_ACCEPT,
    scrape,
    start_exporter,
)
from tests.factories import row, snapshot

HOSTILE = 'x"y\\z\nq\x1b[2J\u202eevil\u2066'


def samples(families) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples}


@pytest.fixture
def exporter():
    e = start_exporter(labels=("comm",))
    yield e
    e.close()


def test_text_format_parses_and_carries_the_counts(exporter):
    snap = snapshot(
        row(comm="curl", packets=10),
        row(comm=HOSTILE, packets=3, ifname=HOSTILE),
        row(name="TCP_CSUM", raw=10, comm="ksoftirqd/0", packets=2, ifname=""),
        notes=("attached to kfree_skb as a BTF-typed raw tracepoint (tp_btf)",),
        overflow_packets=4,
    )
    exporter.update(snap, poll_seconds=0.002)
    status, ctype, body = scrape(exporter)
    assert status == 200 and ctype.startswith("text/plain; version=0.0.4")
    got = samples(text_parse(body))
    names = {name for name, _ in got}
    assert names <= EXPORTED_NAMES | {"droptop_reason_info", "droptop_build_info"}
    key = lambda **kw: tuple(sorted(kw.items()))  # noqa: E731
    assert (
        got[
            "droptop_drops_total",
            key(reason="NO_SOCKET", subsys="core", device="eth0", comm="curl"),
        ]
        == 10
    )
    assert (
        got[
            "droptop_drops_total",
            key(reason="TCP_CSUM", subsys="core", device="none", comm="ksoftirqd/0"),
        ]
        == 2
    )
    clean = labels_mod.clean(HOSTILE)
    assert "\n" not in clean and "\x1b" not in clean
    assert (
        got["droptop_drops_total", key(reason="NO_SOCKET", subsys="core", device=clean, comm=clean)]
        == 3
    )
    assert got["droptop_overflow_drops_total", ()] == 4
    assert got["droptop_poll_duration_seconds", ()] == 0.002
    assert (
        got["droptop_build_info", key(version="0.1.0", kernel="6.18.0-test", attach="tp_btf")] == 1
    )
    assert got["droptop_reason_info", key(subsys="core", reason="NO_SOCKET", raw="0x3")] == 1
    # one line per sample: the hostile value cannot start a line of its own
    for line in body.splitlines():
        assert line.startswith(("#", "droptop_")), line


def test_openmetrics_by_negotiation(exporter):
    exporter.update(snapshot(row(comm=HOSTILE, packets=3)))
    for accept in (OPENMETRICS_ACCEPT, PROMETHEUS_ACCEPT):
        status, ctype, body = scrape(exporter, accept)
        assert status == 200
        assert ctype.startswith("application/openmetrics-text; version=1.0.0")
        assert body.endswith("# EOF\n") and body.count("# EOF") == 1
        fams = {f.name: f for f in om_parse(body)}
        assert fams["droptop_drops"].type == "counter"
        assert fams["droptop_drop_bytes"].unit == "bytes"
        assert fams["droptop_build"].type == "info"
        (s,) = fams["droptop_drops"].samples
        assert s.name == "droptop_drops_total" and s.value == 3
        assert s.labels["comm"] == labels_mod.clean(HOSTILE)


def test_gzip_index_and_404(exporter):
    exporter.update(snapshot(row(packets=7)))
    _, _, plain = scrape(exporter)
    _, _, unzipped = scrape(exporter, gz=True)
    assert unzipped == plain
    assert scrape(exporter, path="/")[0] == 200
    assert scrape(exporter, path="/nope")[0] == 404


def test_fast_drop_lines_match_prometheus_client():
    """The hand-written drop counter lines parse to exactly what prometheus_client writes."""
    rows = [row(comm=f'c{i}\\"{HOSTILE}', ifname=f"v{i % 7}", packets=i + 1) for i in range(50)]
    e = start_exporter(labels=("comm",))
    try:
        e.update(snapshot(*rows))
        view = e.state.series
        fam = CounterMetricFamily("droptop_drops", "x", labels=view.names)
        for k, v in view.packets.items():
            fam.add_metric(k, v)

        class One:
            def collect(self):
                yield fam

        want = samples(text_parse(generate_latest(One()).decode()))
        body, _ = render.render(e.state, None)
        got = {
            k: v
            for k, v in samples(text_parse(body.decode())).items()
            if k[0] == "droptop_drops_total"
        }
        assert got == want and len(got) == len(view.packets)
    finally:
        e.close()


def test_attach_from_build_info_and_notes():
    e = start_exporter(build=BuildInfo("9.9", attach="raw_tp"))
    try:
        e.update(snapshot(row()))
        body = scrape(e)[2]
        assert 'droptop_build_info{attach="raw_tp",kernel="6.18.0-test",version="9.9"} 1.0' in body
    finally:
        e.close()


def test_bpf_series_only_when_known(exporter):
    exporter.update(snapshot(row()))
    body = scrape(exporter)[2]
    assert "droptop_bpf_run_seconds_per_drop" not in body
    exporter.update(snapshot(row(), bpf_ns_per_drop=250.0))
    got = samples(text_parse(scrape(exporter)[2]))
    assert got["droptop_bpf_run_seconds_per_drop", ()] == pytest.approx(250e-9)


def test_a_slow_scrape_never_blocks_update(exporter, monkeypatch):
    """A scrape stuck in rendering: update() still returns at once."""
    exporter.update(snapshot(row(packets=1)))
    entered, release = threading.Event(), threading.Event()
    real = render._drop_lines

    def slow(view, openmetrics):
        entered.set()
        release.wait(10)
        return real(view, openmetrics)

    monkeypatch.setattr(render, "_drop_lines", slow)
    t = threading.Thread(target=scrape, args=(exporter,), daemon=True)
    t.start()
    assert entered.wait(5)
    start = time.monotonic()
    for n in range(2, 50):
        exporter.update(snapshot(row(packets=n)))
    assert time.monotonic() - start < 0.5
    release.set()
    t.join(5)
    assert exporter.state.series.packets[("NO_SOCKET", "core", "eth0", "curl")] == 49


def test_a_slow_update_never_blocks_a_scrape(monkeypatch):
    """A poll stuck in update(): scrapes are answered from the previous state."""
    entered, release = threading.Event(), threading.Event()
    real = labels_mod.LABEL_GETTERS["comm"]

    def slow(r):
        if r.key.comm == "block":
            entered.set()
            release.wait(10)
        return real(r)

    monkeypatch.setitem(labels_mod.LABEL_GETTERS, "comm", slow)
    e = start_exporter(labels=("comm",))
    try:
        e.update(snapshot(row(comm="curl", packets=5)))
        t = threading.Thread(
            target=e.update, args=(snapshot(row(comm="block", packets=1)),), daemon=True
        )
        t.start()
        assert entered.wait(5)
        start = time.monotonic()
        status, _, body = scrape(e)
        assert time.monotonic() - start < 1.0
        assert status == 200
        assert 'comm="curl"} 5' in body and "block" not in body
        release.set()
        t.join(5)
        assert 'comm="block"} 1' in scrape(e)[2]
    finally:
        release.set()
        e.close()


def test_counter_rows_and_benign_frees_have_families_of_their_own(exporter):

    from droptop.model import Attribution, Reason

    drop = row(comm="curl", packets=5)
    benign = row(name="NOT_SPECIFIED", raw=2, comm="swapper/0", packets=7)._replace(
        benign="queue purge"
    )
    ctr = row(comm="", packets=0, ifname="")._replace(
        source="counter",
        reason=Reason(-1, "TcpExt:ListenOverflows", "snmp", "counter"),
        who=Attribution(netns_name="host"),
    )
    for packets in (16, 40, 3):  # 3: the TUI's z reset; the exported counter must not drop
        exporter.update(snapshot(drop, benign, ctr._replace(packets=packets)))
    got = samples(text_parse(scrape(exporter)[2]))
    key = lambda **kw: tuple(sorted(kw.items()))  # noqa: E731
    losses = key(source="snmp", counter="TcpExt:ListenOverflows", netns="host", device="none")
    assert got["droptop_counter_losses_total", losses] == 43
    assert got["droptop_benign_frees_total", key(reason="NOT_SPECIFIED", subsys="core")] == 7
    drops = {k: v for k, v in got.items() if k[0] == "droptop_drops_total"}
    assert sum(drops.values()) == 12  # counter rows are not drops; benign ones still are
