"""A scripted collector for tests, screenshots and demos: no kernel, no root, no randomness.

Every poll advances a step counter; each scripted row adds a fixed, step-dependent
number of packets, and the cumulative counts go through the real SnapshotAssembler,
so rates, history, first_seen and reset behave exactly as they do live. The script
covers what the UI must cope with: core and non-core reasons (a mac80211 0x10002
and an openvswitch reason), an unknown subsystem shown raw, kernel-context rows,
a packet with no device, a comm holding Rich markup and an ESC byte, an interface
name with brackets, and rows that only appear after a few polls; whose drop each
row is (every context, services from systemd and docker cgroups, named and unnamed
network namespaces, socket owners, tasks that were only interrupted), a benign free,
two loss-counter rows (an SNMP and a driver counter, through their own assembler as
collector/counter_rows.py builds them), and packet samples made of real header bytes
(Ethernet, IPv4, IPv6, TCP, UDP, ICMP, ARP, GRE; one payload of ESC and markup bytes).

With the default virtual clock each poll is exactly `step` seconds after the last,
so a snapshot after N polls is the same on every machine.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace

from droptop.attribution.cgroups import service_name
from droptop.collector.assemble import SAMPLES_PER_ROW, RawRow, SnapshotAssembler
from droptop.collector.counter_rows import CounterNames, counter_raw, merge_rows
from droptop.collector.limits import DEFAULT_MAX_KEYS
from droptop.errors import DroptopError
from droptop.model import (
    NO_ATTRIBUTION,
    Attribution,
    DropKey,
    Location,
    PacketSample,
    Reason,
    Snapshot,
    SocketOwner,
    StackSample,
)
from droptop.packets.checksum import internet_checksum
from droptop.packets.sample import ARPHRD_ETHER, ARPHRD_LOOPBACK, ETH_P_ARP, ETH_P_IP, ETH_P_IPV6

SUBSYS_SHIFT = 16

# A 6.1-like core enum (SKB_NOT_DROPPED_YET is 0); good enough for a fake kernel.
_CORE = [
    "NOT_SPECIFIED",
    "NO_SOCKET",
    "PKT_TOO_SMALL",
    "TCP_CSUM",
    "SOCKET_FILTER",
    "UDP_CSUM",
    "NETFILTER_DROP",
    "OTHERHOST",
    "IP_CSUM",
    "IP_INHDR",
    "IP_RPFILTER",
    "UNICAST_IN_L2_MULTICAST",
    "XFRM_POLICY",
    "IP_NOPROTO",
    "SOCKET_RCVBUFF",
    "PROTO_MEM",
    "TCP_MD5NOTFOUND",
    "TCP_MD5UNEXPECTED",
    "TCP_MD5FAILURE",
    "SOCKET_BACKLOG",
    "TCP_FLAGS",
    "TCP_ZEROWINDOW",
    "TCP_OLD_DATA",
    "TCP_OVERWINDOW",
    "TCP_OFOMERGE",
    "TCP_RFC7323_PAWS",
    "TCP_INVALID_SEQUENCE",
    "TCP_RESET",
    "TCP_INVALID_SYN",
    "TCP_CLOSE",
    "TCP_FASTOPEN",
    "TCP_OLD_ACK",
    "TCP_TOO_OLD_ACK",
    "TCP_ACK_UNSENT_DATA",
    "TCP_OFO_QUEUE_PRUNE",
    "TCP_OFO_DROP",
    "IP_OUTNOROUTES",
    "BPF_CGROUP_EGRESS",
    "IPV6DISABLED",
    "NEIGH_CREATEFAIL",
    "NEIGH_FAILED",
    "NEIGH_QUEUEFULL",
    "NEIGH_DEAD",
    "TC_EGRESS",
    "QDISC_DROP",
    "CPU_BACKLOG",
    "XDP",
    "TC_INGRESS",
    "UNHANDLED_PROTO",
    "SKB_CSUM",
    "SKB_GSO_SEG",
    "SKB_UCOPY_FAULT",
    "DEV_HDR",
    "DEV_READY",
    "FULL_RING",
    "NOMEM",
    "HDR_TRUNC",
    "TAP_FILTER",
    "TAP_TXFILTER",
    "ICMP_CSUM",
    "INVALID_PROTO",
    "IP_INADDRERRORS",
    "IP_INNOROUTES",
    "PKT_TOO_BIG",
]
_SUBSYSTEMS = {
    1: ("mac80211_unusable", ("RX_DROP_U_MIC_FAIL", "RX_DROP_U_REPLAY", "RX_DROP_U_BAD_MMIE")),
    3: ("openvswitch", ("OVS_DROP_LAST_ACTION", "OVS_DROP_ACTION_ERROR", "OVS_DROP_EXPLICIT")),
}


class FakeReasonNames:
    """The ReasonNames the assembler needs, from a fixed table; unknown values stay raw."""

    def __init__(self) -> None:
        table = [Reason(i + 1, n, "core", "btf") for i, n in enumerate(_CORE)]
        for subsys, (sname, names) in _SUBSYSTEMS.items():
            base = subsys << SUBSYS_SHIFT
            table += [Reason(base + i + 1, n, sname, "btf") for i, n in enumerate(names)]
        self._table = tuple(table)
        self._by_raw = {r.raw: r for r in table}

    def resolve(self, raw: int) -> Reason:
        known = self._by_raw.get(raw)
        if known is not None:
            return known
        subsys = raw >> SUBSYS_SHIFT
        name = "core" if subsys == 0 else _SUBSYSTEMS.get(subsys, (f"subsys{subsys}",))[0]
        return Reason(raw, f"0x{raw:x}", name, "raw")

    def table(self) -> tuple[Reason, ...]:
        return self._table

    @property
    def best_source(self) -> str:
        return "btf"


def core(name: str) -> int:
    """The fake kernel's raw value for a core reason name."""
    return _CORE.index(name) + 1


