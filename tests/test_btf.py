"""droptop.names.btf against hand-built blobs (every kind, layouts, corruption), the real kernel."""

from __future__ import annotations

import os
import platform
import random
import shutil
import signal
import struct
import subprocess
import time
from contextlib import contextmanager, nullcontext, suppress

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from droptop.names.btf import KIND_NAMES, Btf, BtfEnum, BtfError, load_vmlinux
from droptop.names.reasons import ReasonResolver
from tests.btf_encoder import (
    K_ENUM,
    K_STRUCT,
    LAYOUTS,
    BtfEncoder,
    module_encoder,
    vmlinux_encoder,
)

VMLINUX = "/sys/kernel/btf/vmlinux"
needs_vmlinux = pytest.mark.skipif(not os.path.exists(VMLINUX), reason=f"no {VMLINUX}")


# --- blobs ---------------------------------------------------------------------------


def every_kind() -> tuple[BtfEncoder, dict[str, int]]:
    """One type of each kind 1..19, each followed by a marker enum: if any record's
    trailing data were walked with the wrong size, the markers after it would be lost."""
    enc = BtfEncoder()
    ids: dict[str, int] = {}

    def mark(kind: str, type_id: int) -> None:
        ids[kind] = type_id
        enc.enum(f"after_{kind}", [(f"AFTER_{kind}", type_id)])

    i32 = enc.int_("int", 4, signed=True)
    mark("INT", i32)
    mark("PTR", enc.ptr(i32))
    mark("ARRAY", enc.array(i32, 4, i32))
    mark("STRUCT", enc.struct("pair", 8, [("a", i32, 0), ("b", i32, 32)]))
    mark("UNION", enc.union("either", 4, [("a", i32, 0), ("b", i32, 0)]))
    mark("ENUM", enc.enum("colour", [("RED", 0), ("MINUS", -1)], signed=True))
    mark("FWD", enc.fwd("opaque"))
    mark("TYPEDEF", enc.typedef("myint", i32))
    mark("VOLATILE", enc.volatile(i32))
    mark("CONST", enc.const(i32))
    mark("RESTRICT", enc.restrict(ids["PTR"]))
    proto = enc.func_proto(i32, [("x", i32), ("y", ids["PTR"])])
    mark("FUNC_PROTO", proto)
    mark("FUNC", enc.func("add", proto))
    mark("VAR", enc.var("counter", i32))
    mark("DATASEC", enc.datasec(".data", 4, [(ids["VAR"], 0, 4)]))
    mark("FLOAT", enc.float_("double", 8))
    mark("DECL_TAG", enc.decl_tag("user", ids["FUNC"], 0))
    mark("TYPE_TAG", enc.type_tag("rcu", i32))
    big = [("HUGE", 1 << 40), ("NEG", -2)]
    mark("ENUM64", enc.enum64("wide", big, signed=True))
    enc.enum64("uwide", [("TOP", (1 << 64) - 1)])
    return enc, ids


def kernel_structs() -> BtfEncoder:
    """sk_buff / net_device / net shaped as on 6.18 x86-64: anonymous unions holding
    anonymous structs, bitfields, typedef'd and const members, arrays."""
    enc = BtfEncoder()
    u8 = enc.int_("unsigned char", 1)
    u32 = enc.typedef("u32", enc.int_("unsigned int", 4))
    ulong = enc.int_("long unsigned int", 8)
    char = enc.int_("char", 1, signed=True)
    i32 = enc.int_("int", 4, signed=True)
    netdev_ptr = enc.ptr(enc.fwd("net_device"))
    skb_ptr = enc.ptr(0)  # -> sk_buff, patched below
    dev_union = enc.union("", 8, [("dev", netdev_ptr, 0), ("dev_scratch", ulong, 0)])
    links = enc.struct("", 24, [("next", skb_ptr, 0), ("prev", skb_ptr, 64), ("", dev_union, 128)])
    head = enc.union("", 24, [("", links, 0), ("rb_parent_color", ulong, 0)])
    skb = enc.struct(
        "sk_buff",
        232,
        [
            ("", head, 0),
            ("len", u32, 896),
            ("cloned", u8, 1024, 1),
            ("nohdr", u8, 1025, 1),
            ("pkt_type", u8, 1032, 3),
        ],
    )
    enc.set_ref(skb_ptr, skb)
    ns_common = enc.struct("ns_common", 80, [("stashed", ulong, 64), ("inum", i32, 192)])
    ns_t = enc.const(enc.typedef("ns_common_t", ns_common))
    net = enc.struct("net", 4096, [("ns", ns_t, 152 * 8)])
    possible_net = enc.typedef("possible_net_t", enc.struct("", 8, [("net", enc.ptr(net), 0)]))
    grid = enc.array(enc.array(i32, 3), 2)
    enc.struct(
        "net_device",
        2048,
        [
            ("ifindex", i32, 224 * 8),
            ("nd_net", possible_net, 264 * 8),
            ("name", enc.array(char, 16), 280 * 8),
            ("grid", grid, 300 * 8),
        ],
    )
    # Old-style bitfields (no kind_flag): the INT's encoding carries offset and bits.
    enc.struct(
        "legacy",
        4,
        [
            ("low3", enc.int_("int", 4, bits=3), 0),
            ("byte1", enc.int_("int", 4, bits=8, shift=8), 0),
            ("odd", enc.int_("int", 4, bits=2, shift=3), 0),
        ],
    )
    return enc


