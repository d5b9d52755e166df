"""Loss counters that kfree_skb never shows as drops: kernel SNMP counters and driver statistics.

Some losses leave no kfree_skb drop at all: a SYN refused because the accept queue
is full is freed with consume_skb (TcpExt ListenOverflows rises, the tracepoint sees
a normal free), and a NIC ring overflow never had an skb. The only trace of those is
a counter. This module holds

- the tables (data) of which counters are such losses, each with a one-line *why* and
  a note of how it was checked against kernel 6.18 (source read and/or measured here);
  counters that also pass kfree_skb with a reason are listed with ``row=False`` (or
  with ``also_seen_as``) so that a counter row never double-counts a kfree_skb row;
- readers: SNMP/netstat per network namespace (``/proc/<pid>/net/{snmp,netstat,snmp6}``
  show the netns of that pid), the per-CPU backlog (``/proc/net/softnet_stat``, one for
  the whole machine), and the drivers' per-interface statistics in sysfs;
- a pure function from the previous rows and a new reading to :class:`CounterRow`
  (rate over the interval, total since start; a counter that went down is a restart).

Raw strings (interface names) are kept as read; front ends sanitize.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from droptop.stats import per_second

SOURCE_SNMP = "snmp"
"""Kernel MIB counters (/proc/<pid>/net/snmp, netstat, snmp6): one set per netns."""
SOURCE_SOFTNET = "softnet"
"""/proc/net/softnet_stat: per CPU, shared by every netns."""
SOURCE_DRIVER = "driver"
"""/sys/class/net/<if>/statistics: per interface, in the netns sysfs was mounted in."""
SOURCE_ETHTOOL = "ethtool"
"""The driver's own statistics (``ethtool -S``), in droptop's own netns (collector/ethtool.py)."""
SOURCES = (SOURCE_SNMP, SOURCE_SOFTNET, SOURCE_DRIVER, SOURCE_ETHTOOL)


@dataclass(frozen=True, slots=True)
class CounterSpec:
    """One counter and what it means for droptop's table."""

    source: str
    """One of SOURCES."""
    counter: str
    """Kernel name: ``TcpExt:ListenOverflows`` (group:field as in /proc), ``softnet:dropped``,
    or a sysfs statistics file name such as ``rx_missed_errors``."""
    row: bool
    """True: a loss that kfree_skb does not show as a drop, so it deserves a counter row.
    False: read for context only (it duplicates a kfree_skb reason, or is a sum of other
    rows, or is not a loss); never a row, never added to any total."""
    also_seen_as: tuple[str, ...]
    """kfree_skb reasons that count some (or all) of the same packets. For a row, the
    part counted there already has a kfree_skb row; the front end should say so."""
    why: str
    """One line: what the counter counts and why it is (or is not) a row."""
    checked: str
    """How the claim was checked against 6.18: source read, measured here, or both."""