INIT_NETNS = 4026531840
BLUE_NETNS = 4026532600
"""A namespace made with `ip netns add blue`."""
OVS_NETNS = 4026532301
DOCKER_NETNS = 4026532410
EVIL_NETNS = 4026532512
"""A namespace nothing names: shown as its inode."""
NETNS_NAMES = {
    INIT_NETNS: "host",
    BLUE_NETNS: "blue",
    OVS_NETNS: "pid 2210 (ovs-vswitchd)",
    DOCKER_NETNS: "pid 3121 (curl)",
    EVIL_NETNS: str(EVIL_NETNS),
}
"""What droptop.attribution.netns would call each scripted namespace."""

_WAVE = (0.0, 0.5, 1.0, 0.5, 0.0, -0.5, -1.0, -0.5)

_UDP_STACK = (
    "kfree_skb_reason+0x8c",
    "__udp4_lib_rcv+0x6d1",
    "udp_rcv+0x1d",
    "ip_protocol_deliver_rcu+0x3c",
    "ip_local_deliver_finish+0x77",
    "__netif_receive_skb_one_core+0x8b",
    "process_backlog+0x9a",
    "__napi_poll+0x2e",
    "net_rx_action+0x18e",
    "handle_softirqs+0xd3",
    "irq_exit_rcu+0x9e",
    "common_interrupt+0x86",
)
_NF_OUT_STACK = (
    "kfree_skb_reason+0x8c",
    "nf_hook_slow+0xa1",
    "__ip_local_out+0xd4",
    "ip_local_out+0x1c",
    "__ip_queue_xmit+0x18d",
    "__tcp_transmit_skb+0x5e1",
    "tcp_write_xmit+0x2b2",
    "tcp_sendmsg_locked+0x9c4",
    "tcp_sendmsg+0x2c",
    "__sys_sendto+0x1c4",
)
_TCP_STACK = (
    "kfree_skb_reason+0x8c",
    "tcp_v4_rcv+0x103",
    "ip_protocol_deliver_rcu+0x3c",
    "ip_local_deliver_finish+0x77",
    "__netif_receive_skb_one_core+0x8b",
)
_SOCK_STACK = (
    "kfree_skb_reason+0x8c",
    "udp_queue_rcv_one_skb+0x2c9",
    "udp_unicast_rcv_skb+0x6f",
    "__udp4_lib_rcv+0x51e",
    "ip_protocol_deliver_rcu+0x3c",
    "process_backlog+0x9a",
    "handle_softirqs+0xd3",
    "do_softirq+0x47",
    "__local_bh_enable_ip+0x5c",
    "__dev_queue_xmit+0x29b",
    "ip_finish_output2+0x1e0",
    "udp_send_skb+0x17d",
    "udp_sendmsg+0x8f4",
)
_TIMER_STACK = (
    "kfree_skb_reason+0x8c",
    "neigh_invalidate+0x8f",
    "neigh_timer_handler+0x2a0",
    "call_timer_fn+0x27",
    "run_timer_softirq+0x1f0",
    "handle_softirqs+0xd3",
    "irq_exit_rcu+0x9e",
    "sysvec_apic_timer_interrupt+0x71",
)
_RCU_STACK = (
    "kfree_skb_reason+0x8c",
    "udp_destruct_common+0xb9",
    "__sk_destruct+0x24",
    "rcu_do_batch+0x1c3",
    "rcu_core+0x17a",
    "rcuop_kthread+0x41",
)
_GENERIC_STACK = ("kfree_skb_reason+0x8c", "skb_release_data+0x110", "consume_skb+0x41")


