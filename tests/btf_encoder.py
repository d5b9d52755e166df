"""A tiny BTF *writer*, for tests only, and the kernel layouts built with it.

droptop only reads BTF. To test the reader and the reason resolver against
kernels we cannot boot (5.17 ... 6.18, mac80211 and openvswitch modules), these
helpers write small BTF blobs by hand. The encoder is written from the format
description (Documentation/bpf/btf.rst), not from droptop.names.btf, so that a
misreading of the format in one is not silently mirrored by the other.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

MAGIC = 0xEB9F

# include/uapi/linux/btf.h
K_INT, K_PTR, K_ARRAY, K_STRUCT, K_UNION, K_ENUM, K_FWD, K_TYPEDEF = 1, 2, 3, 4, 5, 6, 7, 8
K_VOLATILE, K_CONST, K_RESTRICT, K_FUNC, K_FUNC_PROTO, K_VAR, K_DATASEC = 9, 10, 11, 12, 13, 14, 15
K_FLOAT, K_DECL_TAG, K_TYPE_TAG, K_ENUM64 = 16, 17, 18, 19

INT_SIGNED, INT_CHAR, INT_BOOL = 1, 2, 4

Member = tuple  # (name, type_id, bit_offset) or (name, type_id, bit_offset, bitfield_size)


class BtfEncoder:
    """Collects types and strings; ``to_bytes`` writes a BTF blob.

    With ``base``, the result is split BTF: ids continue after the base's last
    id and new strings go after the base's string section, while strings the
    base already has are referenced there (as pahole does for modules).
    """

    def __init__(self, base: BtfEncoder | None = None) -> None:
        self.base = base
        self.records: list[list[int]] = []
        self.strings = bytearray() if base is not None else bytearray(b"\0")
        self._string_offsets: dict[str, int] = {}
        self.first_id = base.next_id if base is not None else 1
        self.str_base = base.str_end if base is not None else 0
        self.ids: dict[str, int] = {}
        """Ids of well-known types, for blobs built on top of this one."""

    @property
    def next_id(self) -> int:
        return self.first_id + len(self.records)

    @property
    def str_end(self) -> int:
        return self.str_base + len(self.strings)

    def string(self, text: str) -> int:
        if not text:
            return 0
        if self.base is not None:
            found = self.base.find_string(text)
            if found is not None:
                return found
        if text not in self._string_offsets:
            self._string_offsets[text] = self.str_end
            self.strings += text.encode() + b"\0"
        return self._string_offsets[text]

    def find_string(self, text: str) -> int | None:
        if text in self._string_offsets:
            return self._string_offsets[text]
        return self.base.find_string(text) if self.base is not None else None

    def add(
        self,
        kind: int,
        name: str = "",
        *,
        vlen: int = 0,
        kflag: bool = False,
        ref: int = 0,
        extra: Sequence[int] = (),
    ) -> int:
        """Append one raw record (any kind number, even invalid ones); returns its id."""
        info = (int(kflag) << 31) | (kind << 24) | vlen
        self.records.append([self.string(name), info, ref, *(v & 0xFFFFFFFF for v in extra)])
        return self.next_id - 1

    def set_ref(self, type_id: int, ref: int) -> None:
        """Point an earlier record's size_or_type at a type added later (self-reference)."""
        self.records[type_id - self.first_id][2] = ref

    # --- one helper per kind ----------------------------------------------------------

    def int_(
        self, name: str, size: int, *, signed: bool = False, bits: int | None = None, shift: int = 0
    ) -> int:
        encoding = (INT_SIGNED if signed else 0) << 24 | shift << 16 | (bits or size * 8)
        return self.add(K_INT, name, ref=size, extra=[encoding])

    def ptr(self, target: int) -> int:
        return self.add(K_PTR, ref=target)

    def array(self, elem: int, nelems: int, index_type: int = 0) -> int:
        return self.add(K_ARRAY, extra=[elem, index_type, nelems])

    def struct(
        self, name: str, size: int, members: Sequence[Member], *, union: bool = False
    ) -> int:
        """Members are (name, type, bit_offset[, bitfield_size]); any bitfield size
        sets kind_flag, as pahole does."""
        kflag = any(len(m) > 3 and m[3] for m in members)
        extra: list[int] = []
        for m in members:
            name_, type_id, bit_offset = m[:3]
            bitfield = m[3] if len(m) > 3 else 0
            extra += [
                self.string(name_),
                type_id,
                bitfield << 24 | bit_offset if kflag else bit_offset,
            ]
        kind = K_UNION if union else K_STRUCT
        return self.add(kind, name, vlen=len(members), kflag=kflag, ref=size, extra=extra)

    def union(self, name: str, size: int, members: Sequence[Member]) -> int:
        return self.struct(name, size, members, union=True)

    def enum(
        self, name: str, members: Sequence[tuple[str, int]], *, size: int = 4, signed: bool = False
    ) -> int:
        extra: list[int] = []
        for member, value in members:
            extra += [self.string(member), value]
        return self.add(K_ENUM, name, vlen=len(members), kflag=signed, ref=size, extra=extra)

    def enum64(
        self, name: str, members: Sequence[tuple[str, int]], *, size: int = 8, signed: bool = False
    ) -> int:
        extra: list[int] = []
        for member, value in members:
            value &= (1 << 64) - 1
            extra += [self.string(member), value & 0xFFFFFFFF, value >> 32]
        return self.add(K_ENUM64, name, vlen=len(members), kflag=signed, ref=size, extra=extra)

    def fwd(self, name: str, *, union: bool = False) -> int:
        return self.add(K_FWD, name, kflag=union)

    def typedef(self, name: str, target: int) -> int:
        return self.add(K_TYPEDEF, name, ref=target)

    def volatile(self, target: int) -> int:
        return self.add(K_VOLATILE, ref=target)

    def const(self, target: int) -> int:
        return self.add(K_CONST, ref=target)

    def restrict(self, target: int) -> int:
        return self.add(K_RESTRICT, ref=target)

    def func_proto(self, ret: int, params: Sequence[tuple[str, int]]) -> int:
        extra: list[int] = []
        for name, type_id in params:
            extra += [self.string(name), type_id]
        return self.add(K_FUNC_PROTO, vlen=len(params), ref=ret, extra=extra)

    def func(self, name: str, proto: int, linkage: int = 1) -> int:
        return self.add(K_FUNC, name, vlen=linkage, ref=proto)

    def var(self, name: str, target: int, linkage: int = 1) -> int:
        return self.add(K_VAR, name, ref=target, extra=[linkage])

    def datasec(self, name: str, size: int, entries: Sequence[tuple[int, int, int]]) -> int:
        extra: list[int] = []
        for type_id, offset, entry_size in entries:
            extra += [type_id, offset, entry_size]
        return self.add(K_DATASEC, name, vlen=len(entries), ref=size, extra=extra)

    def float_(self, name: str, size: int) -> int:
        return self.add(K_FLOAT, name, ref=size)

    def decl_tag(self, name: str, target: int, component_idx: int = -1) -> int:
        return self.add(K_DECL_TAG, name, ref=target, extra=[component_idx])

    def type_tag(self, name: str, target: int) -> int:
        return self.add(K_TYPE_TAG, name, ref=target)

    # --- output -----------------------------------------------------------------

    def to_bytes(
        self, *, big_endian: bool = False, version: int = 1, hdr_len: int = 24, gap: int = 0
    ) -> bytes:
        """The blob: header, type section, ``gap`` zero bytes, string section."""
        e = ">" if big_endian else "<"
        types = b"".join(struct.pack(f"{e}{len(r)}I", *r) for r in self.records)
        header = struct.pack(
            e + "HBBIIIII",
            MAGIC,
            version,
            0,
            hdr_len,
            0,
            len(types),
            len(types) + gap,
            len(self.strings),
        )
        return header.ljust(hdr_len, b"\0") + types + bytes(gap) + bytes(self.strings)


