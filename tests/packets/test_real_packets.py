"""The decoder on the kernel's own bytes: real drops on lo in a private netns, captured
independently with an AF_PACKET socket (the kernel-side sampling comes later; this proves the
decoder and the pcapng writer on bytes the kernel built).

Each drop is also counted by an independent oracle (the namespace's SNMP counters, an nft
rule counter), so a test sees exactly the packets it made.
"""

from __future__ import annotations

import os
import socket
import struct
import time
from collections.abc import Callable

import pytest

from droptop import dropgen
from droptop.packets import decode, write_pcapng
from droptop.packets.sample import ARPHRD_LOOPBACK, ETH_P_IP, ETH_P_IPV6, PacketSample
from droptop.sanitize import printable
from tests.conftest import REQUIRE_BPF
from tests.packets import build as b
from tests.packets.test_pcapng import (
    assert_tcpdump_agrees,
    assert_tshark_agrees,
    tcpdump_lines,
    tshark_rows,
)

pytestmark = pytest.mark.bpf

ETH_P_ALL = 0x0003
PACKET_HOST = 0


@pytest.fixture
def netns():
    if os.geteuid() != 0:
        if REQUIRE_BPF:
            pytest.fail("DROPTOP_REQUIRE_BPF=1 but not root")
        pytest.skip("needs root (netns, AF_PACKET)")
    with dropgen.private_netns("dtpk") as name:
        yield name


class Capture:
    """An AF_PACKET socket on lo: every frame the kernel receives there, before any drop."""

    def __init__(self, ns: str) -> None:
        self.ns = ns
        self.ifindex, self.sock, self.inode = dropgen.in_netns(ns, self._open)

    @staticmethod
    def _open() -> tuple[int, socket.socket, int]:
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        s.bind(("lo", 0))
        s.settimeout(0.2)
        return socket.if_nametoindex("lo"), s, os.stat("/proc/thread-self/ns/net").st_ino

    def frames(self, want: int, match: Callable[[bytes], bool], timeout: float = 3.0):
        """Received (PACKET_HOST) frames for which match(frame) holds, as PacketSamples."""
        got: list[PacketSample] = []
        deadline = time.monotonic() + timeout
        while len(got) < want and time.monotonic() < deadline:
            try:
                frame, addr = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            _ifname, proto, pkttype, hatype, _ = addr
            if pkttype != PACKET_HOST or not match(frame):
                continue
            got.append(
                PacketSample(
                    time=time.time(),
                    ifindex=self.ifindex,
                    ifname="lo",
                    netns=self.inode,
                    protocol=proto,
                    length=len(frame) - 14,
                    mac=frame[:14],
                    network=frame[14 : 14 + 128],
                    link_type=hatype,
                )
            )
        return got

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def capture(netns):
    c = Capture(netns)
    yield c
    c.close()


def snmp6(ns: str, field: str) -> int:
    text = dropgen.run(["ip", "netns", "exec", ns, "cat", "/proc/net/snmp6"]).stdout
    return int(dict(line.split() for line in text.splitlines())[field])


def udp_frame(sport: int, dport: int, family: int) -> Callable[[bytes], bool]:
    ethertype = ETH_P_IP if family == socket.AF_INET else ETH_P_IPV6
    proto_at, l4 = (14 + 9, 14 + 20) if family == socket.AF_INET else (14 + 6, 14 + 40)

    def match(f: bytes) -> bool:
        return (
            len(f) >= l4 + 4
            and struct.unpack_from("!H", f, 12)[0] == ethertype
            and f[proto_at] == 17
            and struct.unpack_from("!HH", f, l4) == (sport, dport)
        )

    return match


def send_udp(ns: str, family: int, addr: str, sport: int, payload: bytes, count: int) -> None:
    def go() -> None:
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.bind((addr, sport))
            for _ in range(count):
                s.sendto(payload, (addr, dropgen.CLOSED_PORT))

    dropgen.in_netns(ns, go)


@pytest.mark.parametrize(
    ("family", "addr", "header"),
    [(socket.AF_INET, "127.0.0.1", 20), (socket.AF_INET6, "::1", 40)],
    ids=["ipv4", "ipv6"],
)
def test_udp_to_a_closed_port_decodes_to_what_was_sent(netns, capture, family, addr, header):
    payload, count, sport = b"droptop-sample-" + os.urandom(8).hex().encode(), 3, 40123
    counter = "Udp6NoPorts" if family == socket.AF_INET6 else None
    before = snmp6(netns, counter) if counter else dropgen.snmp_counter("Udp", "NoPorts", netns)
    send_udp(netns, family, addr, sport, payload, count)
    got = capture.frames(count, udp_frame(sport, dropgen.CLOSED_PORT, family))
    after = snmp6(netns, counter) if counter else dropgen.snmp_counter("Udp", "NoPorts", netns)
    assert after - before == count, "the kernel dropped exactly what we sent"
    assert len(got) == count
    for s in got:
        assert s.link_type == ARPHRD_LOOPBACK and s.mac[:12] == bytes(12)
        d = decode(s)
        assert (d.family, d.src, d.dst, d.proto) == (
            "ipv4" if family == socket.AF_INET else "ipv6",
            addr,
            addr,
            "udp",
        )
        assert (d.sport, d.dport) == (sport, dropgen.CLOSED_PORT)
        assert d.len == header + 8 + len(payload)
        assert not d.truncated and not d.malformed
        assert bytes.fromhex(d.hex)[d.payload_offset :] == payload


