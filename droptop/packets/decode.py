"""Decode a sampled packet's copied headers into the fields the drill-down and JSON show.

Pure and defensive: the input is at most ~150 bytes the kernel copied from a packet it was
dropping, which may be truncated by the copy, malformed, or crafted by whoever sent it. The
decoder walks Ethernet (with 802.1Q / 802.1ad tags), ARP, IPv4 (options, fragments), IPv6
(hop-by-hop, routing, fragment, destination options and AH extension headers), then TCP,
UDP, ICMP and ICMPv6, and stops where the bytes stop. It never raises on any input.

Every string it produces is printable ASCII by construction (addresses via inet_ntop, MACs
and unknown values as hex, fixed words): packet bytes never reach a text field, only the
`hex` field, as hex digits. Front ends still pass everything through `sanitize.printable`,
as they do for every kernel-supplied string.
"""

from __future__ import annotations

import functools
import socket
import struct
from dataclasses import dataclass

from droptop.packets.sample import (
    ARPHRD_UNKNOWN,
    ETH_P_8021AD,
    ETH_P_8021Q,
    ETH_P_ARP,
    ETH_P_IP,
    ETH_P_IPV6,
    ETH_P_QINQ1,
    ETHERNET_LINK_TYPES,
    PacketSample,
)

IPPROTO_ICMP = 1
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_ICMPV6 = 58
IPPROTO_DCCP = 33
IPPROTO_SCTP = 132
IPPROTO_UDPLITE = 136

PROTO_NAMES = {
    IPPROTO_ICMP: "icmp",
    IPPROTO_TCP: "tcp",
    IPPROTO_UDP: "udp",
    IPPROTO_ICMPV6: "icmpv6",
}
"""IP protocol numbers with a name in `Decoded.proto`; every other one is its number as text."""

_PORTS_ONLY = frozenset({IPPROTO_DCCP, IPPROTO_SCTP, IPPROTO_UDPLITE})
"""Protocols whose header starts with 16-bit source and destination ports, like UDP's."""

_VLAN_TPIDS = frozenset({ETH_P_8021Q, ETH_P_8021AD, ETH_P_QINQ1})

# IPv6 extension headers walked to reach the transport header (RFC 8200 4.1, RFC 4302).
_IP6_HOPOPTS, _IP6_ROUTING, _IP6_FRAGMENT, _IP6_DSTOPTS, _IP6_AH = 0, 43, 44, 60, 51
_IP6_EXT = frozenset({_IP6_HOPOPTS, _IP6_ROUTING, _IP6_FRAGMENT, _IP6_DSTOPTS, _IP6_AH})

# TCP flag letters, tcpdump's (print-tcp.c tcp_flag_values), in tcpdump's order.
TCP_FLAG_LETTERS = (
    (0x001, "F"),  # FIN
    (0x002, "S"),  # SYN
    (0x004, "R"),  # RST
    (0x008, "P"),  # PSH
    (0x010, "."),  # ACK
    (0x020, "U"),  # URG
    (0x040, "E"),  # ECE (ECN echo)
    (0x080, "W"),  # CWR (congestion window reduced)
    (0x100, "e"),  # AE (accurate ECN, formerly NS): bit 8, in the data-offset byte
)
"""`Decoded.tcp_flags` is these letters for the set bits, in this order: a SYN is "S", a
SYN-ACK "S.", a FIN-ACK "F.", a RST "R", a data segment "P."; "none" when no bit is set;
"" when the packet is not TCP or its flags were not copied."""

ICMP_TYPES = {
    0: "echo reply",
    3: "unreachable",
    4: "source quench",
    5: "redirect",
    8: "echo request",
    9: "router advertisement",
    10: "router solicitation",
    11: "time exceeded",
    12: "parameter problem",
    13: "timestamp request",
    14: "timestamp reply",
}
ICMP_UNREACH = {
    0: "net unreachable",
    1: "host unreachable",
    2: "protocol unreachable",
    3: "port unreachable",
    4: "need to frag",
    9: "net prohibited",
    10: "host prohibited",
    13: "admin prohibited",
}
ICMP6_TYPES = {
    1: "destination unreachable",
    2: "packet too big",
    3: "time exceeded",
    4: "parameter problem",
    128: "echo request",
    129: "echo reply",
    130: "multicast listener query",
    131: "multicast listener report",
    133: "router solicitation",
    134: "router advertisement",
    135: "neighbor solicitation",
    136: "neighbor advertisement",
    137: "redirect",
    143: "multicast listener report v2",
}
ARP_OPS = {1: "Request", 2: "Reply", 3: "RARP request", 4: "RARP reply"}

