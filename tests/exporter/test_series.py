"""SeriesBook: aggregation, label sets, monotonic across resets, folding with exact sums."""

from __future__ import annotations

import dataclasses
import random

import pytest

from droptop.errors import DroptopError
from droptop.frontends.exporter.labels import OTHER
from droptop.frontends.exporter.series import SeriesBook, split
from droptop.model import Attribution, Location
from tests.factories import row, snapshot


def grow(r, packets, nbytes=None, **kw):
    """The same row (same key) with new cumulative counts: a fresh object, as the assembler
    makes for a row that changed."""
    return r._replace(packets=packets, bytes=packets * 60 if nbytes is None else nbytes, **kw)


def test_rows_sharing_labels_aggregate_and_device_is_named():
    a = row(comm="curl", packets=10, ifname="eth0")
    b = row(comm="wget", packets=5, ifname="eth0")  # another key, same default labels
    c = row(comm="curl", packets=7, ifname="", ifindex=0, netns=0)
    book = SeriesBook()
    book.add(snapshot(a, b, c))
    v = book.view()
    assert v.names == ("reason", "subsys", "device")
    assert v.packets == {("NO_SOCKET", "core", "eth0"): 15, ("NO_SOCKET", "core", "none"): 7}
    assert v.bytes[("NO_SOCKET", "core", "eth0")] == 15 * 60


def test_opt_in_labels_and_netns_name_fallback():
    a = row(comm="curl", packets=3, netns=4026531840)
    book = SeriesBook(labels=("comm", "netns", "service", "context"))
    book.add(snapshot(a))
    v = book.view()
    assert v.names == ("reason", "subsys", "device", "netns", "service", "comm", "context")
    assert list(v.packets) == [("NO_SOCKET", "core", "eth0", "4026531840", "", "curl", "")]

    who = Attribution(context="softirq-inline", service="web.service", netns_name="blue")
    f = a._replace(packets=4, bytes=40, who=who)
    book2 = SeriesBook(labels=("comm", "netns", "service", "context"))
    book2.add(snapshot(f))
    assert list(book2.view().packets) == [
        ("NO_SOCKET", "core", "eth0", "blue", "web.service", "curl", "softirq-inline")
    ]


def test_counter_rows_stay_out_of_the_drop_counters():
    drop = row(comm="curl", packets=3)
    ctr = row(comm="", packets=9)._replace(source="counter")
    book = SeriesBook()
    book.add(snapshot(drop, ctr))
    assert sum(book.view().packets.values()) == 3


def test_location_label_splits_packets_exactly_and_bytes_proportionally():
    a = row(packets=0)
    a = a._replace(
        packets=10,
        bytes=1000,
        where=(Location("f+0x1", 6), Location("g+0x2", 3), Location("f+0x9", 1)),
    )
    book = SeriesBook(labels=("location",))
    book.add(snapshot(a))
    v = book.view()
    assert v.packets == {
        ("NO_SOCKET", "core", "eth0", "f"): 7,
        ("NO_SOCKET", "core", "eth0", "g"): 3,
    }
    assert sum(v.bytes.values()) == 1000
    assert v.bytes[("NO_SOCKET", "core", "eth0", "f")] == 700
    # Locations that are not reset when the row is (the collector keeps them raw):
    # the row's increase is split by the locations' increases.
    b = a._replace(
        packets=4,
        bytes=400,
        where=(Location("f+0x1", 6), Location("g+0x2", 7), Location("f+0x9", 1)),
    )
    book.add(snapshot(b))
    v = book.view()
    assert v.packets[("NO_SOCKET", "core", "eth0", "g")] == 7
    assert v.packets[("NO_SOCKET", "core", "eth0", "f")] == 7


def test_split_is_exact():
    rng = random.Random(1)
    for _ in range(500):
        weights = [rng.randrange(0, 50) for _ in range(rng.randrange(1, 6))]
        total = rng.randrange(0, 10_000)
        parts = split(total, weights)
        assert sum(parts) == total and all(p >= 0 for p in parts)


def test_monotonic_across_reset_and_vanished_rows_keep_series():
    a = row(packets=100)
    book = SeriesBook()
    book.add(snapshot(a))
    labels = ("NO_SOCKET", "core", "eth0")
    assert book.view().packets[labels] == 100
    book.add(snapshot(grow(a, 0)))  # the TUI's z: cumulative restarts from zero
    assert book.view().packets[labels] == 100
    book.add(snapshot(grow(a, 30)))
    assert book.view().packets[labels] == 130
    book.add(snapshot(grow(a, 20)))  # lower than last seen: a reset, 20 new drops
    assert book.view().packets[labels] == 150
    book.add(snapshot())  # the row vanished: its series stays
    assert book.view().packets[labels] == 150