def test_tcp_syn_to_a_closed_port_and_the_reset(netns, capture):
    sport = 40124

    def connect() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", sport))
            s.settimeout(2)
            with pytest.raises(ConnectionRefusedError):
                s.connect(("127.0.0.1", dropgen.CLOSED_PORT))

    before = dropgen.snmp_counter("Tcp", "OutRsts", netns)
    dropgen.in_netns(netns, connect)

    def tcp_between(a: int, z: int) -> Callable[[bytes], bool]:
        return lambda f: len(f) >= 38 and f[23] == 6 and struct.unpack_from("!HH", f, 34) == (a, z)

    syn = capture.frames(1, tcp_between(sport, dropgen.CLOSED_PORT))
    rst = capture.frames(1, tcp_between(dropgen.CLOSED_PORT, sport))
    assert dropgen.snmp_counter("Tcp", "OutRsts", netns) - before == 1
    d = decode(syn[0])
    assert (d.src, d.dst, d.sport, d.dport, d.tcp_flags) == (
        "127.0.0.1",
        "127.0.0.1",
        sport,
        9,
        "S",
    )
    ip_len, tcp_off = struct.unpack_from("!H", syn[0].network, 2)[0], syn[0].network[32] >> 4
    assert d.len == ip_len == 20 + tcp_off * 4  # a SYN carries options, no payload
    r = decode(rst[0])
    assert (r.sport, r.dport, r.tcp_flags) == (9, sport, "R.")


def test_icmp_echo_dropped_by_an_nft_rule(netns, capture):
    table = f"dtpk{os.getpid()}"
    nft = ["ip", "netns", "exec", netns, "nft"]
    dropgen.run([*nft, "add", "table", "inet", table])
    dropgen.run(
        [*nft, "add", "chain", "inet", table, "in", "{ type filter hook input priority 0; }"]
    )
    rule = ["icmp", "type", "echo-request", "counter", "drop"]
    dropgen.run([*nft, "add", "rule", "inet", table, "in", *rule])  # gone with the netns
    ident, seq = os.getpid() & 0xFFFF, 7

    def ping() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as s:
            s.sendto(b.icmp_echo(ident, seq, b"dt-echo"), ("127.0.0.1", 0))

    dropgen.in_netns(netns, ping)
    got = capture.frames(1, lambda f: len(f) >= 42 and f[23] == 1 and f[34] == 8)
    counters = dropgen.run([*nft, "list", "table", "inet", table]).stdout
    assert "packets 1 " in counters, counters
    d = decode(got[0])
    assert (d.proto, d.icmp_type, d.icmp_code, d.src, d.dst) == (
        "icmp",
        8,
        0,
        "127.0.0.1",
        "127.0.0.1",
    )
    assert f"id {ident}, seq {seq}" in d.summary and d.len == 20 + 8 + 7


def test_hostile_payload_on_real_bytes(netns, capture):
    payload = b"\x1b[31m[red]evil\x1b[0m" + "\u202ereversed\u2066".encode()
    send_udp(netns, socket.AF_INET, "127.0.0.1", 40125, payload, 1)
    (s,) = capture.frames(1, udp_frame(40125, dropgen.CLOSED_PORT, socket.AF_INET))
    d = decode(s)
    assert "\x1b" not in d.summary and "[red]" not in d.summary and "\u202e" not in d.summary
    want = f"IP 127.0.0.1.40125 > 127.0.0.1.9: UDP, len {28 + len(payload)}"
    assert printable(d.summary) == d.summary == want
    assert payload.hex() in d.hex


def test_real_frames_through_pcapng_and_the_tools(netns, capture, tmp_path):
    send_udp(netns, socket.AF_INET, "127.0.0.1", 40126, b"v4", 1)
    send_udp(netns, socket.AF_INET6, "::1", 40127, b"v6", 1)
    got = capture.frames(1, udp_frame(40126, 9, socket.AF_INET))
    got += capture.frames(1, udp_frame(40127, 9, socket.AF_INET6))
    assert len(got) == 2
    notes = [f"reason NO_SOCKET comm pytest iface lo netns {s.netns}" for s in got]
    path = write_pcapng(tmp_path / "real.pcapng", zip(got, notes))
    for line, s in zip(tcpdump_lines(path), got):
        assert_tcpdump_agrees(line, s)
    rows, _ = tshark_rows(path)
    assert len(rows) == 2
    for row, s, note in zip(rows, got, notes):
        assert_tshark_agrees(row, s, note, 14 + s.length)