_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")


@dataclass(frozen=True, slots=True)
class Decoded:
    """What a sampled packet's headers say, as far as they were copied.

    Field names match the JSON `samples` objects (issue 12). Strings are printable ASCII.
    """

    family: str
    """"ipv4", "ipv6", "arp", "eth" (another EtherType, with MAC addresses) or "other"."""
    src: str
    """Source address: IPv4/IPv6 text; the sender protocol address for ARP; the MAC for
    "eth"; "" when not copied."""
    dst: str
    """Destination address, as `src`."""
    proto: str
    """"tcp", "udp", "icmp", "icmpv6", "arp"; another IP protocol as its decimal number
    ("47"); for "eth"/"other" the EtherType as "0x88cc" ("802.3" for a length field);
    "" when unknown."""
    sport: int | None
    """TCP/UDP (also SCTP, DCCP, UDP-Lite) source port; None when absent or a non-first
    fragment."""
    dport: int | None
    tcp_flags: str
    """See TCP_FLAG_LETTERS."""
    icmp_type: int | None
    """ICMP or ICMPv6 type (8 echo request, 128 ICMPv6 echo request)."""
    icmp_code: int | None
    vlan: tuple[int, ...]
    """802.1Q/802.1ad VLAN ids in the copied MAC header, outermost first."""
    len: int
    """Packet length from the network header on (`PacketSample.length`): the IP datagram."""
    hex: str
    """Every copied byte (MAC header, then network) as lowercase hex: the evidence, safe to
    show anywhere; `payload_offset` says where the decoded headers end."""
    truncated: bool
    """The copy ended inside a header the decoder was reading (payload being cut is normal:
    only headers are copied)."""
    summary: str
    """One line, tcpdump-like: "IP 198.18.0.1.4000 > 198.18.0.2.9: UDP, len 60"."""
    malformed: bool = False
    """A header field is impossible (IPv4 IHL < 5, wrong IP version, TCP offset < 5)."""
    mac_src: str = ""
    """Ethernet source MAC when a MAC header was copied, else ""."""
    mac_dst: str = ""
    ethertype: int = 0
    """The EtherType decoded (after VLAN tags), or skb->protocol without a MAC header."""
    fragment: int | None = None
    """Byte offset of an IP fragment (0 for a first fragment); None when not a fragment."""
    arp_op: int | None = None
    """ARP operation (1 request, 2 reply)."""
    payload_offset: int = 0
    """Offset in the copied bytes where decoding stopped (the payload, or what is unknown)."""

    @property
    def five_tuple(self) -> tuple[str, str, int | None, str, int | None]:
        """(proto, src, sport, dst, dport): the flow key."""
        return (self.proto, self.src, self.sport, self.dst, self.dport)


class _State:
    """The decoder's scratch pad: filled layer by layer, frozen into a Decoded at the end."""

    __slots__ = (
        "arp_op",
        "data",
        "dport",
        "dst",
        "ethertype",
        "family",
        "fragment",
        "icmp_code",
        "icmp_echo",
        "icmp_type",
        "mac_dst",
        "mac_src",
        "malformed",
        "more_fragments",
        "offset",
        "proto",
        "sport",
        "src",
        "summary",
        "tcp_flags",
        "truncated",
        "vlan",
    )

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.family = "other"
        self.src = self.dst = self.proto = self.tcp_flags = ""
        self.mac_src = self.mac_dst = ""
        self.sport: int | None = None
        self.dport: int | None = None
        self.icmp_type: int | None = None
        self.icmp_code: int | None = None
        self.icmp_echo: tuple[int, int] | None = None
        self.fragment: int | None = None
        self.arp_op: int | None = None
        self.more_fragments = False
        self.vlan: list[int] = []
        self.ethertype = 0
        self.truncated = False
        self.malformed = False
        self.offset = 0
        self.summary = ""


def decode(sample: PacketSample) -> Decoded:
    """Decode one sample as far as its bytes go; never raises.

    The strict decoder is written to bounds-check every read (a hypothesis test fuzzes it
    without this net); the net is there so that a decoder bug costs one sample's fields, not
    the collector's poll loop.
    """
    try:
        return decode_strict(sample)
    except Exception:
        data = sample.mac + sample.network
        return Decoded(
            family="other",
            src="",
            dst="",
            proto="",
            sport=None,
            dport=None,
            tcp_flags="",
            icmp_type=None,
            icmp_code=None,
            vlan=(),
            len=sample.length,
            hex=data.hex(),
            truncated=False,
            summary=f"undecodable, len {sample.length}",
            malformed=True,
        )


