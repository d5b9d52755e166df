"""The snapshot file: droptop's JSON format, its schema version, loading and atomic saving.

`ctrl+s`, `-o x.json` and batch JSON lines are written from here; `--replay` loads
through here. A full snapshot carries the reason table, stacks and locations, so
`droptop --replay` on another machine shows the same names.
"""

from __future__ import annotations

import json
import math
import os
import stat
import time
from pathlib import Path
from typing import Any, NoReturn

from droptop.atomic import write_atomic
from droptop.errors import DroptopError
from droptop.model import (
    Attribution,
    DropKey,
    DropRow,
    Location,
    NicRates,
    PacketSample,
    Reason,
    Snapshot,
    SocketOwner,
    StackSample,
)
from droptop.packets.decode import decode_cached, sample_record
from droptop.sanitize import printable

SNAPSHOT_VERSION = 1


def row_to_dict(row: DropRow, *, full: bool = False, poll: int = 0) -> dict[str, Any]:
    counter = row.source == "counter"
    who = row.who
    socket = who.socket
    d: dict[str, Any] = {
        "reason": row.reason.name,
        "raw": None if counter else row.reason.raw,
        "subsys": row.reason.subsys,
        "source": row.reason.source,
        "origin": row.source,
        "counter": row.key.counter or None,
        "comm": row.key.comm,
        # True when the task in comm did not make the drop (interrupted, or kernel work).
        "kernel_context": (not who.blames_task) if who.context else row.key.kernel_context,
        "kthread": row.key.kernel_context,  # the kernel's flag: the idle task or a kthread
        "context": who.context,
        "service": who.service,
        "cgroup": who.cgroup,
        "netns_name": who.netns_name,
        "socket": None
        if socket is None
        else {"inode": socket.inode, "pid": socket.pid, "comm": socket.comm},
        "benign": row.benign,
        "ifindex": row.key.ifindex,
        "ifname": row.ifname,
        "netns": row.key.netns,
        "irq": row.key.irq,
        "sock_ino": row.key.sock_ino,
        "cgroup_id": row.key.cgroup_id,
        "packets": row.packets,
        "bytes": row.bytes,
        "rate": round(row.rate, 3),
        "byte_rate": round(row.byte_rate, 3),
    }
    if full:
        d["first_seen"] = row.first_seen
        d["history"] = [round(h, 3) for h in row.history_at(poll)]
        d["locations"] = [{"symbol": loc.symbol, "packets": loc.packets} for loc in row.locations]
        d["stacks"] = [{"count": s.count, "frames": list(s.frames)} for s in row.stacks]
        d["samples"] = [sample_record(s, decode_cached(s)) for s in row.samples]
    return d


def _nic_to_dict(n: NicRates) -> dict[str, Any]:
    return {
        "name": n.name,
        "rx_drops": n.rx_drops,
        "tx_drops": n.tx_drops,
        "rx_errors": n.rx_errors,
        "tx_errors": n.tx_errors,
        "rx_drop_rate": round(n.rx_drop_rate, 3),
        "tx_drop_rate": round(n.tx_drop_rate, 3),
        "rx_err_rate": round(n.rx_err_rate, 3),
        "tx_err_rate": round(n.tx_err_rate, 3),
    }


def snapshot_to_dict(snap: Snapshot, *, full: bool = False) -> dict[str, Any]:
    """JSON-ready dict. json.dumps escapes control characters, so comm is safe as is."""
    d: dict[str, Any] = {
        "time": snap.time,
        "interval": round(snap.interval, 6),
        "kernel": snap.kernel,
        "hostname": snap.hostname,
        "overflow": snap.overflow_packets,
        "overflow_bytes": snap.overflow_bytes,
        "map_used": snap.map_used,
        "map_capacity": snap.map_capacity,
        "names_source": snap.names_source,
        "total_packets": snap.total_packets,
        "total_rate": round(snap.total_rate, 3),
        "bpf_ns_per_drop": None if snap.bpf_ns_per_drop is None else round(snap.bpf_ns_per_drop, 1),
        "bpf_missed": snap.bpf_missed,
        "stacks_enabled": snap.stacks_enabled,
        "rows": [row_to_dict(r, full=full, poll=snap.poll) for r in snap.rows],
        "interfaces": [_nic_to_dict(n) for n in snap.interfaces],
    }
    if full:
        d["droptop_snapshot"] = SNAPSHOT_VERSION
        d["source"] = snap.source
        d["notes"] = list(snap.notes)
        d["total_history"] = [round(h, 3) for h in snap.total_history]
        d["poll"] = snap.poll
        d["reason_table"] = [
            {"raw": r.raw, "hex": r.hex, "subsys": r.subsys, "name": r.name, "source": r.source}
            for r in snap.reason_table
        ]
    return d


