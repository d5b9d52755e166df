"""The drivers' ethtool statistics: read with the real ioctl, kept only where the name says
loss, and turned into counter rows like the table's counters."""

from __future__ import annotations

import os
import subprocess

import pytest

from droptop.collector.counter_rows import CounterRows
from droptop.collector.ethtool import LOSS_NAME, EthtoolStats


@pytest.mark.parametrize(
    ("name", "loss"),
    [
        ("rx_queue_0_drops", True),
        ("rx_queue_0_xdp_drops", True),
        ("rx_missed_errors", True),
        ("rx_no_buffer_count", True),
        ("rx_fifo_errors", True),
        ("tx_discards", True),
        ("peer_ifindex", False),
        ("rx_queue_0_xdp_packets", False),
        ("tx_queue_0_xdp_xmit_errors", False),
    ],
)
def test_loss_names(name, loss):
    assert bool(LOSS_NAME.search(name)) is loss


@pytest.mark.bpf
def test_real_veth_statistics_through_the_ioctl():
    from tests.conftest import need_bpf

    need_bpf()  # root: it makes a veth pair
    a, b = f"dte{os.getpid() % 10000}a", f"dte{os.getpid() % 10000}b"
    subprocess.run(["ip", "link", "add", a, "type", "veth", "peer", "name", b], check=True)
    try:
        stats = EthtoolStats()
        names = stats.names(a)
        assert "peer_ifindex" in names and "rx_queue_0_drops" in names  # veth's own set
        got = stats.read(a)
        assert set(got) == {n for n in names if LOSS_NAME.search(n)}
        assert "peer_ifindex" not in got and all(isinstance(v, int) for v in got.values())
        assert stats.read("lo") == {}  # no ethtool statistics at all
    finally:
        subprocess.run(["ip", "link", "del", a], check=False)
    assert stats.read(a) == {}  # gone mid-run: nothing, no error
    stats.close()


class FakeEthtool:
    def __init__(self):
        self.value = 100

    def devices(self):
        return ["eth9"]

    def read(self, ifname):
        return {"rx_queue_0_drops": self.value}


def test_a_moving_ethtool_statistic_becomes_a_counter_row():
    rows = CounterRows(ethtool=False)
    rows._ethtool = FakeEthtool()
    assert rows.poll() == ()  # the first reading is the baseline
    rows._ethtool.value += 42
    (row,) = [r for r in rows.poll() if r.reason.subsys == "ethtool"]
    assert row.source == "counter" and row.ifname == "eth9"
    assert row.reason.name == "rx_queue_0_drops" and row.packets == 42
    assert row.key.counter == "ethtool:rx_queue_0_drops"
