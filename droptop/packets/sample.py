"""The packet sample the kernel reader fills (defined in droptop.model, the shared currency),
and the protocol constants that say what its bytes are.

This is the meeting point of the two halves of sampled packets (issue 12): the collector
turns one slot of a row's ring into a :class:`PacketSample`; the decoder, the flow table and
the pcapng writer read nothing else. Values are raw (ifname straight from the kernel, bytes
as copied); front ends sanitize what they show.
"""

from __future__ import annotations

from droptop.model import PacketSample

__all__ = ["PacketSample"]

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