@functools.lru_cache(maxsize=8192)
def decode_cached(sample: PacketSample) -> Decoded:
    """`decode`, memoized: a row's ring holds the same samples poll after poll (a decode is
    ~6 us; 1000 rows x 8 samples would cost ~50 ms per poll). Samples are frozen and
    hashable, so identical samples share one entry."""
    return decode(sample)


def decode_strict(sample: PacketSample) -> Decoded:
    """`decode` without the safety net (tests fuzz this one so bugs are seen)."""
    data = sample.mac + sample.network
    st = _State(data)
    ethertype = _link(st, sample)
    off = st.offset
    if ethertype == ETH_P_IP:
        _ipv4(st, off)
    elif ethertype == ETH_P_IPV6:
        _ipv6(st, off)
    elif ethertype == ETH_P_ARP:
        _arp(st, off)
    else:
        st.offset = off
        if st.mac_src or st.mac_dst:
            st.family = "eth"
            st.src, st.dst = st.mac_src, st.mac_dst
        if ethertype == -1:
            st.proto = ""
        elif ethertype < 0x0600 and (st.mac_src or st.mac_dst):
            st.proto = "802.3"
        else:
            st.proto = f"0x{ethertype:04x}"
    st.ethertype = max(ethertype, 0)
    return _finish(st, sample.length)


# --- link layer ------------------------------------------------------------------------


def _mac(b: bytes) -> str:
    return b.hex(":")


def _link(st: _State, sample: PacketSample) -> int:
    """Parse the MAC header if it is Ethernet-shaped; return the EtherType (-1 unknown).

    With no MAC header, skb->protocol says what the network bytes are; when it is unset (some
    locally generated packets before ip_output sets it) the IP version nibble decides.
    """
    data, mac = st.data, sample.mac
    ethernet = bool(mac) and (
        sample.link_type in ETHERNET_LINK_TYPES
        or (sample.link_type == ARPHRD_UNKNOWN and len(mac) >= 14)
    )
    if not ethernet:
        st.offset = len(mac)
        proto = sample.protocol
        if proto == 0 and len(sample.network) >= 1:
            version = sample.network[0] >> 4
            if version == 4:
                return ETH_P_IP
            if version == 6:
                return ETH_P_IPV6
        return proto if proto else -1
    n = len(data)
    if n >= 6:
        st.mac_dst = _mac(data[0:6])
    if n >= 12:
        st.mac_src = _mac(data[6:12])
    if n < 14:
        st.truncated = True
        st.offset = n
        return -1
    ethertype = _U16.unpack_from(data, 12)[0]
    off = 14
    while ethertype in _VLAN_TPIDS:
        if n < off + 4:
            st.truncated = True
            st.offset = n
            return -1
        tci, ethertype = struct.unpack_from("!HH", data, off)
        st.vlan.append(tci & 0x0FFF)
        off += 4
    st.offset = off
    return ethertype


# --- network layer ---------------------------------------------------------------------


def _ip_header(st: _State, off: int, family: str, version: int) -> int | None:
    """The start both IP versions share: the bytes left from `off`, or None when there is
    no header of that version there (marked truncated or malformed)."""
    st.family = family
    n = len(st.data) - off
    st.offset = len(st.data)
    if n < 1:
        st.truncated = True
        return None
    if st.data[off] >> 4 != version:
        st.malformed = True
        st.offset = off
        return None
    return n


def _ipv4(st: _State, off: int) -> None:
    n = _ip_header(st, off, "ipv4", 4)
    if n is None:
        return
    b = st.data
    ihl = (b[off] & 0x0F) * 4
    if n >= 8:
        frag = _U16.unpack_from(b, off + 6)[0]
        offset = (frag & 0x1FFF) * 8
        st.more_fragments = bool(frag & 0x2000)
        if offset or st.more_fragments:
            st.fragment = offset
    proto = b[off + 9] if n >= 10 else None
    if proto is not None:
        st.proto = PROTO_NAMES.get(proto, str(proto))
    if n >= 16:
        st.src = socket.inet_ntop(socket.AF_INET, b[off + 12 : off + 16])
    if n >= 20:
        st.dst = socket.inet_ntop(socket.AF_INET, b[off + 16 : off + 20])
    if n < 20:
        st.truncated = True
        return
    if ihl < 20:
        st.malformed = True
        st.offset = off + 20
        return
    if n < ihl:
        st.truncated = True
        return
    assert proto is not None
    if st.fragment:  # a non-first fragment carries no transport header
        st.offset = off + ihl
        return
    _transport(st, proto, off + ihl)