# --- kernel layouts ---------------------------------------------------------------------

P = "SKB_DROP_REASON_"
SUBSYS = "SKB_DROP_REASON_SUBSYS_"
MASK = (P + "SUBSYS_MASK", 0xFFFF0000)

# The core names of 6.18 on this project's test machine, in value order from 2.
CORE_6_18 = [
    "NOT_SPECIFIED", "NO_SOCKET", "SOCKET_CLOSE", "SOCKET_FILTER", "SOCKET_RCVBUFF",
    "UNIX_DISCONNECT", "UNIX_SKIP_OOB", "PKT_TOO_SMALL", "TCP_CSUM", "UDP_CSUM", "NETFILTER_DROP",
    "OTHERHOST", "IP_CSUM", "IP_INHDR", "IP_RPFILTER", "UNICAST_IN_L2_MULTICAST", "XFRM_POLICY",
    "IP_NOPROTO", "PROTO_MEM", "TCP_AUTH_HDR", "TCP_MD5NOTFOUND", "TCP_MD5UNEXPECTED",
    "TCP_MD5FAILURE", "TCP_AONOTFOUND", "TCP_AOUNEXPECTED", "TCP_AOKEYNOTFOUND", "TCP_AOFAILURE",
    "SOCKET_BACKLOG", "TCP_FLAGS", "TCP_ABORT_ON_DATA", "TCP_ZEROWINDOW", "TCP_OLD_DATA",
    "TCP_OVERWINDOW", "TCP_OFOMERGE", "TCP_RFC7323_PAWS", "TCP_RFC7323_PAWS_ACK",
    "TCP_RFC7323_TW_PAWS", "TCP_RFC7323_TSECR", "TCP_LISTEN_OVERFLOW", "TCP_OLD_SEQUENCE",
    "TCP_INVALID_SEQUENCE", "TCP_INVALID_END_SEQUENCE", "TCP_INVALID_ACK_SEQUENCE", "TCP_RESET",
    "TCP_INVALID_SYN", "TCP_CLOSE", "TCP_FASTOPEN", "TCP_OLD_ACK", "TCP_TOO_OLD_ACK",
    "TCP_ACK_UNSENT_DATA", "TCP_OFO_QUEUE_PRUNE", "TCP_OFO_DROP", "IP_OUTNOROUTES",
    "BPF_CGROUP_EGRESS", "IPV6DISABLED", "NEIGH_CREATEFAIL", "NEIGH_FAILED", "NEIGH_QUEUEFULL",
    "NEIGH_DEAD", "NEIGH_HH_FILLFAIL", "TC_EGRESS", "SECURITY_HOOK", "QDISC_DROP",
    "QDISC_OVERLIMIT", "QDISC_CONGESTED", "CAKE_FLOOD", "FQ_BAND_LIMIT", "FQ_HORIZON_LIMIT",
    "FQ_FLOW_LIMIT", "CPU_BACKLOG", "XDP", "TC_INGRESS", "UNHANDLED_PROTO", "SKB_CSUM",
    "SKB_GSO_SEG", "SKB_UCOPY_FAULT", "DEV_HDR", "DEV_READY", "FULL_RING", "NOMEM", "HDR_TRUNC",
    "TAP_FILTER", "TAP_TXFILTER", "ICMP_CSUM", "INVALID_PROTO", "IP_INADDRERRORS", "IP_INNOROUTES",
    "IP_LOCAL_SOURCE", "IP_INVALID_SOURCE", "IP_LOCALNET", "IP_INVALID_DEST", "PKT_TOO_BIG",
    "DUP_FRAG", "FRAG_REASM_TIMEOUT", "FRAG_TOO_FAR", "TCP_MINTTL", "IPV6_BAD_EXTHDR",
    "IPV6_NDISC_FRAG", "IPV6_NDISC_HOP_LIMIT", "IPV6_NDISC_BAD_CODE", "IPV6_NDISC_BAD_OPTIONS",
    "IPV6_NDISC_NS_OTHERHOST", "QUEUE_PURGE", "TC_COOKIE_ERROR", "PACKET_SOCK_ERROR",
    "TC_CHAIN_NOTFOUND", "TC_RECLASSIFY_LOOP", "VXLAN_INVALID_HDR", "VXLAN_VNI_NOT_FOUND",
    "MAC_INVALID_SOURCE", "VXLAN_ENTRY_EXISTS", "NO_TX_TARGET", "IP_TUNNEL_ECN", "TUNNEL_TXINFO",
    "LOCAL_MAC", "ARP_PVLAN_DISABLE", "MAC_IEEE_MAC_CONTROL", "BRIDGE_INGRESS_STP_STATE",
    "CAN_RX_INVALID_FRAME", "CANFD_RX_INVALID_FRAME", "CANXL_RX_INVALID_FRAME", "PFMEMALLOC",
    "DUALPI2_STEP_DROP", "PSP_INPUT", "PSP_OUTPUT", "RECURSION_LIMIT",
]  # fmt: skip

