"""A small, lazy reader for the kernel's BPF Type Format (BTF).

droptop needs a handful of facts from BTF: a few enums (drop reasons and their
subsystems), a few struct member offsets (for the BPF program) and the shape of
the ``kfree_skb`` tracepoint. No maintained pure-Python BTF library exists, and
decoding all ~126k types of a vmlinux blob into Python objects takes far longer
than droptop's start-up budget, so this reader does the least work it can:

* one fast pass over the type section records only where each type starts
  (a ``memoryview`` of u32 words, one list append per type);
* a type is found by name by searching the string section for the name, then
  a packed array of every type's name offset for that string's offset, both
  with C-speed ``bytes.find``;
* only what is asked for (an enum, a struct's members) is ever decoded.

Module BTF (``/sys/kernel/btf/<module>``) is *split* BTF: its type ids continue
after the base's last id and string offsets at or above the base's string
section length index the module's own strings. Pass the base to
:meth:`Btf.from_bytes`.

Every malformed input raises :class:`BtfError`, either while loading (header,
section bounds, record sizes, unknown kinds) or when a lookup touches a bad
string offset, type id or reference loop. Nothing else may escape: the format
description is Documentation/bpf/btf.rst in the kernel tree.

Every read is bounded. A path may name anything (``--btf /dev/zero``, a FIFO, a
1 GB sparse file), so :meth:`Btf.from_file` reads the 24-byte header first, then
exactly the size the header declares, and refuses a header that declares more
than :data:`MAX_BTF_BYTES`. Pipes and devices are read without blocking, with an
idle and a total time limit. :func:`read_limited` does the same for any other
small kernel file (the tracepoint format file).
"""

from __future__ import annotations

import os
import select
import stat
import struct
import sys
import time
from array import array
from dataclasses import dataclass
from typing import NamedTuple

BTF_MAGIC = 0xEB9F
BTF_VERSION = 1
_HEADER = "HBBIIIII"  # magic version flags hdr_len type_off type_len str_off str_len
_HEADER_SIZE = struct.calcsize("<" + _HEADER)

# Kinds, as in include/uapi/linux/btf.h.
INT, PTR, ARRAY, STRUCT, UNION, ENUM, FWD, TYPEDEF = 1, 2, 3, 4, 5, 6, 7, 8
VOLATILE, CONST, RESTRICT, FUNC, FUNC_PROTO, VAR, DATASEC = 9, 10, 11, 12, 13, 14, 15
FLOAT, DECL_TAG, TYPE_TAG, ENUM64 = 16, 17, 18, 19

KIND_NAMES = (
    "UNKN", "INT", "PTR", "ARRAY", "STRUCT", "UNION", "ENUM", "FWD", "TYPEDEF",
    "VOLATILE", "CONST", "RESTRICT", "FUNC", "FUNC_PROTO", "VAR", "DATASEC",
    "FLOAT", "DECL_TAG", "TYPE_TAG", "ENUM64",
)  # fmt: skip

# Size of each kind's record in u32 words: the 3-word ``struct btf_type``, plus
# fixed trailing data, plus trailing data per vlen item. FUNC keeps its linkage
# in vlen, so it has no per-item data.
_FIXED_WORDS = {
    INT: 4, PTR: 3, ARRAY: 6, STRUCT: 3, UNION: 3, ENUM: 3, FWD: 3, TYPEDEF: 3,
    VOLATILE: 3, CONST: 3, RESTRICT: 3, FUNC: 3, FUNC_PROTO: 3, VAR: 4, DATASEC: 3,
    FLOAT: 3, DECL_TAG: 4, TYPE_TAG: 3, ENUM64: 3,
}  # fmt: skip
_VLEN_WORDS = {STRUCT: 3, UNION: 3, ENUM: 2, FUNC_PROTO: 2, DATASEC: 3, ENUM64: 3}

# An unknown kind "jumps" past the end of any section, which ends the index loop
# without a per-record check; the loop's caller then names the culprit.
_UNKNOWN_STEP = 1 << 62
_STEP_FIXED = tuple(_FIXED_WORDS.get(k, _UNKNOWN_STEP) for k in range(32))
_STEP_VLEN = tuple(_VLEN_WORDS.get(k, 0) for k in range(32))