# --- every kind ------------------------------------------------------------------------


def test_every_kind_is_walked_with_its_own_size():
    enc, ids = every_kind()
    btf = Btf.from_bytes(enc.to_bytes())
    assert len(btf) == len(enc.records)
    counts = btf.kind_counts()
    assert set(KIND_NAMES[1:]) <= set(counts)
    for kind, type_id in ids.items():
        assert btf.find_enum(f"after_{kind}") == BtfEnum(
            f"after_{kind}", 4, False, ((f"AFTER_{kind}", type_id),)
        )


def test_enum_signedness_from_kind_flag():
    btf = Btf.from_bytes(every_kind()[0].to_bytes())
    assert btf.find_enum("colour") == BtfEnum("colour", 4, True, (("RED", 0), ("MINUS", -1)))
    assert btf.find_enum("wide") == BtfEnum("wide", 8, True, (("HUGE", 1 << 40), ("NEG", -2)))
    assert btf.find_enum("uwide").members == (("TOP", (1 << 64) - 1),)
    enc = BtfEncoder()
    enc.enum("mask", [("MASK", 0xFFFF0000)])
    assert Btf.from_bytes(enc.to_bytes()).find_enum("mask").members == (("MASK", 0xFFFF0000),)


def test_find_enum_is_exact_and_prefers_a_full_definition():
    enc = BtfEncoder()
    enc.enum("reason", [])  # enum forward declaration
    enc.enum("___reason", [("___A", 1)])
    enc.enum("reason", [("A", 1)])
    enc.enum("x_reason", [("B", 2)])
    btf = Btf.from_bytes(enc.to_bytes())
    assert btf.find_enum("reason").members == (("A", 1),)
    assert btf.find_enum("eason") is None
    assert btf.find_enum("missing") is None


def test_a_name_may_be_the_tail_of_another_string():
    enc = BtfEncoder()
    enc.enum("", [])  # placeholder, patched to use a tail offset
    enc.string("skb_drop_reason")
    enc.records[0][0] = enc.find_string("skb_drop_reason") + 4  # "drop_reason"
    assert Btf.from_bytes(enc.to_bytes()).find_enum("drop_reason") is not None


def test_conflicting_enums_of_one_name_refuse_to_guess():
    enc = BtfEncoder()
    enc.enum("reason", [("A", 1)])
    enc.enum("reason", [("B", 1)])
    with pytest.raises(BtfError, match="ambiguous"):
        Btf.from_bytes(enc.to_bytes()).find_enum("reason")


def test_big_endian_blob_reads_the_same():
    enc = kernel_structs()
    little, big = Btf.from_bytes(enc.to_bytes()), Btf.from_bytes(enc.to_bytes(big_endian=True))
    assert (little.endian, big.endian) == ("little", "big")
    for struct_name, path in [("sk_buff", "dev"), ("net", "ns.inum"), ("net_device", "name")]:
        assert big.member_offset(struct_name, path) == little.member_offset(struct_name, path)
    enc2, _ = every_kind()
    assert Btf.from_bytes(enc2.to_bytes(big_endian=True)).find_enum("wide").members[1][1] == -2


def test_header_may_be_longer_and_sections_apart():
    enc, _ = every_kind()
    btf = Btf.from_bytes(enc.to_bytes(hdr_len=32, gap=12))
    assert btf.find_enum("colour") is not None