_CORE_5_17 = [
    "NOT_SPECIFIED", "NO_SOCKET", "PKT_TOO_SMALL", "TCP_CSUM", "SOCKET_FILTER", "UDP_CSUM",
    "NETFILTER_DROP", "OTHERHOST", "IP_CSUM", "IP_INHDR", "IP_RPFILTER", "UNICAST_IN_L2_MULTICAST",
]  # fmt: skip
_CORE_6_1_EXTRA = [
    "XFRM_POLICY", "IP_NOPROTO", "SOCKET_RCVBUFF", "PROTO_MEM", "TCP_MD5NOTFOUND",
    "TCP_MD5UNEXPECTED", "TCP_MD5FAILURE", "SOCKET_BACKLOG", "TCP_FLAGS", "TCP_ZEROWINDOW",
    "TCP_OLD_DATA", "TCP_OVERWINDOW", "TCP_OFOMERGE", "TCP_RFC7323_PAWS", "TCP_INVALID_SEQUENCE",
    "TCP_RESET", "TCP_INVALID_SYN", "TCP_CLOSE", "TCP_FASTOPEN", "TCP_OLD_ACK", "TCP_TOO_OLD_ACK",
    "TCP_ACK_UNSENT_DATA", "TCP_OFO_QUEUE_PRUNE", "TCP_OFO_DROP", "IP_OUTNOROUTES",
    "BPF_CGROUP_EGRESS", "IPV6DISABLED", "NEIGH_CREATEFAIL", "NEIGH_FAILED", "NEIGH_QUEUEFULL",
    "NEIGH_DEAD", "TC_EGRESS", "QDISC_DROP", "CPU_BACKLOG", "XDP", "TC_INGRESS", "UNHANDLED_PROTO",
    "SKB_CSUM", "SKB_GSO_SEG", "SKB_UCOPY_FAULT", "DEV_HDR", "DEV_READY", "FULL_RING", "NOMEM",
    "HDR_TRUNC", "TAP_FILTER", "TAP_TXFILTER", "ICMP_CSUM", "INVALID_PROTO", "IP_INADDRERRORS",
    "IP_INNOROUTES", "PKT_TOO_BIG",
]  # fmt: skip