_MODIFIERS = frozenset({TYPEDEF, VOLATILE, CONST, RESTRICT, TYPE_TAG})
_SIZED = frozenset({INT, STRUCT, UNION, ENUM, ENUM64, FLOAT, DATASEC})
_COMPOSITE = frozenset({STRUCT, UNION})
_ENUMS = frozenset({ENUM, ENUM64})

# Real BTF never chains more than a few modifiers (the kernel's verifier stops at
# 32); a longer chain can only be a loop in corrupt data.
_MAX_DEPTH = 64

_NATIVE = "<" if sys.byteorder == "little" else ">"

VMLINUX_BTF = "/sys/kernel/btf/vmlinux"
"""The running kernel's BTF."""
MAX_BTF_BYTES = 64 << 20
"""Largest BTF file droptop reads (header plus sections, as the header declares them).

vmlinux BTF is ~5.5 MB on 6.18 (126k types), module BTF far less; 64 MiB leaves
more than 10x headroom for a kernel with every option on, while a hostile path
costs at most that much memory and a moment, never an unbounded read."""
READ_IDLE_TIMEOUT = 2.0
"""Seconds a pipe or device may stay silent before reading it is given up."""
READ_TOTAL_TIMEOUT = 10.0
"""Seconds a whole read of a pipe or device may take (a writer dribbling bytes)."""
_READ_CHUNK = 1 << 20


class BtfError(Exception):
    """The BTF data is missing, unreadable or malformed, or lacks what was asked."""


@dataclass(frozen=True)
class BtfEnum:
    """One ENUM or ENUM64 type, values already sign-corrected."""

    name: str
    size: int
    """Byte size of the enum's storage (4 for ENUM in practice, 8 for ENUM64)."""
    signed: bool
    """From kind_flag: whether the values are to be read as signed."""
    members: tuple[tuple[str, int], ...]
    """(member name, value) in declaration order; duplicates kept as declared."""


class _Type(NamedTuple):
    """A decoded ``struct btf_type`` header; ``owner`` holds its words and strings."""

    owner: Btf
    tid: int
    pos: int
    """Word index of the record in ``owner``'s type section."""
    name_off: int
    kind: int
    vlen: int
    kflag: bool
    ref: int
    """The size_or_type word: a byte size or a referenced type id, by kind."""


class _Member(NamedTuple):
    bit_offset: int
    type_id: int
    bitfield_size: int
    """0 when the member is not a bitfield."""


