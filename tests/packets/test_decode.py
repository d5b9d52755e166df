"""The header decoder on packets built byte by byte: every field, every truncation."""

from __future__ import annotations

import importlib
import struct

import pytest

from droptop.packets import decode, sample_record
from droptop.packets.decode import TCP_FLAG_LETTERS, decode_strict
from droptop.packets.sample import (
    ARPHRD_LOOPBACK,
    ARPHRD_NONE,
    ETH_P_8021AD,
    ETH_P_8021Q,
    ETH_P_ARP,
    ETH_P_IP,
    ETH_P_IPV6,
)
from droptop.sanitize import printable
from tests.packets import build as b

A4, B4 = "198.18.0.1", "198.18.0.2"
A6, B6 = "2001:db8::1", "2001:db8:0:1::2"
SRC_MAC, DST_MAC = "02:00:00:00:00:01", "02:00:00:00:00:02"


def udp4(sport: int = 40000, dport: int = 9, payload: bytes = b"d" * 32) -> bytes:
    return b.ipv4(A4, B4, 17, b.udp(A4, B4, sport, dport, payload))


def tcp4(flags: int, **kw) -> bytes:
    return b.ipv4(A4, B4, 6, b.tcp(A4, B4, 40001, 80, flags, **kw))


def test_ipv4_udp_without_mac_header():
    d = decode(b.sample(udp4()))
    assert (d.family, d.src, d.dst, d.proto, d.sport, d.dport) == ("ipv4", A4, B4, "udp", 40000, 9)
    assert d.len == 20 + 8 + 32
    assert not d.truncated and not d.malformed
    assert d.tcp_flags == "" and d.icmp_type is None and d.vlan == () and d.fragment is None
    assert d.payload_offset == 28
    assert d.summary == f"IP {A4}.40000 > {B4}.9: UDP, len 60"
    assert d.mac_src == "" and d.ethertype == ETH_P_IP


def test_ipv4_udp_with_ethernet_header():
    pkt = udp4()
    s = b.sample(pkt, mac_header=b.eth(DST_MAC, SRC_MAC, ETH_P_IP))
    d = decode(s)
    assert (d.src, d.dst, d.sport, d.dport) == (A4, B4, 40000, 9)
    assert (d.mac_src, d.mac_dst) == (SRC_MAC, DST_MAC)
    assert d.hex == (s.mac + s.network).hex()
    assert d.payload_offset == 14 + 28
    assert d.len == len(pkt)


def test_length_is_the_samples_not_the_copy():
    """Only 128 bytes are copied; `len` is still the packet's."""
    pkt = udp4(payload=b"x" * 1000)
    d = decode(b.sample(pkt))
    assert d.len == 1028 and len(bytes.fromhex(d.hex)) == 128
    assert not d.truncated, "a cut payload is not a truncated header"


def test_ipv6_udp_behind_hop_by_hop_and_fragment_headers():
    payload = b.udp(A6, B6, 5353, 9, b"q" * 20)
    pkt = b.ipv6(A6, B6, 0, b.hop_by_hop(44) + b.fragment6(17, 0, more=True) + payload)
    d = decode(b.sample(pkt))
    assert (d.family, d.src, d.dst, d.proto, d.sport, d.dport) == (
        "ipv6",
        A6,
        B6,
        "udp",
        5353,
        9,
    )
    assert d.fragment == 0 and not d.truncated
    assert d.payload_offset == 40 + 8 + 8 + 8
    assert d.summary == f"IP6 {A6}.5353 > {B6}.9: UDP, frag offset 0+, len {len(pkt)}"


def test_ipv6_non_first_fragment_has_no_ports():
    pkt = b.ipv6(A6, B6, 44, b.fragment6(17, 1448) + b"middle of a datagram")
    d = decode(b.sample(pkt))
    assert (d.proto, d.sport, d.dport, d.fragment) == ("udp", None, None, 1448)
    assert d.payload_offset == 48


def test_ipv6_walks_routing_destination_options_and_ah_to_tcp():
    seg = b.tcp(A6, B6, 443, 50000, b.TCP_SYN | b.TCP_ACK)
    chain = b.routing(60) + b.dest_options(51) + b.auth_header(6)
    pkt = b.ipv6(A6, B6, 43, chain + seg)
    d = decode(b.sample(pkt, copy=256))
    assert (d.proto, d.sport, d.dport, d.tcp_flags) == ("tcp", 443, 50000, "S.")
    assert d.payload_offset == 40 + 24 + 8 + 24 + 20