def test_reset_epoch_catches_growth_past_the_old_value():
    @dataclasses.dataclass(frozen=True)
    class Snap:
        rows: tuple
        resets: int

    a = row(packets=100)
    book = SeriesBook()
    book.add(Snap((a,), 0))
    book.add(Snap((grow(a, 150),), 1))  # reset, then 150 new drops within one interval
    assert book.view().packets[("NO_SOCKET", "core", "eth0")] == 250


def test_idle_row_is_skipped_by_identity_and_view_is_reused():
    a = row(packets=5)
    book = SeriesBook()
    book.add(snapshot(a))
    v1 = book.view()
    book.add(snapshot(a))
    assert book.view() is v1


def test_hostile_label_values_are_escaped():
    evil = 'a"b\\c\nd\x1b[31m\u202e'
    book = SeriesBook(labels=("comm",))
    book.add(snapshot(row(comm=evil, packets=1), row(ifname="x\x07y", comm="ok", packets=1)))
    v = book.view()
    comms = {k[3] for k in v.packets}
    assert 'a"b\\c\\x0ad\\x1b[31m\\u202e' in comms  # bidi escaped too
    assert all("\n" not in t and "\x1b" not in t for t in v.text.values())
    assert any(k[2] == "x\\x07y" for k in v.packets)


def test_max_series_must_be_positive():
    with pytest.raises(DroptopError) as e:
        SeriesBook(max_series=0)
    assert e.value.exit_code == 2


class Prometheus:
    """What Prometheus's increase() would credit from successive views: for a series it
    has seen, the rise since its last sample; for a new one, its whole value. Also checks
    that no series ever goes down."""

    def __init__(self) -> None:
        self.last: dict = {}
        self.credited = 0
        self.present: set = set()
        self.returns = 0

    def scrape(self, view) -> None:
        self.returns += len((set(view.packets) - self.present) & set(self.last))
        self.present = set(view.packets)
        for k, v in view.packets.items():
            prev = self.last.get(k, 0)
            assert v >= prev, f"series {k} went down: {prev} -> {v}"
            self.credited += v - prev
            self.last[k] = v


def test_folding_keeps_sums_exact_and_every_series_monotonic():
    rng = random.Random(7)
    keys = [row(comm=f"c{i}", ifname=f"veth{i}", packets=0) for i in range(40)]
    cum = [0] * len(keys)
    book = SeriesBook(max_series=8)
    prom = Prometheus()
    true_total = 0
    for step in range(300):
        rows = []
        for i, k in enumerate(keys):
            if step == 150 and i < 20:  # a reset (the TUI's z) seen by half the keys
                cum[i] = 0
            if rng.random() < 0.3:
                # a few series become hot for a while: forces promotions and demotions
                inc = rng.randrange(0, 5) + (200 if (i + step // 50) % 13 == 0 else 0)
                cum[i] += inc
                true_total += inc
            rows.append(grow(k, cum[i]))
        book.add(snapshot(*rows))
        v = book.view()
        assert len(v.packets) <= 8
        prom.scrape(v)
    assert prom.credited == true_total
    assert prom.returns >= 3  # series did fold and come back
    assert (OTHER,) * 3 in v.packets
    assert v.folded == 40 - 7


def test_series_that_folds_and_comes_back_resumes():
    small = row(comm="s", ifname="small", packets=5)
    big = row(comm="b", ifname="big", packets=100)
    book = SeriesBook(max_series=2)
    prom = Prometheus()
    book.add(snapshot(small, big))
    prom.scrape(book.view())
    assert book.view().packets == {
        ("NO_SOCKET", "core", "small"): 5,
        ("NO_SOCKET", "core", "big"): 100,
    }
    new = row(comm="n", ifname="new", packets=1)
    book.add(snapshot(small, big, new))  # third label set: the two smallest fold
    v = book.view()
    prom.scrape(v)
    assert set(v.packets) == {("NO_SOCKET", "core", "big"), (OTHER,) * 3}
    # "new" was never exported: its drop went to "other"; "small" keeps its 5 hidden
    assert v.packets[(OTHER,) * 3] == 1
    assert v.folded == 2
    # "small" grows past big * PROMOTE_FACTOR: it comes back from 5, not from 0
    small2 = grow(small, 500)
    book.add(snapshot(small2, big, new))
    v = book.view()
    prom.scrape(v)
    assert v.packets[("NO_SOCKET", "core", "small")] == 5
    assert v.packets[(OTHER,) * 3] == 1 + 495
    book.add(snapshot(grow(small, 510), big, new))
    prom.scrape(book.view())
    assert book.view().packets[("NO_SOCKET", "core", "small")] == 15
    assert prom.credited == 510 + 100 + 1
