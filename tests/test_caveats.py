"""Caveats appear for the misleading (reason, location) pairs and nowhere else."""

from __future__ import annotations

import pytest

from droptop.names.caveats import CAVEATS, caveat


@pytest.mark.parametrize(
    "reason,loc,word",
    [
        ("NETFILTER_DROP", "nft_do_chain+0x46f", "reject"),
        ("OTHERHOST", "ip_rcv_core+0x22c", "VLAN"),
        ("IP_INHDR", "ip_forward+0x1a0", "TTL"),
        ("QDISC_DROP", "__dev_queue_xmit+0xdd1", "carrier"),
        ("NO_TX_TARGET", "br_dev_xmit+0x34f", "bridge"),
    ],
)
def test_known_caveats(reason, loc, word):
    text = caveat(reason, [loc])
    assert text and word in text


def test_location_bound_caveats_need_their_location():
    assert caveat("IP_INHDR", ["ip_rcv_core+0x10"]) is None
    assert caveat("QDISC_DROP", ["pfifo_fast_enqueue+0x10"]) is None
    assert caveat("NO_SOCKET", ["__udp4_lib_rcv+0x1"]) is None


def test_every_caveat_is_short_and_says_what_to_check():
    for c in CAVEATS:
        assert c.checked and "Check" in c.text
        assert c.text.count(". ") <= 3
