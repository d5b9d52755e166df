"""The packet sample the kernel reader fills: one dropped packet's copied headers.

This is the meeting point of the two halves of sampled packets (issue 12): the collector
turns one slot of a row's ring into a :class:`PacketSample`; the decoder, the flow table and
the pcapng writer read nothing else. Values are raw (ifname straight from the kernel, bytes
as copied); front ends sanitize what they show.
"""

from __future__ import annotations

from dataclasses import dataclass

# EtherTypes (skb->protocol after ntohs).
ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806
ETH_P_8021Q = 0x8100
ETH_P_8021AD = 0x88A8
ETH_P_QINQ1 = 0x9100  # pre-standard QinQ outer tag, still seen on switches
ETH_P_IPV6 = 0x86DD

# net_device->type values (include/uapi/linux/if_arp.h) that say what the MAC bytes are.
ARPHRD_UNKNOWN = 0
ARPHRD_ETHER = 1
ARPHRD_LOOPBACK = 772
"""lo: the kernel builds a 14-byte Ethernet header of zero addresses for it."""
ARPHRD_NONE = 0xFFFE
"""tun and other devices with no link-layer header."""

ETHERNET_LINK_TYPES = frozenset({ARPHRD_ETHER, ARPHRD_LOOPBACK})
"""Devices whose MAC header is Ethernet-shaped (dst, src, EtherType)."""


@dataclass(frozen=True, slots=True)
class PacketSample:
    """One sampled dropped packet: its headers as the kernel held them at the drop.

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
    link_type: int = ARPHRD_UNKNOWN
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