# --- members -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def structs() -> Btf:
    return Btf.from_bytes(kernel_structs().to_bytes())


@pytest.mark.parametrize(
    ("struct_name", "path", "offset", "size"),
    [
        ("sk_buff", "dev", 16, 8),  # inside an anonymous union in an anonymous struct
        ("sk_buff", "next", 0, 8),
        ("sk_buff", "len", 112, 4),  # typedef u32
        ("sk_buff", "cloned", 128, 1),  # a bitfield, but byte-aligned
        ("sk_buff", "pkt_type", 129, 1),
        ("net_device", "ifindex", 224, 4),
        ("net_device", "nd_net", 264, 8),
        ("net_device", "nd_net.net", 264, 8),
        ("net_device", "name", 280, 16),
        ("net_device", "grid", 300, 24),
        ("net", "ns", 152, 80),  # through const and typedef
        ("net", "ns.inum", 176, 4),
        ("ns_common", "inum", 24, 4),
        ("legacy", "low3", 0, 4),
        ("legacy", "byte1", 1, 4),
    ],
)
def test_member_offset_and_size(structs, struct_name, path, offset, size):
    assert structs.member_offset(struct_name, path) == offset
    assert structs.member_size(struct_name, path) == size


@pytest.mark.parametrize(
    ("struct_name", "path", "message"),
    [
        ("sk_buff", "nohdr", "bitfield at bit 1025"),
        ("legacy", "odd", "bitfield at bit 3"),
        ("sk_buff", "nope", "no member nope"),
        ("sk_buff", "dev.ifindex", "sk_buff.dev is not a struct"),
        ("sk_buff", "len.x", "sk_buff.len is not a struct"),
        ("net", "ns.nope", "no member ns.nope"),
        ("no_such_struct", "x", "no struct or union named no_such_struct"),
        ("net", "", "bad member path"),
        ("net", "ns..inum", "bad member path"),
    ],
)
def test_member_errors_are_btf_errors(structs, struct_name, path, message):
    with pytest.raises(BtfError, match=message):
        structs.member_offset(struct_name, path)


def test_duplicate_struct_names_must_agree():
    enc = BtfEncoder()
    i32 = enc.int_("int", 4)
    enc.struct("twin", 8, [("a", i32, 0)])
    enc.struct("twin", 8, [("a", i32, 0)])
    enc.struct("other", 8, [("a", i32, 0)])
    enc.struct("other", 8, [("a", i32, 32)])
    btf = Btf.from_bytes(enc.to_bytes())
    assert btf.member_offset("twin", "a") == 0
    with pytest.raises(BtfError, match="ambiguous"):
        btf.member_offset("other", "a")


# --- function prototypes -----------------------------------------------------------------


def test_tracepoint_prototypes():
    btf = Btf.from_bytes(vmlinux_encoder(LAYOUTS["6.18"]).to_bytes())
    assert btf.func_proto_params("__bpf_trace_kfree_skb") == ("__data", "skb", "location", "reason")
    assert btf.func_proto_params("btf_trace_kfree_skb") == ("", "", "", "")
    assert btf.func_proto_params("no_such_function") is None
    assert btf.func_proto_params("u32") is None  # a typedef, but not to a function


def test_variadic_and_empty_prototypes():
    enc = BtfEncoder()
    char_ptr = enc.ptr(enc.int_("char", 1, signed=True))
    enc.func("printk", enc.func_proto(0, [("fmt", char_ptr), ("", 0)]))
    enc.func("noargs", enc.func_proto(0, []))
    enc.func("broken", char_ptr)
    btf = Btf.from_bytes(enc.to_bytes())
    assert btf.func_proto_params("printk") == ("fmt", "...")
    assert btf.func_proto_params("noargs") == ()
    with pytest.raises(BtfError, match="FUNC_PROTO"):
        btf.func_proto_params("broken")


# --- split BTF ---------------------------------------------------------------------------------


