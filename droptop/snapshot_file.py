"""The snapshot file: droptop's JSON format, its schema version, loading and atomic saving.

`ctrl+s`, `-o x.json` and batch JSON lines are written from here; `--replay` loads
through here. A full snapshot carries the reason table, stacks and locations, so
`droptop --replay` on another machine shows the same names.
"""

from __future__ import annotations

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
    NicRates,
    Reason,
    Snapshot,
    StackSample,
)

SNAPSHOT_VERSION = 1


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


def _nic_from_dict(d: dict[str, Any]) -> NicRates:
    return NicRates(
        name=str(d["name"]),
        rx_drop_rate=float(d.get("rx_drop_rate", 0.0)),
        tx_drop_rate=float(d.get("tx_drop_rate", 0.0)),
        rx_err_rate=float(d.get("rx_err_rate", 0.0)),
        tx_err_rate=float(d.get("tx_err_rate", 0.0)),
        rx_drops=int(d.get("rx_drops", 0)),
        tx_drops=int(d.get("tx_drops", 0)),
        rx_errors=int(d.get("rx_errors", 0)),
        tx_errors=int(d.get("tx_errors", 0)),
    )


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
        interfaces=tuple(_nic_from_dict(n) for n in d.get("interfaces", ())),
    )