class Btf:
    """A parsed BTF blob (vmlinux, or a module's split BTF on top of a base)."""

    __slots__ = (
        "_base",
        "_enum_cache",
        "_first_id",
        "_name_cache",
        "_name_index",
        "_name_set",
        "_offsets",
        "_origin",
        "_path_cache",
        "_ptr_size",
        "_str_base",
        "_strs",
        "_tbytes",
        "_words",
        "endian",
    )

    def __init__(
        self,
        *,
        origin: str,
        endian: str,
        tbytes: bytes,
        offsets: array,
        strs: bytes,
        base: Btf | None,
    ) -> None:
        """Internal: use :meth:`from_bytes` or :meth:`from_file`."""
        self._origin = origin
        self.endian = "little" if endian == "<" else "big"
        self._tbytes = tbytes
        self._words = memoryview(tbytes).cast("I")
        self._offsets = offsets
        self._strs = strs
        self._base = base
        self._first_id = base.next_id if base is not None else 1
        self._str_base = base._str_end if base is not None else 0
        self._name_cache: dict[str, frozenset[int]] = {}
        self._name_index: bytes | None = None
        self._name_set: frozenset[int] = frozenset()
        self._path_cache: dict[tuple[str, str], tuple[int, int]] = {}
        self._enum_cache: dict[str, BtfEnum | None] = {}
        self._ptr_size: int | None = None

    # --- loading ------------------------------------------------------------

    @classmethod
    def from_bytes(cls, data: bytes, base: Btf | None = None) -> Btf:
        """Parse a BTF blob; with ``base``, parse it as split BTF on top of base."""
        return cls._parse(bytes(data), base, "BTF data")

    @classmethod
    def from_file(cls, path: str | os.PathLike, base: Btf | None = None) -> Btf:
        """Read and parse a BTF file; an unreadable file is a BtfError naming the path.

        Reads the header, then only as many bytes as it declares (at most
        MAX_BTF_BYTES): trailing data, an endless device or a huge sparse file is
        never read to its end.
        """
        name = os.fspath(path)
        with _BoundedReader(name) as reader:
            data = reader.read(_HEADER_SIZE)
            if len(data) == _HEADER_SIZE:
                _, fields = _check_header(data, lambda msg: BtfError(f"{name}: {msg}"))
                data += reader.read(_declared_size(fields) - _HEADER_SIZE)
        return cls._parse(data, base, str(name))

    @classmethod
    def _parse(cls, data: bytes, base: Btf | None, origin: str) -> Btf:
        def fail(msg: str) -> BtfError:
            return BtfError(f"{origin}: {msg}")

        endian, fields = _check_header(data, fail)
        hdr_len, type_off, type_len, str_off, str_len = fields
        if base is not None and base.endian != ("little" if endian == "<" else "big"):
            raise fail("split BTF and its base differ in byte order")
        body = len(data) - hdr_len
        if body < 0:
            raise fail("truncated: header longer than the data")
        if type_off + type_len > body:
            raise fail(f"truncated: type section ends past the data ({len(data)} bytes)")
        if str_off + str_len > body:
            raise fail(f"truncated: string section ends past the data ({len(data)} bytes)")
        if type_len % 4:
            raise fail(f"type section length {type_len} is not a multiple of 4")
        strs = data[hdr_len + str_off : hdr_len + str_off + str_len]
        if base is None and (not strs or strs[0] != 0):
            raise fail("string section does not start with an empty string")
        if strs and strs[-1] != 0:
            raise fail("string section does not end with a NUL byte")

        tbytes = data[hdr_len + type_off : hdr_len + type_off + type_len]
        if endian != _NATIVE:
            swapped = array("I", tbytes)
            swapped.byteswap()
            tbytes = swapped.tobytes()
        offsets = _index_types(memoryview(tbytes).cast("I"), fail)
        return cls(
            origin=origin, endian=endian, tbytes=tbytes, offsets=offsets, strs=strs, base=base
        )

    # --- sizes and ids ----------------------------------------------------------

    @property
    def base(self) -> Btf | None:
        """The base BTF for split (module) BTF, else None."""
        return self._base

    @property
    def first_id(self) -> int:
        """Id of this blob's first type (1, or base's last id + 1 for split BTF)."""
        return self._first_id

    @property
    def next_id(self) -> int:
        """One past this blob's last type id: where a split BTF on top would start."""
        return self._first_id + len(self._offsets)

    @property
    def _str_end(self) -> int:
        return self._str_base + len(self._strs)

    def __len__(self) -> int:
        """Number of types in this blob alone (not counting a base)."""
        return len(self._offsets)

    def __repr__(self) -> str:
        return f"<Btf {self._origin}: ids {self._first_id}..{self.next_id - 1}>"

    def kind_counts(self) -> dict[str, int]:
        """Types per kind name in this blob; a diagnostic, it walks every type."""
        words, counts = self._words, [0] * len(KIND_NAMES)
        for pos in self._offsets:
            counts[words[pos + 1] >> 24 & 31] += 1
        return {KIND_NAMES[k]: n for k, n in enumerate(counts) if n}

    # --- public lookups -----------------------------------------------------------

    def find_enum(self, name: str) -> BtfEnum | None:
        """The ENUM or ENUM64 called ``name`` here, else in the base; None if absent.

        Empty enums (forward declarations) lose to a full definition. Two full
        definitions that disagree are a BtfError: picking one could give a wrong
        name, which is worse than none.
        """
        if name in self._enum_cache:
            return self._enum_cache[name]
        found: BtfEnum | None = None
        for tid in self._ids_named(name, _ENUMS):
            enum = self._decode_enum(self._type(tid), name)
            if found is None or (not found.members and enum.members):
                found = enum
            elif enum.members and enum != found:
                raise self._error(f"ambiguous: several different enums named {name}")
        if (found is None or not found.members) and self._base is not None:
            found = self._base.find_enum(name) or found
        self._enum_cache[name] = found
        return found

    def member_offset(self, struct: str, path: str) -> int:
        """Byte offset of ``path`` ("dev", "ns.inum") inside struct or union ``struct``.

        Members are followed through typedefs and qualifiers, and fields of
        anonymous struct/union members are found as C finds them. A bitfield that
        does not start on a byte boundary has no byte offset: BtfError.
        """
        bit_offset, _ = self._resolve_path(struct, path)
        return bit_offset // 8

    def member_size(self, struct: str, path: str) -> int:
        """Byte size of the member's type (typedefs resolved, arrays multiplied out)."""
        _, type_id = self._resolve_path(struct, path)
        return self._size_of(type_id)

    def type_id(self, name: str, kind: int) -> int | None:
        """Id of the first type of ``kind`` called ``name`` (this blob, then its base).

        tp_btf programs attach to a tracepoint by the id of its ``btf_trace_*``
        TYPEDEF in vmlinux.
        """
        ids = self._ids_named(name, frozenset({kind}))
        if ids:
            return ids[0]
        return self.base.type_id(name, kind) if self.base is not None else None

    def func_proto_params(self, name: str) -> tuple[str, ...] | None:
        """Parameter names of FUNC ``name``, or of the prototype a TYPEDEF points to.

        Tracepoint typedefs such as ``btf_trace_kfree_skb`` are pointers to an
        unnamed-parameter FUNC_PROTO, so their names are all ''. A trailing
        variadic parameter is reported as '...'. None when no such name exists.
        """
        for tid in self._ids_named(name, frozenset({FUNC})):
            proto = self._type(self._type(tid).ref)
            if proto.kind != FUNC_PROTO:
                raise self._error(f"FUNC {name} does not point to a FUNC_PROTO")
            return self._params(proto)
        for tid in self._ids_named(name, frozenset({TYPEDEF})):
            t = self._type(tid)
            for _ in range(_MAX_DEPTH):
                if t.kind == FUNC_PROTO:
                    return self._params(t)
                if (t.kind not in _MODIFIERS and t.kind != PTR) or t.ref == 0:
                    break
                t = self._type(t.ref)
            else:
                raise self._error(f"type reference loop from TYPEDEF {name}")
        return self._base.func_proto_params(name) if self._base is not None else None

    # --- decoding -------------------------------------------------------------------

    def _error(self, msg: str) -> BtfError:
        return BtfError(f"{self._origin}: {msg}")

    def _type(self, tid: int) -> _Type:
        """The header of type ``tid``, looked up in this blob or its base."""
        index = tid - self._first_id
        if index < 0:
            if self._base is not None and tid > 0:
                return self._base._type(tid)
            raise self._error(f"type id {tid} is not a type")
        if index >= len(self._offsets):
            raise self._error(f"type id {tid} out of range (last is {self.next_id - 1})")
        pos = self._offsets[index]
        w = self._words
        info = w[pos + 1]
        return _Type(
            self, tid, pos, w[pos], info >> 24 & 31, info & 0xFFFF, bool(info >> 31), w[pos + 2]
        )

    def _str(self, off: int) -> str:
        """The NUL-terminated string at ``off`` (base strings first for split BTF)."""
        if off < self._str_base:
            assert self._base is not None  # _str_base > 0 only with a base
            return self._base._str(off)
        local = off - self._str_base
        if local >= len(self._strs):
            raise self._error(f"string offset {off} out of range")
        end = self._strs.find(b"\0", local)  # found: the section ends with NUL
        return self._strs[local:end].decode("utf-8", "replace")

    def _name_offsets(self, name: str) -> frozenset[int]:
        """Every string offset (here or in the base) whose string is exactly ``name``.

        Offsets into the middle of a longer string count too: BTF allows a name
        to be the tail of another string.
        """
        cached = self._name_cache.get(name)
        if cached is not None:
            return cached
        found: set[int] = set()
        if name:
            needle = name.encode("utf-8", "surrogateescape") + b"\0"
            at = self._strs.find(needle)
            while at >= 0:
                found.add(self._str_base + at)
                at = self._strs.find(needle, at + 1)
        if self._base is not None:
            found |= self._base._name_offsets(name)
        result = frozenset(found)
        self._name_cache[name] = result
        return result

    def _ids_named(self, name: str, kinds: frozenset[int]) -> list[int]:
        """Ids of this blob's own types of ``kinds`` called ``name``, in id order.

        Searches a packed array of every type's name offset (built on first
        use) for each candidate offset with ``bytes.find``: a C-speed scan that
        only ever matches type names, never member names or values.
        """
        if self._name_index is None:
            names = array("I", map(self._words.__getitem__, self._offsets))
            self._name_index = names.tobytes()
            self._name_set = frozenset(names)
        index_bytes, offsets, words = self._name_index, self._offsets, self._words
        hits: list[int] = []
        # Most candidates (tails of longer strings: "net" in "init_net") name no
        # type at all; the set rules them out before any scan.
        for off in self._name_offsets(name) & self._name_set:
            needle = struct.pack("=I", off)
            at = index_bytes.find(needle)
            while at >= 0:
                if not at & 3:
                    index = at >> 2
                    if words[offsets[index] + 1] >> 24 & 31 in kinds:
                        hits.append(self._first_id + index)
                at = index_bytes.find(needle, at + 1)
        hits.sort()
        return hits

    def _decode_enum(self, t: _Type, name: str) -> BtfEnum:
        w, pos, owner = t.owner._words, t.pos + 3, t.owner
        members: list[tuple[str, int]] = []
        if t.kind == ENUM:
            for i in range(t.vlen):
                value = w[pos + 2 * i + 1]
                if t.kflag and value >= 1 << 31:
                    value -= 1 << 32
                members.append((owner._str(w[pos + 2 * i]), value))
        else:
            for i in range(t.vlen):
                p = pos + 3 * i
                value = w[p + 1] | w[p + 2] << 32
                if t.kflag and value >= 1 << 63:
                    value -= 1 << 64
                members.append((owner._str(w[p]), value))
        return BtfEnum(name=name, size=t.ref, signed=t.kflag, members=tuple(members))

    def _params(self, proto: _Type) -> tuple[str, ...]:
        w, pos, owner = proto.owner._words, proto.pos + 3, proto.owner
        names = []
        for i in range(proto.vlen):
            name_off, type_id = w[pos + 2 * i], w[pos + 2 * i + 1]
            last = i == proto.vlen - 1
            names.append("..." if last and name_off == 0 and type_id == 0 else owner._str(name_off))
        return tuple(names)

    def _strip(self, tid: int) -> _Type | None:
        """Follow typedefs and qualifiers to the underlying type; None for void."""
        for _ in range(_MAX_DEPTH):
            if tid == 0:
                return None
            t = self._type(tid)
            if t.kind not in _MODIFIERS:
                return t
            tid = t.ref
        raise self._error(f"type reference loop at type id {tid}")

    def _size_of(self, tid: int) -> int:
        count = 1
        for _ in range(_MAX_DEPTH):
            t = self._strip(tid)
            if t is None:
                raise self._error("void has no size")
            if t.kind in _SIZED:
                return count * t.ref
            if t.kind == PTR:
                return count * self._pointer_size()
            if t.kind != ARRAY:
                raise self._error(f"type id {t.tid} ({KIND_NAMES[t.kind]}) has no size")
            w = t.owner._words
            count *= w[t.pos + 5]
            tid = w[t.pos + 3]
        raise self._error(f"type reference loop at type id {tid}")

    def _pointer_size(self) -> int:
        """BTF does not record it; the size of ``long`` is what libbpf uses too."""
        if self._ptr_size is None:
            self._ptr_size = 8
            for name in ("long unsigned int", "long int", "unsigned long", "long"):
                ids = self._ids_named(name, frozenset({INT}))
                if ids:
                    self._ptr_size = self._type(ids[0]).ref
                    break
            else:
                if self._base is not None:
                    self._ptr_size = self._base._pointer_size()
        return self._ptr_size

    def _members(self, t: _Type) -> list[tuple[int, _Member]]:
        """(name offset, member) of a STRUCT/UNION, bitfields decoded both ways."""
        w, pos = t.owner._words, t.pos + 3
        out = []
        for i in range(t.vlen):
            p = pos + 3 * i
            name_off, type_id, off = w[p], w[p + 1], w[p + 2]
            if t.kflag:
                out.append((name_off, _Member(off & 0xFFFFFF, type_id, off >> 24)))
            else:
                out.append((name_off, _Member(off, type_id, 0)))
        return out

    def _find_composite(self, name: str) -> list[_Type]:
        ids = self._ids_named(name, _COMPOSITE)
        types = [self._type(tid) for tid in ids]
        full = [t for t in types if t.vlen]
        if full:
            return full
        if self._base is not None:
            return self._base._find_composite(name) or types
        return types

    def _resolve_path(self, struct_name: str, path: str) -> tuple[int, int]:
        """(bit offset, member type id) of a dotted member path.

        If several different full definitions share the struct's name, they must
        agree on the answer, or we refuse to guess.
        """
        cached = self._path_cache.get((struct_name, path))
        if cached is not None:
            return cached
        candidates = self._find_composite(struct_name)
        if not candidates:
            raise self._error(f"no struct or union named {struct_name}")
        results = {t.owner._walk_path(t, struct_name, path) for t in candidates}
        if len(results) > 1:
            raise self._error(f"ambiguous: several definitions of {struct_name} disagree on {path}")
        result = self._path_cache[(struct_name, path)] = results.pop()
        return result

    def _walk_path(self, top: _Type, struct_name: str, path: str) -> tuple[int, int]:
        parts = path.split(".")
        if not path or not all(parts):
            raise self._error(f"bad member path {path!r}")
        bit_offset = 0
        current: _Type | None = top
        member: _Member | None = None
        for depth, part in enumerate(parts):
            if depth:
                assert member is not None
                current = self._strip(member.type_id)
                if member.bitfield_size or current is None or current.kind not in _COMPOSITE:
                    done = ".".join(parts[:depth])
                    raise self._error(f"{struct_name}.{done} is not a struct or union")
            assert current is not None
            member = current.owner._find_member(current, part, set(), set())
            if member is None:
                raise self._error(f"{struct_name} has no member {'.'.join(parts[: depth + 1])}")
            bit_offset += member.bit_offset
        assert member is not None
        folded = self._int_bitfield(member)
        bit_offset += folded.bit_offset - member.bit_offset
        if folded.bitfield_size and bit_offset % 8:
            raise self._error(f"{struct_name}.{path} is a bitfield at bit {bit_offset}")
        return bit_offset, folded.type_id

    def _int_bitfield(self, member: _Member) -> _Member:
        """Without kind_flag, a bitfield hides in its INT's encoding: fold it in."""
        if member.bitfield_size:
            return member
        t = self._strip(member.type_id)
        if t is None or t.kind != INT:
            return member
        encoding = t.owner._words[t.pos + 3]
        bits, shift = encoding & 0xFF, encoding >> 16 & 0xFF
        if shift == 0 and bits == t.ref * 8:
            return member
        return _Member(member.bit_offset + shift, member.type_id, bits or 1)

    def _find_member(
        self, t: _Type, name: str, active: set[int], exhausted: set[int]
    ) -> _Member | None:
        """Member ``name`` of ``t``, looking inside anonymous struct/union members.

        ``active`` holds the structs on the current path (one seen again is a
        loop: corrupt data) and ``exhausted`` those already searched in vain, so
        each struct is searched at most once and a hostile blob cannot make this
        exponential.
        """
        if t.tid in active:
            raise self._error(f"type reference loop: struct id {t.tid} contains itself")
        if t.tid in exhausted:
            return None
        if len(active) >= _MAX_DEPTH:
            raise self._error("anonymous members nested too deep")
        active.add(t.tid)
        try:
            for name_off, member in self._members(t):
                if name_off:
                    if t.owner._str(name_off) == name:
                        return member
                    continue
                inner = self._strip(member.type_id)
                if inner is None or inner.kind not in _COMPOSITE:
                    continue
                found = inner.owner._find_member(inner, name, active, exhausted)
                if found is not None:
                    return _Member(
                        member.bit_offset + found.bit_offset, found.type_id, found.bitfield_size
                    )
        finally:
            active.discard(t.tid)
        exhausted.add(t.tid)
        return None


