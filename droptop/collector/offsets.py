"""The running kernel's layout, read from BTF, as -D macros for the BPF program.

The BPF C never includes a kernel struct: every offset it needs is found here,
by name, in /sys/kernel/btf/vmlinux. That is what lets bcc compile it against
any headers tree, and what makes a wrong offset a clear error at start instead
of garbage counts.
"""

from __future__ import annotations

from dataclasses import dataclass

from droptop.errors import DroptopError
from droptop.names.btf import Btf, BtfError

# macro name -> (struct, dotted member path)
OFFSETS: dict[str, tuple[str, str]] = {
    "SKB_DEV_OFF": ("sk_buff", "dev"),
    "SKB_LEN_OFF": ("sk_buff", "len"),
    "DEV_IFINDEX_OFF": ("net_device", "ifindex"),
    "DEV_NDNET_OFF": ("net_device", "nd_net"),
    "DEV_NAME_OFF": ("net_device", "name"),
    "NET_INUM_OFF": ("net", "ns.inum"),
    "TASK_FLAGS_OFF": ("task_struct", "flags"),
}

NO_REASON_LABEL = "unknown: kernel reports no reasons"


@dataclass(frozen=True, slots=True)
class KernelLayout:
    offsets: dict[str, int]
    tracepoint_args: int
    """Arguments of the kfree_skb tracepoint, not counting the context pointer."""

    @property
    def has_reason(self) -> bool:
        # (skb, location, reason[, rx_sk]): the reason is always the third.
        return self.tracepoint_args >= 3

    def cflags(self) -> list[str]:
        flags = [f"-D{name}={value}" for name, value in sorted(self.offsets.items())]
        if self.has_reason:
            flags.append("-DHAVE_REASON")
        return flags


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
    # The first parameter of the typedef'd prototype is the tracepoint's context.
    return KernelLayout(offsets=offsets, tracepoint_args=max(0, len(params) - 1))