MAC80211_UNUSABLE = ["MIC_FAIL", "REPLAY", "BAD_MMIE", "DUP", "SPURIOUS", "DECRYPT_FAIL"]
MAC80211_MONITOR = ["UNEXPECTED_4ADDR_FRAME", "BAD_BCN_KEYIDX", "BAD_MGMT_KEYIDX"]
OVS_REASONS = ["LAST_ACTION", "ACTION_ERROR", "EXPLICIT", "EXPLICIT_WITH_ERROR", "METER"]


def _numbered(names: Sequence[str], start: int = 0, prefix: str = P) -> list[tuple[str, int]]:
    return [(prefix + name, start + i) for i, name in enumerate(names)]


def core_members(head: Sequence[tuple[str, int]], names: Sequence[str], mask: bool) -> list:
    members = list(head) + _numbered(names, len(head))
    members.append((P + "MAX", len(members)))
    return [*members, MASK] if mask else members


def mac80211_members(unusable: int | None, monitor: int | None) -> list[tuple[str, int]]:
    """enum mac80211_drop_reason as net/mac80211/drop.h builds it, ids as given."""
    members = [("RX_CONTINUE", 1), ("RX_QUEUED", 0)]  # = SKB_CONSUMED, SKB_NOT_DROPPED_YET
    if monitor is not None:
        members.append(("RX_DROP_MONITOR", monitor << 16))
        base = monitor << 16
        members += [(f"RX_DROP_M_{n}", base | i + 1) for i, n in enumerate(MAC80211_MONITOR)]
    if unusable is not None:
        members.append(("RX_DROP_UNUSABLE", unusable << 16))
        base = unusable << 16
        members += [(f"RX_DROP_U_{n}", base | i + 1) for i, n in enumerate(MAC80211_UNUSABLE)]
    return members