def _index_types(words: memoryview, fail) -> array:
    """Word index of every type record: the one pass that touches every type.

    Kept as lean as possible (it runs ~126k times on vmlinux): a step table
    lookup per record, no per-record validation. An unknown kind steps far past
    the end, so only the last indexed record can be bad, and that is checked
    once after the loop.
    """
    offsets = array("I")
    add = offsets.append
    fixed, per_item = _STEP_FIXED, _STEP_VLEN
    pos, last, end = 0, len(words) - 3, len(words)
    while pos <= last:
        add(pos)
        info = words[pos + 1]
        kind = info >> 24 & 31
        pos += fixed[kind] + (info & 0xFFFF) * per_item[kind]
    if pos != end:
        if pos < end:
            raise fail(f"truncated: {end - pos} stray words after type #{len(offsets)}")
        kind = words[offsets[-1] + 1] >> 24 & 31
        if kind not in _FIXED_WORDS:
            raise fail(f"unknown BTF kind {kind} in type #{len(offsets)}")
        raise fail(f"truncated: type #{len(offsets)} runs past the end of the type section")
    return offsets


def _check_header(data: bytes, fail) -> tuple[str, tuple[int, int, int, int, int]]:
    """(byte order, (hdr_len, type_off, type_len, str_off, str_len)) of a sane header.

    A header that declares more than MAX_BTF_BYTES is refused here, before
    anything past it is read.
    """
    if len(data) < 2:
        raise fail("truncated: no BTF header")
    if data[:2] == struct.pack("<H", BTF_MAGIC):
        endian = "<"
    elif data[:2] == struct.pack(">H", BTF_MAGIC):
        endian = ">"
    else:
        raise fail(f"bad magic 0x{int.from_bytes(data[:2], 'little'):04x}, not BTF")
    if len(data) < _HEADER_SIZE:
        raise fail("truncated BTF header")
    _, version, _, *fields = struct.unpack_from(endian + _HEADER, data)
    hdr_len = fields[0]
    if version != BTF_VERSION:
        raise fail(f"unsupported BTF version {version}")
    if hdr_len < _HEADER_SIZE:
        raise fail(f"header length {hdr_len} is too short")
    size = _declared_size(fields)
    if size > MAX_BTF_BYTES:
        raise fail(
            f"too large: the header declares {size:,} bytes, more than droptop reads "
            f"from a BTF file ({MAX_BTF_BYTES >> 20} MiB)"
        )
    return endian, (fields[0], fields[1], fields[2], fields[3], fields[4])