def test_ipv6_esp_stops_the_walk():
    pkt = b.ipv6(A6, B6, 50, b"\0\0\1\0" + b"\0" * 20)
    d = decode(b.sample(pkt))
    assert (d.proto, d.sport, d.dport, d.truncated) == ("50", None, None, False)
    assert "ip-proto-50" in d.summary


@pytest.mark.parametrize(
    ("flags", "text"),
    [
        (b.TCP_SYN, "S"),
        (b.TCP_SYN | b.TCP_ACK, "S."),
        (b.TCP_FIN | b.TCP_ACK, "F."),
        (b.TCP_RST, "R"),
        (b.TCP_RST | b.TCP_ACK, "R."),
        (b.TCP_PSH | b.TCP_ACK, "P."),
        (b.TCP_SYN | 0x40 | 0x80, "SEW"),
        (0x20 | b.TCP_ACK, ".U"),
        (0, "none"),
    ],
)
def test_tcp_flags_letters(flags, text):
    d = decode(b.sample(tcp4(flags)))
    assert d.tcp_flags == text
    assert f"Flags [{text}]" in d.summary


def test_tcp_ae_bit_lives_in_the_offset_byte():
    pkt = bytearray(tcp4(b.TCP_SYN))
    pkt[20 + 12] |= 1
    assert decode(b.sample(bytes(pkt))).tcp_flags == "Se"
    assert [letter for _, letter in TCP_FLAG_LETTERS] == list("FSRP.UEWe")


def test_tcp_syn_fields_and_options():
    mss = struct.pack("!BBH", 2, 4, 1460)
    d = decode(b.sample(tcp4(b.TCP_SYN, options=mss, window=1024)))
    assert (d.proto, d.sport, d.dport, d.tcp_flags) == ("tcp", 40001, 80, "S")
    assert d.payload_offset == 20 + 24
    assert d.summary == f"IP {A4}.40001 > {B4}.80: Flags [S], len 44"


def test_icmp_echo_request():
    d = decode(b.sample(b.ipv4(A4, B4, 1, b.icmp_echo(0x77, 3))))
    assert (d.proto, d.icmp_type, d.icmp_code, d.sport, d.dport) == ("icmp", 8, 0, None, None)
    assert d.summary == f"IP {A4} > {B4}: ICMP echo request, id 119, seq 3, len 32"


def test_icmp_port_unreachable_names_the_code():
    inner = udp4()[:28]
    msg = struct.pack("!BBHI", 3, 3, 0, 0) + inner
    d = decode(b.sample(b.ipv4(B4, A4, 1, msg)))
    assert (d.icmp_type, d.icmp_code) == (3, 3)
    assert "ICMP port unreachable code 3" in d.summary


def test_icmpv6_echo_request():
    d = decode(b.sample(b.ipv6(A6, B6, 58, b.icmp6_echo(A6, B6, 9, 1))))
    assert (d.family, d.proto, d.icmp_type, d.icmp_code) == ("ipv6", "icmpv6", 128, 0)
    assert "ICMP6 echo request, id 9, seq 1" in d.summary


def test_arp_request_with_ethernet_header():
    arp = b.arp_request(SRC_MAC, A4, B4)
    s = b.sample(arp, mac_header=b.eth("ff:ff:ff:ff:ff:ff", SRC_MAC, ETH_P_ARP), protocol=ETH_P_ARP)
    d = decode(s)
    assert (d.family, d.proto, d.src, d.dst, d.arp_op) == ("arp", "arp", A4, B4, 1)
    assert d.mac_dst == "ff:ff:ff:ff:ff:ff"
    assert d.summary == f"ARP, Request who-has {B4} tell {A4}, len 28"
    assert d.payload_offset == 14 + 28


def test_arp_reply_shows_the_hardware_address():
    arp = bytearray(b.arp_request(SRC_MAC, A4, B4))
    arp[7] = 2
    d = decode(b.sample(bytes(arp), protocol=ETH_P_ARP))
    assert d.arp_op == 2
    assert d.summary.startswith(f"ARP, Reply {A4} is-at {SRC_MAC}")