def test_split_btf_continues_ids_and_strings():
    base_enc = vmlinux_encoder(LAYOUTS["6.18"])
    base = Btf.from_bytes(base_enc.to_bytes())
    mod_enc = BtfEncoder(base_enc)
    mod_enum = mod_enc.enum("mod_reason", [("MOD_A", 0x20001)])
    # "len" is already a base string: the module refers to it below the base's end.
    mod_enc.struct(
        "mod_priv", 16, [("len", base_enc.ids["u32"], 0), ("skb", base_enc.ids["sk_buff *"], 64)]
    )
    assert mod_enc.find_string("len") < base_enc.str_end <= mod_enc.find_string("mod_reason")
    module = Btf.from_bytes(mod_enc.to_bytes(), base=base)
    assert module.first_id == base.next_id == mod_enum
    assert module.find_enum("mod_reason").members == (("MOD_A", 0x20001),)
    assert module.find_enum("skb_drop_reason") == base.find_enum("skb_drop_reason")
    assert module.member_offset("mod_priv", "skb") == 8
    assert module.member_size("mod_priv", "skb") == 8
    assert module.member_size("mod_priv", "len") == 4
    assert module.member_offset("sk_buff", "len") == 112  # a base struct, through the module
    assert base.find_enum("mod_reason") is None


def test_each_module_is_read_against_vmlinux_alone():
    base_enc = vmlinux_encoder(LAYOUTS["6.18"])
    base = Btf.from_bytes(base_enc.to_bytes())
    modules = {
        name: Btf.from_bytes(module_encoder(base_enc, name, enum, members).to_bytes(), base=base)
        for name, (enum, members) in LAYOUTS["6.18"].modules.items()
    }
    assert modules["mac80211"].first_id == modules["openvswitch"].first_id  # ids overlap
    assert modules["mac80211"].find_enum("ovs_drop_reason") is None
    assert (
        modules["openvswitch"].find_enum("ovs_drop_reason").members[1][0] == "OVS_DROP_LAST_ACTION"
    )


def test_split_btf_needs_its_base():
    base_enc = vmlinux_encoder(LAYOUTS["6.18"])
    blob = module_encoder(base_enc, "openvswitch", *LAYOUTS["6.18"].modules["openvswitch"])
    with pytest.raises(BtfError):
        Btf.from_bytes(blob.to_bytes())
    other_endian = Btf.from_bytes(base_enc.to_bytes(big_endian=True))
    with pytest.raises(BtfError, match="byte order"):
        Btf.from_bytes(blob.to_bytes(), base=other_endian)


# --- malformed input -------------------------------------------------------------------------


def patched_header(blob: bytes, **fields: int) -> bytes:
    names = ["magic", "version", "flags", "hdr_len", "type_off", "type_len", "str_off", "str_len"]
    values = dict(zip(names, struct.unpack_from("<HBBIIIII", blob), strict=True))
    values.update(fields)
    return struct.pack("<HBBIIIII", *values.values()) + blob[24:]


GOOD = every_kind()[0].to_bytes()


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (b"", "no BTF header"),
        (b"\x7fELF" + bytes(40), "bad magic"),
        (GOOD[:20], "truncated BTF header"),
        (GOOD[:-3], "string section ends past the data"),
        (patched_header(GOOD, version=2), "unsupported BTF version 2"),
        (patched_header(GOOD, hdr_len=8), "header length 8"),
        (patched_header(GOOD, hdr_len=1 << 20), "header longer than the data"),
        (patched_header(GOOD, type_len=len(GOOD)), "type section ends past the data"),
        (patched_header(GOOD, type_len=6), "not a multiple of 4"),
        (patched_header(GOOD, type_len=8), "stray words"),
        (patched_header(GOOD, type_len=28), "runs past the end of the type section"),
        (GOOD[:-1] + b"x", "does not end with a NUL"),
    ],
)
def test_bad_blobs_are_clean_errors(blob, message):
    with pytest.raises(BtfError, match=message):
        Btf.from_bytes(blob)


@pytest.mark.parametrize("kind", [0, 20, 31])
def test_unknown_kind(kind):
    enc = BtfEncoder()
    enc.int_("int", 4)
    enc.add(kind, "mystery")
    enc.int_("long", 8)
    with pytest.raises(BtfError, match=f"unknown BTF kind {kind} in type #2"):
        Btf.from_bytes(enc.to_bytes())


def test_record_longer_than_section():
    enc = BtfEncoder()
    enc.add(K_STRUCT, "short", vlen=5, ref=8, extra=[0, 0, 0])
    with pytest.raises(BtfError, match="runs past"):
        Btf.from_bytes(enc.to_bytes())


