"""Where a kernel drop-reason name misleads: what it hides and what to check next.

The drill-down shows these beside the reason's explanation. Each entry was checked
on kernel 6.18 by making the drop with droptop's real collector (noted per entry)
or by reading the source; the wording is ours.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from droptop.names.benign import function_name


@dataclass(frozen=True, slots=True)
class Caveat:
    reason: str
    location: str | None
    """Function the caveat needs (None: any location)."""
    text: str
    checked: str


CAVEATS: tuple[Caveat, ...] = (
    Caveat(
        "NETFILTER_DROP",
        None,
        "Also counts packets a firewall rule rejected: an nft or iptables 'reject' answers "
        "the sender (ICMP or TCP RST) and then drops. Check the rule counters with "
        "'nft list ruleset' or 'iptables -vnL'.",
        "measured: 3 UDP sends matching an nft 'reject' rule -> 3 NETFILTER_DROP at nft_do_chain",
    ),
    Caveat(
        "OTHERHOST",
        None,
        "Not only frames for another MAC: a VLAN-tagged frame for a VLAN with no VLAN "
        "device on this interface is marked 'other host' too. Check 'ip -d link' for a "
        "matching vlan device and the sender's VLAN id.",
        "measured: 5 frames tagged VLAN 10 to a veth's own MAC, no vlan device -> 5 "
        "OTHERHOST at ip_rcv_core",
    ),
    Caveat(
        "IP_INHDR",
        "ip_forward",
        "From ip_forward this is a TTL that ran out while forwarding (a routing loop or a "
        "traceroute), not a malformed header. Check the routes for a loop with "
        "'ip route get' and traceroute.",
        "source: ip_forward's too_many_hops label sends ICMP time exceeded and sets "
        "SKB_DROP_REASON_IP_INHDR; not measured",
    ),
    Caveat(
        "QDISC_DROP",
        "__dev_queue_xmit",
        "Not a full queue: the device has no queue (noqueue) and could not send, "
        "typically because its carrier is down (a veth whose peer is down, a bridge with "
        "no port up). Check 'ip link show' for NO-CARRIER and the device's tx_dropped.",
        "measured: 13 sends on a veth whose peer is down -> 13 QDISC_DROP at "
        "__dev_queue_xmit and tx_dropped +13",
    ),
    Caveat(
        "NO_TX_TARGET",
        "br_dev_xmit",
        "The bridge had no port to send to: a bridge with no ports (or none forwarding) "
        "drops its own IGMP/MLD reports here. Harmless until ports are added. Check "
        "'bridge link'.",
        "measured: 3 IGMP joins on a port-less bridge -> NO_TX_TARGET at br_dev_xmit "
        "(the issue expected QDISC_DROP; 6.18 reports this instead)",
    ),
)


def caveat(reason_name: str, locations: Iterable[str]) -> str | None:
    """The caveat for a reason at these locations (``function+0xoff``), or None."""
    funcs = {function_name(s) for s in locations}
    for c in CAVEATS:
        if c.reason == reason_name and (c.location is None or c.location in funcs):
            return c.text
    return None
