"""The pcapng writer: block structure, link-type choice, atomic writes, and tcpdump and tshark
reading the files back with the addresses, ports, flags and comments droptop decoded.

The real-tool tests fail instead of skipping when DROPTOP_REQUIRE_BPF=1 (CI installs tcpdump
and tshark).
"""

from __future__ import annotations

import os
import struct
import subprocess
from pathlib import Path

import pytest

from droptop.errors import DroptopError
from droptop.packets import decode, pcapng_bytes, write_pcapng
from droptop.packets.decode import TCP_FLAG_LETTERS
from droptop.packets.pcapng import LINKTYPE_ETHERNET, frame
from droptop.packets.sample import (
    ARPHRD_LOOPBACK,
    ARPHRD_NONE,
    ETH_P_8021Q,
    ETH_P_ARP,
    ETH_P_IP,
    ETH_P_IPV6,
    PacketSample,
)
from droptop.sanitize import printable
from tests.conftest import need_tool
from tests.packets import build as b

A4, B4 = "198.18.0.1", "198.18.0.2"
A6, B6 = "2001:db8::1", "2001:db8:0:1::2"
M1, M2 = "02:00:00:00:00:01", "02:00:00:00:00:02"
ZERO = "00:00:00:00:00:00"
NS2 = 4026532999


def mixed_samples() -> list[PacketSample]:
    """IPv4/IPv6 UDP, TCP SYN, ICMP, ICMPv6, ARP; with and without MAC headers."""
    return [
        b.sample(
            b.ipv4(A4, B4, 17, b.udp(A4, B4, 40000, 9, b"d" * 32)),
            mac_header=b.eth(M2, M1, ETH_P_IP),
            ifname="eth0",
        ),
        b.sample(
            b.ipv6(A6, B6, 17, b.udp(A6, B6, 40002, 9, b"q" * 20)),
            ifname="tun0",
            ifindex=5,
            link_type=ARPHRD_NONE,
        ),
        b.sample(
            b.ipv4("127.0.0.1", "127.0.0.1", 6, b.tcp("127.0.0.1", "127.0.0.1", 40001, 9, 2)),
            mac_header=b.eth(ZERO, ZERO, ETH_P_IP),
            link_type=ARPHRD_LOOPBACK,
            ifname="lo",
            ifindex=1,
        ),
        b.sample(b.ipv4(A4, B4, 1, b.icmp_echo(7, 3)), ifname="veth0", ifindex=7, netns=NS2),
        b.sample(
            b.ipv6(A6, B6, 0, b.hop_by_hop(44) + b.fragment6(17) + b.udp(A6, B6, 41234, 9, b"z")),
            mac_header=b.eth(M2, M1, ETH_P_IPV6, vlans=((ETH_P_8021Q, 100),)),
            ifname="eth0",
        ),
        b.sample(
            b.ipv6(A6, B6, 6, b.tcp(A6, B6, 40003, 443, b.TCP_SYN | b.TCP_ACK)),
            mac_header=b.eth(M2, M1, ETH_P_IPV6),
            ifname="eth0",
        ),
        b.sample(
            b.ipv6(A6, B6, 58, b.icmp6_echo(A6, B6, 4, 2)), ifname="veth0", ifindex=7, netns=NS2
        ),
        b.sample(b.arp_request(M1, A4, B4), protocol=ETH_P_ARP, ifname="ipvl0", ifindex=9),
        b.sample(
            b.ipv4(A4, B4, 17, b.udp(A4, B4, 40000, 9, b"x" * 1000)),
            mac_header=b.eth(M2, M1, ETH_P_IP),
            ifname="eth0",
        ),
    ]


def bare_ip_samples() -> list[PacketSample]:
    return [
        b.sample(b.ipv4(A4, B4, 17, b.udp(A4, B4, 40000, 9, b"d" * 32)), ifname="tun0"),
        b.sample(b.ipv6(A6, B6, 6, b.tcp(A6, B6, 40003, 443, b.TCP_SYN)), ifname="tun0"),
        b.sample(b.ipv4(A4, B4, 1, b.icmp_echo(7, 3)), ifname="lo", netns=NS2),
    ]


def comment(i: int, s: PacketSample) -> str:
    """What the caller passes: reason, comm, interface and netns; this comm is hostile."""
    return f"reason NO_SOCKET comm \x1b[31mdt{i}\u202e iface {s.ifname} netns {s.netns}"


def shown(note: str) -> str:
    """What the file must hold for a comment: control bytes and bidi controls escaped."""
    return printable(note).replace("\u202e", "\\u202e")


# --- an independent reader of the block structure ----------------------------------------


def blocks(data: bytes) -> list[tuple[int, bytes]]:
    out, pos = [], 0
    while pos < len(data):
        kind, total = struct.unpack_from("<II", data, pos)
        assert total % 4 == 0 and total >= 12
        assert struct.unpack_from("<I", data, pos + total - 4)[0] == total
        out.append((kind, data[pos + 8 : pos + total - 4]))
        pos += total
    assert pos == len(data)
    return out


