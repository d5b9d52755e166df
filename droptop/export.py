"""One writer for everything droptop puts in a file or on stdout: JSON, CSV, text.

Batch mode, `-o FILE` and the TUI's snapshot key all go through here, so a file
always holds what the screen (or the batch line) held. Snapshots written with
``full=True`` carry the reason table, stacks and locations, so that
``droptop --replay`` on another machine shows the same names.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from droptop.errors import DroptopError
from droptop.model import (
    DropKey,
    DropRow,
    Location,
    Reason,
    Snapshot,
    StackSample,
)
from droptop.sanitize import printable

FORMATS = ("text", "json", "csv")
SNAPSHOT_VERSION = 1

CSV_FIELDS = (
    "time",
    "reason",
    "raw",
    "subsys",
    "comm",
    "kernel_context",
    "ifindex",
    "ifname",
    "netns",
    "packets",
    "bytes",
    "rate",
)


def format_for_path(path: str | os.PathLike, default: str = "json") -> str:
    """The output format a file name asks for (.json, .csv, .txt/.text)."""
    suffix = Path(path).suffix.lower()
    return {".json": "json", ".csv": "csv", ".txt": "text", ".text": "text"}.get(suffix, default)


# --- JSON -----------------------------------------------------------------


def row_to_dict(row: DropRow, *, full: bool = False, poll: int = 0) -> dict[str, Any]:
    d: dict[str, Any] = {
        "reason": row.reason.name,
        "raw": row.reason.raw,
        "subsys": row.reason.subsys,
        "source": row.reason.source,
        "comm": row.key.comm,
        "kernel_context": row.key.kernel_context,
        "ifindex": row.key.ifindex,
        "ifname": row.ifname,
        "netns": row.key.netns,
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
    return d


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


# --- CSV ------------------------------------------------------------------


def to_csv(snap: Snapshot, *, header: bool = True) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if header:
        w.writerow(CSV_FIELDS)
    for r in snap.rows:
        w.writerow(
            (
                f"{snap.time:.3f}",
                r.reason.name,
                r.reason.raw,
                r.reason.subsys,
                printable(r.key.comm),
                int(r.key.kernel_context),
                r.key.ifindex,
                printable(r.ifname),
                r.key.netns,
                r.packets,
                r.bytes,
                f"{r.rate:.3f}",
            )
        )
    return buf.getvalue()


# --- text -----------------------------------------------------------------


def human_count(n: float) -> str:
    """Compact count: 999, 1.2k, 35.0M. Keeps columns narrow without losing magnitude."""
    n = float(n)
    for unit in ("", "k", "M", "G", "T"):
        if abs(n) < 1000:
            return f"{n:.0f}{unit}" if unit == "" else f"{n:.1f}{unit}"
        n /= 1000
    return f"{n:.1f}P"


def comm_label(key: DropKey) -> str:
    """comm for display; kernel context is marked in brackets like ps marks kernel threads."""
    comm = printable(key.comm)
    return f"[{comm}]" if key.kernel_context else comm


def to_text(snap: Snapshot, *, width: int = 80, limit: int | None = None) -> str:
    """A top-like frame: a one-line summary, then one row per drop key, under `width` columns."""
    t = time.strftime("%H:%M:%S", time.localtime(snap.time))
    head = (
        f"{t} {snap.hostname} {snap.kernel}  drops {human_count(snap.total_rate)}/s"
        f"  total {human_count(snap.total_packets)}  names:{snap.names_source}"
    )
    if snap.overflow_packets:
        head += f"  OVERFLOW {snap.overflow_packets}"
    lines = [printable(head)[:width]]
    fixed = 7 + 1 + 8 + 1 + 16 + 1 + 10 + 1  # rate, total, comm, ifname + spaces
    reason_w = max(12, width - fixed)
    lines.append(
        f"{'RATE/s':>7} {'TOTAL':>8} {'REASON':<{reason_w}.{reason_w}} {'COMM':<16} {'IF':<10}"
    )
    rows = snap.rows if limit is None else snap.rows[:limit]
    for r in rows:
        reason = (
            r.reason.name if r.reason.subsys == "core" else f"{r.reason.subsys}:{r.reason.name}"
        )
        ifname = (
            printable(r.ifname) if r.ifname else ("-" if not r.key.ifindex else str(r.key.ifindex))
        )
        lines.append(
            f"{human_count(r.rate):>7} {human_count(r.packets):>8} "
            f"{reason:<{reason_w}.{reason_w}} {comm_label(r.key):<16.16} {ifname:<10.10}"
        )
    return "\n".join(line.rstrip() for line in lines) + "\n"


def render(snap: Snapshot, fmt: str, *, width: int = 80, header: bool = True) -> str:
    if fmt == "json":
        return to_json(snap) + "\n"
    if fmt == "csv":
        return to_csv(snap, header=header)
    if fmt == "text":
        return to_text(snap, width=width)
    raise ValueError(f"unknown format {fmt!r}")


# --- files ----------------------------------------------------------------


def write_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write via a temp file in the same directory and rename, so readers never see half a file."""
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=directory)
    except OSError as e:
        raise DroptopError(f"cannot write {target}: {e.strerror or e}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise DroptopError(f"cannot write {target}: {e.strerror or e}") from None
    return target


def write_output(snap: Snapshot, path: str | os.PathLike, fmt: str | None = None) -> Path:
    """`-o FILE`: the snapshot in the format the extension asks for; JSON files are full."""
    fmt = fmt or format_for_path(path)
    text = to_json(snap, full=True) + "\n" if fmt == "json" else render(snap, fmt, width=10_000)
    return write_atomic(path, text)


def save_snapshot(snap: Snapshot, directory: str | os.PathLike) -> Path:
    """The TUI's ctrl+s: a full JSON snapshot named after the time, in `directory`."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(snap.time))
    name = f"droptop-{stamp}-{int(snap.time * 1000) % 1000:03d}.json"
    d = Path(directory)
    if not d.is_dir():
        raise DroptopError(f"cannot write snapshot: {d} is not a directory")
    return write_atomic(d / name, to_json(snap, full=True) + "\n")


def load_snapshot(path: str | os.PathLike) -> Snapshot:
    """Read a snapshot written by save_snapshot / write_output (or a batch JSON line)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise DroptopError(f"cannot read {p}: {e.strerror or e}") from None
    line = text.strip().splitlines()[-1] if text.strip() else ""
    try:
        d = json.loads(
            text if text.lstrip().startswith("{") and "\n{" not in text.strip() else line
        )
        return snapshot_from_dict(d)
    except (ValueError, KeyError, TypeError) as e:
        raise DroptopError(f"{p} is not a droptop snapshot ({e})") from None


def snapshot_from_dict(d: dict[str, Any]) -> Snapshot:
    poll = int(d.get("poll", 0))
    table = tuple(
        Reason(int(r["raw"]), str(r["name"]), str(r["subsys"]), str(r.get("source", "snapshot")))
        for r in d.get("reason_table", ())
    )
    rows = []
    for r in d["rows"]:
        key = DropKey(
            raw_reason=int(r["raw"]),
            comm=str(r["comm"]),
            kernel_context=bool(r.get("kernel_context", False)),
            ifindex=int(r.get("ifindex", 0)),
            netns=int(r.get("netns", 0)),
        )
        rows.append(
            DropRow(
                key=key,
                reason=Reason(key.raw_reason, str(r["reason"]), str(r["subsys"]), "snapshot"),
                ifname=str(r.get("ifname", "")),
                packets=int(r["packets"]),
                bytes=int(r["bytes"]),
                rate=float(r.get("rate", 0.0)),
                byte_rate=float(r.get("byte_rate", 0.0)),
                history=tuple(float(h) for h in r.get("history", ())),
                history_end=poll,
                locations=tuple(
                    Location(str(x["symbol"]), int(x["packets"])) for x in r.get("locations", ())
                ),
                stacks=tuple(
                    StackSample(tuple(str(f) for f in s["frames"]), int(s["count"]))
                    for s in r.get("stacks", ())
                ),
                first_seen=float(r.get("first_seen", 0.0)),
            )
        )
    return Snapshot(
        time=float(d["time"]),
        interval=float(d.get("interval", 0.0)),
        kernel=str(d.get("kernel", "")),
        hostname=str(d.get("hostname", "")),
        rows=tuple(rows),
        total_packets=int(d.get("total_packets", sum(r.packets for r in rows))),
        total_rate=float(d.get("total_rate", 0.0)),
        total_history=tuple(float(h) for h in d.get("total_history", ())),
        poll=poll,
        overflow_packets=int(d.get("overflow", 0)),
        overflow_bytes=int(d.get("overflow_bytes", 0)),
        map_used=int(d.get("map_used", 0)),
        map_capacity=int(d.get("map_capacity", 0)),
        names_source="snapshot",
        reason_table=table,
        stacks_enabled=bool(d.get("stacks_enabled", True)),
        bpf_ns_per_drop=d.get("bpf_ns_per_drop"),
        bpf_missed=int(d.get("bpf_missed", 0)),
        source="replay",
        notes=tuple(str(n) for n in d.get("notes", ())),
    )