def test_string_section_must_start_empty():
    blob = bytearray(GOOD)
    str_start = 24 + struct.unpack_from("<I", blob, 16)[0]
    blob[str_start] = ord("x")
    with pytest.raises(BtfError, match="empty string"):
        Btf.from_bytes(bytes(blob))


def test_bad_string_offset_and_type_id_fail_when_touched():
    enc = BtfEncoder()
    enc.add(K_ENUM, "bad_names", vlen=1, ref=4, extra=[1 << 20, 1])
    enc.typedef("dangling", 9999)
    enc.struct("holder", 8, [("d", 2, 0), ("v", 0, 32)])
    btf = Btf.from_bytes(enc.to_bytes())
    with pytest.raises(BtfError, match="string offset 1048576 out of range"):
        btf.find_enum("bad_names")
    with pytest.raises(BtfError, match="type id 9999 out of range"):
        btf.member_size("holder", "d")
    with pytest.raises(BtfError, match="void has no size"):
        btf.member_size("holder", "v")


def test_reference_loops_are_errors_not_hangs():
    enc = BtfEncoder()
    a = enc.typedef("a", 0)
    b = enc.typedef("b", a)
    enc.set_ref(a, b)
    enc.struct("loopy", 8, [("x", a, 0)])
    self_ref = enc.struct("ouroboros", 8, [])
    enc.records[-1] = [enc.string("ouroboros"), K_STRUCT << 24 | 1, 8, 0, self_ref, 0]
    fp = enc.typedef("fp", 0)
    enc.set_ref(fp, enc.const(enc.ptr(fp)))
    btf = Btf.from_bytes(enc.to_bytes())
    with pytest.raises(BtfError, match="loop"):
        btf.member_size("loopy", "x")
    with pytest.raises(BtfError, match="loop"):
        btf.member_offset("ouroboros", "missing")
    with pytest.raises(BtfError, match="loop"):
        btf.func_proto_params("fp")


def test_from_file_names_the_path(tmp_path):
    with pytest.raises(BtfError, match=f"cannot read BTF from {tmp_path}/absent"):
        Btf.from_file(tmp_path / "absent")
    with pytest.raises(BtfError, match=str(tmp_path)):
        Btf.from_file(tmp_path)
    (tmp_path / "junk").write_bytes(b"hello")
    with pytest.raises(BtfError, match=f"{tmp_path}/junk: bad magic"):
        Btf.from_file(tmp_path / "junk")


# --- fuzzing -------------------------------------------------------------------------------------