# --- kernel SNMP / netstat counters (per netns) -----------------------------------
# Checked with the source of 6.18-era net/ipv4/tcp_input.c, tcp_ipv4.c, udp.c and
# net/core/dev.c, and by the measurements named in each entry (kernel 6.18.44, this VM).
SNMP_COUNTERS: tuple[CounterSpec, ...] = (
    CounterSpec(
        SOURCE_SNMP,
        "TcpExt:ListenOverflows",
        True,
        ("TCP_LISTEN_OVERFLOW",),
        "accept queue full: a SYN is refused and freed with consume_skb (no drop event); an "
        "ACK completing a handshake while the queue is full is freed as TCP_LISTEN_OVERFLOW",
        "source: tcp_conn_request counts it then tcp_rcv_state_process calls consume_skb; "
        "measured: listen(1) + 10 connects in a netns moved it by 16 with 0 kfree_skb drops "
        "in that netns (tests/test_counters_real.py); the ACK path shows as "
        "TCP_LISTEN_OVERFLOW with TCP_DEFER_ACCEPT (KERNEL-NOTES)",
    ),
    CounterSpec(
        SOURCE_SNMP,
        "TcpExt:TCPReqQFullDrop",
        True,
        (),
        "SYN queue full and SYN cookies off: the SYN is refused and freed with consume_skb",
        "source: tcp_syn_flood_action counts it when no cookie is sent, tcp_conn_request "
        "then takes the drop label (tcp_listendrop only) and the caller consumes the skb; "
        "not measured here (needs net.ipv4.tcp_syncookies=0 and a SYN flood)",
    ),
    CounterSpec(
        SOURCE_SNMP,
        "TcpExt:ListenDrops",
        False,
        ("TCP_LISTEN_OVERFLOW",),
        "every refused SYN or handshake ACK on a listener: a superset of ListenOverflows and "
        "TCPReqQFullDrop (tcp_listendrop runs on each), so a row would double-count them",
        "source: tcp_listendrop follows every ListenOverflows increment in tcp_conn_request "
        "and tcp_v4_syn_recv_sock; measured: moved by 16 with ListenOverflows' 16",
    ),
    CounterSpec(
        SOURCE_SNMP,
        "TcpExt:TCPBacklogDrop",
        False,
        ("SOCKET_BACKLOG",),
        "socket backlog full while the owner holds the lock: freed with SOCKET_BACKLOG",
        "source: tcp_add_backlog sets SKB_DROP_REASON_SOCKET_BACKLOG before counting it and "
        "tcp_v4_rcv frees via kfree_skb_reason",
    ),
    CounterSpec(
        SOURCE_SNMP,
        "TcpExt:TCPDeferAcceptDrop",
        False,
        ("NOT_SPECIFIED",),
        "a bare ACK ignored on purpose under TCP_DEFER_ACCEPT: not a loss",
        "measured: one NOT_SPECIFIED drop at tcp_v4_rcv per deferred connection",
    ),
    CounterSpec(
        SOURCE_SNMP,
        "Udp:RcvbufErrors",
        False,
        ("SOCKET_RCVBUFF",),
        "receive buffer full: freed with SOCKET_RCVBUFF",
        "source: __udp_queue_rcv_skb drops with SKB_DROP_REASON_SOCKET_RCVBUFF",
    ),
    CounterSpec(
        SOURCE_SNMP,
        "Udp:NoPorts",
        False,
        ("NO_SOCKET",),
        "no socket on the port: freed with NO_SOCKET",
        "measured: tests/test_bpf_drops.py matches NO_SOCKET rows to it exactly",
    ),
    CounterSpec(
        SOURCE_SNMP,
        "Udp6:Udp6RcvbufErrors",
        False,
        ("SOCKET_RCVBUFF",),
        "IPv6 twin of Udp:RcvbufErrors",
        "source: __udpv6_queue_rcv_skb uses the same reason",
    ),
    CounterSpec(
        SOURCE_SNMP,
        "IpExt:InNoECTPkts",
        False,
        (),
        "packets received without ECN capability: a traffic count, not a loss",
        "name only (net/ipv4/proc.c); listed so nobody adds it as a loss",
    ),
)

# --- per-CPU backlog ------------------------------------------------------------------
SOFTNET_COUNTERS: tuple[CounterSpec, ...] = (
    CounterSpec(
        SOURCE_SOFTNET,
        "softnet:dropped",
        False,
        ("CPU_BACKLOG",),
        "per-CPU input backlog full (or flow limit hit): freed with CPU_BACKLOG",
        "source (v6.18.38 net/core/dev.c enqueue_to_backlog): sd->dropped++ then "
        "kfree_skb_reason(skb, SKB_DROP_REASON_CPU_BACKLOG)",
    ),
)

