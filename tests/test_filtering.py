"""The filter language: words, field:value, negation, numeric comparisons, errors."""

from __future__ import annotations

import pytest

from droptop.filtering import Filter, FilterError, parse_filter
from tests.factories import row

NGINX = row("NETFILTER_DROP", raw=7, comm="nginx", packets=500, rate=150.0, ifname="eth0")
SWAPPER = row(
    "NO_SOCKET",
    raw=2,
    comm="swapper/0",
    packets=9000,
    rate=1200.0,
    ifname="eth0",
    kernel_context=True,
)
WIFI = row(
    "RX_DROP_U_REPLAY",
    raw=0x10002,
    comm="swapper/2",
    packets=30,
    rate=2.5,
    ifname="wlan0",
    ifindex=3,
    subsys="mac80211_unusable",
    kernel_context=True,
)
NODEV = row(
    "NOT_SPECIFIED",
    raw=1,
    comm="kworker/u8:2",
    packets=4,
    rate=0.0,
    ifname="",
    ifindex=0,
    netns=0,
    kernel_context=True,
)
ROWS = [NGINX, SWAPPER, WIFI, NODEV]


def matching(text: str) -> list[str]:
    f = parse_filter(text)
    return [r.key.comm for r in ROWS if f.matches(r)]


def test_empty_matches_everything():
    assert matching("") == [r.key.comm for r in ROWS]
    assert matching("   ") == [r.key.comm for r in ROWS]
    assert not parse_filter("")
    assert isinstance(parse_filter(""), Filter)


def test_words_match_any_column_case_insensitively():
    assert matching("NGINX") == ["nginx"]
    assert matching("netfilter") == ["nginx"]
    assert matching("wlan0") == ["swapper/2"]
    assert matching("mac80211") == ["swapper/2"]
    assert matching("4026531833") == ["nginx", "swapper/0", "swapper/2"]


def test_words_and_together():
    assert matching("eth0 swapper") == ["swapper/0"]
    assert matching("eth0 nothing-like-this") == []


def test_fields():
    assert matching("comm:swapper") == ["swapper/0", "swapper/2"]
    assert matching("reason:no_socket") == ["swapper/0"]
    assert matching("reason:0x10002") == ["swapper/2"]
    assert matching("if:wlan") == ["swapper/2"]
    assert matching("if:3") == ["swapper/2"]
    assert matching("subsys:core") == ["nginx", "swapper/0", "kworker/u8:2"]
    assert matching("netns:0") == ["kworker/u8:2"]
    assert matching("iface:eth0") == ["nginx", "swapper/0"]  # alias


def test_negation():
    assert matching("!swapper") == ["nginx", "kworker/u8:2"]
    assert matching("!reason:NOT_SPECIFIED eth0") == ["nginx", "swapper/0"]
    assert matching("!rate>100") == ["swapper/2", "kworker/u8:2"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("rate>100", ["nginx", "swapper/0"]),
        ("rate>=150", ["nginx", "swapper/0"]),
        ("rate<2.5", ["kworker/u8:2"]),
        ("rate<=2.5", ["swapper/2", "kworker/u8:2"]),
        ("total>=1k", ["swapper/0"]),
        ("total=30", ["swapper/2"]),
        ("total==30", ["swapper/2"]),
        ("total!=30", ["nginx", "swapper/0", "kworker/u8:2"]),
        ("bytes<2000", ["swapper/2", "kworker/u8:2"]),
        ("packets>1M", []),
        ("rate>1 rate<200", ["nginx", "swapper/2"]),
    ],
)
def test_numeric_comparisons(text, expected):
    assert matching(text) == expected


def test_quotes_keep_spaces():
    r = row(comm="my proc")
    assert parse_filter('"my proc"').matches(r)
    assert not parse_filter('"my procx"').matches(r)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("foo:bar", "unknown field 'foo'"),
        ("comm:", "needs a value"),
        ("!", "must be followed"),
        ("rate>", "needs a number"),
        ("rate>abc", "not a number"),
        ("comm>5", "cannot compare 'comm'"),
        ('"unbalanced', "bad quoting"),
    ],
)
def test_bad_input_raises_filter_error(text, message):
    with pytest.raises(FilterError) as e:
        parse_filter(text)
    assert message in str(e.value)
    assert isinstance(e.value, ValueError)


def test_filter_keeps_its_text():
    assert parse_filter("  comm:nginx  ").text == "comm:nginx"
    assert [t.text for t in parse_filter("a !b rate>1").terms] == ["a", "!b", "rate>1"]


def test_markup_and_control_bytes_are_plain_text():
    evil = row(comm="[red]evil\x1b[2J")
    assert parse_filter("[red]").matches(evil)
    assert parse_filter("comm:evil").matches(evil)