def test_8021q_vlan_tagged_ipv4():
    mac = b.eth(DST_MAC, SRC_MAC, ETH_P_IP, vlans=((ETH_P_8021Q, 100),))
    d = decode(b.sample(udp4(), mac_header=mac))
    assert d.vlan == (100,)
    assert (d.src, d.dst, d.sport, d.dport) == (A4, B4, 40000, 9)
    assert d.summary.startswith("vlan 100: IP ")


def test_qinq_8021ad_outer_then_8021q_inner():
    vlans = ((ETH_P_8021AD, 0x2000 | 300), (ETH_P_8021Q, 42))  # priority bits are not the id
    mac = b.eth(DST_MAC, SRC_MAC, ETH_P_IPV6, vlans=vlans)
    d = decode(b.sample(b.ipv6(A6, B6, 17, b.udp(A6, B6, 1, 2, b"")), mac_header=mac))
    assert d.vlan == (300, 42)
    assert (d.family, d.sport, d.dport) == ("ipv6", 1, 2)


def test_non_first_ipv4_fragment_has_no_ports():
    pkt = b.ipv4(A4, B4, 17, b"\x9c\x40\x00\x09" + b"x" * 40, frag_offset=1480)
    d = decode(b.sample(pkt))
    assert (d.proto, d.sport, d.dport, d.fragment) == ("udp", None, None, 1480)
    assert d.summary == f"IP {A4} > {B4}: UDP, frag offset 1480, len 64"
    assert d.payload_offset == 20


def test_first_ipv4_fragment_has_ports():
    pkt = b.ipv4(A4, B4, 17, b.udp(A4, B4, 7, 8, b"x" * 16), more_fragments=True)
    d = decode(b.sample(pkt))
    assert (d.sport, d.dport, d.fragment) == (7, 8, 0)
    assert "frag offset 0+" in d.summary


def test_ipv4_options_are_skipped():
    pkt = b.ipv4(A4, B4, 17, b.udp(A4, B4, 7, 8, b""), options=b"\x01\x01\x01\x00")  # NOPs, EOL
    d = decode(b.sample(pkt))
    assert (d.sport, d.dport, d.payload_offset) == (7, 8, 24 + 8)


def test_other_ip_protocol_is_its_number():
    d = decode(b.sample(b.ipv4(A4, B4, 47, b"\0" * 8)))
    assert (d.proto, d.sport) == ("47", None)
    assert "ip-proto-47" in d.summary


def test_sctp_ports():
    d = decode(b.sample(b.ipv4(A4, B4, 132, struct.pack("!HHII", 36412, 38412, 0, 0))))
    assert (d.proto, d.sport, d.dport) == ("132", 36412, 38412)


def test_non_ip_ethertype_with_mac_is_eth():
    s = b.sample(b"\x02\x07\x04" + b"\0" * 20, mac_header=b.eth(DST_MAC, SRC_MAC, 0x88CC))
    d = decode(s)
    assert (d.family, d.proto, d.src, d.dst) == ("eth", "0x88cc", SRC_MAC, DST_MAC)
    assert d.summary == f"{SRC_MAC} > {DST_MAC}, ethertype 0x88cc, len 23"
    assert d.payload_offset == 14


def test_8023_length_field():
    d = decode(b.sample(b"\xaa\xaa\x03" + b"\0" * 40, mac_header=b.eth(DST_MAC, SRC_MAC, 43)))
    assert (d.family, d.proto) == ("eth", "802.3")


def test_unknown_protocol_without_mac_is_other():
    d = decode(b.sample(b"\x12\x34", protocol=0x88B5))
    assert (d.family, d.proto, d.src, d.dst) == ("other", "0x88b5", "", "")
    assert d.summary == "protocol 0x88b5, len 2"


def test_unset_protocol_falls_back_to_the_ip_version():
    d4 = decode(b.sample(udp4(), protocol=0))
    d6 = decode(b.sample(b.ipv6(A6, B6, 17, b.udp(A6, B6, 1, 2, b"")), protocol=0))
    assert (d4.family, d4.dport, d6.family, d6.dport) == ("ipv4", 9, "ipv6", 2)
    assert decode(b.sample(b"\x00\x01", protocol=0)).family == "other"


