"""A scripted collector for tests, screenshots and demos: no kernel, no root, no randomness.

Every poll advances a step counter; each scripted row adds a fixed, step-dependent
number of packets, and the cumulative counts go through the real SnapshotAssembler,
so rates, history, first_seen and reset behave exactly as they do live. The script
covers what the UI must cope with: core and non-core reasons (a mac80211 0x10002
and an openvswitch reason), an unknown subsystem shown raw, kernel-context rows,
a packet with no device, a comm holding Rich markup and an ESC byte, an interface
name with brackets, and rows that only appear after a few polls.

With the default virtual clock each poll is exactly `step` seconds after the last,
so a snapshot after N polls is the same on every machine.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from dataclasses import dataclass

from droptop.collector.assemble import RawRow, SnapshotAssembler
from droptop.collector.limits import DEFAULT_MAX_KEYS
from droptop.errors import DroptopError
from droptop.model import DropKey, Location, Reason, Snapshot, StackSample

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
    "__do_softirq+0xd3",
)
_NF_STACK = (
    "kfree_skb_reason+0x8c",
    "nf_hook_slow+0xa1",
    "ip_local_deliver+0xd4",
    "ip_rcv+0xc1",
    "__netif_receive_skb_one_core+0x8b",
    "netif_receive_skb+0x13c",
    "napi_gro_receive+0x112",
    "e1000_clean_rx_irq+0x1b5",
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
)
_GENERIC_STACK = ("kfree_skb_reason+0x8c", "skb_release_data+0x110", "consume_skb+0x41")


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

    def packets_at(self, step: int) -> int:
        """Packets added during `step` (deterministic)."""
        if step < self.start:
            return 0
        if self.burst_every:
            return self.base if step % self.burst_every == 0 else 0
        wave = _WAVE[(step + self.key.raw_reason) % len(_WAVE)]
        return max(0, round(self.base * (1 + 0.25 * wave)))


def _key(reason: int, comm: str, ifindex: int, *, kctx: bool = False, netns: int = 0) -> DropKey:
    if ifindex and not netns:
        netns = INIT_NETNS
    return DropKey(reason, comm, kctx, ifindex, netns)


EVIL_COMM = "[red]evil\x1b[2J"
"""A task name with Rich markup and an ESC byte; must never be interpreted."""
EVIL_IFNAME = "veth[b]1"

DEFAULT_SCRIPT: tuple[ScriptedRow, ...] = (
    ScriptedRow(
        _key(core("NO_SOCKET"), "swapper/0", 2, kctx=True),
        "eth0",
        1240,
        76,
        ("__udp4_lib_rcv",),
        _UDP_STACK,
    ),
    ScriptedRow(
        _key(core("NETFILTER_DROP"), "nginx", 2),
        "eth0",
        180,
        120,
        ("nf_hook_slow",),
        _NF_STACK,
    ),
    ScriptedRow(
        _key(core("SOCKET_RCVBUFF"), "iperf3", 1),
        "lo",
        400,
        1470,
        ("udp_queue_rcv_one_skb",),
        _SOCK_STACK,
        burst_every=4,
    ),
    ScriptedRow(
        _key(core("NOT_SPECIFIED"), "kworker/u8:2", 0, kctx=True),
        "",
        60,
        64,
        ("skb_release_data", "kfree_skb_list_reason"),
        _GENERIC_STACK,
    ),
    ScriptedRow(
        _key((3 << SUBSYS_SHIFT) | 1, "handler12", 7, netns=4026532301),
        "br-int",
        35,
        98,
        ("do_execute_actions",),
        _GENERIC_STACK,
    ),
    ScriptedRow(
        _key((1 << SUBSYS_SHIFT) | 2, "swapper/2", 3, kctx=True),
        "wlan0",
        12,
        210,
        ("ieee80211_rx_handlers",),
        _GENERIC_STACK,
    ),
    ScriptedRow(
        _key(core("PKT_TOO_SMALL"), EVIL_COMM, 9, netns=4026532512),
        EVIL_IFNAME,
        5,
        40,
        ("ip_rcv_core",),
        _GENERIC_STACK,
    ),
    ScriptedRow(
        _key(core("TCP_CSUM"), "ksoftirqd/1", 2, kctx=True),
        "eth0",
        2,
        60,
        ("tcp_v4_rcv",),
        _TCP_STACK,
    ),
    ScriptedRow(
        _key((5 << SUBSYS_SHIFT) | 7, "swapper/3", 2, kctx=True),
        "eth0",
        3,
        90,
        ("unknown_subsys_rx",),
        _GENERIC_STACK,
    ),
    ScriptedRow(
        _key(core("QDISC_DROP"), "curl", 2),
        "eth0",
        25,
        1514,
        ("__dev_xmit_skb",),
        _GENERIC_STACK,
        start=3,
    ),
    ScriptedRow(
        _key(core("IP_NOPROTO"), "swapper/1", 2, kctx=True),
        "eth0",
        8,
        84,
        ("ip_protocol_deliver_rcu",),
        _GENERIC_STACK,
        start=5,
    ),
    ScriptedRow(
        _key(core("NEIGH_FAILED"), "ping", 4),
        "eth1",
        1,
        98,
        ("neigh_invalidate",),
        _GENERIC_STACK,
        start=6,
    ),
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
        self._counts: dict[DropKey, int] = {}
        self._assembler = SnapshotAssembler(
            FakeReasonNames(),
            kernel=kernel,
            capacity=capacity,
            stacks_enabled=True,
            source="fake",
            notes=("fake collector: scripted drops, not this machine's",),
            hostname=hostname,
            clock=clock or self._virtual,
            wallclock=wallclock or (lambda: self._virtual.now),
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
            total = self._counts.get(s.key, 0) + s.packets_at(n)
            self._counts[s.key] = total
            raws.extend(self._raw_rows(s, total))
        return self._assembler.build(
            raws,
            overflow=self.overflow,
            map_used=len(raws),
            bpf_ns_per_drop=self.bpf_ns_per_drop,
        )

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

    def close(self) -> None:
        self.closed = True