def ovs_members(ovs: int) -> list[tuple[str, int]]:
    """enum ovs_drop_reason: a base at subsys << 16, the reasons, then OVS_DROP_MAX."""
    members = [("__OVS_DROP_REASON", ovs << 16)]
    members += [(f"OVS_DROP_{n}", ovs << 16 | i + 1) for i, n in enumerate(OVS_REASONS)]
    return [*members, ("OVS_DROP_MAX", ovs << 16 | len(OVS_REASONS) + 1)]


@dataclass
class KernelLayout:
    """What one kernel release's BTF says about drop reasons."""

    release: str
    core: list[tuple[str, int]]
    subsys: list[tuple[str, int]] | None = None
    """enum skb_drop_reason_subsys members, None before 6.4."""
    modules: dict[str, tuple[str, list[tuple[str, int]]]] = field(default_factory=dict)
    """module name -> (enum name, members), written as split BTF."""
    vmlinux_enums: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    """Extra enums in vmlinux itself (e.g. qdisc_drop_reason)."""

    def value_of(self, name: str) -> int:
        return dict(self.core)[P + name]


def _subsys(*names: str) -> list[tuple[str, int]]:
    return [(SUBSYS + n, i) for i, n in enumerate([*names, "NUM"])]


_6_2_HEAD = [("SKB_NOT_DROPPED_YET", 0), ("SKB_CONSUMED", 1)]
_CORE_6_4 = core_members(_6_2_HEAD, _CORE_5_17 + _CORE_6_1_EXTRA, mask=True)
_CORE_6_18 = core_members(_6_2_HEAD, CORE_6_18, mask=True)

LAYOUTS: dict[str, KernelLayout] = {
    "5.17": KernelLayout("5.17", core_members([], _CORE_5_17, mask=False)),
    "5.18": KernelLayout(
        "5.18", core_members([("SKB_NOT_DROPPED_YET", 0)], _CORE_5_17, mask=False)
    ),
    "6.1": KernelLayout(
        "6.1", core_members([("SKB_NOT_DROPPED_YET", 0)], _CORE_5_17 + _CORE_6_1_EXTRA, mask=False)
    ),
    "6.4": KernelLayout(
        "6.4",
        _CORE_6_4,
        _subsys("CORE", "MAC80211_UNUSABLE", "MAC80211_MONITOR"),
        {"mac80211": ("mac80211_drop_reason", mac80211_members(unusable=1, monitor=2))},
    ),
    "6.6": KernelLayout(
        "6.6",
        _CORE_6_4,
        _subsys("CORE", "MAC80211_UNUSABLE", "MAC80211_MONITOR", "OPENVSWITCH"),
        {
            "mac80211": ("mac80211_drop_reason", mac80211_members(unusable=1, monitor=2)),
            "openvswitch": ("ovs_drop_reason", ovs_members(3)),
        },
    ),
    "6.18": KernelLayout(
        "6.18",
        _CORE_6_18,
        _subsys("CORE", "MAC80211_UNUSABLE", "OPENVSWITCH"),
        {
            "mac80211": ("mac80211_drop_reason", mac80211_members(unusable=1, monitor=None)),
            "openvswitch": ("ovs_drop_reason", ovs_members(2)),
        },
    ),
}