def _ipv6(st: _State, off: int) -> None:
    n = _ip_header(st, off, "ipv6", 6)
    if n is None:
        return
    b = st.data
    if n >= 7 and b[off + 6] not in _IP6_EXT:  # else the walk below finds the protocol
        st.proto = PROTO_NAMES.get(b[off + 6], str(b[off + 6]))
    if n >= 24:
        st.src = socket.inet_ntop(socket.AF_INET6, b[off + 8 : off + 24])
    if n >= 40:
        st.dst = socket.inet_ntop(socket.AF_INET6, b[off + 24 : off + 40])
    if n < 40:
        st.truncated = True
        return
    nh = b[off + 6]
    pos = off + 40
    end = len(b)
    while nh in _IP6_EXT:
        if pos + 2 > end or (nh == _IP6_FRAGMENT and pos + 8 > end):
            st.truncated = True  # the next header's type sits in bytes we do not have
            return
        nxt = b[pos]
        if nh == _IP6_FRAGMENT:
            frag = _U16.unpack_from(b, pos + 2)[0]
            st.fragment = frag & 0xFFF8
            st.more_fragments = bool(frag & 1)
            size = 8
        elif nh == _IP6_AH:
            size = (b[pos + 1] + 2) * 4
        else:
            size = (b[pos + 1] + 1) * 8
        nh = nxt
        pos += size
        if nh not in _IP6_EXT or st.fragment:
            st.proto = PROTO_NAMES.get(nh, str(nh))
        if st.fragment:  # non-first fragment: what follows is the middle of the datagram
            st.offset = min(pos, end)
            return
        if pos > end:
            st.truncated = True
            return
    _transport(st, nh, pos)


def _arp(st: _State, off: int) -> None:
    st.family = "arp"
    st.proto = "arp"
    b = st.data
    n = len(b) - off
    st.offset = len(b)
    if n < 8:
        st.truncated = True
        return
    _htype, ptype, hlen, plen, op = struct.unpack_from("!HHBBH", b, off)
    st.arp_op = op
    end = off + 8 + 2 * (hlen + plen)
    if len(b) < end:
        st.truncated = True
        return
    sha = b[off + 8 : off + 8 + hlen]
    spa = b[off + 8 + hlen : off + 8 + hlen + plen]
    tha = b[off + 8 + hlen + plen : off + 8 + 2 * hlen + plen]
    tpa = b[off + 8 + 2 * hlen + plen : end]
    st.src, st.dst = _arp_addr(ptype, spa), _arp_addr(ptype, tpa)
    st.offset = end
    if op == 1:
        st.summary = f"ARP, Request who-has {st.dst} tell {st.src}"
    elif op == 2:
        st.summary = f"ARP, Reply {st.src} is-at {_mac(sha)}"
    else:
        st.summary = f"ARP, {ARP_OPS.get(op, f'op {op}')} {st.src} > {st.dst}"
    if op != 1 and tha:
        st.summary += f" ({_mac(tha)})"


def _arp_addr(ptype: int, raw: bytes) -> str:
    if ptype == ETH_P_IP and len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, raw)
    if ptype == ETH_P_IPV6 and len(raw) == 16:
        return socket.inet_ntop(socket.AF_INET6, raw)
    return _mac(raw)


# --- transport layer -------------------------------------------------------------------


def _tcp_flags(bits: int) -> str:
    return "".join(letter for bit, letter in TCP_FLAG_LETTERS if bits & bit) or "none"


def _transport(st: _State, proto: int, off: int) -> None:
    """Decode the header at `off`; sets st.offset to where the payload starts."""
    b = st.data
    n = len(b) - off
    st.offset = off
    if proto == IPPROTO_TCP:
        if n >= 4:
            st.sport, st.dport = struct.unpack_from("!HH", b, off)
        if n < 14:
            st.truncated = True
            st.offset = len(b)
            return
        doff = (b[off + 12] >> 4) * 4
        st.tcp_flags = _tcp_flags(((b[off + 12] & 1) << 8) | b[off + 13])
        if doff < 20:
            st.malformed = True
        if n < max(doff, 20):
            st.truncated = True
            st.offset = len(b)
            return
        st.offset = off + doff
    elif proto == IPPROTO_UDP or proto in _PORTS_ONLY:
        if n >= 4:
            st.sport, st.dport = struct.unpack_from("!HH", b, off)
        need = 8 if proto in (IPPROTO_UDP, IPPROTO_UDPLITE) else 4
        if n < need:
            st.truncated = True
            st.offset = len(b)
            return
        st.offset = off + need
    elif proto in (IPPROTO_ICMP, IPPROTO_ICMPV6):
        if n >= 1:
            st.icmp_type = b[off]
        if n >= 2:
            st.icmp_code = b[off + 1]
        if n < 8:
            st.truncated = True
            st.offset = len(b)
            return
        st.icmp_echo = struct.unpack_from("!HH", b, off + 4)
        st.offset = off + 8