def test_loopback_mac_header_is_ethernet_shaped():
    mac = b.eth("00:00:00:00:00:00", "00:00:00:00:00:00", ETH_P_IP)
    d = decode(b.sample(udp4(), mac_header=mac, link_type=ARPHRD_LOOPBACK))
    assert (d.mac_src, d.src, d.dport) == ("00:00:00:00:00:00", A4, 9)


def test_non_ethernet_mac_header_is_skipped_by_length():
    """A 4-byte GRE-ish link header on a device that is not Ethernet: trust skb->protocol."""
    d = decode(b.sample(udp4(), mac_header=b"\x00\x00\x08\x00", link_type=778))
    assert (d.mac_src, d.src, d.dport, d.payload_offset) == ("", A4, 9, 4 + 28)
    d = decode(b.sample(udp4(), link_type=ARPHRD_NONE))  # tun: no MAC header at all
    assert (d.src, d.dport) == (A4, 9)


# --- malformed -------------------------------------------------------------------------


def test_ipv4_ihl_below_five_is_malformed():
    pkt = bytearray(udp4())
    pkt[0] = 0x44
    d = decode(b.sample(bytes(pkt)))
    assert d.malformed and (d.src, d.dst, d.sport) == (A4, B4, None)
    assert d.summary.endswith("(malformed)")


def test_wrong_ip_version_is_malformed():
    d = decode(b.sample(udp4(), protocol=ETH_P_IPV6))
    assert d.family == "ipv6" and d.malformed and d.src == ""


def test_tcp_offset_below_five_is_malformed():
    pkt = bytearray(tcp4(b.TCP_SYN))
    pkt[20 + 12] = 0x30
    d = decode(b.sample(bytes(pkt)))
    assert d.malformed and d.tcp_flags == "S" and d.dport == 80


# --- truncation at every length --------------------------------------------------------

UDP6 = b.ipv6(A6, B6, 0, b.hop_by_hop(44) + b.fragment6(17) + b.udp(A6, B6, 5353, 9, b"q"))
ARP_FRAME = b.eth("ff:ff:ff:ff:ff:ff", SRC_MAC, ETH_P_ARP) + b.arp_request(SRC_MAC, A4, B4)
VLAN_FRAME = b.eth(DST_MAC, SRC_MAC, ETH_P_IP, vlans=((ETH_P_8021Q, 5),)) + tcp4(b.TCP_SYN)

# (name, bytes, MAC header length, header end: fewer bytes than this is a truncated header,
#  then (field, value, the number of bytes from which it must be known) checks).
CASES = [
    (
        "udp4",
        udp4(),
        0,
        28,
        [("src", A4, 16), ("dst", B4, 20), ("proto", "udp", 10), ("sport", 40000, 24)],
    ),
    (
        "tcp4",
        tcp4(b.TCP_SYN),
        0,
        40,
        [("dport", 80, 24), ("tcp_flags", "S", 34)],
    ),
    (
        "icmp4",
        b.ipv4(A4, B4, 1, b.icmp_echo(1, 1)),
        0,
        28,
        [("icmp_type", 8, 21), ("icmp_code", 0, 22)],
    ),
    (
        "udp6 with extension headers",
        UDP6,
        0,
        64,
        [("src", A6, 24), ("dst", B6, 40), ("proto", "udp", 56), ("dport", 9, 60)],
    ),
    (
        "icmp6",
        b.ipv6(A6, B6, 58, b.icmp6_echo(A6, B6, 1, 1)),
        0,
        48,
        [("icmp_type", 128, 41)],
    ),
    ("arp", ARP_FRAME, 14, 42, [("mac_src", SRC_MAC, 12), ("arp_op", 1, 22), ("dst", B4, 42)]),
    ("vlan tcp", VLAN_FRAME, 18, 58, [("vlan", (5,), 18), ("src", A4, 34), ("sport", 40001, 42)]),
]