# --- packet headers, built byte by byte (checksums right, so pcap readers agree) --------


def _eth(dst: str, src: str, ethertype: int) -> bytes:
    return bytes.fromhex(dst.replace(":", "") + src.replace(":", "")) + struct.pack("!H", ethertype)


def _addr(text: str) -> bytes:
    return socket.inet_pton(socket.AF_INET6 if ":" in text else socket.AF_INET, text)


def _pseudo(src: str, dst: str, proto: int, length: int) -> bytes:
    if ":" in src:
        return _addr(src) + _addr(dst) + struct.pack("!IxxxB", length, proto)
    return _addr(src) + _addr(dst) + struct.pack("!BBH", 0, proto, length)


def _ip(src: str, dst: str, proto: int, payload: bytes, *, ident: int = 0x1C46) -> bytes:
    """An IPv4 (or, for IPv6 addresses, an IPv6) header in front of `payload`."""
    if ":" in src:
        head = struct.pack("!IHBB", 6 << 28, len(payload), proto, 64)
        return head + _addr(src) + _addr(dst) + payload
    head = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, 0x4000, 64, proto, 0,
        _addr(src), _addr(dst),
    )  # fmt: skip
    return head[:10] + struct.pack("!H", internet_checksum(head)) + head[12:] + payload


def _udp(src: str, dst: str, sport: int, dport: int, payload: bytes) -> bytes:
    seg = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    csum = internet_checksum(_pseudo(src, dst, 17, len(seg)) + seg) or 0xFFFF
    return _ip(src, dst, 17, seg[:6] + struct.pack("!H", csum) + seg[8:])


TCP_SYN, TCP_ACK, TCP_PSH = 0x02, 0x10, 0x08


def _tcp(src: str, dst: str, sport: int, dport: int, flags: int, payload: bytes = b"") -> bytes:
    seg = struct.pack("!HHIIBBHHH", sport, dport, 0x3A1F2B00, 0, 5 << 4, flags, 64240, 0, 0)
    seg += payload
    csum = internet_checksum(_pseudo(src, dst, 6, len(seg)) + seg)
    return _ip(src, dst, 6, seg[:16] + struct.pack("!H", csum) + seg[18:])


def _icmp_echo(src: str, dst: str, ident: int, seq: int) -> bytes:
    msg = struct.pack("!BBHHH", 8, 0, 0, ident, seq) + bytes(range(16))
    return _ip(src, dst, 1, msg[:2] + struct.pack("!H", internet_checksum(msg)) + msg[4:])


