"""One-line, plain-language explanations of drop reasons, in droptop's own words.

The kernel's comments in include/net/dropreason-core.h are written for kernel
developers; these are written for the person looking at a busy table who wants to
know what to check next. Keys are reason names without the SKB_DROP_REASON_
prefix. A reason without an entry gets no explanation rather than a guess.
"""

from __future__ import annotations

_PREFIXES = ("SKB_DROP_REASON_",)

EXPLANATIONS: dict[str, str] = {
    # --- generic ---------------------------------------------------------
    "NOT_SPECIFIED": "The code that freed the packet gave no reason; look at the stack "
    "and the drop location to see who dropped it.",
    "NOMEM": "The kernel could not allocate memory while handling the packet.",
    "QUEUE_PURGE": "A queue was flushed (socket or device closing) and the packets "
    "still in it were thrown away.",
    "SKB_CSUM": "The packet's checksum could not be computed or was wrong.",
    "SKB_GSO_SEG": "Splitting a large (GSO) packet into wire-sized segments failed.",
    "SKB_UCOPY_FAULT": "Copying packet data from user space failed (bad buffer).",
    "HDR_TRUNC": "The packet ended before its headers did: truncated on the wire or by a filter.",
    "PKT_TOO_SMALL": "The packet is shorter than the headers it claims to have; "
    "usually a broken sender or truncation.",
    "PKT_TOO_BIG": "The packet is larger than the path MTU and could not be "
    "fragmented (or DF was set).",
    "INVALID_PROTO": "The protocol field holds a value that is not valid here.",
    "UNHANDLED_PROTO": "No handler in the kernel for this protocol (for example an "
    "unknown EtherType).",
    "OTHERHOST": "The packet was addressed to another host's MAC address; normal on "
    "shared segments or in promiscuous mode.",
    "UNICAST_IN_L2_MULTICAST": "A unicast IP packet arrived in a link-layer "
    "multicast or broadcast frame, which is not allowed.",
    # --- sockets -----------------------------------------------------------
    "NO_SOCKET": "Nothing is listening on the destination port (or the socket is "
    "gone); scanners and late replies look like this.",
    "SOCKET_FILTER": "A socket filter (classic BPF or SO_ATTACH_FILTER) rejected the packet.",
    "SOCKET_RCVBUFF": "The receiving socket's buffer was full: the application reads "
    "too slowly or rmem is too small.",
    "SOCKET_BACKLOG": "The socket's backlog was full while the socket was busy in user context.",
    "SOCKET_CLOSE": "The socket was closed with unread data still queued.",
    "PROTO_MEM": "The protocol (TCP/UDP) hit its global memory limit (net.ipv4.tcp_mem / udp_mem).",
    "CPU_BACKLOG": "The per-CPU input backlog was full (netdev_max_backlog); the CPU "
    "could not keep up with incoming packets.",
    "PACKET_SOCK_ERROR": "An AF_PACKET socket could not take the packet.",
    # --- IP ----------------------------------------------------------------
    "IP_CSUM": "The IPv4 header checksum is wrong.",
    "IP_INHDR": "The IP header is malformed (bad version, length or options).",
    "IP_RPFILTER": "Reverse-path filtering dropped it: the source address is not "
    "reachable through the interface it came in on.",
    "IP_NOPROTO": "No handler for the IP protocol number in the packet (e.g. a "
    "protocol whose module is not loaded).",
    "IP_OUTNOROUTES": "No route to send the packet out.",
    "IP_INNOROUTES": "No route for an incoming packet that is not for this host.",
    "IP_INADDRERRORS": "The destination address is invalid for this host "
    "(martian or unreachable type).",
    "IP_TUNNEL_ECN": "A tunnel dropped the packet because of an invalid ECN "
    "combination between inner and outer headers.",
    "IPV6DISABLED": "An IPv6 packet arrived on an interface where IPv6 is disabled.",
    "IPV6_BAD_EXTHDR": "An IPv6 extension header is malformed.",
    "ICMP_CSUM": "The ICMP checksum is wrong.",
    "DUP_FRAG": "A duplicate IP fragment arrived while reassembling.",
    "FRAG_REASM_TIMEOUT": "IP fragments expired before the whole packet arrived.",
    "FRAG_TOO_FAR": "A fragment arrived too far out of order to be kept.",
    "XFRM_POLICY": "IPsec (xfrm) policy did not allow the packet.",
    # --- UDP ---------------------------------------------------------------
    "UDP_CSUM": "The UDP checksum is wrong.",
    # --- TCP ---------------------------------------------------------------
    "TCP_CSUM": "The TCP checksum is wrong: bad NIC offload, a middlebox, or "
    "corruption on the wire.",
    "TCP_FLAGS": "The TCP flags make no sense for the connection state.",
    "TCP_ZEROWINDOW": "The peer sent data while our receive window was zero.",
    "TCP_OLD_DATA": "The segment only carried data we had already received (a retransmission).",
    "TCP_OVERWINDOW": "The segment carried data beyond the receive window.",
    "TCP_OFOMERGE": "An out-of-order segment was already covered by queued data.",
    "TCP_OFO_DROP": "An out-of-order segment was dropped, usually because the "
    "socket was short of memory.",
    "TCP_OFO_QUEUE_PRUNE": "Out-of-order data was pruned to free memory.",
    "TCP_RFC7323_PAWS": "Protection against wrapped sequence numbers (timestamps) "
    "rejected the segment.",
    "TCP_OLD_SEQUENCE": "The segment's sequence number is older than the window.",
    "TCP_INVALID_SEQUENCE": "The segment's sequence number is outside the window.",
    "TCP_RESET": "A RST arrived and the connection's pending data was discarded.",
    "TCP_INVALID_SYN": "An unexpected SYN arrived on an established or closing connection.",
    "TCP_CLOSE": "Data arrived for a connection that is already closed.",
    "TCP_FASTOPEN": "A TCP Fast Open SYN's data could not be accepted.",
    "TCP_OLD_ACK": "The ACK acknowledges data that was already acknowledged.",
    "TCP_TOO_OLD_ACK": "The ACK is far older than anything still outstanding.",
    "TCP_ACK_UNSENT_DATA": "The ACK acknowledges data that was never sent.",
    "TCP_ABORT_ON_DATA": "The application closed the socket while data was still "
    "arriving, so the connection was aborted.",
    "TCP_MINTTL": "The packet's TTL is below the socket's minimum (IP_MINTTL).",
    "TCP_MD5NOTFOUND": "The segment had no TCP-MD5 signature but the socket requires one.",
    "TCP_MD5UNEXPECTED": "The segment had a TCP-MD5 signature the socket does not expect.",
    "TCP_MD5FAILURE": "The TCP-MD5 signature did not verify.",
    "TCP_AUTH_HDR": "TCP authentication (MD5/AO) header handling failed.",
    # --- netfilter, tc, BPF, XDP -------------------------------------------
    "NETFILTER_DROP": "A netfilter rule (iptables/nftables) dropped the packet.",
    "BPF_CGROUP_EGRESS": "A cgroup BPF egress program refused to let the packet out.",
    "TC_EGRESS": "A tc (traffic control) egress action dropped the packet.",
    "TC_INGRESS": "A tc (traffic control) ingress action dropped the packet.",
    "TC_COOKIE_ERROR": "A tc action's cookie was invalid.",
    "TC_CHAIN_NOTFOUND": "A tc goto_chain pointed to a chain that does not exist.",
    "TC_RECLASSIFY_LOOP": "tc reclassified the packet too many times.",
    "XDP": "An XDP program returned XDP_DROP (or failed).",
    "QDISC_DROP": "The queueing discipline dropped the packet: the transmit queue "
    "was full or a policer/AQM decided to drop.",
    # --- devices -----------------------------------------------------------
    "DEV_HDR": "The device could not build or parse the link-layer header.",
    "DEV_READY": "The device was not up or not ready to transmit.",
    "FULL_RING": "The device's ring buffer was full.",
    "TAP_FILTER": "A tap/tun device's filter rejected the packet.",
    "TAP_TXFILTER": "A tap/tun device's transmit filter rejected the packet.",
    "TUNNEL_TXINFO": "Tunnel transmit metadata was missing or wrong.",
    "LOCAL_MAC": "The source MAC is one of our own; likely a loop.",
    "ARP_PVLAN_DISABLE": "Proxy ARP for private VLAN is disabled on this interface.",
    "MAC_IEEE_MAC_CONTROL": "An IEEE 802.3 MAC control frame was not meant for the stack.",
    "MAC_INVALID_SOURCE": "The source MAC address is invalid (e.g. multicast).",
    "VXLAN_INVALID_HDR": "The VXLAN header is malformed.",
    "VXLAN_VNI_NOT_FOUND": "No VXLAN device is configured for the packet's VNI.",
    # --- neighbour (ARP / NDP) ---------------------------------------------
    "NEIGH_CREATEFAIL": "Creating a neighbour (ARP/NDP) entry failed; the neighbour "
    "table may be full.",
    "NEIGH_FAILED": "Neighbour resolution (ARP/NDP) failed: the next hop does not answer.",
    "NEIGH_QUEUEFULL": "Too many packets were waiting for neighbour resolution (unres_qlen).",
    "NEIGH_DEAD": "The neighbour entry was removed while packets were waiting on it.",
    # --- IPv6 neighbour discovery ------------------------------------------
    "IPV6_NDISC_FRAG": "A neighbour discovery message arrived fragmented, which is not allowed.",
    "IPV6_NDISC_HOP_LIMIT": "A neighbour discovery message had a hop limit other "
    "than 255 (it came from off-link).",
    "IPV6_NDISC_BAD_CODE": "A neighbour discovery message had a non-zero code.",
    "IPV6_NDISC_BAD_OPTIONS": "A neighbour discovery message had invalid options.",
    "IPV6_NDISC_NS_OTHERHOST": "A neighbour solicitation was for an address that is not ours.",
    # --- non-core subsystems -----------------------------------------------
    "RX_DROP_U_MIC_FAIL": "Wi-Fi (mac80211): the frame's integrity check (MIC) failed.",
    "RX_DROP_U_REPLAY": "Wi-Fi (mac80211): the frame replayed an old sequence "
    "counter and was discarded.",
    "RX_DROP_U_BAD_MMIE": "Wi-Fi (mac80211): a protected management frame's MMIE was bad.",
    "OVS_DROP_LAST_ACTION": "Open vSwitch: the flow's actions ended without outputting the packet.",
    "OVS_DROP_ACTION_ERROR": "Open vSwitch: executing a flow action failed.",
    "OVS_DROP_EXPLICIT": "Open vSwitch: a flow explicitly dropped the packet.",
}


def explain(name: str) -> str | None:
    """The explanation for a reason name (with or without SKB_DROP_REASON_), or None."""
    key = name.strip().upper()
    for prefix in _PREFIXES:
        if key.startswith(prefix):
            key = key[len(prefix) :]
    return EXPLANATIONS.get(key)
