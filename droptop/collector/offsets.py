"""The running kernel's layout, read from BTF, as -D macros for the BPF program.

The BPF C never includes a kernel struct: every offset it needs is found here,
by name, in /sys/kernel/btf/vmlinux. That is what lets bcc compile it against
any headers tree, and what makes a wrong offset a clear error at start instead
of garbage counts.
"""

from __future__ import annotations

from dataclasses import dataclass

from droptop.errors import DroptopError
from droptop.names.btf import FUNC, Btf, BtfError

# macro name -> (struct, dotted member path)
OFFSETS: dict[str, tuple[str, str]] = {
    "SKB_DEV_OFF": ("sk_buff", "dev"),
    "SKB_LEN_OFF": ("sk_buff", "len"),
    "DEV_IFINDEX_OFF": ("net_device", "ifindex"),
    "DEV_NDNET_OFF": ("net_device", "nd_net"),
    "DEV_NAME_OFF": ("net_device", "name"),
    "NET_INUM_OFF": ("net", "ns.inum"),
    "TASK_FLAGS_OFF": ("task_struct", "flags"),
    "TASK_STACK_OFF": ("task_struct", "stack"),
    "TASK_NSPROXY_OFF": ("task_struct", "nsproxy"),
    "NSPROXY_NET_OFF": ("nsproxy", "net_ns"),
    "SKB_SK_OFF": ("sk_buff", "sk"),
    "SK_STATE_OFF": ("sock", "__sk_common.skc_state"),
    "SK_SOCKET_OFF": ("sock", "sk_socket"),
    "SK_NET_OFF": ("sock", "__sk_common.skc_net"),
}

OPTIONAL_OFFSETS: dict[str, tuple[str, str]] = {
    # A socket's cgroup v2: sk->sk_cgrp_data.cgroup->kn->id (the cgroup directory's inode).
    # Absent without CONFIG_SOCK_CGROUP_DATA; then rows carry the task's cgroup only.
    "SK_CGROUP_OFF": ("sock", "sk_cgrp_data.cgroup"),
    "CGROUP_KN_OFF": ("cgroup", "kn"),
    "KN_ID_OFF": ("kernfs_node", "id"),
}

SAMPLE_OFFSETS: dict[str, tuple[str, str]] = {
    # What a packet sample copies (bpf sample_packet): the linear headers of the skb.
    "SKB_HEAD_OFF": ("sk_buff", "head"),
    "SKB_DATA_OFF": ("sk_buff", "data"),
    "SKB_TAIL_OFF": ("sk_buff", "tail"),
    "SKB_PROTOCOL_OFF": ("sk_buff", "protocol"),
    "SKB_MAC_OFF": ("sk_buff", "mac_header"),
    "SKB_NETWORK_OFF": ("sk_buff", "network_header"),
    "DEV_TYPE_OFF": ("net_device", "type"),
}

THREAD_SIZE = 16384
"""Kernel task stack size on x86-64 and arm64 (4 pages; twice that with KASAN)."""

NO_REASON_LABEL = "unknown: kernel reports no reasons"


@dataclass(frozen=True, slots=True)
class KernelLayout:
    offsets: dict[str, int]
    tracepoint_args: int
    """Arguments of the kfree_skb tracepoint, not counting the context pointer."""
    thread_size: int = THREAD_SIZE

    @property
    def has_reason(self) -> bool:
        # (skb, location, reason[, rx_sk]): the reason is always the third.
        return self.tracepoint_args >= 3

    @property
    def has_rx_sk(self) -> bool:
        """6.11+: the tracepoint names the receiving socket where the caller knows it."""
        return self.tracepoint_args >= 4

    @property
    def has_samples(self) -> bool:
        return all(name in self.offsets for name in SAMPLE_OFFSETS)

    @property
    def has_socket_cgroups(self) -> bool:
        return all(name in self.offsets for name in OPTIONAL_OFFSETS)

    def cflags(self) -> list[str]:
        flags = [f"-D{name}={value}" for name, value in sorted(self.offsets.items())]
        flags.append(f"-DTHREAD_SIZE={self.thread_size}")
        if self.has_reason:
            flags.append("-DHAVE_REASON")
        if self.has_rx_sk:
            flags.append("-DHAVE_RX_SK")
        return flags

    def notes(self) -> tuple[str, ...]:
        """What attribution cannot do on this kernel, in words."""
        out = []
        if not self.has_rx_sk:
            out.append(
                "this kernel's kfree_skb passes no receiving socket (before 6.11): socket "
                "attribution is partial (skb->sk only)"
            )
        if not self.has_socket_cgroups:
            out.append("no socket cgroup data in BTF: services come from the task only")
        return tuple(out)


def read_layout(btf: Btf) -> KernelLayout:
    """Offsets and tracepoint shape from BTF, or a DroptopError that says what is missing."""
    params = btf.func_proto_params("btf_trace_kfree_skb")
    if params is None:
        raise DroptopError(
            "this kernel has no skb:kfree_skb tracepoint in its BTF "
            "(btf_trace_kfree_skb not found); droptop cannot see drops here"
        )
    offsets: dict[str, int] = {}
    for macro, (struct, path) in OFFSETS.items():
        try:
            offsets[macro] = btf.member_offset(struct, path)
        except BtfError as e:
            raise DroptopError(f"kernel BTF lacks {struct}.{path}: {e}") from None
    for table in (OPTIONAL_OFFSETS, SAMPLE_OFFSETS):  # all of a table, or none of it
        optional: dict[str, int] = {}
        for macro, (struct, path) in table.items():
            try:
                optional[macro] = btf.member_offset(struct, path)
            except BtfError:
                optional = {}
                break
        offsets.update(optional)
    # socket_alloc = { struct socket socket; struct inode vfs_inode; }: sock_i_ino().
    try:
        offsets["SOCK_INO_OFF"] = btf.member_offset(
            "socket_alloc", "vfs_inode.i_ino"
        ) - btf.member_offset("socket_alloc", "socket")
    except BtfError as e:
        raise DroptopError(f"kernel BTF lacks socket_alloc.vfs_inode.i_ino: {e}") from None
    # KASAN doubles the task stack; its runtime leaves kasan_report in BTF.
    thread_size = THREAD_SIZE * 2 if btf.type_id("kasan_report", FUNC) is not None else THREAD_SIZE
    # The first parameter of the typedef'd prototype is the tracepoint's context.
    return KernelLayout(
        offsets=offsets, tracepoint_args=max(0, len(params) - 1), thread_size=thread_size
    )