@contextmanager
def deadline(seconds: int):
    """Turn a hang into a failure instead of a stuck test run."""

    def expire(*_):
        raise AssertionError(f"no result within {seconds} s: a hang")

    old = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def mutate(rng: random.Random, blob: bytes) -> bytes:
    data = bytearray(blob)
    choice = rng.randrange(6)
    if choice == 0:
        return bytes(data[: rng.randrange(len(data))])
    if choice == 1:
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    elif choice == 2:  # a whole word: ids, offsets, kinds, vlens
        at = rng.randrange(len(data) // 4) * 4
        word = rng.choice(
            [0, 1, 2, 0xFFFFFFFF, 0x7FFFFFFF, rng.randrange(1 << 32), rng.randrange(64)]
        )
        struct.pack_into("<I", data, at, word)
    elif choice == 3:  # flip the kind or vlen of a type header
        at = rng.randrange(24, len(data) - 4) & ~3
        data[at + rng.choice([0, 1, 3])] = rng.randrange(256)
    elif choice == 4:
        at = rng.randrange(len(data))
        del data[at : at + rng.randint(1, 16)]
    else:
        at = rng.randrange(len(data))
        data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    return bytes(data)


def exercise(btf: Btf) -> None:
    """Every public lookup; anything but a BtfError escaping is a bug."""
    for name in ("colour", "wide", "skb_drop_reason", "skb_drop_reason_subsys", "ovs_drop_reason"):
        btf.find_enum(name)
    for struct_name, path in [("sk_buff", "dev"), ("sk_buff", "nohdr"), ("net", "ns.inum")]:
        for lookup in (btf.member_offset, btf.member_size):
            with suppress(BtfError):
                lookup(struct_name, path)
    btf.func_proto_params("btf_trace_kfree_skb")
    btf.func_proto_params("add")
    btf.kind_counts()


def test_fuzzed_blobs_give_a_result_or_a_btf_error():
    rng = random.Random(20240603)
    base_enc = vmlinux_encoder(LAYOUTS["6.6"])
    base_blob = base_enc.to_bytes()
    base = Btf.from_bytes(base_blob)
    module_blob = module_encoder(
        base_enc, "mac80211", *LAYOUTS["6.6"].modules["mac80211"]
    ).to_bytes()
    seeds = [GOOD, kernel_structs().to_bytes(), base_blob]
    outcomes = {"ok": 0, "error": 0}
    started = time.monotonic()
    with deadline(30):
        for i in range(3000):
            split = i % 4 == 3
            blob = mutate(rng, module_blob if split else seeds[i % 3])
            try:
                btf = Btf.from_bytes(blob, base=base if split else None)
            except BtfError:
                outcomes["error"] += 1
                continue
            try:
                exercise(btf)
                outcomes["ok"] += 1
            except BtfError:
                outcomes["error"] += 1
            resolver = ReasonResolver(btf)  # must never raise, whatever the blob
            resolver.table()
            for raw in (0, 2, 0x10002, 0x20001, 0x30001):
                assert resolver.resolve(raw).raw == raw
    assert outcomes["ok"] > 100 and outcomes["error"] > 100, outcomes
    assert time.monotonic() - started < 15


@needs_vmlinux
def test_fuzzed_real_vmlinux(tmp_path):
    """A few mutations of the real 5.5 MB blob (each load costs ~25 ms, so only a few)."""
    with open(VMLINUX, "rb") as f:
        real = f.read()
    rng = random.Random(99)
    with deadline(60):
        for i in range(24):
            data = bytearray(real)
            if i % 3 == 0:
                data = data[: rng.randrange(len(data))]
            else:
                for _ in range(4):
                    at = rng.randrange(24, len(data) - 4)
                    struct.pack_into("<I", data, at & ~3, rng.randrange(1 << 32))
            try:
                btf = Btf.from_bytes(bytes(data))
                exercise(btf)
            except BtfError:
                continue
            ReasonResolver(btf, tmp_path).table()


def test_resolver_survives_fuzzed_module_btf(tmp_path):
    """A corrupt module file degrades to raw labels; it never breaks the resolver."""
    rng = random.Random(7)
    layout = LAYOUTS["6.18"]
    base_enc = vmlinux_encoder(layout)
    base = Btf.from_bytes(base_enc.to_bytes())
    good = module_encoder(base_enc, "openvswitch", *layout.modules["openvswitch"]).to_bytes()
    for _ in range(200):
        (tmp_path / "openvswitch").write_bytes(mutate(rng, good))
        resolver = ReasonResolver(base, tmp_path)
        # A mutation may also yield a valid but different enum: any name, never a crash.
        assert resolver.resolve(0x20001).subsys == "openvswitch"
        assert resolver.resolve(3).name == "NO_SOCKET"


# --- hostile files: every read is bounded --------------------------------------------------------
#
# Each load runs in a child with a 1 GiB address-space limit and a timeout, so that a reader
# that reads without bound fails the test instead of eating the machine's memory.

_LOAD_IN_CHILD = """
import sys, time
from droptop.names.btf import Btf, BtfError
start = time.monotonic()
try:
    btf = Btf.from_file(sys.argv[1])
    result = f"ok {len(btf)} types"
except BtfError as e:
    result = f"BtfError: {e}"
print(f"{time.monotonic() - start:.3f}")
print(result)
"""
_CHILD_AS_LIMIT = 1 << 30


def load_in_child(path: str, timeout: float = 8.0) -> tuple[float, str]:
    """(seconds Btf.from_file took, "ok ..." or "BtfError: ...") in a memory-capped child."""
    import resource
    import sys

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (_CHILD_AS_LIMIT, _CHILD_AS_LIMIT))

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _LOAD_IN_CHILD, path],
            capture_output=True,
            text=True,
            timeout=timeout,
            preexec_fn=limit,
            cwd=root,
        )
    except subprocess.TimeoutExpired:
        raise AssertionError(f"Btf.from_file({path!r}) did not finish in {timeout} s") from None
    assert proc.returncode == 0 and not proc.stderr, proc.stderr[-2000:]
    elapsed, result = proc.stdout.splitlines()
    return float(elapsed), result