def _arp_request(sha: str, spa: str, tpa: str) -> bytes:
    return struct.pack(
        "!HHBBH6s4s6s4s", 1, ETH_P_IP, 6, 4, 1, bytes.fromhex(sha.replace(":", "")),
        _addr(spa), b"\0" * 6, _addr(tpa),
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Packet:
    """A scripted packet's headers: what the kernel's sample copy would hold."""

    network: bytes
    """From the network header on (the whole datagram; the sample keeps 128 bytes)."""
    mac: bytes = b""
    protocol: int = ETH_P_IP
    link_type: int = ARPHRD_ETHER


_GW_MAC, _HOST_MAC = "52:54:00:12:35:02", "52:54:00:ab:cd:01"


def _rx(network: bytes, protocol: int = ETH_P_IP) -> Packet:
    """Received on eth0 from the gateway: with its Ethernet header."""
    return Packet(network, _eth(_HOST_MAC, _GW_MAC, protocol), protocol)


def _rx6(network: bytes) -> Packet:
    return _rx(network, ETH_P_IPV6)


def _lo(network: bytes) -> Packet:
    """Loopback: an all-zero Ethernet header."""
    return Packet(network, bytes(12) + struct.pack("!H", ETH_P_IP), ETH_P_IP, ARPHRD_LOOPBACK)


HOSTILE_PAYLOAD = b"\x1b[2J\x1b]0;owned\x07[red]pwn[/red]\x9b31m"
"""A datagram payload of terminal escapes and Rich markup: the drill-down must show it
escaped, never interpret it."""


# --- the script ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScriptedRow:
    """One row of the script: who drops, how fast, from which step on."""

    key: DropKey
    ifname: str
    base: int
    """Packets per step on average."""
    size: int
    """Bytes per packet."""
    locations: tuple[str, ...]
    stack: tuple[str, ...]
    start: int = 0
    """First poll (0-based) at which the row exists."""
    burst_every: int = 0
    """When non-zero, the row only drops on every n-th step (base packets at once)."""
    who: Attribution = NO_ATTRIBUTION
    """Whose drop it is, as collector/attribute.py would say."""
    packets: tuple[Packet, ...] = ()
    """Sampled in turn, one per step in which the row drops; the row keeps the last 8."""

    def packets_at(self, step: int) -> int:
        """Packets added during `step` (deterministic)."""
        if step < self.start:
            return 0
        if self.burst_every:
            return self.base if step % self.burst_every == 0 else 0
        wave = _WAVE[(step + self.key.raw_reason) % len(_WAVE)]
        return max(0, round(self.base * (1 + 0.25 * wave)))


@dataclass(frozen=True, slots=True)
class ScriptedCounter:
    """A loss counter that moves: it becomes a counter row, as collector/counter_rows.py makes."""

    source: str
    """snmp or driver (collector/counters.py SOURCES)."""
    counter: str
    netns: int
    ifname: str = ""
    base: int = 0
    """Added per step (with the same wave as drop rows), or per burst."""
    burst_every: int = 0
    start: int = 1
    """Counters count from droptop's start: the first poll is the baseline, no row yet."""

    def added_at(self, step: int) -> int:
        if step < self.start:
            return 0
        if self.burst_every:
            return self.base if step % self.burst_every == 0 else 0
        return max(0, round(self.base * (1 + 0.25 * _WAVE[step % len(_WAVE)])))

    @property
    def key(self) -> DropKey:
        return DropKey(
            counter_raw(self.source, self.counter),
            "",
            False,
            0,
            self.netns,
            counter=f"{self.source}:{self.counter}",
        )


def _key(
    reason: int,
    comm: str,
    ifindex: int,
    *,
    kctx: bool = False,
    netns: int = 0,
    irq: bool = False,
    sock: int = 0,
    cgroup: int = 0,
) -> DropKey:
    if ifindex and not netns:
        netns = INIT_NETNS
    return DropKey(reason, comm, kctx, ifindex, netns, irq, sock, cgroup)


def _who(
    context: str,
    netns: int,
    *,
    cgroup: str | None = None,
    socket: SocketOwner | None = None,
) -> Attribution:
    return Attribution(
        context=context,
        blames_task=context in ("process", "softirq-inline"),
        service=service_name(cgroup),
        cgroup=cgroup,
        netns_name=NETNS_NAMES.get(netns, str(netns) if netns else ""),
        socket=socket,
    )


EVIL_COMM = "[red]evil\x1b[2J"
"""A task name with Rich markup and an ESC byte; must never be interpreted."""
EVIL_IFNAME = "veth[b]1"
EVIL_CGROUP = "/system.slice/[b]x\x1b[2J.service"
"""A cgroup anyone can create with mkdir: markup and an ESC in the path and the service."""
DOCKER_CGROUP = (
    "/system.slice/docker-3f2a1b9c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f.scope"
)

DEFAULT_SCRIPT: tuple[ScriptedRow, ...] = (
    ScriptedRow(
        _key(core("NO_SOCKET"), "swapper/0", 2, kctx=True, irq=True),
        "eth0",
        1240,
        76,
        ("__udp4_lib_rcv",),
        _UDP_STACK,
        who=_who("softirq-irq", INIT_NETNS),
        packets=(
            _rx(_udp("198.51.100.23", "192.0.2.10", 40312, 161, b"\x30\x26\x02\x01\x01")),
            _rx(_udp("198.51.100.23", "192.0.2.10", 40312, 161, b"\x30\x26\x02\x01\x01")),
            _rx(_udp("203.0.113.9", "192.0.2.10", 53, 33434, bytes(40))),
            _rx6(_udp("2001:db8::5", "2001:db8::10", 5353, 9, b"hello")),
        ),
    ),
    ScriptedRow(
        _key(core("NETFILTER_DROP"), "nginx", 2, sock=91234, cgroup=4101),
        "eth0",
        180,
        120,
        ("nf_hook_slow",),
        _NF_OUT_STACK,
        who=_who(
            "process",
            INIT_NETNS,
            cgroup="/system.slice/nginx.service",
            socket=SocketOwner(91234, 812, "nginx"),
        ),
        packets=(
            Packet(_tcp("192.0.2.10", "203.0.113.50", 443, 52001, TCP_PSH | TCP_ACK, bytes(60))),
            Packet(_tcp("192.0.2.10", "203.0.113.51", 443, 40022, TCP_PSH | TCP_ACK, bytes(60))),
            Packet(_tcp("192.0.2.10", "203.0.113.50", 443, 52001, TCP_PSH | TCP_ACK, bytes(60))),
        ),
    ),
    ScriptedRow(
        _key(core("SOCKET_RCVBUFF"), "iperf3", 1, irq=True, sock=81234, cgroup=4102),
        "lo",
        400,
        1470,
        ("udp_queue_rcv_one_skb",),
        _SOCK_STACK,
        burst_every=4,
        who=_who(
            "softirq-inline",
            INIT_NETNS,
            cgroup="/system.slice/iperf3.service",
            socket=SocketOwner(81234, 4242, "iperf3"),
        ),
        packets=(_lo(_udp("127.0.0.1", "127.0.0.1", 43210, 5201, bytes(1442))),),
    ),
    ScriptedRow(
        _key(core("NOT_SPECIFIED"), "kworker/u8:2", 0, kctx=True),
        "",
        60,
        64,
        ("skb_release_data", "kfree_skb_list_reason"),
        _GENERIC_STACK,
        who=_who("kthread", 0),
    ),
    ScriptedRow(
        _key((3 << SUBSYS_SHIFT) | 1, "handler12", 7, netns=OVS_NETNS, irq=True),
        "br-int",
        35,
        98,
        ("do_execute_actions",),
        _GENERIC_STACK,
        who=_who("softirq-irq", OVS_NETNS),
        packets=(_rx(_arp_request("52:54:00:aa:00:01", "10.1.0.1", "10.1.0.7"), ETH_P_ARP),),
    ),
    ScriptedRow(
        _key((1 << SUBSYS_SHIFT) | 2, "swapper/2", 3, kctx=True, irq=True),
        "wlan0",
        12,
        210,
        ("ieee80211_rx_handlers",),
        _GENERIC_STACK,
        who=_who("softirq-irq", INIT_NETNS),
    ),
    ScriptedRow(
        _key(core("PKT_TOO_SMALL"), EVIL_COMM, 9, netns=EVIL_NETNS, cgroup=4666),
        EVIL_IFNAME,
        5,
        40,
        ("ip_rcv_core",),
        _GENERIC_STACK,
        who=_who("process", EVIL_NETNS, cgroup=EVIL_CGROUP),
        packets=(_rx(_udp("10.66.0.1", "10.66.0.2", 6666, 7777, HOSTILE_PAYLOAD)),),
    ),
    ScriptedRow(
        _key(core("TCP_CSUM"), "ksoftirqd/1", 2, kctx=True, irq=True),
        "eth0",
        2,
        60,
        ("tcp_v4_rcv",),
        _TCP_STACK,
        who=_who("ksoftirqd", INIT_NETNS),
        packets=(_rx(_tcp("203.0.113.77", "192.0.2.10", 44000, 22, TCP_SYN)),),
    ),
    ScriptedRow(
        _key((5 << SUBSYS_SHIFT) | 7, "swapper/3", 2, kctx=True, irq=True),
        "eth0",
        3,
        90,
        ("unknown_subsys_rx",),
        _GENERIC_STACK,
        who=_who("softirq-irq", INIT_NETNS),
    ),
    ScriptedRow(
        _key(core("QDISC_DROP"), "curl", 2, netns=DOCKER_NETNS, sock=70001, cgroup=4200),
        "eth0",
        25,
        1514,
        ("__dev_queue_xmit",),
        _GENERIC_STACK,
        start=3,
        who=_who(
            "process",
            DOCKER_NETNS,
            cgroup=DOCKER_CGROUP,
            socket=SocketOwner(70001, 3121, "curl"),
        ),
        packets=(
            Packet(_tcp("172.17.0.2", "93.184.216.34", 38000, 443, TCP_SYN)),
            Packet(_tcp("172.17.0.2", "93.184.216.34", 38002, 443, TCP_SYN)),
        ),
    ),
    ScriptedRow(
        _key(core("IP_NOPROTO"), "swapper/1", 2, kctx=True, irq=True),
        "eth0",
        8,
        84,
        ("ip_protocol_deliver_rcu",),
        _GENERIC_STACK,
        start=5,
        who=_who("softirq-irq", INIT_NETNS),
        packets=(_rx(_ip("198.51.100.7", "192.0.2.10", 47, bytes(24))),),
    ),
    ScriptedRow(
        _key(core("NEIGH_FAILED"), "ping", 4, netns=BLUE_NETNS, irq=True),
        "eth1",
        1,
        98,
        ("neigh_invalidate",),
        _TIMER_STACK,
        start=6,
        who=_who("softirq-irq", BLUE_NETNS),
        packets=(Packet(_icmp_echo("10.9.0.1", "10.9.0.2", 77, 1)),),
    ),
    ScriptedRow(
        _key(core("NOT_SPECIFIED"), "rcuop/0", 0, kctx=True, netns=INIT_NETNS, sock=77123),
        "",
        7,
        60,
        ("udp_destruct_common+0xb9",),
        _RCU_STACK,
        start=3,
        burst_every=3,
        who=_who("kthread", INIT_NETNS, socket=SocketOwner(77123, None, None)),
        packets=(Packet(_udp("127.0.0.1", "127.0.0.1", 50000, 6000, b"queued"), link_type=0),),
    ),
)

DEFAULT_COUNTERS: tuple[ScriptedCounter, ...] = (
    ScriptedCounter("snmp", "TcpExt:ListenOverflows", BLUE_NETNS, base=16, burst_every=3),
    ScriptedCounter("driver", "rx_missed_errors", INIT_NETNS, ifname="eth0", base=40),
)


class _VirtualClock:
    """Both clocks of the assembler, advanced by the collector itself."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


class FakeCollector:
    """Deterministic scripted drops through the real assembler.

    Args:
        script: rows to play; DEFAULT_SCRIPT covers the awkward cases.
        counters: loss counters to play beside them (counter rows); DEFAULT_COUNTERS.
        step: seconds between polls on the virtual clock.
        clock / wallclock: real clocks instead of the virtual one (for live demos).
        delay: seconds each poll sleeps, to test that a slow poll never freezes the UI.
        fail_on: 0-based poll numbers that raise DroptopError instead of returning.
        bpf_ns_per_drop, overflow: fixed values reported in every snapshot.
    """

    def __init__(
        self,
        *,
        script: tuple[ScriptedRow, ...] = DEFAULT_SCRIPT,
        counters: tuple[ScriptedCounter, ...] = DEFAULT_COUNTERS,
        step: float = 1.0,
        start: float = 1_700_000_000.0,
        clock: Callable[[], float] | None = None,
        wallclock: Callable[[], float] | None = None,
        hostname: str = "fakehost",
        kernel: str = "6.1.0-fake",
        capacity: int = DEFAULT_MAX_KEYS,
        delay: float = 0.0,
        fail_on: Collection[int] = (),
        bpf_ns_per_drop: float | None = None,
        overflow: tuple[int, int] = (0, 0),
    ) -> None:
        self.script = script
        self.counters = counters
        self.step = step
        self.delay = delay
        self.fail_on = frozenset(fail_on)
        self.bpf_ns_per_drop = bpf_ns_per_drop
        self.overflow = overflow
        self.polls = 0
        """Polls attempted so far (including failed ones)."""
        self.resets = 0
        self.closed = False
        self._virtual = _VirtualClock(start) if clock is None else None
        self._wallclock = wallclock or (lambda: self._virtual.now)
        self._counts: dict[DropKey, int] = {}
        self._who = {s.key: s.who for s in script}
        self._slots: dict[tuple[DropKey, str], int] = {}
        self._stacks: dict[int, tuple[StackSample, ...]] = {}
        self._samples: dict[int, tuple[PacketSample, ...]] = {}
        self._assembler = SnapshotAssembler(
            FakeReasonNames(),
            kernel=kernel,
            capacity=capacity,
            stacks_enabled=True,
            source="fake",
            notes=("fake collector: scripted drops, not this machine's",),
            hostname=hostname,
            clock=clock or self._virtual,
            wallclock=self._wallclock,
            attribute=lambda key, _stacks: self._who.get(key, NO_ATTRIBUTION),
        )
        self._counter_totals: dict[DropKey, int] = {}
        self._counter_assembler = SnapshotAssembler(
            CounterNames(),
            kernel=kernel,
            capacity=0,
            stacks_enabled=False,
            hostname=hostname,
            clock=clock or self._virtual,
            wallclock=self._wallclock,
            row_source="counter",
            attribute=lambda key, _stacks: Attribution(
                blames_task=False, netns_name=NETNS_NAMES.get(key.netns, str(key.netns))
            ),
        )

    def poll(self) -> Snapshot:
        if self.closed:
            raise DroptopError("fake collector is closed")
        n = self.polls
        self.polls += 1
        if self.delay:
            time.sleep(self.delay)
        if self._virtual is not None and n > 0:
            self._virtual.now += self.step
        if n in self.fail_on:
            raise DroptopError(f"fake: cannot read the drop map (poll {n})")
        raws: list[RawRow] = []
        for s in self.script:
            if n < s.start:
                continue
            added = s.packets_at(n)
            total = self._counts.get(s.key, 0) + added
            self._counts[s.key] = total
            rows = self._raw_rows(s, total)
            raws.extend(rows)
            if added and s.packets:
                self._sample(s, n, rows[0])
        snap = self._build(raws)
        counters = self._counter_rows(n)
        if not counters:
            return snap
        return replace(snap, rows=merge_rows(snap.rows, counters))

    def _sample(self, s: ScriptedRow, n: int, first: RawRow) -> None:
        """One more sampled packet in the row's ring (on its first slot), the oldest out."""
        pkt = s.packets[n % len(s.packets)]
        sample = PacketSample(
            time=self._wallclock() + 0.25,
            ifindex=s.key.ifindex,
            ifname=s.ifname,
            netns=s.key.netns,
            protocol=pkt.protocol,
            length=len(pkt.network),
            mac=pkt.mac,
            network=pkt.network[:128],
            link_type=pkt.link_type if s.key.ifindex else 0,
        )
        slot = self._slot(s.key, first.locations[0].symbol if first.locations else "", s.ifname)
        ring = (*self._samples.get(slot, ()), sample)[-SAMPLES_PER_ROW:]
        self._samples = {**self._samples, slot: ring}

    def _slot(self, key: DropKey, symbol: str, ifname: str) -> int:
        slot = self._slots.get((key, symbol))
        if slot is None:
            slot = self._slots[(key, symbol)] = self._assembler.slots
            self._assembler.add_slot(slot, key, ifname, symbol)
        return slot

    def _build(self, raws: list[RawRow]) -> Snapshot:
        """SnapshotAssembler.build, plus the rows' packet samples (RawRow has none)."""
        stacks = dict(self._stacks)
        for r in raws:
            for i, loc in enumerate(r.locations or (Location("", r.packets),)):
                slot = self._slot(r.key, loc.symbol, r.ifname)
                if i == 0 and stacks.get(slot) != r.stacks:
                    stacks[slot] = r.stacks
        if stacks != self._stacks:
            self._stacks = stacks
        packets = [0] * self._assembler.slots
        nbytes = [0] * self._assembler.slots
        for r in raws:
            for i, loc in enumerate(r.locations or (Location("", r.packets),)):
                slot = self._slots[(r.key, loc.symbol)]
                packets[slot] = loc.packets
                nbytes[slot] = r.bytes if i == 0 else 0
        return self._assembler.build_counts(
            packets,
            nbytes,
            stacks=self._stacks,
            samples=self._samples,
            overflow=self.overflow,
            map_used=len(raws),
            bpf_ns_per_drop=self.bpf_ns_per_drop,
        )

    def _counter_rows(self, n: int) -> tuple:
        raws = []
        for c in self.counters:
            total = self._counter_totals.get(c.key, 0) + c.added_at(n)
            self._counter_totals[c.key] = total
            if total > 0:
                raws.append(RawRow(c.key, c.ifname, total, 0))
        return self._counter_assembler.build(raws).rows

    @staticmethod
    def _raw_rows(s: ScriptedRow, total: int) -> list[RawRow]:
        """Split a row over its drop locations the way the kernel map would key it."""
        out = []
        remaining = total
        for i, symbol in enumerate(s.locations):
            last = i == len(s.locations) - 1
            pkts = remaining if last else total * 3 // 4
            remaining -= pkts
            samples = max(1, pkts // 64) if pkts else 0
            stacks = ()
            if samples:
                alt = (*s.stack[:1], "skb_free_head+0x5f", *s.stack[1:3])
                stacks = (
                    StackSample(s.stack, samples - samples // 5),
                    StackSample(alt, samples // 5),
                )
                stacks = tuple(st for st in stacks if st.count)
            raws_loc = (Location(symbol, pkts),) if pkts else ()
            out.append(RawRow(s.key, s.ifname, pkts, pkts * s.size, raws_loc, stacks))
        return out

    def reset(self) -> None:
        self.resets += 1
        self._assembler.reset()
        self._counter_assembler.reset()

    def close(self) -> None:
        self.closed = True
