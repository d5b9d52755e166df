"""Packet builders for the decoder tests: real header bytes, checksums included.

Built by hand with struct so each test states exactly what is on the wire; the checksums are
right so that tcpdump and tshark read these packets as real ones.
"""

from __future__ import annotations

import socket
import struct

from droptop.packets.checksum import internet_checksum as checksum
from droptop.packets.sample import ARPHRD_ETHER, ETH_P_IP, ETH_P_IPV6, PacketSample


def mac(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


def eth(dst: str, src: str, ethertype: int, vlans: tuple[tuple[int, int], ...] = ()) -> bytes:
    """An Ethernet header; vlans are (TPID, VLAN id) pairs, outermost first."""
    out = mac(dst) + mac(src)
    for tpid, vid in vlans:
        out += struct.pack("!HH", tpid, vid)
    return out + struct.pack("!H", ethertype)


def ipv4(
    src: str,
    dst: str,
    proto: int,
    payload: bytes,
    *,
    ident: int = 0x1234,
    frag_offset: int = 0,
    more_fragments: bool = False,
    ttl: int = 64,
    options: bytes = b"",
    total_length: int | None = None,
) -> bytes:
    ihl = 5 + len(options) // 4
    length = total_length if total_length is not None else ihl * 4 + len(payload)
    flags = (0x2000 if more_fragments else 0) | (frag_offset // 8)
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x40 | ihl,
        0,
        length,
        ident,
        flags,
        ttl,
        proto,
        0,
        socket.inet_pton(socket.AF_INET, src),
        socket.inet_pton(socket.AF_INET, dst),
    )
    header += options
    header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
    return header + payload


def ipv6(src: str, dst: str, next_header: int, payload: bytes, hop_limit: int = 64) -> bytes:
    return (
        struct.pack("!IHBB", 6 << 28, len(payload), next_header, hop_limit)
        + socket.inet_pton(socket.AF_INET6, src)
        + socket.inet_pton(socket.AF_INET6, dst)
        + payload
    )


def hop_by_hop(next_header: int) -> bytes:
    """8 bytes: next header, length 0, then a PadN option filling the rest."""
    return struct.pack("!BBBB4s", next_header, 0, 1, 4, b"\0" * 4)


def dest_options(next_header: int) -> bytes:
    return struct.pack("!BBBB4s", next_header, 0, 1, 4, b"\0" * 4)


def routing(next_header: int, segments_left: int = 0) -> bytes:
    """A type-0-shaped routing header with one address (24 bytes: length field 2)."""
    return struct.pack("!BBBBI", next_header, 2, 0, segments_left, 0) + b"\0" * 16


def fragment6(next_header: int, offset: int = 0, more: bool = False, ident: int = 7) -> bytes:
    return struct.pack("!BBHI", next_header, 0, (offset & 0xFFF8) | int(more), ident)


def auth_header(next_header: int) -> bytes:
    """AH with a 12-byte ICV: payload length (in 4-byte units, minus 2) = 4 -> 24 bytes."""
    return struct.pack("!BBHII", next_header, 4, 0, 0x100, 1) + b"\0" * 12


def _pseudo4(src: str, dst: str, proto: int, length: int) -> bytes:
    return (
        socket.inet_pton(socket.AF_INET, src)
        + socket.inet_pton(socket.AF_INET, dst)
        + struct.pack("!BBH", 0, proto, length)
    )


def _pseudo6(src: str, dst: str, proto: int, length: int) -> bytes:
    return (
        socket.inet_pton(socket.AF_INET6, src)
        + socket.inet_pton(socket.AF_INET6, dst)
        + struct.pack("!IxxxB", length, proto)
    )


def _pseudo(src: str, dst: str, proto: int, length: int) -> bytes:
    return (_pseudo6 if ":" in src else _pseudo4)(src, dst, proto, length)


def udp(src: str, dst: str, sport: int, dport: int, payload: bytes) -> bytes:
    length = 8 + len(payload)
    seg = struct.pack("!HHHH", sport, dport, length, 0) + payload
    csum = checksum(_pseudo(src, dst, 17, length) + seg) or 0xFFFF
    return seg[:6] + struct.pack("!H", csum) + seg[8:]


TCP_SYN, TCP_ACK, TCP_FIN, TCP_RST, TCP_PSH = 0x02, 0x10, 0x01, 0x04, 0x08


def tcp(
    src: str,
    dst: str,
    sport: int,
    dport: int,
    flags: int,
    *,
    seq: int = 1000,
    ack: int = 0,
    window: int = 64240,
    options: bytes = b"",
    payload: bytes = b"",
) -> bytes:
    doff = 5 + len(options) // 4
    seg = (
        struct.pack("!HHIIBBHHH", sport, dport, seq, ack, doff << 4, flags, window, 0, 0)
        + options
        + payload
    )
    csum = checksum(_pseudo(src, dst, 6, len(seg)) + seg)
    return seg[:16] + struct.pack("!H", csum) + seg[18:]


def icmp_echo(ident: int, seq: int, payload: bytes = b"ping", icmp_type: int = 8) -> bytes:
    msg = struct.pack("!BBHHH", icmp_type, 0, 0, ident, seq) + payload
    return msg[:2] + struct.pack("!H", checksum(msg)) + msg[4:]


def icmp6_echo(src: str, dst: str, ident: int, seq: int, payload: bytes = b"ping") -> bytes:
    msg = struct.pack("!BBHHH", 128, 0, 0, ident, seq) + payload
    csum = checksum(_pseudo6(src, dst, 58, len(msg)) + msg)
    return msg[:2] + struct.pack("!H", csum) + msg[4:]


def arp_request(sha: str, spa: str, tpa: str) -> bytes:
    return struct.pack(
        "!HHBBH6s4s6s4s",
        1,
        ETH_P_IP,
        6,
        4,
        1,
        mac(sha),
        socket.inet_pton(socket.AF_INET, spa),
        b"\0" * 6,
        socket.inet_pton(socket.AF_INET, tpa),
    )


def sample(
    network: bytes,
    *,
    mac_header: bytes = b"",
    protocol: int | None = None,
    length: int | None = None,
    link_type: int | None = None,
    ifname: str = "eth0",
    ifindex: int = 2,
    netns: int = 4026531840,
    time: float = 1_700_000_000.25,
    copy: int = 128,
) -> PacketSample:
    """A PacketSample as the kernel reader would make it: at most `copy` network bytes."""
    if protocol is None:
        protocol = ETH_P_IPV6 if network[:1] and network[0] >> 4 == 6 else ETH_P_IP
    return PacketSample(
        time=time,
        ifindex=ifindex,
        ifname=ifname,
        netns=netns,
        protocol=protocol,
        length=len(network) if length is None else length,
        mac=mac_header,
        network=network[:copy],
        link_type=(ARPHRD_ETHER if mac_header else 0) if link_type is None else link_type,
    )