@contextmanager
def fifo_writer(path: str, data: bytes, forever: bytes | None):
    """A FIFO at ``path`` whose writer sends ``data`` then ``forever`` again and again
    (or stays silent after ``data`` when ``forever`` is b""). The writer opens the FIFO
    read-write, so its end is open before any reader comes and its writes never fail."""
    import sys

    os.mkfifo(path)
    code = (
        "import os, sys, time\n"
        "fd = os.open(sys.argv[1], os.O_RDWR)\n"
        "print('ready', flush=True)\n"
        "data, more = bytes.fromhex(sys.argv[2]), bytes.fromhex(sys.argv[3])\n"
        "os.write(fd, data)\n"
        "while True:\n"
        "    os.write(fd, more) if more else time.sleep(1)\n"
    )
    block = (forever or b"") * (4096 // max(1, len(forever or b"x")))
    proc = subprocess.Popen(
        [sys.executable, "-c", code, path, data.hex(), block.hex()],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        yield path
    finally:
        proc.kill()
        proc.wait()


def _header(type_len: int, str_len: int, *, hdr_len: int = 24) -> bytes:
    return struct.pack("<HBBIIIII", 0xEB9F, 1, 0, hdr_len, 0, type_len, type_len, str_len)


HUGE = 0xF0000000
"""A section length past any cap (and past what a 1 GiB child could hold)."""


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("/dev/zero", "bad magic 0x0000"),
        ("/dev/urandom", "BtfError: /dev/urandom: "),
        ("directory", "is a directory"),
        ("sparse 1 GB of zeros", "bad magic 0x0000"),
        ("sparse 1 GB, header says 3.75 GB", "too large"),
        ("sparse 1 GB, header says 32 bytes", "ok"),
        ("header says more than the file holds", "truncated"),
        ("header longer than the cap", "too large"),
        ("FIFO, no writer", "truncated"),
        ("FIFO, endless zeros", "bad magic 0x0000"),
        ("FIFO, huge header then endless data", "too large"),
        ("FIFO, good blob then endless data", "ok"),
    ],
)
def test_hostile_files_are_one_fast_btf_error(tmp_path, case, message):
    """None of these may read without bound, block, or take a second."""
    good = BtfEncoder()
    good.int_("int", 4)
    good_blob = good.to_bytes()
    path = str(tmp_path / "btf")
    writer = None
    if case.startswith("/dev/"):
        path = case
    elif case == "directory":
        os.mkdir(path)
    elif case.startswith("sparse"):
        with open(path, "wb") as f:
            if "3.75 GB" in case:
                f.write(_header(HUGE, 16))
            elif "32 bytes" in case:
                f.write(good_blob)
            f.truncate(1 << 30)
    elif case == "header says more than the file holds":
        with open(path, "wb") as f:
            f.write(_header(4096, 4096) + bytes(100))
    elif case == "header longer than the cap":
        with open(path, "wb") as f:
            f.write(_header(0, 1, hdr_len=HUGE) + bytes(100))
    elif case == "FIFO, no writer":
        os.mkfifo(path)
    elif case == "FIFO, endless zeros":
        writer = fifo_writer(path, b"", bytes(64))
    elif case == "FIFO, huge header then endless data":
        writer = fifo_writer(path, _header(HUGE, HUGE), b"\x01")
    elif case == "FIFO, good blob then endless data":
        writer = fifo_writer(path, good_blob, b"\xff")
    with writer if writer is not None else nullcontext():
        elapsed, result = load_in_child(path)
    assert result.startswith(message) or (message in result and result.startswith("BtfError")), (
        result
    )
    assert "\n" not in result
    assert elapsed < 1.0, (case, elapsed)


def test_silent_fifo_writer_times_out(tmp_path):
    """A writer that opens the FIFO and then says nothing: a clear error after a few
    seconds, not a hang."""
    with fifo_writer(str(tmp_path / "btf"), b"", b"") as path:
        elapsed, result = load_in_child(path)
    assert result.startswith("BtfError") and "no data" in result, result
    assert elapsed < 4.0


def test_file_cap_is_named_and_far_above_real_vmlinux():
    from droptop.names.btf import MAX_BTF_BYTES

    assert MAX_BTF_BYTES == 64 << 20
    if os.path.exists(VMLINUX):
        assert os.path.getsize(VMLINUX) * 8 < MAX_BTF_BYTES


