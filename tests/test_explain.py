"""Plain-language explanations: present for core reasons, absent rather than guessed."""

from __future__ import annotations

import pytest

from droptop.names.explain import EXPLANATIONS, explain

COMMON = [
    "NOT_SPECIFIED",
    "NO_SOCKET",
    "NETFILTER_DROP",
    "TCP_CSUM",
    "SOCKET_RCVBUFF",
    "OTHERHOST",
    "PKT_TOO_SMALL",
    "IP_NOPROTO",
    "QDISC_DROP",
    "NEIGH_FAILED",
    "NEIGH_QUEUEFULL",
    "NEIGH_CREATEFAIL",
    "NEIGH_DEAD",
    "TCP_FLAGS",
    "TCP_ZEROWINDOW",
    "TCP_OLD_DATA",
    "TCP_OVERWINDOW",
    "TCP_RESET",
    "TCP_INVALID_SEQUENCE",
    "CPU_BACKLOG",
    "UDP_CSUM",
    "IP_CSUM",
    "IP_RPFILTER",
    "XDP",
]


@pytest.mark.parametrize("name", COMMON)
def test_common_reasons_are_explained(name):
    text = explain(name)
    assert text and len(text) > 20


def test_prefix_and_case_do_not_matter():
    assert explain("SKB_DROP_REASON_NO_SOCKET") == explain("NO_SOCKET")
    assert explain("no_socket") == explain("NO_SOCKET")


def test_unknown_or_raw_names_get_none():
    assert explain("0x50007") is None
    assert explain("SOMETHING_NEW_IN_7_0") is None
    assert explain("") is None


def test_explanations_are_one_line_sentences():
    for name, text in EXPLANATIONS.items():
        assert "\n" not in text, name
        assert text[0].isupper() or text.startswith("tc"), name
        assert text.endswith("."), name
        assert len(text) < 160, name
