from __future__ import annotations

import pytest

from droptop.collector.offsets import OFFSETS, read_layout
from droptop.errors import DroptopError
from droptop.names.btf import BtfError


class FakeBtf:
    def __init__(self, params, missing=()):
        self.params = params
        self.missing = set(missing)

    def func_proto_params(self, name):
        assert name == "btf_trace_kfree_skb"
        return self.params

    def member_offset(self, struct, path):
        if (struct, path) in self.missing:
            raise BtfError(f"no member {path}")
        return 8 * len(struct + path)

    def type_id(self, name, kind):
        return None  # no KASAN here


def test_reason_argument_detected_from_prototype_not_version():
    # 6.11+: (ctx, skb, location, reason, rx_sk); 5.17-6.10: (ctx, skb, location, reason)
    for params, has in [
        (("", "", "", "", ""), True),
        (("", "", "", ""), True),
        (("", "", ""), False),
    ]:
        layout = read_layout(FakeBtf(params))
        assert layout.has_reason is has
        assert ("-DHAVE_REASON" in layout.cflags()) is has


def test_every_offset_becomes_a_macro():
    flags = read_layout(FakeBtf(("", "", "", ""))).cflags()
    for macro, (struct, path) in OFFSETS.items():
        assert f"-D{macro}={8 * len(struct + path)}" in flags


def test_missing_tracepoint_and_member_are_clear_errors():
    with pytest.raises(DroptopError, match="no skb:kfree_skb tracepoint"):
        read_layout(FakeBtf(None))
    with pytest.raises(DroptopError, match=r"net\.ns\.inum"):
        read_layout(FakeBtf(("", "", "", ""), missing={("net", "ns.inum")}))


def test_running_kernel_layout_matches_known_offsets():
    import os

    if not os.path.exists("/sys/kernel/btf/vmlinux"):
        pytest.skip("no kernel BTF")
    from droptop.names.btf import load_vmlinux

    layout = read_layout(load_vmlinux())
    assert layout.has_reason
    if os.uname().release.startswith("6.18."):  # figures from KERNEL-NOTES, read off this kernel
        assert layout.offsets["SKB_DEV_OFF"] == 16
        assert layout.offsets["SKB_LEN_OFF"] == 112
        assert layout.offsets["DEV_IFINDEX_OFF"] == 224
        assert layout.offsets["DEV_NAME_OFF"] == 280
        assert layout.offsets["NET_INUM_OFF"] == 152 + 24
        assert layout.tracepoint_args == 4