def add_kernel_basics(enc: BtfEncoder) -> dict[str, int]:
    """A few types every vmlinux has (recorded in ``enc.ids``) for modules to refer to."""
    ids = enc.ids
    ids["int"] = enc.int_("int", 4, signed=True)
    ids["long"] = enc.int_("long unsigned int", 8)
    ids["char"] = enc.int_("char", 1, signed=True)
    ids["u32"] = enc.typedef("u32", enc.int_("unsigned int", 4))
    ids["void *"] = enc.ptr(0)
    ids["sk_buff"] = enc.struct("sk_buff", 232, [("len", ids["u32"], 896)])
    ids["sk_buff *"] = enc.ptr(ids["sk_buff"])
    return ids


def vmlinux_encoder(layout: KernelLayout) -> BtfEncoder:
    """vmlinux BTF for ``layout``: the enums plus the tracepoint's typedef, as pahole emits."""
    enc = BtfEncoder()
    ids = add_kernel_basics(enc)
    reason = enc.enum("skb_drop_reason", layout.core)
    if layout.subsys is not None:
        enc.enum("skb_drop_reason_subsys", layout.subsys)
    for name, members in layout.vmlinux_enums.items():
        enc.enum(name, members)
    params = [("__data", ids["void *"]), ("skb", ids["sk_buff *"]), ("location", ids["void *"])]
    params.append(("reason", reason))
    proto = enc.func_proto(0, params)
    enc.func("__bpf_trace_kfree_skb", proto, linkage=0)
    unnamed = enc.func_proto(0, [("", t) for _, t in params])
    enc.typedef("btf_trace_kfree_skb", enc.ptr(unnamed))
    return enc


def module_encoder(base: BtfEncoder, module: str, enum: str, members: list) -> BtfEncoder:
    """A module's split BTF: its drop-reason enum (mac80211 also has the ``___`` twin
    enum first, so a sloppy lookup would find it) and a struct using base types."""
    enc = BtfEncoder(base)
    if module == "mac80211":
        enc.enum("___" + enum, [("___" + name, value) for name, value in members])
    enc.enum(enum, members)
    skb, count = ("skb", base.ids["sk_buff *"], 0), ("count", base.ids["int"], 64)
    enc.struct(f"{module}_priv", 16, [skb, count])
    return enc


def write_btf_dir(root: Path, layout: KernelLayout, modules: Sequence[str] | None = None) -> Path:
    """A directory like /sys/kernel/btf: vmlinux plus one file per module."""
    root.mkdir(parents=True, exist_ok=True)
    base = vmlinux_encoder(layout)
    (root / "vmlinux").write_bytes(base.to_bytes())
    for module, (enum, members) in layout.modules.items():
        if modules is None or module in modules:
            (root / module).write_bytes(module_encoder(base, module, enum, members).to_bytes())
    return root


def module_bytes(
    layout: KernelLayout, module: str, base_layout: KernelLayout | None = None
) -> bytes:
    """One module of ``layout`` as split BTF on ``base_layout``'s vmlinux (default: its own)."""
    base = vmlinux_encoder(base_layout or layout)
    enum, members = layout.modules[module]
    return module_encoder(base, module, enum, members).to_bytes()
