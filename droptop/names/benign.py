"""Frees that are not losses: the drop locations (and reason + location pairs) to set apart.

kfree_skb fires for every skb freed "as dropped", including queues flushed when a
socket closes and frames nothing on this host was meant to take. Those rows are
real events but not losses, so the table marks them benign (hidden by one key,
still counted in totals). Each entry says why, and how it was checked on 6.18:
"measured" means droptop's real collector saw exactly that reason at that function
for a scenario we made (tests/test_counters_real.py repeats the UDP one).

A row is benign only when *every* location it has is benign: a row mixing a benign
free with anything else is a loss until proven otherwise, because hiding a real
loss costs more than showing a harmless free. (A DropRow's locations are complete,
so "every" is exact.) Locations arrive as ``function+0xoff``; the offset is ignored.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BenignEntry:
    """One benign free site."""

    location: str
    """Kernel function name without offset."""
    reason: str | None
    """Drop reason name it must come with; None: any reason at this function."""
    why: str
    checked: str


@dataclass(frozen=True, slots=True)
class BenignMatch:
    why: str
    entries: tuple[BenignEntry, ...]
    """The entry matched by each location of the row, in the row's order."""

    @property
    def entry(self) -> BenignEntry:
        """The entry of the first (largest) location."""
        return self.entries[0]


BENIGN: tuple[BenignEntry, ...] = (
    BenignEntry(
        "udp_destruct_common",
        None,
        "datagrams still queued when a UDP socket was destroyed: the reader closed it",
        "measured: 7 datagrams queued, socket closed -> 7 NOT_SPECIFIED at "
        "udp_destruct_common+0xb9 under swapper (RCU), no device",
    ),
    BenignEntry(
        "unix_release_sock",
        None,
        "messages left unread in a Unix socket when it was closed",
        "measured: 5 dgram + 3 stream messages unread, peer closed -> 8 SOCKET_CLOSE",
    ),
    BenignEntry(
        "skb_queue_purge_reason",
        "QUEUE_PURGE",
        "a socket or device queue flushed on teardown (skb_queue_purge)",
        "source: skb_queue_purge() is an inline passing SKB_DROP_REASON_QUEUE_PURGE to "
        "the out-of-line skb_queue_purge_reason (present in this kernel's kallsyms)",
    ),
    BenignEntry(
        "sk_stream_kill_queues",
        None,
        "a stream socket's receive queue flushed when the socket is destroyed",
        "source: sk_stream_kill_queues purges sk_receive_queue at destroy (kubeskoop's "
        "list); in kallsyms here; not triggered here (tcp_close frees unread data "
        "with __kfree_skb, which fires no event: measured)",
    ),
    BenignEntry(
        "skb_rbtree_purge",
        None,
        "TCP's out-of-order queue freed when the socket is destroyed",
        "source: tcp_v4_destroy_sock calls skb_rbtree_purge(&tp->out_of_order_queue) "
        "(HUATUO's list); not triggered here",
    ),
    BenignEntry(
        "tcp_v4_rcv",
        "NOT_SPECIFIED",
        "a bare ACK ignored on purpose under TCP_DEFER_ACCEPT (TcpExt:TCPDeferAcceptDrop)",
        "measured: one connect to a TCP_DEFER_ACCEPT listener without data -> one "
        "NOT_SPECIFIED at tcp_v4_rcv; 6.18 gives the other tcp_v4_rcv exits named reasons",
    ),
    BenignEntry(
        "tcp_v6_rcv",
        "NOT_SPECIFIED",
        "IPv6 twin of the TCP_DEFER_ACCEPT bare-ACK discard",
        "source: tcp_v6_rcv mirrors tcp_v4_rcv's request-socket path; not measured",
    ),
    BenignEntry(
        "stp_pdu_rcv",
        "NOT_SPECIFIED",
        "a spanning-tree BPDU reached a host with no bridge running STP on that port",
        "measured: 6 BPDUs sent over a veth -> 6 NOT_SPECIFIED at stp_pdu_rcv+0x92",
    ),
    BenignEntry(
        "ip6_mc_input",
        "NOT_SPECIFIED",
        "IPv6 multicast for a group this host has not joined (MLD/ND chatter on a link)",
        "measured: new veths' MLD reports -> NOT_SPECIFIED at ip6_mc_input+0x15e from kworker",
    ),
    BenignEntry(
        "bnxt_tx_int",
        None,
        "bnxt TX completion freeing packets that were sent",
        "from HUATUO's list; not verified on 6.18 (no bnxt driver on this machine)",
    ),
)

NOT_BENIGN: tuple[tuple[str, str], ...] = (
    (
        "neigh_invalidate",
        "packets queued for a next hop that never answered ARP/ND were not delivered: a "
        "dead neighbour is a real symptom; HUATUO hides it in some neighbour states, but "
        "a row does not carry the state",
    ),
)
"""Sites other tools call benign that droptop keeps as losses, and why."""

_BY_LOCATION: dict[str, tuple[BenignEntry, ...]] = {}
for _e in BENIGN:
    _BY_LOCATION[_e.location] = (*_BY_LOCATION.get(_e.location, ()), _e)


def function_name(symbol: str) -> str:
    """``udp_destruct_common+0xb9`` -> ``udp_destruct_common`` (also strips ``[module]``)."""
    return symbol.split("+", 1)[0].split(" ", 1)[0].strip()


def match_location(reason_name: str, symbol: str) -> BenignEntry | None:
    """The entry for one location, or None."""
    for e in _BY_LOCATION.get(function_name(symbol), ()):
        if e.reason is None or e.reason == reason_name:
            return e
    return None


def classify(reason_name: str, location_symbols: Iterable[str]) -> BenignMatch | None:
    """A match when every location is a benign free for this reason; None otherwise.

    No locations at all is not benign (nothing shows it is a free).
    """
    entries = []
    for sym in location_symbols:
        e = match_location(reason_name, sym)
        if e is None:
            return None
        entries.append(e)
    if not entries:
        return None
    whys = dict.fromkeys(e.why for e in entries)
    return BenignMatch("; ".join(whys), tuple(entries))
