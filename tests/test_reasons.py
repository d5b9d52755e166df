"""droptop.names.reasons on the BTF layouts of 5.17 ... 6.18 and on the running kernel."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from droptop.model import NAME_SOURCES, Reason
from droptop.names import reasons as reasons_mod
from droptop.names.btf import Btf
from droptop.names.reasons import ReasonResolver, is_sentinel, parse_tracefs_format, raw_label
from tests.btf_encoder import (
    LAYOUTS,
    SUBSYS,
    BtfEncoder,
    KernelLayout,
    P,
    core_members,
    mac80211_members,
    module_bytes,
    vmlinux_encoder,
    write_btf_dir,
)

ALL = list(LAYOUTS)


def resolver_for(tmp_path: Path, release: str, modules=None) -> ReasonResolver:
    return ReasonResolver.from_path(write_btf_dir(tmp_path / release, LAYOUTS[release], modules))


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- core reasons move between kernels -------------------------------------------------------


@pytest.mark.parametrize(
    ("release", "tcp_csum", "not_specified", "zero", "one"),
    [
        ("5.17", 3, 0, "NOT_SPECIFIED", "NO_SOCKET"),
        ("5.18", 4, 1, "SKB_NOT_DROPPED_YET", "NOT_SPECIFIED"),
        ("6.1", 4, 1, "SKB_NOT_DROPPED_YET", "NOT_SPECIFIED"),
        ("6.4", 5, 2, "SKB_NOT_DROPPED_YET", "SKB_CONSUMED"),
        ("6.6", 5, 2, "SKB_NOT_DROPPED_YET", "SKB_CONSUMED"),
        ("6.18", 10, 2, "SKB_NOT_DROPPED_YET", "SKB_CONSUMED"),
    ],
)
def test_core_names_follow_the_kernel(tmp_path, release, tcp_csum, not_specified, zero, one):
    r = resolver_for(tmp_path, release)
    assert r.resolve(tcp_csum) == Reason(tcp_csum, "TCP_CSUM", "core", "btf")
    assert r.resolve(not_specified).name == "NOT_SPECIFIED"
    # 0 and 1 are core values on every kernel, never mac80211's RX_QUEUED / RX_CONTINUE.
    assert (r.resolve(0).name, r.resolve(1).name) == (zero, one)
    assert r.best_source == "btf"


@pytest.mark.parametrize("release", ALL)
def test_table_has_no_sentinels_and_is_sorted(tmp_path, release):
    table = resolver_for(tmp_path, release).table()
    names = [r.name for r in table]
    assert [r.raw for r in table] == sorted({r.raw for r in table})
    banned = {"MAX", "SUBSYS_MASK", "RX_QUEUED", "RX_CONTINUE", "RX_DROP_UNUSABLE"}
    banned |= {"RX_DROP_MONITOR", "__OVS_DROP_REASON", "OVS_DROP_MAX"}
    assert not banned & set(names)
    assert not [n for n in names if n.startswith("_") or n.startswith(P)]
    assert {r.source for r in table} == {"btf"}
    core = [r for r in table if r.subsys == "core"]
    assert len(core) == len([m for m in LAYOUTS[release].core if not is_sentinel(m[0])])


# --- subsystems -------------------------------------------------------------------------


def test_6_4_mac80211_unusable_and_monitor(tmp_path):
    r = resolver_for(tmp_path, "6.4")
    assert r.subsystems == {0: "core", 1: "mac80211_unusable", 2: "mac80211_monitor"}
    assert r.resolve(0x10002) == Reason(0x10002, "RX_DROP_U_REPLAY", "mac80211_unusable", "btf")
    assert r.resolve(0x10001).name == "RX_DROP_U_MIC_FAIL"
    assert r.resolve(0x20001) == Reason(
        0x20001, "RX_DROP_M_UNEXPECTED_4ADDR_FRAME", "mac80211_monitor", "btf"
    )
    # Base values are not reasons.
    assert r.resolve(0x10000) == Reason(0x10000, "subsys1:0x10000", "mac80211_unusable", "raw")
    assert r.resolve(0x20000).source == "raw"


def test_6_6_openvswitch_is_subsystem_3(tmp_path):
    r = resolver_for(tmp_path, "6.6")
    assert r.subsystems[3] == "openvswitch"
    assert r.resolve(0x30001) == Reason(0x30001, "OVS_DROP_LAST_ACTION", "openvswitch", "btf")
    assert r.resolve(0x20001).name == "RX_DROP_M_UNEXPECTED_4ADDR_FRAME"
    assert r.resolve(0x30000).name == "subsys3:0x30000"  # __OVS_DROP_REASON
    assert r.resolve(0x30006).name == "subsys3:0x30006"  # OVS_DROP_MAX


def test_6_18_openvswitch_is_subsystem_2(tmp_path):
    r = resolver_for(tmp_path, "6.18")
    assert r.subsystems == {0: "core", 1: "mac80211_unusable", 2: "openvswitch"}
    assert r.resolve(0x20001) == Reason(0x20001, "OVS_DROP_LAST_ACTION", "openvswitch", "btf")
    assert r.resolve(0x10002).name == "RX_DROP_U_REPLAY"
    assert r.resolve(0x30001) == Reason(0x30001, "subsys3:0x30001", "subsys3", "raw")
    assert r.resolve(0x7F) == Reason(0x7F, "RECURSION_LIMIT", "core", "btf")
    assert r.resolve(0x80) == Reason(0x80, "0x80", "core", "raw")  # SKB_DROP_REASON_MAX


def test_module_values_must_match_this_kernels_subsystem_id(tmp_path):
    """A 6.6-era openvswitch (ids 0x3xxxx) on a 6.18 vmlinux (OPENVSWITCH = 2) names nothing."""
    root = write_btf_dir(tmp_path / "mixed", LAYOUTS["6.18"], modules=())
    (root / "openvswitch").write_bytes(module_bytes(LAYOUTS["6.6"], "openvswitch", LAYOUTS["6.18"]))
    r = ReasonResolver.from_path(root)
    assert r.resolve(0x30001).source == "raw"
    assert r.resolve(0x20001) == Reason(0x20001, "subsys2:0x20001", "openvswitch", "raw")
    assert not [x for x in r.table() if x.subsys == "openvswitch"]


def test_old_kernels_have_no_subsystems(tmp_path):
    for release in ("5.17", "5.18", "6.1"):
        r = resolver_for(tmp_path, release)
        assert r.subsystems == {0: "core"}
        assert r.resolve(0x10002) == Reason(0x10002, "subsys1:0x10002", "subsys1", "raw")


def test_missing_module_btf_gives_labelled_raw_values(tmp_path):
    r = resolver_for(tmp_path, "6.18", modules=())
    assert r.resolve(0x10002) == Reason(0x10002, "subsys1:0x10002", "mac80211_unusable", "raw")
    assert r.best_source == "btf"


def test_raw_vmlinux_file_without_module_directory(tmp_path):
    blob = tmp_path / "vmlinux-6.6"
    blob.write_bytes(vmlinux_encoder(LAYOUTS["6.6"]).to_bytes())
    r = ReasonResolver.from_path(blob)
    assert r.resolve(5).name == "TCP_CSUM"
    assert r.resolve(0x30001).name == "subsys3:0x30001"


def test_shift_and_subsystem_enum_come_from_btf(tmp_path):
    """A kernel that exports SKB_DROP_REASON_SUBSYS_SHIFT (here 20) and adds QDISC,
    with qdisc_drop_reason in vmlinux itself."""
    layout = KernelLayout(
        "synthetic",
        core_members(
            [("SKB_NOT_DROPPED_YET", 0), ("SKB_CONSUMED", 1)], ["NOT_SPECIFIED"], mask=True
        ),
        [(SUBSYS + "CORE", 0), (SUBSYS + "QDISC", 3), (SUBSYS + "NUM", 4), (SUBSYS + "SHIFT", 20)],
        vmlinux_enums={
            "qdisc_drop_reason": [
                ("QDISC_DROP_BASE", 3 << 20),
                ("QDISC_DROP_GENERIC", 3 << 20 | 1),
                ("QDISC_DROP_SHIFTED_WRONG", 3 << 16 | 2),
                ("QDISC_DROP_MAX", 3 << 20 | 2),
            ]
        },
    )
    r = ReasonResolver.from_path(write_btf_dir(tmp_path / "syn", layout))
    assert r.shift == 20
    assert r.subsystems == {0: "core", 3: "qdisc"}
    assert r.resolve(3 << 20 | 1) == Reason(3 << 20 | 1, "QDISC_DROP_GENERIC", "qdisc", "btf")
    assert r.resolve(3 << 16 | 2).source == "raw"
    assert r.resolve(3 << 20 | 2).source == "raw"
    assert r.resolve(5 << 20 | 7).name == "subsys5:0x500007"


def test_unknown_subsystem_tries_its_own_module(tmp_path):
    layout = KernelLayout(
        "future",
        LAYOUTS["6.18"].core,
        [*LAYOUTS["6.18"].subsys[:-1], (SUBSYS + "WIDGET", 3), (SUBSYS + "NUM", 4)],
        {"widget": ("widget_drop_reason", [("WIDGET_DROP_JAMMED", 0x30001)])},
    )
    r = ReasonResolver.from_path(write_btf_dir(tmp_path / "future", layout))
    assert r.resolve(0x30001) == Reason(0x30001, "WIDGET_DROP_JAMMED", "widget", "btf")


def test_twin_enum_is_never_used(tmp_path):
    """mac80211 also carries ``enum ___mac80211_drop_reason``; with the real enum
    removed from the module, nothing may be named from the twin."""
    base = vmlinux_encoder(LAYOUTS["6.4"])
    mod = BtfEncoder(base)
    mod.enum("___mac80211_drop_reason", [("___RX_DROP_U_REPLAY", 0x10002)])
    root = tmp_path / "twin"
    root.mkdir()
    (root / "vmlinux").write_bytes(base.to_bytes())
    (root / "mac80211").write_bytes(mod.to_bytes())
    r = ReasonResolver.from_path(root)
    assert r.resolve(0x10002).source == "raw"
    assert any("no enum mac80211_drop_reason" in n for n in r.notes)


# --- fallbacks ------------------------------------------------------------------------------

FORMAT = """name: kfree_skb
print fmt: "skbaddr=%p reason: %s", REC->skbaddr, __print_symbolic(REC->reason, \
{ 2, "NOT_SPECIFIED" }, { 3, "NO_SOCKET" }, { SKB_DROP_REASON_FOO, "FOO" }, \
{ 0x7e, "PSP_OUTPUT" }, { 128, "MAX" })
"""


def test_parse_tracefs_format():
    assert parse_tracefs_format(FORMAT) == {2: "NOT_SPECIFIED", 3: "NO_SOCKET", 0x7E: "PSP_OUTPUT"}
    assert parse_tracefs_format("print fmt: nothing symbolic") == {}


def test_tracefs_fallback_when_btf_is_missing(tmp_path):
    fmt = tmp_path / "format"
    fmt.write_text(FORMAT)
    r = ReasonResolver(None, None, fmt)
    assert r.best_source == "tracefs"
    assert r.resolve(3) == Reason(3, "NO_SOCKET", "core", "tracefs")
    assert r.resolve(0x7F) == Reason(0x7F, "0x7f", "core", "raw")
    assert r.resolve(0x20001) == Reason(0x20001, "subsys2:0x20001", "subsys2", "raw")
    assert [x.name for x in r.table()] == ["NOT_SPECIFIED", "NO_SOCKET", "PSP_OUTPUT"]


def test_raw_fallback_without_any_source(tmp_path):
    r = ReasonResolver(None, None, tmp_path / "absent-format")
    assert r.best_source == "raw"
    assert r.table() == ()
    assert r.resolve(2) == Reason(2, "0x2", "core", "raw")
    assert r.resolve(0x20001).name == "subsys2:0x20001"
    assert any("absent-format" in n for n in r.notes)


def test_corrupt_btf_degrades_to_tracefs(tmp_path):
    enc = BtfEncoder()
    enc.add(6, "skb_drop_reason", vlen=1, ref=4, extra=[1 << 24, 2])  # bad member name offset
    fmt = tmp_path / "format"
    fmt.write_text(FORMAT)
    r = ReasonResolver(Btf.from_bytes(enc.to_bytes()), None, fmt)
    assert r.best_source == "tracefs"
    assert r.resolve(2).name == "NOT_SPECIFIED"
    assert any("out of range" in n for n in r.notes)


def test_for_running_kernel_never_raises(tmp_path, monkeypatch):
    (tmp_path / "vmlinux").write_bytes(b"garbage")
    fmt = tmp_path / "format"
    fmt.write_text(FORMAT)
    monkeypatch.setattr(reasons_mod, "VMLINUX_BTF", tmp_path / "vmlinux")
    monkeypatch.setattr(reasons_mod, "BTF_DIR", tmp_path)
    monkeypatch.setattr(reasons_mod, "TRACEFS_FORMATS", (tmp_path / "nope", fmt))
    r = ReasonResolver.for_running_kernel()
    assert r.best_source == "tracefs"
    assert "bad magic" in r.notes[0]
    monkeypatch.setattr(reasons_mod, "TRACEFS_FORMATS", ())
    assert ReasonResolver.for_running_kernel().best_source == "raw"


def test_resolve_never_raises_and_caches():
    r = ReasonResolver(None)
    for raw in (-1, 0, 0xFFFFFFFF, 1 << 40):
        assert r.resolve(raw).source == "raw"
    assert r.resolve(-1) == Reason(-1, "-0x1", "invalid", "raw")
    assert r.resolve(0xFFFFFFFF).name == "subsys65535:0xffffffff"
    assert r.resolve(7) is r.resolve(7)


def test_raw_label_helper():
    assert raw_label(0x7F) == "0x7f"
    assert raw_label(0x20001) == "subsys2:0x20001"


@pytest.mark.parametrize(
    ("name", "sentinel"),
    [
        ("SKB_DROP_REASON_MAX", True),
        ("SKB_DROP_REASON_SUBSYS_NUM", True),
        ("SKB_DROP_REASON_SUBSYS_MASK", True),
        ("__OVS_DROP_REASON", True),
        ("___RX_DROP_U_REPLAY", True),
        ("MAX", True),
        ("OVS_DROP_MAX", True),
        ("TCP_MINTTL", False),
        ("RX_DROP_U_REPLAY", False),
        ("SKB_CONSUMED", False),
    ],
)
def test_sentinels(name, sentinel):
    assert is_sentinel(name) is sentinel


# --- snapshots ----------------------------------------------------------------------------


def test_from_table_keeps_saved_names(tmp_path):
    saved = resolver_for(tmp_path, "6.18").table()
    r = ReasonResolver.from_table(saved)
    assert r.best_source == "snapshot"
    assert r.resolve(0x20001) == Reason(0x20001, "OVS_DROP_LAST_ACTION", "openvswitch", "snapshot")
    assert r.resolve(10).name == "TCP_CSUM"
    assert r.resolve(0x20009) == Reason(0x20009, "subsys2:0x20009", "openvswitch", "raw")
    assert len(r.table()) == len(saved)
    assert {x.source for x in r.table()} == {"snapshot"}
    assert "snapshot" in NAME_SOURCES


# --- modules that load later -----------------------------------------------------------------


def test_module_loaded_later_is_picked_up_rate_limited(tmp_path, monkeypatch):
    layout = LAYOUTS["6.18"]
    root = write_btf_dir(tmp_path / "hot", layout, modules=())
    reads: list[str] = []
    real_from_file = Btf.from_file.__func__

    def counting_from_file(cls, path, base=None):
        reads.append(Path(path).name)
        return real_from_file(cls, path, base)

    monkeypatch.setattr(Btf, "from_file", classmethod(counting_from_file))
    clock = FakeClock()
    r = ReasonResolver(Btf.from_file(root / "vmlinux"), root, rescan_interval=5.0, clock=clock)
    assert r.resolve(0x20001).source == "raw"

    (root / "openvswitch").write_bytes(module_bytes(layout, "openvswitch"))
    clock.now += 1
    assert r.resolve(0x20001).source == "raw"  # too soon to look again
    assert r.resolve(5).name == "SOCKET_FILTER"
    clock.now += 5
    assert r.resolve(0x20001) == Reason(0x20001, "OVS_DROP_LAST_ACTION", "openvswitch", "btf")
    assert any(x.name == "OVS_DROP_METER" for x in r.table())
    assert reads.count("openvswitch") == 1

    # Core values and subsystems already named never trigger a rescan.
    clock.now += 60
    r.resolve(0x7FFF)
    r.resolve(0x2FFFF)
    assert reads.count("openvswitch") == 1 and "mac80211" not in reads

    # mac80211 is still pending: an unknown 0x1xxxx value looks again once allowed.
    (root / "mac80211").write_bytes(module_bytes(layout, "mac80211"))
    assert r.resolve(0x10002).name == "RX_DROP_U_REPLAY"


def test_unusable_module_is_not_reread_until_it_changes(tmp_path):
    layout = LAYOUTS["6.18"]
    root = write_btf_dir(tmp_path / "bad", layout, modules=())
    (root / "mac80211").write_bytes(b"not btf")
    clock = FakeClock()
    r = ReasonResolver(Btf.from_file(root / "vmlinux"), root, rescan_interval=0, clock=clock)
    assert r.resolve(0x10002).source == "raw"
    assert sum("mac80211" in n for n in r.notes) == 1
    r.resolve(0x10003)
    assert sum("mac80211" in n for n in r.notes) == 1
    (root / "mac80211").write_bytes(module_bytes(layout, "mac80211"))
    assert r.resolve(0x10002).name == "RX_DROP_U_REPLAY"


def test_mac80211_without_monitor_on_a_monitor_kernel(tmp_path):
    """Both mac80211 subsystems come from one module read."""
    base = vmlinux_encoder(LAYOUTS["6.4"])
    mod = BtfEncoder(base)
    mod.enum("mac80211_drop_reason", mac80211_members(unusable=1, monitor=None))
    root = tmp_path / "m"
    root.mkdir()
    (root / "vmlinux").write_bytes(base.to_bytes())
    (root / "mac80211").write_bytes(mod.to_bytes())
    r = ReasonResolver.from_path(root)
    assert r.resolve(0x10002).name == "RX_DROP_U_REPLAY"
    assert r.resolve(0x20001) == Reason(0x20001, "subsys2:0x20001", "mac80211_monitor", "raw")


# --- the running kernel --------------------------------------------------------------------------

VMLINUX = Path("/sys/kernel/btf/vmlinux")


def running_format() -> str | None:
    for path in reasons_mod.TRACEFS_FORMATS:
        try:
            return path.read_text()
        except OSError:
            continue
    return None


@pytest.mark.skipif(not VMLINUX.exists(), reason="no /sys/kernel/btf/vmlinux")
def test_running_kernel_core_names_equal_tracefs():
    r = ReasonResolver.for_running_kernel()
    assert r.best_source == "btf"
    core = {x.raw: x.name for x in r.table() if x.subsys == "core"}
    assert {x.source for x in r.table()} == {"btf"}
    text = running_format()
    if text is None:
        if os.geteuid() == 0:
            pytest.fail("root, but no tracefs: mount -t tracefs tracefs /sys/kernel/tracing")
        pytest.skip("tracefs format file not readable")
    listed = parse_tracefs_format(text)
    assert listed, "the format file lists no reasons"
    assert {raw: core[raw] for raw in listed if raw in core} == listed
    # BTF adds only the two non-drop values the tracepoint never prints.
    extra = {raw: core[raw] for raw in set(core) - set(listed)}
    assert set(extra.values()) <= {"SKB_NOT_DROPPED_YET", "SKB_CONSUMED"}