# --- driver statistics (sysfs, struct rtnl_link_stats64) --------------------------------
# Hardware counters: the NIC discarded the frame before any skb existed, so kfree_skb
# never sees it. rx_dropped/tx_dropped also include drops the core stack makes on the
# device's behalf with an skb (measured: a veth whose peer is down counts tx_dropped and
# frees each packet as QDISC_DROP in __dev_queue_xmit), hence also_seen_as.
_HW = "hardware discard before an skb exists; include/uapi/linux/if_link.h documents it"
DRIVER_COUNTERS: tuple[CounterSpec, ...] = (
    CounterSpec(
        SOURCE_DRIVER,
        "rx_missed_errors",
        True,
        (),
        "the NIC had no free buffer (ring full): the frame was never received",
        _HW,
    ),
    CounterSpec(
        SOURCE_DRIVER,
        "rx_fifo_errors",
        True,
        (),
        "receive FIFO overrun in the NIC",
        _HW,
    ),
    CounterSpec(
        SOURCE_DRIVER,
        "rx_over_errors",
        True,
        (),
        "receive ring overflow (driver-specific; some drivers count ring-full here)",
        _HW,
    ),
    CounterSpec(
        SOURCE_DRIVER,
        "rx_crc_errors",
        True,
        (),
        "frames with a bad FCS discarded by the NIC (a cable, optic or duplex problem)",
        _HW,
    ),
    CounterSpec(
        SOURCE_DRIVER,
        "rx_frame_errors",
        True,
        (),
        "misaligned frames discarded by the NIC",
        _HW,
    ),
    CounterSpec(
        SOURCE_DRIVER,
        "rx_length_errors",
        True,
        (),
        "frames whose length is invalid, discarded by the NIC",
        _HW,
    ),
    CounterSpec(
        SOURCE_DRIVER,
        "rx_dropped",
        True,
        ("CPU_BACKLOG", "DEV_READY", "UNHANDLED_PROTO"),
        "dropped by the driver (often ring or memory trouble, no skb) plus core drops on "
        "the device's behalf that kfree_skb also shows",
        "source (v6.18.38 dev.c): enqueue_to_backlog and __netif_receive_skb_core call "
        "dev_core_stats_rx_dropped_inc beside kfree_skb_reason; the rest is driver-defined",
    ),
    CounterSpec(
        SOURCE_DRIVER,
        "tx_dropped",
        True,
        ("QDISC_DROP",),
        "dropped on transmit by the driver or the core before the wire",
        "measured: 13 AF_PACKET sends on a veth whose peer is down moved tx_dropped by 13 and "
        "gave 13 QDISC_DROP drops at __dev_queue_xmit (tests/test_counters_real.py)",
    ),
    CounterSpec(
        SOURCE_DRIVER,
        "tx_fifo_errors",
        True,
        (),
        "transmit FIFO underrun in the NIC",
        _HW,
    ),
    CounterSpec(
        SOURCE_DRIVER,
        "tx_aborted_errors",
        True,
        (),
        "transmission aborted by the NIC (e.g. excessive collisions)",
        _HW,
    ),
    CounterSpec(
        SOURCE_DRIVER,
        "tx_carrier_errors",
        True,
        (),
        "frame lost because the carrier was lost while sending",
        _HW,
    ),
    CounterSpec(
        SOURCE_DRIVER,
        "rx_errors",
        False,
        (),
        "sum of the rx_*_errors above in most drivers: a row would double-count them",
        "if_link.h: rx_errors includes crc, frame, fifo, length and over errors",
    ),
    CounterSpec(
        SOURCE_DRIVER,
        "tx_errors",
        False,
        (),
        "sum of the tx_*_errors above: a row would double-count them",
        "if_link.h: tx_errors includes aborted, carrier, fifo, heartbeat and window errors",
    ),
    CounterSpec(
        SOURCE_DRIVER,
        "rx_nohandler",
        False,
        ("UNHANDLED_PROTO",),
        "frames on an exact-match-only device (e.g. inactive bond slave) nobody took; "
        "freed by kfree_skb at the same label as UNHANDLED_PROTO",
        "source (v6.18.38 dev.c __netif_receive_skb_core drop label)",
    ),
)

COUNTERS: tuple[CounterSpec, ...] = SNMP_COUNTERS + SOFTNET_COUNTERS + DRIVER_COUNTERS
SPECS: dict[tuple[str, str], CounterSpec] = {(s.source, s.counter): s for s in COUNTERS}
"""(source, counter) -> spec."""


_ETHTOOL_SPECS: dict[str, CounterSpec] = {}


def spec_for(source: str, counter: str) -> CounterSpec | None:
    """The table's spec, or for an ethtool statistic one made from its name (the driver
    names its own statistics; droptop keeps only those whose name says they are losses)."""
    spec = SPECS.get((source, counter))
    if spec is not None or source != SOURCE_ETHTOOL:
        return spec
    spec = _ETHTOOL_SPECS.get(counter)
    if spec is None:
        spec = _ETHTOOL_SPECS[counter] = CounterSpec(
            SOURCE_ETHTOOL,
            counter,
            True,
            ("driver counters",),
            "the driver's own statistic (ethtool -S) of packets it lost; some drivers also "
            "add it into the sysfs rx_dropped / tx_dropped row",
            "name matched: drop, discard, miss, overrun, fifo or no buffer (the driver's word)",
        )
    return spec


@dataclass(frozen=True, slots=True)
class CounterSample:
    """One counter value read once."""

    source: str
    counter: str
    netns: int
    """Network namespace inode (0 for softnet, which is per machine)."""
    ifname: str
    """Interface for driver counters, "" otherwise. Raw, not sanitized."""
    value: int

    @property
    def key(self) -> tuple[str, str, int, str]:
        return (self.source, self.counter, self.netns, self.ifname)


