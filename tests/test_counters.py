"""Counter tables, /proc and sysfs parsing on faked files, and the rate maths."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from droptop.collector import counters as c

SNMP = """Ip: Forwarding DefaultTTL InReceives
Ip: 1 64 100
Tcp: RtoAlgorithm MaxConn
Tcp: 1 -1
Udp: InDatagrams NoPorts RcvbufErrors
Udp: 5 3 2
"""
NETSTAT = """TcpExt: SyncookiesSent ListenOverflows ListenDrops TCPReqQFullDrop
TcpExt: 0 18 20 1
IpExt: InNoECTPkts
IpExt: 77
"""
SNMP6 = "Ip6InReceives                   \t12\nUdp6RcvbufErrors 4\nUdpLite6InErrors 0\n"


def fake_proc(tmp: Path) -> Path:
    net = tmp / "proc" / "net"
    net.mkdir(parents=True)
    (net / "snmp").write_text(SNMP)
    (net / "netstat").write_text(NETSTAT)
    (net / "snmp6").write_text(SNMP6)
    return net


def test_parse_two_line_pairs_headers_with_values():
    v = c.parse_two_line(SNMP + NETSTAT)
    assert v["TcpExt:ListenOverflows"] == 18
    assert v["Tcp:MaxConn"] == -1
    assert v["Udp:RcvbufErrors"] == 2
    assert v["IpExt:InNoECTPkts"] == 77


def test_parse_snmp6_groups():
    v = c.parse_snmp6(SNMP6)
    assert v == {
        "Ip6:Ip6InReceives": 12,
        "Udp6:Udp6RcvbufErrors": 4,
        "UdpLite6:UdpLite6InErrors": 0,
    }


def test_read_snmp_keeps_table_counters_only(tmp_path):
    net = fake_proc(tmp_path)
    got = {s.counter: s.value for s in c.read_snmp(net, netns=42)}
    assert got["TcpExt:ListenOverflows"] == 18
    assert got["TcpExt:TCPReqQFullDrop"] == 1
    assert got["Udp6:Udp6RcvbufErrors"] == 4
    assert "Ip:InReceives" not in got
    assert all(s.netns == 42 for s in c.read_snmp(net, netns=42))


def test_read_snmp_of_a_vanished_netns_is_empty(tmp_path):
    assert c.read_snmp(tmp_path / "gone" / "net") == []
    assert c.netns_inode(tmp_path / "gone" / "net") == 0


def test_read_softnet_sums_hex_column_two(tmp_path):
    p = tmp_path / "softnet_stat"
    p.write_text("00000adf 0000000a 00000000\n00001a62 00000010 00000003\n")
    (s,) = c.read_softnet(p)
    assert (s.source, s.counter, s.value) == ("softnet", "softnet:dropped", 26)
    assert c.read_softnet(tmp_path / "none") == []


def test_read_driver_reads_each_interface_and_skips_missing(tmp_path):
    for ifname, val in (("eth0", "5\n"), ("dt0", "7\n")):
        st = tmp_path / ifname / "statistics"
        st.mkdir(parents=True)
        (st / "rx_missed_errors").write_text(val)
        (st / "tx_dropped").write_text("junk")
    got = {(s.ifname, s.counter): s.value for s in c.read_driver(tmp_path, netns=9)}
    assert got == {("dt0", "rx_missed_errors"): 7, ("eth0", "rx_missed_errors"): 5}
    assert c.read_driver(tmp_path / "nope", netns=9) == []


def test_tables_are_consistent():
    keys = [(s.source, s.counter) for s in c.COUNTERS]
    assert len(keys) == len(set(keys))
    for s in c.COUNTERS:
        assert s.source in c.SOURCES and s.why and s.checked
    rows = {s.counter for s in c.COUNTERS if s.row}
    assert "TcpExt:ListenOverflows" in rows
    # Sums and duplicates of kfree_skb reasons must never be rows.
    for name in (
        "TcpExt:ListenDrops",
        "TcpExt:TCPBacklogDrop",
        "Udp:RcvbufErrors",
        "softnet:dropped",
        "rx_errors",
        "tx_errors",
    ):
        assert name not in rows


def sample(counter="TcpExt:ListenOverflows", value=0, netns=1, ifname="", source="snmp"):
    return c.CounterSample(source, counter, netns, ifname, value)


def test_advance_baseline_then_rate_and_total():
    r0 = c.advance((), [sample(value=100)], 0.0)
    assert [(r.delta, r.total, r.rate) for r in r0] == [(0, 0, 0.0)]
    r1 = c.advance(r0, [sample(value=130)], 2.0)
    assert [(r.delta, r.total, r.rate, r.value) for r in r1] == [(30, 30, 15.0, 130)]
    r2 = c.advance(r1, [sample(value=131)], 0.5)
    assert [(r.delta, r.total, r.rate) for r in r2] == [(1, 31, 2.0)]


def test_advance_counter_going_down_is_a_restart_never_negative():
    r = c.advance((), [sample("tx_dropped", 500, ifname="dt0", source="driver")], 0.0)
    r = c.advance(r, [sample("tx_dropped", 4, ifname="dt0", source="driver")], 1.0)
    assert [(x.delta, x.total, x.rate) for x in r] == [(4, 4, 4.0)]


def test_advance_vanished_counter_leaves_no_row_and_new_one_is_baseline():
    r = c.advance((), [sample(netns=1, value=5)], 0.0)
    r = c.advance(r, [sample(netns=2, value=50)], 1.0)
    assert [(x.netns, x.delta, x.total) for x in r] == [(2, 0, 0)]


def test_advance_ignores_unknown_counters_and_loss_rows_filters():
    r = c.advance((), [sample("Ip:InReceives"), sample("TcpExt:ListenDrops")], 0.0)
    assert [x.counter for x in r] == ["TcpExt:ListenDrops"]
    assert c.loss_rows(r) == ()


@pytest.mark.skipif(not os.path.exists("/proc/self/net/netstat"), reason="no /proc")
def test_local_reader_reads_this_machine():
    samples = c.CounterReader.local().read()
    names = {s.counter for s in samples}
    assert "TcpExt:ListenOverflows" in names and "softnet:dropped" in names
    own = c.netns_inode("/proc/self/net")
    assert own == os.stat("/proc/self/ns/net").st_ino
    assert any(s.source == "driver" and s.ifname == "lo" for s in samples)


def _merge_by_sorting(drops, counters):
    """merge_rows as it was: every active row sorted again (the reference)."""
    active = [r for r in counters if r.rate > 0]
    idle = [r for r in counters if r.rate <= 0]
    head = [r for r in drops if r.rate > 0]
    tail = [r for r in drops if r.rate <= 0]
    head = sorted(head + active, key=lambda r: (-r.rate, -r.packets))
    return (*head, *tail, *idle)


@pytest.mark.parametrize("seed", range(30))
def test_merge_rows_puts_counter_rows_where_a_full_sort_would(seed):
    import random

    from droptop.collector.counter_rows import merge_rows
    from tests.factories import row

    rnd = random.Random(seed)
    rates, totals = [0.0, 0.0, 1.0, 2.0, 2.0, 5.0], [1, 3, 3, 7]  # many ties

    def some(prefix, n):
        return [
            row(comm=f"{prefix}{i}", rate=rnd.choice(rates), packets=rnd.choice(totals))
            for i in range(n)
        ]

    drops = some("d", rnd.randint(0, 40))
    # As the assembler orders them: active by (rate, packets) descending, then idle.
    active = sorted((r for r in drops if r.rate > 0), key=lambda r: (r.rate, r.packets))[::-1]
    ordered = (*active, *(r for r in drops if r.rate <= 0))
    counters = tuple(some("c", rnd.randint(0, 6)))
    got = merge_rows(ordered, counters)
    want = _merge_by_sorting(ordered, counters)
    assert [(r.key.comm, r.rate, r.packets) for r in got] == [
        (r.key.comm, r.rate, r.packets) for r in want
    ]
