"""Every benign entry matches its own site and nothing else."""

from __future__ import annotations

import pytest

from droptop.names.benign import BENIGN, NOT_BENIGN, classify, function_name, match_location


def test_function_name_strips_offset_and_module():
    assert function_name("udp_destruct_common+0xb9") == "udp_destruct_common"
    assert function_name("bnxt_tx_int+0x1f0 [bnxt_en]") == "bnxt_tx_int"
    assert function_name("skb_rbtree_purge") == "skb_rbtree_purge"


@pytest.mark.parametrize("entry", BENIGN, ids=lambda e: f"{e.location}:{e.reason}")
def test_each_entry_matches_its_site(entry):
    reason = entry.reason or "NOT_SPECIFIED"
    m = classify(reason, [f"{entry.location}+0x10"])
    assert m is not None and m.entry == entry and m.why == entry.why
    assert entry.why and entry.checked
    if entry.reason is not None:
        assert classify("NO_SOCKET", [f"{entry.location}+0x10"]) is None


def test_a_row_is_benign_only_when_every_location_is():
    assert classify("NOT_SPECIFIED", ["udp_destruct_common+0xb9", "ip6_mc_input+0x15e"])
    assert classify("NOT_SPECIFIED", ["udp_destruct_common+0xb9", "__udp4_lib_rcv+0x3"]) is None
    assert classify("NOT_SPECIFIED", []) is None


def test_reason_bound_entries_do_not_hide_real_drops_there():
    assert classify("NO_SOCKET", ["tcp_v4_rcv+0x99"]) is None
    assert classify("TCP_CSUM", ["tcp_v4_rcv+0x99"]) is None
    assert classify("SOCKET_BACKLOG", ["skb_queue_purge_reason+0x20"]) is None
    assert match_location("QUEUE_PURGE", "skb_queue_purge_reason+0x20") is not None


@pytest.mark.parametrize("location,why", NOT_BENIGN)
def test_sites_we_keep_as_losses(location, why):
    assert why
    assert classify("NEIGH_FAILED", [f"{location}+0x5"]) is None


def test_table_has_no_duplicate_sites():
    keys = [(e.location, e.reason) for e in BENIGN]
    assert len(keys) == len(set(keys))