@dataclass(frozen=True, slots=True)
class CounterRow:
    """A counter as the table shows it: like a DropRow, but from a counter, not kfree_skb."""

    source: str
    counter: str
    netns: int
    ifname: str
    value: int
    """The kernel's raw value at the last reading."""
    delta: int
    """Increase over the last interval (after a restart: the value since the restart)."""
    total: int
    """Increase since droptop started watching this counter."""
    rate: float
    """delta per second over the measured interval."""
    spec: CounterSpec

    @property
    def key(self) -> tuple[str, str, int, str]:
        return (self.source, self.counter, self.netns, self.ifname)


# --- readers ---------------------------------------------------------------------------


def _read(path: Path) -> str | None:
    """A /proc or sysfs file's text, or None when it is gone (netns or interface deleted)."""
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            return f.read()
    except OSError:
        return None


def parse_two_line(text: str) -> dict[str, int]:
    """/proc/net/snmp and netstat: a header line then a value line per group -> {G:field: n}."""
    out: dict[str, int] = {}
    pending: dict[str, list[str]] = {}
    for line in text.splitlines():
        group, _, rest = line.partition(":")
        if not rest:
            continue
        words = rest.split()
        header = pending.pop(group, None)
        if header is None:
            pending[group] = words
            continue
        for name, value in zip(header, words, strict=False):
            try:
                out[f"{group}:{name}"] = int(value)
            except ValueError:
                continue
    return out


def parse_snmp6(text: str) -> dict[str, int]:
    """/proc/net/snmp6: ``Udp6RcvbufErrors 0`` lines -> {Udp6:Udp6RcvbufErrors: 0}.

    The group is the name's leading letters and digits before the first capital after
    them (Ip6, Icmp6, Udp6, UdpLite6), matching how the kernel prefixes them.
    """
    out: dict[str, int] = {}
    for line in text.splitlines():
        words = line.split()
        if len(words) != 2:
            continue
        name, value = words
        group = ""
        for prefix in ("UdpLite6", "Icmp6", "Udp6", "Ip6"):
            if name.startswith(prefix):
                group = prefix
                break
        try:
            out[f"{group or 'Snmp6'}:{name}"] = int(value)
        except ValueError:
            continue
    return out


def netns_inode(proc_net: str | os.PathLike[str]) -> int:
    """The netns inode behind a ``/proc/<pid>/net`` dir (0 if the process is gone)."""
    ns = Path(proc_net).parent / "ns" / "net"
    try:
        return os.stat(ns).st_ino
    except OSError:
        return 0


def read_snmp(
    proc_net: str | os.PathLike[str] = "/proc/self/net",
    netns: int | None = None,
    specs: Iterable[CounterSpec] = SNMP_COUNTERS,
) -> list[CounterSample]:
    """The table's SNMP counters for the netns of ``proc_net`` (``/proc/<pid>/net``).

    A vanished process (its netns gone) gives an empty list, never an exception.
    """
    base = Path(proc_net)
    if netns is None:
        netns = netns_inode(base)
    values: dict[str, int] = {}
    for name, parse in (
        ("snmp", parse_two_line),
        ("netstat", parse_two_line),
        ("snmp6", parse_snmp6),
    ):
        text = _read(base / name)
        if text is not None:
            values.update(parse(text))
    return [
        CounterSample(SOURCE_SNMP, s.counter, netns, "", values[s.counter])
        for s in specs
        if s.counter in values
    ]


def read_softnet(path: str | os.PathLike[str] = "/proc/net/softnet_stat") -> list[CounterSample]:
    """Sum of column 2 (``dropped``, hex) over CPUs; the file is the same in every netns."""
    text = _read(Path(path))
    if text is None:
        return []
    dropped = 0
    for line in text.splitlines():
        cols = line.split()
        if len(cols) > 1:
            dropped += int(cols[1], 16)
    return [CounterSample(SOURCE_SOFTNET, "softnet:dropped", 0, "", dropped)]


