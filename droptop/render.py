"""A snapshot as text or CSV, and `-o FILE` in the format its extension asks for.

Batch mode and the TUI's `-o` both write through here, so a file holds what the
screen (or the batch line) held. Every string from the kernel, a process or a
file goes through `droptop.sanitize` on its way out.
"""

from __future__ import annotations

import csv
import io
import os
import time
from pathlib import Path

from droptop.atomic import write_atomic
from droptop.model import Snapshot
from droptop.sanitize import printable, spreadsheet_cell
from droptop.snapshot_file import to_json
from droptop.units import human_count, ifname_label, reason_label, row_netns_label, task_label

FORMATS = ("text", "json", "csv")

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
    "netns_name",
    "context",
    "service",
    "origin",
    "benign",
)


def format_for_path(path: str | os.PathLike, default: str = "json") -> str:
    """The output format a file name asks for (.json, .csv, .txt/.text)."""
    suffix = Path(path).suffix.lower()
    return {".json": "json", ".csv": "csv", ".txt": "text", ".text": "text"}.get(suffix, default)


def to_csv(snap: Snapshot, *, header: bool = True) -> str:
    """One line per row. Text cells go through `spreadsheet_cell` (escapes, no formulas);
    the numeric cells are droptop's own numbers and are written as numbers."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if header:
        w.writerow(CSV_FIELDS)
    for r in snap.rows:
        w.writerow(
            (
                f"{snap.time:.3f}",
                spreadsheet_cell(r.reason.name),
                r.reason.raw,
                spreadsheet_cell(r.reason.subsys),
                spreadsheet_cell(r.key.comm),
                int(r.key.kernel_context),
                r.key.ifindex,
                spreadsheet_cell(r.ifname),
                r.key.netns,
                r.packets,
                r.bytes,
                f"{r.rate:.3f}",
                spreadsheet_cell(r.who.netns_name),
                spreadsheet_cell(r.who.context),
                spreadsheet_cell(r.who.service or ""),
                r.source,
                spreadsheet_cell(r.benign or ""),
            )
        )
    return buf.getvalue()


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
    rows = snap.rows if limit is None else snap.rows[:limit]
    # NETNS (by name) only where it tells rows apart, and where there is room for it.
    netns = [row_netns_label(r) for r in rows]
    netns_w = 10 if width >= 80 and len(set(netns)) > 1 else 0
    fixed = 7 + 1 + 8 + 1 + 16 + 1 + 10 + 1 + (netns_w + 1 if netns_w else 0)
    reason_w = max(12, width - fixed)
    lines.append(
        f"{'RATE/s':>7} {'TOTAL':>8} {'REASON':<{reason_w}.{reason_w}} {'COMM':<16} {'IF':<10}"
        + (f" {'NETNS':<{netns_w}}" if netns_w else "")
    )
    for r, ns in zip(rows, netns):
        # A mark says what a row is when it is not a plain loss: # a loss counter (not
        # kfree_skb), ~ a free that is not a loss (see --hide-benign).
        counter = r.source == "counter"
        mark = "#" if counter else "~" if r.benign else ""
        reason = mark + reason_label(r, with_subsys=not counter)
        lines.append(
            f"{human_count(r.rate):>7} {human_count(r.packets):>8} "
            f"{reason:<{reason_w}.{reason_w}} {task_label(r):<16.16} {ifname_label(r):<10.10}"
            + (f" {ns:<{netns_w}.{netns_w}}" if netns_w else "")
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


def write_output(snap: Snapshot, path: str | os.PathLike, fmt: str | None = None) -> Path:
    """`-o FILE`: the snapshot in the format the extension asks for; JSON files are full."""
    fmt = fmt or format_for_path(path)
    text = to_json(snap, full=True) + "\n" if fmt == "json" else render(snap, fmt, width=10_000)
    return write_atomic(path, text)
