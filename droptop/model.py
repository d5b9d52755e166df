"""Plain, immutable data that every layer of droptop shares.

The collector produces a :class:`Snapshot` once per interval; batch output, the
snapshot writer and the TUI only ever read snapshots. Nothing here imports bcc
or Textual, so everything above the collector can be tested without a kernel.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, overload

HISTORY_LEN = 60
"""Rates a row's history shows: a minute at the default 1 s interval."""

# Where a reason's name came from, best first. "snapshot" means the name was read
# from a saved snapshot's own reason table (it was resolved on the machine that
# took the snapshot).
NAME_SOURCES = ("btf", "tracefs", "raw", "snapshot", "none")


@dataclass(frozen=True, slots=True)
class Reason:
    """One resolved drop-reason value."""

    raw: int
    """The value the kernel passed to the tracepoint (subsys << shift | code)."""
    name: str
    """NO_SOCKET, RX_DROP_U_REPLAY, or a raw hex label when no name is known."""
    subsys: str
    """core, mac80211_unusable, openvswitch, ... or subsysN when unknown."""
    source: str
    """One of NAME_SOURCES."""

    @property
    def hex(self) -> str:
        return f"0x{self.raw:x}"


class DropKey(NamedTuple):
    """What a table row is about: the kernel map key minus the drop location.

    A NamedTuple rather than a dataclass: it is hashed for every row on every poll,
    and tuple hashing runs in C.
    """

    raw_reason: int
    comm: str
    """Task name at the time of the drop, decoded with errors replaced; never escaped."""
    kernel_context: bool
    """True for the idle task and kernel threads (ksoftirqd, kworker): not a process's fault."""
    ifindex: int
    """0 when the packet had no device."""
    netns: int
    """Network namespace inode number: the device's, else the socket's, else the task's; 0
    when none is known."""
    irq: bool = False
    """The drop ran on an interrupt stack (softirq or hardirq), not on the task's own."""
    sock_ino: int = 0
    """Inode of the socket the packet belonged to (the receiving one on RX); 0: none."""
    cgroup_id: int = 0
    """cgroup v2 id: the socket's where there is one, else the current task's."""
    counter: str = ""
    """For a counter row (source "counter"): which counter, e.g. "TcpExt:ListenOverflows"."""


@dataclass(frozen=True, slots=True)
class StackSample:
    """A sampled kernel stack for one row; counts are samples, not drops."""

    frames: tuple[str, ...]
    """Symbolized frames, innermost first (function+0xoff)."""
    count: int


class Location(NamedTuple):
    """The function that freed the packet (the tracepoint's location argument).
    A NamedTuple: one is built for every changed row on every poll."""

    symbol: str
    packets: int


class PacketSample(NamedTuple):
    """One sampled dropped packet: its headers as the kernel held them at the drop.

    A NamedTuple: a stack re-read after 10,000 new keys reads 40,000 of them.

    `length` is counted from the network header, not from `skb->data`: where `skb->data`
    points at the drop depends on the path (the IP header is already pulled when UDP drops
    a datagram as NO_SOCKET, the MAC header is still there on a TX drop), so `skb->len` alone
    means different things on different rows. The kernel reader computes
    ``skb->len + (skb->data - skb->head) - skb->network_header``; the packet on the wire
    was ``len(mac) + length`` bytes.
    """

    time: float
    """Wall-clock seconds (Unix epoch) of the drop."""
    ifindex: int
    """0 when the packet had no device."""
    ifname: str
    """Interface name captured in the kernel at drop time ("" when no device); raw."""
    netns: int
    """Network namespace inode number; 0 when unknown."""
    protocol: int
    """skb->protocol in host byte order (ETH_P_IP 0x0800, ETH_P_IPV6 0x86dd, ...); 0 unset."""
    length: int
    """Bytes from the network header to the end of the packet (see the class docstring)."""
    mac: bytes
    """The MAC header (mac_header .. network_header); b"" when the skb had none (tun, many
    TX paths before the device, drops before the MAC header was set)."""
    network: bytes
    """Up to --sample-bytes (default 128) bytes from the network header on."""
    link_type: int = 0
    """dev->type (ARPHRD_ETHER 1, ARPHRD_LOOPBACK 772, ...): what the `mac` bytes are; 0
    unknown (no device)."""

    @property
    def captured(self) -> bytes:
        """The bytes as they were on the wire, as far as copied: MAC header, then network."""
        return self.mac + self.network

    @property
    def wire_length(self) -> int:
        """The whole packet's length including the MAC header (never less than captured)."""
        return max(len(self.mac) + self.length, len(self.mac) + len(self.network))


@dataclass(frozen=True, slots=True)
class SocketOwner:
    """The process holding a socket, found from its inode as `ss -p` does."""

    inode: int
    pid: int | None
    """None when no process holds it any more (or it was never found)."""
    comm: str | None