def test_read_limited_bounds_any_file(tmp_path):
    from droptop.names.btf import read_limited

    (tmp_path / "small").write_bytes(b"abc")
    assert read_limited(str(tmp_path / "small"), 10) == b"abc"
    with pytest.raises(BtfError, match="more than 10 bytes"):
        read_limited("/dev/zero", 10)
    with deadline(2), pytest.raises(BtfError, match="is a directory"):
        read_limited(str(tmp_path), 10)


# Property-based: corrupt headers over short bodies, read from a real file. Each example
# runs under an alarm, so a hang fails fast instead of stalling the test run.
_U32_EDGES = st.sampled_from([0, 1, 3, 4, 23, 24, 25, 28, 0x7FFFFFFF, 0xFFFFFFFF, HUGE, 64 << 20])
_U32 = st.one_of(_U32_EDGES, st.integers(0, 0xFFFFFFFF), st.integers(0, 512))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    magic=st.sampled_from([b"\x9f\xeb", b"\xeb\x9f", b"\x00\x00", b"\x9f\xec"]),
    version=st.sampled_from([1, 1, 1, 0, 2, 255]),
    flags=st.integers(0, 255),
    hdr_len=_U32,
    type_off=_U32,
    type_len=_U32,
    str_off=_U32,
    str_len=_U32,
    body=st.binary(max_size=512),
)
def test_fuzzed_headers_give_a_result_or_a_btf_error_fast(
    magic, version, flags, hdr_len, type_off, type_len, str_off, str_len, body
):
    import tempfile

    e = "<" if magic == b"\x9f\xeb" else ">"
    header = magic + struct.pack(
        e + "BBIIIII", version, flags, hdr_len, type_off, type_len, str_off, str_len
    )
    with tempfile.NamedTemporaryFile(prefix="dtbtf") as f:
        f.write(header + body)
        f.flush()
        started = time.monotonic()
        with deadline(2):
            for load in (lambda: Btf.from_file(f.name), lambda: Btf.from_bytes(header + body)):
                try:
                    btf = load()
                except BtfError as err:
                    assert "\n" not in str(err)
                    continue
                exercise(btf)
        assert time.monotonic() - started < 1.0


# --- the running kernel --------------------------------------------------------------------------

ON_NOTES_MACHINE = platform.release().startswith("6.18") and platform.machine() == "x86_64"


@pytest.fixture(scope="module")
def vmlinux() -> Btf:
    return load_vmlinux()


@needs_vmlinux
@pytest.mark.skipif(not ON_NOTES_MACHINE, reason="KERNEL-NOTES offsets are for 6.18 x86-64")
@pytest.mark.parametrize(
    ("struct_name", "path", "offset"),
    [
        ("sk_buff", "dev", 16),
        ("sk_buff", "len", 112),
        ("net_device", "ifindex", 224),
        ("net_device", "nd_net", 264),
        ("net_device", "name", 280),
        ("net", "ns", 152),
        ("ns_common", "inum", 24),
        ("net", "ns.inum", 176),
    ],
)
def test_running_kernel_offsets_match_kernel_notes(vmlinux, struct_name, path, offset):
    assert vmlinux.member_offset(struct_name, path) == offset


@needs_vmlinux
def test_running_kernel_tracepoint_and_kinds(vmlinux):
    params = vmlinux.func_proto_params("btf_trace_kfree_skb")
    assert params is not None and params[0] == "" and len(params) >= 3
    named = vmlinux.func_proto_params("__bpf_trace_kfree_skb")
    assert named is not None and named[1:3] == ("skb", "location")
    counts = vmlinux.kind_counts()
    assert sum(counts.values()) == len(vmlinux)
    if ON_NOTES_MACHINE:
        assert set(counts) == set(KIND_NAMES[1:])  # every kind 1..19 present here


@needs_vmlinux
@pytest.mark.skipif(shutil.which("bpftool") is None, reason="no bpftool to compare with")
def test_running_kernel_agrees_with_bpftool(vmlinux):
    dump = subprocess.run(
        ["bpftool", "btf", "dump", "file", VMLINUX], capture_output=True, text=True, check=True
    ).stdout
    assert sum(line.startswith("[") for line in dump.splitlines()) == len(vmlinux)
    enum = vmlinux.find_enum("skb_drop_reason")
    header = f"ENUM 'skb_drop_reason' encoding=UNSIGNED size=4 vlen={len(enum.members)}"
    block = dump[dump.index(header) :].splitlines()[1 : len(enum.members) + 1]
    assert [f"\t'{name}' val={value}" for name, value in enum.members] == block