def options(raw: bytes) -> dict[int, bytes]:
    out, pos = {}, 0
    while pos + 4 <= len(raw):
        code, length = struct.unpack_from("<HH", raw, pos)
        if code == 0:
            break
        out[code] = raw[pos + 4 : pos + 4 + length]
        pos += 4 + length + (-length % 4)
    return out


def test_block_structure():
    samples = mixed_samples()
    data = pcapng_bytes([(s, comment(i, s)) for i, s in enumerate(samples)])
    bl = blocks(data)
    assert bl[0][0] == 0x0A0D0D0A
    magic, major, minor, section = struct.unpack_from("<IHHq", bl[0][1])
    assert (magic, major, minor, section) == (0x1A2B3C4D, 1, 0, -1)
    idbs = [body for kind, body in bl if kind == 1]
    epbs = [body for kind, body in bl if kind == 6]
    assert len(epbs) == len(samples)
    # eth0 (real MAC), tun0, lo, veth0 in NS2 (no MAC: synthetic), ipvl0 (synthetic)
    names = [options(body[8:])[2] for body in idbs]
    assert names == [b"eth0", b"tun0", b"lo", b"veth0", b"ipvl0"]
    assert {struct.unpack_from("<H", body)[0] for body in idbs} == {LINKTYPE_ETHERNET}
    assert all(options(body[8:])[9] == b"\x06" for body in idbs)
    assert b"no MAC header copied" in options(idbs[1][8:])[3]
    assert b"no MAC header copied" not in options(idbs[0][8:])[3]
    for i, (s, body) in enumerate(zip(samples, epbs)):
        iface, hi, lo, cap, orig = struct.unpack_from("<IIIII", body)
        assert (hi << 32 | lo) == 1_700_000_000_250_000
        packet = body[20 : 20 + cap]
        if s.mac:
            assert packet == s.mac + s.network and orig == len(s.mac) + s.length
        else:
            assert packet[14:] == s.network and packet[:12] == bytes(12)
            assert orig == 14 + s.length
        note = options(body[20 + cap + (-cap % 4) :])[1].decode()
        assert note == shown(comment(i, s)) and "\x1b" not in note and "\u202e" not in note
        assert iface < len(idbs)


def test_bare_ip_gets_a_zero_ethernet_header():
    samples = bare_ip_samples()
    bl = blocks(pcapng_bytes([(s, "") for s in samples]))
    idbs = [body for kind, body in bl if kind == 1]
    epbs = [body for kind, body in bl if kind == 6]
    assert [struct.unpack_from("<H", body)[0] for body in idbs] == [LINKTYPE_ETHERNET] * 2
    for s, body in zip(samples, epbs):
        cap, orig = struct.unpack_from("<II", body, 12)
        ethertype = ETH_P_IPV6 if s.network[0] >> 4 == 6 else ETH_P_IP
        assert body[20 : 20 + cap] == bytes(12) + struct.pack("!H", ethertype) + s.network
        assert orig == 14 + s.length
        assert 1 not in options(body[20 + cap + (-cap % 4) :]), "no comment option when empty"


def test_unset_protocol_uses_the_ip_version():
    s = b.sample(b.ipv6(A6, B6, 17, b.udp(A6, B6, 1, 2, b"")), protocol=0)
    assert frame(s)[0][12:14] == b"\x86\xdd"
    assert frame(b.sample(b"\x00\x00", protocol=0))[0][12:14] == b"\x00\x00"


def test_empty_capture_is_a_section_header_only():
    assert [kind for kind, _ in blocks(pcapng_bytes([]))] == [0x0A0D0D0A]


def test_write_is_atomic_and_replaces(tmp_path):
    target = tmp_path / "drops.pcapng"
    target.write_bytes(b"old")
    s = bare_ip_samples()[0]
    assert write_pcapng(target, [(s, "x")]) == target
    assert target.read_bytes() == pcapng_bytes([(s, "x")])
    assert oct(target.stat().st_mode & 0o777) == "0o644"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["drops.pcapng"]


def test_write_failure_is_one_line(tmp_path):
    with pytest.raises(DroptopError) as e:
        write_pcapng(tmp_path / "missing" / "x.pcapng", [])
    assert "cannot write" in str(e.value) and "\n" not in str(e.value)
    (tmp_path / "dir.pcapng").mkdir()
    with pytest.raises(DroptopError, match="cannot write"):
        write_pcapng(tmp_path / "dir.pcapng", [])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.pcapng"], "temp file removed"


# --- the real tools ----------------------------------------------------------------------


def tcpdump_lines(path: Path) -> list[str]:
    out = subprocess.run(
        [need_tool("tcpdump"), "-nn", "-r", str(path)],
        capture_output=True,
        check=True,
        text=True,
        env={**os.environ, "TZ": "UTC"},
    )
    return out.stdout.splitlines()