def to_json(snap: Snapshot, *, full: bool = False) -> str:
    return json.dumps(snapshot_to_dict(snap, full=full), separators=(",", ":"))


def save_snapshot(snap: Snapshot, directory: str | os.PathLike) -> Path:
    """The TUI's ctrl+s: a full JSON snapshot named after the time, in `directory`."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(snap.time))
    name = f"droptop-{stamp}-{int(snap.time * 1000) % 1000:03d}.json"
    d = Path(directory)
    if not d.is_dir():
        raise DroptopError(f"cannot write snapshot: {printable(str(d))} is not a directory")
    return write_atomic(d / name, to_json(snap, full=True) + "\n")


# --- loading: every file is untrusted ----------------------------------------------------

MAX_SNAPSHOT_BYTES = 256 * 2**20
"""The largest snapshot file read (256 MiB), and what a pipe or device is read up to.

Measured: a full snapshot of 10,240 rows (the default --max-keys) with 60-entry
histories and one 30-frame stack per row is ~20 MiB; four distinct 40-frame stacks
on every row, ~69 MiB. The cap leaves 12x the first and 3.7x the second.
"""

MAX_LEN: dict[str, int] = {
    "comm": 64,  # TASK_COMM_LEN is 16 (15 bytes); a \\xNN escape per byte is 60 characters
    "ifname": 64,  # IFNAMSIZ is 16, the same
    "reason": 128,  # the longest kernel reason name is ~40; raw labels are shorter
    "subsys": 64,
    "source": 32,  # where a name came from: btf, tracefs, raw, snapshot
    "frame": 1024,  # KSYM_NAME_LEN is 512 since 6.1 (Rust symbols), plus +0xoff and [module]
    "symbol": 1024,
    "note": 1024,
    "hostname": 256,  # HOST_NAME_MAX is 64
    "kernel": 256,  # a release string is at most 64
    "context": 32,  # softirq-inline and the like
    "service": 256,  # a systemd unit name is at most 255
    "cgroup": 4096,  # PATH_MAX
    "netns_name": 320,  # an `ip netns` name (NAME_MAX) or "pid N (comm)"
    "benign": 1024,
    "hex": 2 * (32 + 256),  # the MAC header and at most 256 copied bytes, as hex
}
"""Longest string accepted per field, in characters. Longer is refused, not cut:
a 10 MB comm once froze the drill-down for 30 s."""

MAX_ROWS = 2**20
"""Rows per snapshot (the default map holds 10,240 keys)."""
MAX_STACKS_PER_ROW = 256
MAX_FRAMES_PER_STACK = 256
"""A kernel stack has at most PERF_MAX_STACK_DEPTH (127) frames."""
MAX_LOCATIONS_PER_ROW = 4096
MAX_HISTORY = 3600
"""Entries in a rate history (droptop keeps 60)."""
MAX_SAMPLES_PER_ROW = 64
"""The kernel keeps 8 a row; a merged row may carry a few more."""
MAX_NOTES = 256
MAX_REASONS = 2**16
MAX_INTERFACES = 4096
MAX_COUNT = 2**64 - 1
"""Counters are u64 in the kernel."""
MAX_RATE = float(2**64)
MAX_TIME = 253_402_300_799.0
"""9999-12-31 23:59:59 UTC: the last time a four-digit-year clock can show."""

_CHUNK = 1 << 20
_WHITESPACE = b" \t\r\n"
_UTF8_BOM = b"\xef\xbb\xbf"
_MISSING: Any = object()


class _Invalid(Exception):
    """A bad value, with where it is; load_snapshot adds the file name."""


class _NonFinite:
    """NaN, Infinity or -Infinity as the file spelled it, so the message can say so."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