@dataclass(frozen=True, slots=True)
class Attribution:
    """Whose drop a row is: derived in user space from the key and its sampled stacks."""

    context: str = ""
    """process, softirq-inline, softirq-irq, softirq, ksoftirqd, hardirq, nmi, kthread, idle
    (droptop.attribution.context); "" when not known."""
    blames_task: bool = True
    """The task in comm made the drop itself (its own code path)."""
    service: str | None = None
    """Short service name from the cgroup (nginx.service, docker:3f2a1b9c4d5e, pod:...)."""
    cgroup: str | None = None
    """cgroup v2 path of the socket, or of the task where the task made the drop."""
    netns_name: str = ""
    """host, an `ip netns` name, `pid N (comm)`, or the inode as text; "" for no netns."""
    socket: SocketOwner | None = None


NO_ATTRIBUTION = Attribution()


class RateHistory(Sequence[float]):
    """A row's per-poll rates as of one poll, read only when asked for.

    A view of rates[start:end] of an array of doubles that the assembler keeps per
    row, or with start < 0 (a row woken from a long idle spell) a whole HISTORY_LEN:
    -start zeros, then the HISTORY_LEN + start rates before rates[end]. The assembler
    only ever writes past the end of every view taken and swaps in a fresh array when
    one is full, so what a view shows never changes.
    Building a 60-float tuple for every changed row of every poll cost 10,000-key polls
    more than half their time, for histories that only the rows on screen and a
    snapshot file ever read. Compares equal to the tuple of the same rates.
    """

    __slots__ = ("_end", "_rates", "_start")

    def __init__(self, rates: array, start: int, end: int) -> None:
        self._rates = rates
        self._start = start
        self._end = end

    def values(self) -> tuple[float, ...]:
        start, end = self._start, self._end
        if start < 0:
            return (0.0,) * -start + tuple(self._rates[end - HISTORY_LEN - start : end])
        return tuple(self._rates[start:end])

    def __len__(self) -> int:
        return self._end - self._start if self._start >= 0 else HISTORY_LEN

    def __iter__(self) -> Iterator[float]:
        return iter(self.values())

    @overload
    def __getitem__(self, i: int) -> float: ...
    @overload
    def __getitem__(self, i: slice) -> tuple[float, ...]: ...
    def __getitem__(self, i: int | slice) -> float | tuple[float, ...]:
        return self.values()[i]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, RateHistory | tuple):
            return self.values() == tuple(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.values())

    def __repr__(self) -> str:
        return repr(self.values())


class DropRow(NamedTuple):
    """One table row: a DropKey's counts, rates and what is known about it.

    A NamedTuple rather than a frozen dataclass: a poll in which 10,000 keys changed
    builds 10,000 of them, and a frozen dataclass's __init__ (one object.__setattr__
    per field) costs ~1.1 us against ~0.1 us for a tuple. Change one with _replace()
    (its history and locations through their fields, `rates` and `where`), build one
    from a plain history and locations with DropRow.of().
    """

    key: DropKey
    reason: Reason
    ifname: str
    """Interface name captured in the kernel at drop time ("" when no device)."""
    packets: int
    """Cumulative since start (or since the last reset)."""
    bytes: int
    rate: float
    """Packets per second over the last interval."""
    byte_rate: float
    rates: tuple[float, ...] | array = ()
    """Where `history` comes from: the history itself (a tuple), or the assembler's
    per-row buffer of which it is rates[rates_start:rates_end] (RateHistory). Three
    fields, not a view object: a poll in which 10,000 keys changed made 10,000 views."""
    rates_start: int = 0
    rates_end: int = 0
    history_end: int = 0
    where: tuple[Location, ...] | str = ()
    """Where `locations` comes from: the locations, or a row of one location's symbol
    ("" none), with its packets in where_packets (two objects fewer per changed row)."""
    where_packets: int = 0
    stacks: tuple[StackSample, ...] = ()
    first_seen: float = 0.0
    """Wall-clock time the row first appeared."""
    who: Attribution = NO_ATTRIBUTION
    """Context, service, cgroup, named netns and socket owner."""
    source: str = "kfree_skb"
    """kfree_skb (a drop the tracepoint saw) or counter (a kernel or driver loss counter)."""
    benign: str | None = None
    """Why this row is a free rather than a loss (droptop.names.benign); None: a loss."""
    samples: tuple[PacketSample, ...] = ()
    """The last few sampled packets' headers (a ring per row in the kernel); samples, not counts."""

    @classmethod
    def of(
        cls,
        *,
        history: Sequence[float] = (),
        locations: tuple[Location, ...] = (),
        **fields: object,
    ) -> DropRow:
        """A row from its history and locations as plain values (a snapshot file, tests)."""
        values = tuple(history)
        return cls(rates=values, rates_end=len(values), where=locations, **fields)  # type: ignore[arg-type]

    @property
    def history(self) -> tuple[float, ...] | RateHistory:
        """Per-interval rates up to and including poll `history_end`, oldest first.

        An idle row is not rebuilt every poll (that is what keeps a 10k-row poll
        cheap), so its history stops at its last change: use history_at(snap.poll).
        """
        rates = self.rates
        if type(rates) is tuple:
            return rates
        return RateHistory(rates, self.rates_start, self.rates_end)

    @property
    def locations(self) -> tuple[Location, ...]:
        """The functions that freed the row's packets, with their packets, most first."""
        where = self.where
        if type(where) is str:
            return (Location(where, self.where_packets),) if where else ()
        return where

    def shown(self) -> tuple:
        """The row as values: its history and locations as tuples instead of where they
        come from. Rows compare (and hash) by these, so a row read back from a file
        equals the live row it was saved from."""
        return (*self[:7], tuple(self.history), self.history_end, self.locations, *self[13:])

    def __eq__(self, other: object) -> bool:
        if isinstance(other, DropRow):
            return self is other or self.shown() == other.shown()
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        if isinstance(other, DropRow):
            return self is not other and self.shown() != other.shown()
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.shown())

    def history_at(self, poll: int, length: int = HISTORY_LEN) -> tuple[float, ...]:
        """The rate history as of `poll`: zeros for the polls since the row last changed."""
        history = tuple(self.history)
        pad = min(length, poll - self.history_end)
        if pad <= 0:
            return history[-length:]
        return (history + (0.0,) * pad)[-length:]