# --- the result --------------------------------------------------------------------------


def _addr_port(addr: str, port: int | None) -> str:
    return addr if port is None else f"{addr}.{port}"


def _icmp_detail(st: _State, v6: bool) -> str:
    t, c = st.icmp_type, st.icmp_code
    if t is None:
        return "ICMP6" if v6 else "ICMP"
    word = "ICMP6" if v6 else "ICMP"
    name = (ICMP6_TYPES if v6 else ICMP_TYPES).get(t)
    if not v6 and t == 3 and c in ICMP_UNREACH:
        name = ICMP_UNREACH[c]
    text = f"{word} {name}" if name else f"{word} type {t}"
    if c:
        text += f" code {c}"
    if t in ((128, 129) if v6 else (0, 8)) and st.icmp_echo is not None:
        text += f", id {st.icmp_echo[0]}, seq {st.icmp_echo[1]}"
    return text


def _finish(st: _State, length: int) -> Decoded:
    summary = st.summary
    if st.family in ("ipv4", "ipv6"):
        word = "IP" if st.family == "ipv4" else "IP6"
        left = _addr_port(st.src or "?", st.sport)
        right = _addr_port(st.dst or "?", st.dport)
        if st.proto == "tcp":
            detail = f"Flags [{st.tcp_flags}]" if st.tcp_flags else "TCP"
        elif st.proto == "udp":
            detail = "UDP"
        elif st.proto in ("icmp", "icmpv6"):
            detail = _icmp_detail(st, st.proto == "icmpv6")
        elif st.proto:
            detail = f"ip-proto-{st.proto}"
        else:
            detail = "?"
        if st.fragment is not None:
            detail += f", frag offset {st.fragment}{'+' if st.more_fragments else ''}"
        summary = f"{word} {left} > {right}: {detail}"
    elif st.family == "arp" and not summary:
        summary = "ARP" if st.arp_op is None else f"ARP, op {st.arp_op}"
    elif st.family == "eth":
        summary = f"{st.src or '?'} > {st.dst or '?'}, ethertype {st.proto or '?'}"
    elif st.family == "other":
        summary = f"protocol {st.proto}" if st.proto else "unknown protocol"
    if st.vlan:
        summary = "vlan " + ",".join(str(v) for v in st.vlan) + ": " + summary
    summary += f", len {length}"
    if st.truncated:
        summary += " (truncated)"
    if st.malformed:
        summary += " (malformed)"
    return Decoded(
        family=st.family,
        src=st.src,
        dst=st.dst,
        proto=st.proto,
        sport=st.sport,
        dport=st.dport,
        tcp_flags=st.tcp_flags,
        icmp_type=st.icmp_type,
        icmp_code=st.icmp_code,
        vlan=tuple(st.vlan),
        len=length,
        hex=st.data.hex(),
        truncated=st.truncated,
        summary=summary,
        malformed=st.malformed,
        mac_src=st.mac_src,
        mac_dst=st.mac_dst,
        ethertype=st.ethertype,
        fragment=st.fragment,
        arp_op=st.arp_op,
        payload_offset=min(st.offset, len(st.data)),
    )


def sample_record(sample: PacketSample, decoded: Decoded | None = None) -> dict[str, object]:
    """The JSON object for one sample in a snapshot row's `samples` list (issue 12).

    Values are raw (`ifname` as the kernel gave it); JSON escaping makes them safe in the
    file, and the text front ends sanitize on display.
    """
    d = decoded if decoded is not None else decode(sample)
    return {
        "time": sample.time,
        "ifname": sample.ifname,
        "ifindex": sample.ifindex,
        "netns": sample.netns,
        "family": d.family,
        "src": d.src,
        "dst": d.dst,
        "proto": d.proto,
        "sport": d.sport,
        "dport": d.dport,
        "tcp_flags": d.tcp_flags,
        "icmp_type": d.icmp_type,
        "icmp_code": d.icmp_code,
        "vlan": list(d.vlan),
        "len": d.len,
        "truncated": d.truncated,
        "summary": d.summary,
        "hex": d.hex,
        "mac_len": len(sample.mac),
        "link_type": sample.link_type,
        "protocol": sample.protocol,
    }