def assert_tcpdump_agrees(line: str, s: PacketSample) -> None:
    d = decode(s)
    if d.family == "arp":
        assert f"ARP, Request who-has {d.dst} tell {d.src}" in line
        return
    word = "IP" if d.family == "ipv4" else "IP6"
    if d.sport is None:
        assert f" {word} {d.src} > {d.dst}: " in line
    else:
        # tcpdump writes ports after the addresses, or after the IPv6 extension headers
        assert f" {word} {d.src}.{d.sport} > {d.dst}.{d.dport}: " in line or (
            f" {word} {d.src} > {d.dst}: " in line and f" {d.sport} > {d.dport}: " in line
        ), line
    if d.proto == "tcp":
        assert f"Flags [{d.tcp_flags}]" in line
    if d.proto == "icmp":
        assert "ICMP echo request" in line and "ICMP echo request" in d.summary
    if d.proto == "icmpv6":
        assert "ICMP6, echo request" in line and d.icmp_type == 128
    if d.proto == "udp":
        assert line.endswith(f"length {s.length - (d.payload_offset - len(s.mac))}"), line


def comment_field(tshark: str) -> str:
    """tshark 4.0 calls the packet comment frame.comment; 3.x called it pkt_comment."""
    fields = subprocess.run([tshark, "-G", "fields"], capture_output=True, text=True).stdout
    return "frame.comment" if "\tframe.comment\t" in fields else "pkt_comment"


TSHARK_FIELDS = [
    "frame.interface_name",
    "ip.src",
    "ip.dst",
    "ipv6.src",
    "ipv6.dst",
    "arp.src.proto_ipv4",
    "arp.dst.proto_ipv4",
    "udp.srcport",
    "udp.dstport",
    "tcp.srcport",
    "tcp.dstport",
    "tcp.flags",
    "icmp.type",
    "icmpv6.type",
    "frame.len",
    "frame.cap_len",
]


def tshark_rows(path: Path) -> tuple[list[dict[str, str]], bytes]:
    tshark = need_tool("tshark")
    fields = [*TSHARK_FIELDS, comment_field(tshark)]
    cmd = [tshark, "-r", str(path), "-T", "fields", "-E", "occurrence=f"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, check=True).stdout
    rows = [
        dict(zip([*TSHARK_FIELDS, "comment"], line.split("\t")))
        for line in out.decode().splitlines()
    ]
    return rows, out


def flag_letters(value: str) -> str:
    bits = int(value, 16)
    return "".join(letter for bit, letter in TCP_FLAG_LETTERS if bits & bit) or "none"


def assert_tshark_agrees(row: dict[str, str], s: PacketSample, note: str, orig: int) -> None:
    d = decode(s)
    src = row["ip.src"] or row["ipv6.src"] or row["arp.src.proto_ipv4"]
    dst = row["ip.dst"] or row["ipv6.dst"] or row["arp.dst.proto_ipv4"]
    assert (src, dst) == (d.src, d.dst)
    sport = row["udp.srcport"] or row["tcp.srcport"]
    dport = row["udp.dstport"] or row["tcp.dstport"]
    assert (int(sport) if sport else None, int(dport) if dport else None) == (d.sport, d.dport)
    if d.proto == "tcp":
        assert flag_letters(row["tcp.flags"]) == d.tcp_flags
    icmp = row["icmp.type"] or row["icmpv6.type"]
    assert (int(icmp) if icmp else None) == d.icmp_type
    assert row["frame.interface_name"] == (s.ifname or "nodev")
    assert int(row["frame.len"]) == orig
    assert row["comment"] == shown(note)


def test_tcpdump_and_tshark_read_a_mixed_file(tmp_path):
    samples = mixed_samples()
    notes = [comment(i, s) for i, s in enumerate(samples)]
    path = write_pcapng(tmp_path / "mixed.pcapng", zip(samples, notes))
    lines = tcpdump_lines(path)
    assert len(lines) == len(samples)
    for line, s in zip(lines, samples):
        assert_tcpdump_agrees(line, s)
    assert lines[0].startswith("22:13:20.250000 ")  # microseconds: if_tsresol is read
    rows, raw = tshark_rows(path)
    assert len(rows) == len(samples)
    for row, s, note in zip(rows, samples, notes):
        orig = (len(s.mac) if s.mac else 14) + s.length
        assert_tshark_agrees(row, s, note, orig)
    assert b"\x1b" not in raw and b"\\x1b[31mdt0\\u202e" in raw, "hostile comm escaped"
    assert "\u202e".encode() not in raw


def test_tcpdump_and_tshark_read_bare_ip_from_two_devices(tmp_path):
    samples = bare_ip_samples()
    path = write_pcapng(tmp_path / "raw.pcapng", [(s, f"n{i}") for i, s in enumerate(samples)])
    lines = tcpdump_lines(path)
    assert len(lines) == len(samples)
    for line, s in zip(lines, samples):
        assert_tcpdump_agrees(line, s)
    rows, _ = tshark_rows(path)
    for i, (row, s) in enumerate(zip(rows, samples)):
        assert_tshark_agrees(row, s, f"n{i}", 14 + s.length)