def _declared_size(fields) -> int:
    """Header plus the furthest-reaching section: the bytes a BTF blob is made of."""
    hdr_len, type_off, type_len, str_off, str_len = fields
    return hdr_len + max(type_off + type_len, str_off + str_len)


class _BoundedReader:
    """Reads at most what is asked from a path that may be anything.

    Opened non-blocking, so a FIFO without a writer reads as empty instead of
    blocking in open(2); a pipe or device that stays silent for
    READ_IDLE_TIMEOUT, or takes longer than READ_TOTAL_TIMEOUT in all, is a
    BtfError. A directory is refused at once.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | getattr(os, "O_NOCTTY", 0)
        try:
            self.fd = os.open(name, flags)
        except OSError as e:
            raise BtfError(f"cannot read BTF from {name}: {e.strerror or e}") from None
        mode = os.fstat(self.fd).st_mode
        if stat.S_ISDIR(mode):
            os.close(self.fd)
            raise BtfError(f"cannot read BTF from {name}: is a directory")
        self.regular = stat.S_ISREG(mode)
        self.deadline = time.monotonic() + READ_TOTAL_TIMEOUT

    def __enter__(self) -> _BoundedReader:
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)

    def read(self, n: int) -> bytes:
        """Up to ``n`` bytes: fewer only at the end of the file."""
        chunks: list[bytes] = []
        left = n
        while left > 0:
            try:
                chunk = os.read(self.fd, min(left, _READ_CHUNK))
            except BlockingIOError:
                self._wait()
                continue
            except OSError as e:
                raise BtfError(f"cannot read BTF from {self.name}: {e.strerror or e}") from None
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
            if not self.regular and time.monotonic() > self.deadline:
                raise self._timeout(f"still reading after {READ_TOTAL_TIMEOUT:g} s")
        return b"".join(chunks)

    def _wait(self) -> None:
        timeout = min(READ_IDLE_TIMEOUT, max(0.0, self.deadline - time.monotonic()))
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            raise self._timeout(f"no data for {timeout:g} s")

    def _timeout(self, what: str) -> BtfError:
        return BtfError(f"cannot read BTF from {self.name}: {what}")


def read_limited(path: str | os.PathLike, limit: int) -> bytes:
    """The whole of a small file, or a BtfError if it holds more than ``limit`` bytes.

    For kernel text files read by path (the tracepoint format file): the same
    non-blocking, time-limited reads as BTF files, so no path can make droptop
    read without end.
    """
    name = os.fspath(path)
    with _BoundedReader(name) as reader:
        data = reader.read(limit + 1)
    if len(data) > limit:
        raise BtfError(f"{name}: more than {limit} bytes, not the file expected")
    return data


def load_vmlinux(path: str = VMLINUX_BTF) -> Btf:
    """The running kernel's BTF (or another vmlinux BTF file)."""
    return Btf.from_file(path)