def _describe(v: Any) -> str:
    """A short, escaped picture of a bad value for a one-line message."""
    if isinstance(v, _NonFinite):
        return v.text
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        text = str(v)
        return text if len(text) <= 24 else f"{text[:12]}…({len(text)} digits)"
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        shown = repr(printable(v[:40]))
        return shown if len(v) <= 40 else f"{shown}…({len(v)} characters)"
    if isinstance(v, list):
        return "a list"
    if isinstance(v, dict):
        return "an object"
    return type(v).__name__  # pragma: no cover (JSON has no other types)


def _at(where: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{where}[{key}]"
    return f"{where}.{key}" if where else key


def _fail(where: str, expected: str, value: Any) -> NoReturn:
    raise _Invalid(f"{where}: expected {expected}, got {_describe(value)}")


def _field(d: dict[str, Any], key: str, where: str, default: Any) -> Any:
    v = d.get(key, _MISSING)
    if v is _MISSING:
        if default is _MISSING:
            raise _Invalid(f"{_at(where, key)}: missing")
        return default
    return v


def _object(v: Any, where: str) -> dict[str, Any]:
    if type(v) is not dict:
        _fail(where, "an object", v)
    return v


def _list(d: dict[str, Any], key: str, where: str, limit: int, default: Any = ()) -> list[Any]:
    v = _field(d, key, where, default)
    if v is default:
        return list(v)
    if type(v) is not list:
        _fail(_at(where, key), "a list", v)
    if len(v) > limit:
        raise _Invalid(f"{_at(where, key)}: more than {limit} entries ({len(v)})")
    return v


def _count(v: Any, where: str) -> int:
    if type(v) is not int or not 0 <= v <= MAX_COUNT:
        _fail(where, "a non-negative integer", v)
    return v


def _int(d: dict[str, Any], key: str, where: str, default: Any = _MISSING) -> int:
    v = _field(d, key, where, default)
    return v if v is default else _count(v, _at(where, key))


def _number(v: Any, where: str, *, hi: float = MAX_RATE, what: str = "") -> float:
    if type(v) is int:
        if 0 <= v <= hi:
            return float(v)
    elif type(v) is float and math.isfinite(v) and 0.0 <= v <= hi:
        return v
    _fail(where, what or "a finite non-negative number", v)


def _float(d: dict[str, Any], key: str, where: str, default: Any = 0.0) -> float:
    v = _field(d, key, where, default)
    return v if v is default else _number(v, _at(where, key))


def _time(d: dict[str, Any], key: str, where: str, default: Any = _MISSING) -> float:
    v = _field(d, key, where, default)
    what = "a time in seconds since the epoch"
    return v if v is default else _number(v, _at(where, key), hi=MAX_TIME, what=what)


def _text(v: Any, where: str, limit: int) -> str:
    if type(v) is not str:
        _fail(where, "a string", v)
    if len(v) > limit:
        raise _Invalid(f"{where}: longer than {limit} characters ({len(v)})")
    return v


def _str(d: dict[str, Any], key: str, where: str, kind: str, default: Any = _MISSING) -> str:
    v = _field(d, key, where, default)
    return v if v is default else _text(v, _at(where, key), MAX_LEN[kind])


def _bool(d: dict[str, Any], key: str, where: str, default: bool) -> bool:
    """JSON true/false; 0 and 1 too (the CSV spelling)."""
    v = _field(d, key, where, default)
    if type(v) is bool:
        return v
    if type(v) is int and v in (0, 1):
        return bool(v)
    _fail(_at(where, key), "true or false", v)


def _nic_from_dict(d: dict[str, Any], where: str) -> NicRates:
    return NicRates(
        name=_str(d, "name", where, "ifname"),
        rx_drop_rate=_float(d, "rx_drop_rate", where),
        tx_drop_rate=_float(d, "tx_drop_rate", where),
        rx_err_rate=_float(d, "rx_err_rate", where),
        tx_err_rate=_float(d, "tx_err_rate", where),
        rx_drops=_int(d, "rx_drops", where, 0),
        tx_drops=_int(d, "tx_drops", where, 0),
        rx_errors=_int(d, "rx_errors", where, 0),
        tx_errors=_int(d, "tx_errors", where, 0),
    )


def _optional_str(d: dict[str, Any], key: str, where: str, kind: str) -> str | None:
    v = d.get(key)
    return None if v is None else _text(v, _at(where, key), MAX_LEN[kind])


def _socket(v: Any, where: str) -> SocketOwner | None:
    if v is None:
        return None
    s = _object(v, where)
    pid = s.get("pid")
    return SocketOwner(
        _int(s, "inode", where),
        None if pid is None else _count(pid, _at(where, "pid")),
        _optional_str(s, "comm", where, "comm"),
    )


def _sample(v: Any, where: str) -> PacketSample:
    """A sample back from its JSON record: the copied bytes are `hex` (MAC header first)."""
    s = _object(v, where)
    raw_hex = _str(s, "hex", where, "hex")
    try:
        data = bytes.fromhex(raw_hex)
    except ValueError:
        _fail(_at(where, "hex"), "hex digits", raw_hex)
    mac_len = _int(s, "mac_len", where, 0)
    if mac_len > len(data):
        _fail(_at(where, "mac_len"), f"at most {len(data)} (the bytes in hex)", mac_len)
    return PacketSample(
        time=_time(s, "time", where, 0.0),
        ifindex=_int(s, "ifindex", where, 0),
        ifname=_str(s, "ifname", where, "ifname", ""),
        netns=_int(s, "netns", where, 0),
        protocol=_int(s, "protocol", where, 0),
        length=_int(s, "len", where, len(data) - mac_len),
        mac=data[:mac_len],
        network=data[mac_len:],
        link_type=_int(s, "link_type", where, 0),
    )


def _row_from_dict(r: dict[str, Any], where: str, poll: int) -> DropRow:
    origin = _str(r, "origin", where, "source", "kfree_skb")
    if origin not in ("kfree_skb", "counter"):
        _fail(_at(where, "origin"), "kfree_skb or counter", origin)
    counter = origin == "counter"
    kernel_context = _bool(r, "kernel_context", where, False)
    key = DropKey(
        raw_reason=-1 if counter else _int(r, "raw", where),
        comm=_str(r, "comm", where, "comm"),
        kernel_context=_bool(r, "kthread", where, kernel_context),
        ifindex=_int(r, "ifindex", where, 0),
        netns=_int(r, "netns", where, 0),
        irq=_bool(r, "irq", where, False),
        sock_ino=_int(r, "sock_ino", where, 0),
        cgroup_id=_int(r, "cgroup_id", where, 0),
        counter=_optional_str(r, "counter", where, "reason") or "",
    )
    context = _str(r, "context", where, "context", "")
    who = Attribution(
        context=context,
        blames_task=not kernel_context,
        service=_optional_str(r, "service", where, "service"),
        cgroup=_optional_str(r, "cgroup", where, "cgroup"),
        netns_name=_str(r, "netns_name", where, "netns_name", ""),
        socket=_socket(r.get("socket"), _at(where, "socket")),
    )
    history = _list(r, "history", where, MAX_HISTORY)
    locations = _list(r, "locations", where, MAX_LOCATIONS_PER_ROW)
    stacks = _list(r, "stacks", where, MAX_STACKS_PER_ROW)
    samples = _list(r, "samples", where, MAX_SAMPLES_PER_ROW)
    return DropRow.of(
        key=key,
        reason=Reason(
            key.raw_reason,
            _str(r, "reason", where, "reason"),
            _str(r, "subsys", where, "subsys"),
            "snapshot",
        ),
        ifname=_str(r, "ifname", where, "ifname", ""),
        packets=_int(r, "packets", where),
        bytes=_int(r, "bytes", where),
        rate=_float(r, "rate", where),
        byte_rate=_float(r, "byte_rate", where),
        history=tuple(_number(h, f"{where}.history[{i}]") for i, h in enumerate(history)),
        history_end=poll,
        locations=tuple(_location(x, f"{where}.locations[{i}]") for i, x in enumerate(locations)),
        stacks=tuple(_stack(s, f"{where}.stacks[{i}]") for i, s in enumerate(stacks)),
        first_seen=_time(r, "first_seen", where, 0.0),
        who=who,
        source=origin,
        benign=_optional_str(r, "benign", where, "benign"),
        samples=tuple(_sample(s, f"{where}.samples[{i}]") for i, s in enumerate(samples)),
    )


def _location(x: Any, where: str) -> Location:
    x = _object(x, where)
    return Location(_str(x, "symbol", where, "symbol"), _int(x, "packets", where))


def _stack(s: Any, where: str) -> StackSample:
    s = _object(s, where)
    frames = _list(s, "frames", where, MAX_FRAMES_PER_STACK, _MISSING)
    return StackSample(
        tuple(_text(f, f"{where}.frames[{i}]", MAX_LEN["frame"]) for i, f in enumerate(frames)),
        _int(s, "count", where),
    )


def _reason_from_dict(r: Any, where: str) -> Reason:
    r = _object(r, where)
    return Reason(
        _int(r, "raw", where),
        _str(r, "name", where, "reason"),
        _str(r, "subsys", where, "subsys", "core"),
        _str(r, "source", where, "source", "snapshot"),
    )


def _snapshot(d: Any) -> Snapshot:
    d = _object(d, "the top level")
    version = d.get("droptop_snapshot", SNAPSHOT_VERSION)
    if type(version) is not int or version < 1:
        _fail("droptop_snapshot", "a format number", version)
    if version > SNAPSHOT_VERSION:
        raise _Invalid(
            f"written by a newer droptop (format {version}; this one reads {SNAPSHOT_VERSION})"
        )
    poll = _int(d, "poll", "", 0)
    rows = [
        _row_from_dict(_object(r, f"rows[{i}]"), f"rows[{i}]", poll)
        for i, r in enumerate(_list(d, "rows", "", MAX_ROWS, _MISSING))
    ]
    bpf_ns = d.get("bpf_ns_per_drop")
    if bpf_ns is not None:
        bpf_ns = _number(bpf_ns, "bpf_ns_per_drop", what="null or a finite non-negative number")
    return Snapshot(
        time=_time(d, "time", ""),
        interval=_float(d, "interval", ""),
        kernel=_str(d, "kernel", "", "kernel", ""),
        hostname=_str(d, "hostname", "", "hostname", ""),
        rows=tuple(rows),
        total_packets=_int(d, "total_packets", "", sum(r.packets for r in rows)),
        total_rate=_float(d, "total_rate", ""),
        total_history=tuple(
            _number(h, f"total_history[{i}]")
            for i, h in enumerate(_list(d, "total_history", "", MAX_HISTORY))
        ),
        poll=poll,
        overflow_packets=_int(d, "overflow", "", 0),
        overflow_bytes=_int(d, "overflow_bytes", "", 0),
        map_used=_int(d, "map_used", "", 0),
        map_capacity=_int(d, "map_capacity", "", 0),
        names_source="snapshot",
        reason_table=tuple(
            _reason_from_dict(r, f"reason_table[{i}]")
            for i, r in enumerate(_list(d, "reason_table", "", MAX_REASONS))
        ),
        stacks_enabled=_bool(d, "stacks_enabled", "", True),
        bpf_ns_per_drop=bpf_ns,
        bpf_missed=_int(d, "bpf_missed", "", 0),
        source="replay",
        notes=tuple(
            _text(n, f"notes[{i}]", MAX_LEN["note"])
            for i, n in enumerate(_list(d, "notes", "", MAX_NOTES))
        ),
        interfaces=tuple(
            _nic_from_dict(_object(n, f"interfaces[{i}]"), f"interfaces[{i}]")
            for i, n in enumerate(_list(d, "interfaces", "", MAX_INTERFACES))
        ),
    )


def snapshot_from_dict(d: Any, *, name: str = "snapshot") -> Snapshot:
    """A parsed snapshot (full, or one batch JSON line) -> Snapshot, every field checked.

    Types, finite non-negative numbers, u64 counts, times a clock can show, string
    lengths and list sizes are all checked, because a replayed file may come from
    anywhere. The only exception raised is DroptopError, with one line that says
    what is wrong and where: `x.json: rows[3].packets: expected a non-negative
    integer, got Infinity`. Strings are kept exactly; front ends sanitize them.
    """
    try:
        return _snapshot(d)
    except _Invalid as e:
        raise DroptopError(f"{name}: {e}") from None


def read_limited(path: str | os.PathLike, limit: int | None = None) -> bytes:
    """The bytes of a snapshot file, never more than `limit` (default MAX_SNAPSHOT_BYTES).

    A regular file over the limit is refused from its size, before reading. Pipes
    and devices are read in chunks up to limit + 1 bytes, so `/dev/zero` or a pipe
    that never ends stops at the cap, and a signal (SIGTERM, Ctrl-C) is handled
    between chunks. A NUL byte (JSON text never holds one) or a first character
    other than `{` ends the read at once: /dev/zero and /dev/urandom fail on
    their first chunk.
    """
    limit = MAX_SNAPSHOT_BYTES if limit is None else limit
    name = printable(os.fsdecode(path))
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise DroptopError(f"cannot read {name}: {e.strerror or e}") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise DroptopError(f"{name}: is a directory, not a snapshot file")
        if stat.S_ISREG(st.st_mode) and st.st_size > limit:
            raise DroptopError(
                f"{name}: {_mib(st.st_size)} is larger than a snapshot can be ({_mib(limit)})"
            )
        chunks: list[bytes] = []
        total = 0
        seen_start = False
        while total <= limit:
            try:
                chunk = os.read(fd, min(_CHUNK, limit + 1 - total))
            except OSError as e:
                raise DroptopError(f"cannot read {name}: {e.strerror or e}") from None
            if not chunk:
                break
            if total == 0:
                if chunk[:2] in (b"\xff\xfe", b"\xfe\xff"):
                    raise DroptopError(f"{name}: UTF-16 text; a droptop snapshot is UTF-8")
                chunk_head = chunk.removeprefix(_UTF8_BOM)
            else:
                chunk_head = chunk
            nul = chunk.find(b"\0")
            if nul >= 0:
                two = chunk[:2]
                utf16 = total == 0 and len(two.strip(b"\0")) == 1 and two.strip(b"\0").isascii()
                hint = "; UTF-16 text? a snapshot is UTF-8" if utf16 else ""
                raise DroptopError(
                    f"{name}: not a droptop snapshot: binary data "
                    f"(a NUL byte at offset {total + nul}{hint})"
                )
            if not seen_start and (head := chunk_head.lstrip(_WHITESPACE)):
                seen_start = True
                if head[:1] != b"{":
                    start = printable(head[:12].decode("utf-8", "backslashreplace"))
                    raise DroptopError(
                        f"{name}: not a droptop snapshot: expected a JSON object, "
                        f"the file starts with {start!r}"
                    )
            chunks.append(chunk)
            total += len(chunk)
        if total > limit:
            raise DroptopError(f"{name}: more than {_mib(limit)}: too big for a snapshot")
        return b"".join(chunks)
    finally:
        os.close(fd)


def _parse(data: bytes, name: str) -> Any:
    """JSON text -> Python values; NaN and Infinity kept as _NonFinite for the message."""
    data = data.removeprefix(_UTF8_BOM)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DroptopError(
            f"{name}: not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start})"
        ) from None
    stripped = text.strip()
    if not stripped:
        raise DroptopError(f"{name}: empty file, not a droptop snapshot")
    # A file of batch JSON lines (`-b --format json > f`): the newest is the last line.
    doc = stripped if "\n{" not in stripped else stripped.rsplit("\n", 1)[-1]
    try:
        return json.loads(doc, parse_constant=_NonFinite)
    except json.JSONDecodeError as e:
        raise DroptopError(
            f"{name}: not a droptop snapshot: invalid JSON ({e.msg} at line {e.lineno} "
            f"column {e.colno})"
        ) from None
    except RecursionError:
        raise DroptopError(f"{name}: not a droptop snapshot: JSON nested too deeply") from None
    except ValueError as e:  # an integer longer than Python converts (4300 digits)
        raise DroptopError(f"{name}: not a droptop snapshot: a number too long ({e})") from None


def load_snapshot(path: str | os.PathLike) -> Snapshot:
    """Read a snapshot written by save_snapshot / write_output, or a file of batch JSON lines.

    Bounded (read_limited), decoded strictly as UTF-8, and checked field by field
    (snapshot_from_dict): whatever the file holds, the result is a Snapshot every
    front end can show, or a one-line DroptopError that starts with the file name.
    """
    name = printable(os.fsdecode(path))
    value = _parse(read_limited(path), name)
    if type(value) is not dict:
        raise DroptopError(
            f"{name}: not a droptop snapshot: expected a JSON object, got {_describe(value)}"
        )
    return snapshot_from_dict(value, name=name)