@dataclass(frozen=True, slots=True)
class NicRates:
    """Per-interface drop/error counters as the driver reports them (not kfree_skb).

    Rates are per second over the last sample interval; totals are since boot.
    """

    name: str
    rx_drop_rate: float
    tx_drop_rate: float
    rx_err_rate: float
    tx_err_rate: float
    rx_drops: int
    tx_drops: int
    rx_errors: int
    tx_errors: int

    @property
    def any_rate(self) -> bool:
        return any((self.rx_drop_rate, self.tx_drop_rate, self.rx_err_rate, self.tx_err_rate))


@dataclass(frozen=True, slots=True)
class SelfUsage:
    """What droptop itself costs, as the header shows it."""

    cpu_percent: float
    """Percent of one CPU since the previous sample (can exceed 100 with threads)."""
    rss: int
    """Resident set size in bytes."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything one refresh shows. Immutable: the UI may keep it as long as it likes."""

    time: float
    """Wall-clock time of the poll (seconds since the epoch)."""
    interval: float
    """Measured seconds since the previous poll (0.0 for the first)."""
    kernel: str
    hostname: str
    rows: tuple[DropRow, ...]
    total_packets: int = 0
    total_rate: float = 0.0
    total_history: tuple[float, ...] = ()
    poll: int = 0
    """Poll number (1 for the first); DropRow.history_at(poll) pads idle rows' history."""
    overflow_packets: int = 0
    """Drops counted while the key map was full: counted, but not attributed to a row."""
    overflow_bytes: int = 0
    map_used: int = 0
    map_capacity: int = 0
    names_source: str = "none"
    """Best source the resolver had: btf, tracefs, raw or snapshot."""
    reason_table: tuple[Reason, ...] = ()
    """Every reason the running kernel knows, so a snapshot read elsewhere keeps its names."""
    stacks_enabled: bool = True
    bpf_ns_per_drop: float | None = None
    """Mean run time of droptop's BPF program per drop (needs kernel.bpf_stats_enabled=1)."""
    bpf_missed: int = 0
    """Tracepoint hits the kernel skipped: droptop's program was already running on that CPU."""
    source: str = "live"
    """live, replay or fake."""
    notes: tuple[str, ...] = field(default_factory=tuple)
    """One-line facts worth showing (headers used, names source, warnings)."""
    interfaces: tuple[NicRates, ...] = ()
    """The drivers' own drop and error counters per interface, sampled with this poll."""
    usage: SelfUsage | None = None
    """droptop's own CPU and memory at this poll (None when not sampled)."""
    poll_seconds: float | None = None
    """How long the collector's poll took (set by the poll loop)."""
    resets: int = 0
    """Counter resets so far (the TUI's z): a consumer keeping its own totals sees them."""
    bpf_run_ns: int | None = None
    """Cumulative run time of droptop's BPF program (kernel.bpf_stats_enabled=1)."""
    bpf_run_count: int | None = None
    """Cumulative runs of droptop's BPF program (kernel.bpf_stats_enabled=1)."""
