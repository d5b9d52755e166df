"""Hypothesis fuzzing of the strict decoder (no safety net): any bytes, any truncation."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from droptop.packets.decode import decode_strict
from droptop.packets.sample import (
    ARPHRD_ETHER,
    ARPHRD_LOOPBACK,
    ARPHRD_NONE,
    ARPHRD_UNKNOWN,
    ETH_P_8021AD,
    ETH_P_8021Q,
    ETH_P_ARP,
    ETH_P_IP,
    ETH_P_IPV6,
    PacketSample,
)
from tests.packets import build as b

PROTOCOLS = st.sampled_from([0, ETH_P_IP, ETH_P_IPV6, ETH_P_ARP, ETH_P_8021Q, 0x88CC, 0xFFFF])
LINK_TYPES = st.sampled_from([ARPHRD_UNKNOWN, ARPHRD_ETHER, ARPHRD_LOOPBACK, ARPHRD_NONE, 778])


def _check(s: PacketSample) -> None:
    d = decode_strict(s)
    data = s.mac + s.network
    for text in (d.family, d.src, d.dst, d.proto, d.tcp_flags, d.summary, d.mac_src, d.mac_dst):
        assert text.isascii() and text.isprintable(), repr(text)
    assert d.family in ("ipv4", "ipv6", "arp", "eth", "other")
    assert d.hex == data.hex()
    assert 0 <= d.payload_offset <= len(data)
    assert d.len == s.length
    for port in (d.sport, d.dport):
        assert port is None or 0 <= port <= 0xFFFF
    assert all(0 <= v <= 0xFFF for v in d.vlan)
    if d.sport is not None:
        assert d.fragment in (None, 0), "a non-first fragment has no ports"


@settings(max_examples=1500, deadline=None)
@given(
    mac=st.binary(max_size=40),
    network=st.binary(max_size=160),
    protocol=PROTOCOLS,
    link_type=LINK_TYPES,
)
def test_random_bytes_never_raise(mac, network, protocol, link_type):
    _check(PacketSample(0.0, 1, "x", 1, protocol, len(network), mac, network, link_type))


def _version_first(version: int) -> st.SearchStrategy[bytes]:
    """Bytes that start like an IP header, so the fuzzer gets deep into the layers."""
    return st.tuples(st.integers(0, 15), st.binary(max_size=159)).map(
        lambda t: bytes([(version << 4) | t[0]]) + t[1]
    )


@settings(max_examples=1500, deadline=None)
@given(
    network=st.one_of(_version_first(4), _version_first(6)),
    proto_byte=st.sampled_from([0, 1, 6, 17, 43, 44, 50, 51, 58, 60, 132, 255]),
    vlan=st.sampled_from([None, ETH_P_8021Q, ETH_P_8021AD]),
)
def test_ip_shaped_bytes_never_raise(network, proto_byte, vlan):
    """Force the IPv4 protocol byte / IPv6 next header to something with a decoder."""
    net = bytearray(network)
    v6 = net[0] >> 4 == 6
    where = 6 if v6 else 9
    if len(net) > where:
        net[where] = proto_byte
    if v6 and len(net) > 40:
        net[40] = proto_byte  # the first extension header points on to another one
    ethertype = ETH_P_IPV6 if v6 else ETH_P_IP
    vlans = ((vlan, 7),) if vlan else ()
    mac = b.eth("02:00:00:00:00:02", "02:00:00:00:00:01", ethertype, vlans=vlans)
    for m in (b"", mac):
        s = PacketSample(0.0, 1, "x", 1, ethertype, len(net), m, bytes(net), ARPHRD_ETHER)
        _check(s)


def test_every_prefix_of_a_long_ipv6_extension_chain():
    """Deterministic companion to the fuzzers: 0..N bytes of a deep chain."""
    chain = b.hop_by_hop(43) + b.routing(60) + b.dest_options(51) + b.auth_header(44)
    chain += b.fragment6(6, 0, more=True) + b.tcp("::1", "::2", 1, 2, b.TCP_SYN)
    pkt = b.ipv6("::1", "::2", 0, chain)
    for n in range(len(pkt) + 1):
        s = PacketSample(0.0, 1, "x", 1, ETH_P_IPV6, len(pkt), b"", pkt[:n], 0)
        _check(s)
    d = decode_strict(PacketSample(0.0, 1, "x", 1, ETH_P_IPV6, len(pkt), b"", pkt, 0))
    assert (d.proto, d.sport, d.dport, d.tcp_flags, d.fragment) == ("tcp", 1, 2, "S", 0)