def read_driver(
    sysfs_net: str | os.PathLike[str] = "/sys/class/net",
    netns: int | None = None,
    specs: Iterable[CounterSpec] = DRIVER_COUNTERS,
) -> list[CounterSample]:
    """Per-interface statistics from a ``class/net`` dir of sysfs.

    sysfs lists the devices of the netns it was *mounted* in, not of the reading thread,
    so setns alone would not help: for another netns pass the sysfs a process in it
    sees (``sysfs_for_pid``). An interface deleted mid-read is skipped.
    """
    base = Path(sysfs_net)
    if netns is None:
        netns = netns_inode("/proc/self/net")
    names = [s.counter for s in specs]
    out: list[CounterSample] = []
    try:
        ifaces = sorted(os.listdir(base))
    except OSError:
        return out
    for ifname in ifaces:
        stats = base / ifname / "statistics"
        for name in names:
            try:  # os.open/os.read: a third of open()'s cost, and this runs ~150 times a poll
                fd = os.open(f"{stats}/{name}", os.O_RDONLY)
                try:
                    value = int(os.read(fd, 64))
                finally:
                    os.close(fd)
            except (OSError, ValueError):
                continue
            out.append(CounterSample(SOURCE_DRIVER, name, netns, ifname, value))
    return out


def _proc_net_dev_names(proc_net: Path) -> set[str] | None:
    text = _read(proc_net / "dev")
    if text is None:
        return None
    return {line.split(":", 1)[0].strip() for line in text.splitlines()[2:] if ":" in line}


def sysfs_for_pid(pid: int) -> Path | None:
    """The ``class/net`` dir that shows the netns of ``pid``, or None if none does.

    Processes started by ``ip netns exec`` and container runtimes mount a sysfs for
    their netns in their own mount namespace: ``/proc/<pid>/root/sys/class/net``.
    It is used only when its interfaces are exactly those ``/proc/<pid>/net/dev`` lists
    (the netns's own view), so a process that merely joined a netns, whose /sys still
    shows another one, gives None instead of another netns's counters.
    """
    candidate = Path(f"/proc/{pid}/root/sys/class/net")
    names = _proc_net_dev_names(Path(f"/proc/{pid}/net"))
    try:
        listed = set(os.listdir(candidate))
    except OSError:
        return None
    if names is None or listed != names:
        return None
    return candidate


# --- rows --------------------------------------------------------------------------------


def advance(
    previous: Iterable[CounterRow],
    samples: Iterable[CounterSample],
    interval: float,
) -> tuple[CounterRow, ...]:
    """New rows from the previous rows and a fresh reading (pure).

    - A counter seen for the first time is a baseline: delta 0, total 0 (what it
      counted before droptop watched it is not ours to show).
    - A counter lower than before was restarted (interface recreated, netns reused):
      its whole value counted since the restart, within this interval.
    - A counter that vanished (interface or netns gone) leaves no row.
    Samples whose (source, counter) is not in the tables are ignored.
    """
    prev: Mapping[tuple[str, str, int, str], CounterRow] = {r.key: r for r in previous}
    rows = []
    for s in samples:
        spec = spec_for(s.source, s.counter)
        if spec is None:
            continue
        old = prev.get(s.key)
        if old is None:
            delta, total = 0, 0
        else:
            delta = s.value - old.value if s.value >= old.value else s.value
            total = old.total + delta
        rows.append(
            CounterRow(
                s.source,
                s.counter,
                s.netns,
                s.ifname,
                s.value,
                delta,
                total,
                per_second(delta, interval),
                spec,
            )
        )
    return tuple(rows)


def loss_rows(rows: Iterable[CounterRow]) -> tuple[CounterRow, ...]:
    """Only the rows the table shows: losses kfree_skb does not show as drops."""
    return tuple(r for r in rows if r.spec.row)


@dataclass(frozen=True, slots=True)
class CounterReader:
    """Reads every table counter for a set of network namespaces in one call.

    ``proc_nets``: one ``/proc/<pid>/net`` per netns (the lead's netns code picks a pid
    per netns). ``sysfs_nets``: netns inode -> ``class/net`` dir for driver counters
    (``/sys/class/net`` for our own netns, ``sysfs_for_pid`` for the others).
    """

    proc_nets: tuple[str, ...] = ("/proc/self/net",)
    sysfs_nets: tuple[tuple[int, str], ...] = ()
    softnet: str | None = "/proc/net/softnet_stat"

    @classmethod
    def local(cls) -> CounterReader:
        """Our own netns: SNMP from /proc/self/net, drivers from /sys/class/net, softnet."""
        return cls(sysfs_nets=((netns_inode("/proc/self/net"), "/sys/class/net"),))

    def read(self) -> list[CounterSample]:
        out: list[CounterSample] = []
        for proc_net in self.proc_nets:
            out.extend(read_snmp(proc_net))
        if self.softnet:
            out.extend(read_softnet(self.softnet))
        for netns, sysfs in self.sysfs_nets:
            out.extend(read_driver(sysfs, netns))
        return out