@pytest.mark.parametrize(
    ("name", "pkt", "mac_len", "end", "checks"), CASES, ids=[c[0] for c in CASES]
)
def test_truncated_at_every_length(name, pkt, mac_len, end, checks):
    """Every prefix decodes without raising; a field is either right or absent, and it is
    present from exactly the byte where its header field ends."""
    full = decode_strict(_cut(pkt, mac_len, len(pkt)))
    for n in range(len(pkt) + 1):
        d = decode_strict(_cut(pkt, mac_len, n))
        assert d.truncated == (n < end), (name, n)
        assert d.hex == pkt[:n].hex()
        assert 0 <= d.payload_offset <= n
        for field, value, known_from in checks:
            got = getattr(d, field)
            if n < mac_len and field in ("src", "dst"):
                continue  # before the EtherType, src/dst are the frame's MAC addresses
            assert getattr(full, field) == value
            if n >= known_from:
                assert got == value, (name, n, field)
            else:
                assert got in ("", None, ()), (name, n, field, got)
        if n >= end:
            assert d.summary == full.summary, (name, n)


def _cut(pkt: bytes, mac_len: int, n: int):
    """The first n bytes of a frame as a sample: the MAC header part, then the network part.
    The packet's length stays the whole packet's, as the kernel reports it."""
    mac, net = pkt[: min(n, mac_len)], pkt[mac_len:n]
    protocol = {0x45: ETH_P_IP, 0x60: ETH_P_IPV6}.get(pkt[0], ETH_P_ARP) if not mac_len else 0
    s = b.sample(net or b"", mac_header=mac, protocol=protocol, length=len(pkt) - mac_len)
    if mac_len and not mac:
        # the MAC header was not copied at all: the kernel reader would still know the protocol
        s = b.sample(net, protocol=ETH_P_ARP if pkt[12:14] == b"\x08\x06" else ETH_P_IP)
    return s


# --- hostile payloads ------------------------------------------------------------------

HOSTILE = b"\x1b[31m[red]owned[/red]\x1b]0;title\x07" + "\u202eevil\u2066".encode()


def test_hostile_payload_reaches_only_hex():
    d = decode(b.sample(udp4(payload=HOSTILE), mac_header=b.eth(DST_MAC, SRC_MAC, ETH_P_IP)))
    text_fields = [d.summary, d.src, d.dst, d.proto, d.tcp_flags, d.mac_src, d.mac_dst]
    for text in text_fields:
        assert text.isascii() and text.isprintable(), text
        assert "[red]" not in text and "\x1b" not in text
    assert HOSTILE.hex() in d.hex
    assert set(d.hex) <= set("0123456789abcdef")
    # What a front end prints: the summary (through the sanitizer, unchanged) and the hex.
    shown = printable(d.summary)
    assert shown == f"IP {A4}.40000 > {B4}.9: UDP, len {28 + len(HOSTILE)}"


def test_hostile_interface_name_stays_raw_in_the_record():
    """The data layer keeps raw values; the JSON encoder and the front ends escape them."""
    s = b.sample(udp4(), ifname="\x1b[2Jeth0")
    rec = sample_record(s)
    assert rec["ifname"] == "\x1b[2Jeth0"
    assert printable(rec["ifname"]) == "\\x1b[2Jeth0"


def test_sample_record_has_the_json_fields_of_the_issue():
    rec = sample_record(b.sample(tcp4(b.TCP_SYN), ifname="lo"))
    for key in (
        "time",
        "ifname",
        "family",
        "src",
        "dst",
        "proto",
        "sport",
        "dport",
        "tcp_flags",
        "icmp_type",
        "len",
        "hex",
    ):
        assert key in rec
    assert (rec["ifname"], rec["sport"], rec["dport"], rec["tcp_flags"]) == ("lo", 40001, 80, "S")
    assert rec["time"] == 1_700_000_000.25 and rec["len"] == 40


def test_decode_never_raises_even_if_the_strict_decoder_would(monkeypatch):
    mod = importlib.import_module("droptop.packets.decode")  # the package exports decode()

    def boom(sample):
        raise IndexError("bug")

    monkeypatch.setattr(mod, "decode_strict", boom)
    d = mod.decode(b.sample(udp4()))
    assert d.malformed and d.hex == udp4().hex() and d.summary == "undecodable, len 60"


def test_decode_cached_returns_the_same_result_for_an_equal_sample():
    from droptop.packets import decode_cached

    first = decode_cached(b.sample(udp4()))
    assert decode_cached(b.sample(udp4())) is first and first == decode(b.sample(udp4()))
