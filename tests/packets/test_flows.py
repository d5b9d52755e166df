"""Top flows among samples: grouping, shares, a total order."""

from __future__ import annotations

import pytest

from droptop.packets import FLOWS_TITLE, decode, top_flows
from tests.packets import build as b

A, B, C = "198.18.0.1", "198.18.0.2", "198.18.0.3"


def udp(src: str, sport: int, dst: str, dport: int):
    return decode(b.sample(b.ipv4(src, dst, 17, b.udp(src, dst, sport, dport, b"x"))))


def test_groups_by_five_tuple_most_samples_first():
    samples = [udp(A, 1000, B, 53)] * 5 + [udp(C, 2000, B, 53)] * 2 + [udp(A, 1001, B, 53)]
    flows = top_flows(samples)
    assert [(f.src, f.sport, f.samples) for f in flows] == [
        (A, 1000, 5),
        (C, 2000, 2),
        (A, 1001, 1),
    ]
    assert [f.share for f in flows] == pytest.approx([5 / 8, 2 / 8, 1 / 8])
    assert flows[0].label == f"udp {A}:1000 > {B}:53"
    assert "among samples" in FLOWS_TITLE


def test_direction_matters_and_ties_are_ordered_by_tuple():
    flows = top_flows([udp(B, 53, A, 1000), udp(A, 1000, B, 53)])
    assert [(f.src, f.dst) for f in flows] == [(A, B), (B, A)]
    assert [f.samples for f in flows] == [1, 1]


def test_portless_and_ipv6_flows_and_limit():
    icmp = decode(b.sample(b.ipv4(A, B, 1, b.icmp_echo(1, 1))))
    v6 = decode(
        b.sample(
            b.ipv6("2001:db8::1", "2001:db8::2", 17, b.udp("2001:db8::1", "2001:db8::2", 5, 6, b""))
        )
    )
    everything = top_flows([icmp, icmp, v6, udp(A, 1, B, 2)])
    assert everything[2].label == "udp [2001:db8::1]:5 > [2001:db8::2]:6"  # text order on ties
    flows = top_flows([icmp, icmp, v6, udp(A, 1, B, 2)], limit=2)
    assert len(flows) == 2
    assert flows[0].label == f"icmp {A} > {B}"
    assert (flows[0].sport, flows[0].dport, flows[0].share) == (None, None, 0.5)
    assert flows[1].label == f"udp {A}:1 > {B}:2"


def test_no_samples_no_flows():
    assert top_flows([]) == []
