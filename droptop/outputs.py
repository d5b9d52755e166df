"""The files droptop writes for a person to keep: `-o FILE` and `--pcap FILE`.

Both are written at exit (batch, TUI, headless) from the last snapshot, and the
TUI's snapshot key writes the pcapng beside its JSON. `-o` takes the format its
extension asks for (render.write_output); the pcapng holds every packet sample
of every row, each with a comment naming the row (samples, not counts).
"""

from __future__ import annotations

import os
from pathlib import Path

from droptop.errors import DroptopError
from droptop.model import DropRow, Snapshot
from droptop.packets.pcapng import write_pcapng
from droptop.render import write_output
from droptop.stdio import say
from droptop.units import comm_label, ifname_label, netns_label


def pcap_comment(row: DropRow) -> str:
    """What a packet in the capture was: reason, comm, interface and netns of its row."""
    netns = row.who.netns_name or netns_label(row.key.netns)
    reason = (
        f"{row.reason.subsys}:{row.reason.name}"
        if row.reason.subsys != "core"
        else (row.reason.name)
    )
    return f"droptop: {reason} comm={comm_label(row.key)} if={ifname_label(row)} netns={netns}"


def write_pcap(snap: Snapshot, path: str | os.PathLike) -> Path:
    """Every sampled packet of the snapshot as pcapng, oldest first (tcpdump -r reads it)."""
    packets = sorted(
        ((s, pcap_comment(r)) for r in snap.rows for s in r.samples), key=lambda p: p[0].time
    )
    return write_pcapng(path, packets)


def pcap_beside(json_path: Path) -> Path:
    """Where the snapshot key puts the capture of a snapshot it saved: same name, .pcapng."""
    return json_path.with_suffix(".pcapng")


def write_final(snap: Snapshot | None, output: Path | None, pcap: Path | None) -> None:
    """At exit: `-o` and `--pcap` from the last snapshot, one line each on stderr.

    Both are tried; the first failure is raised afterwards (exit status 1)."""
    failed: DroptopError | None = None
    for path, write in ((output, write_output), (pcap, write_pcap)):
        if path is None:
            continue
        if snap is None:
            say(f"droptop: stopped before the first poll; nothing written to {path}")
            continue
        try:
            say(f"droptop: wrote {write(snap, path)}")
        except DroptopError as e:
            failed = failed or e
    if failed is not None:
        raise failed
