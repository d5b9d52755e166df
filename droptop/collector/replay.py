"""A collector that serves one saved snapshot: `droptop --replay FILE`, no root, no BPF."""

from __future__ import annotations

import os
from dataclasses import replace

from droptop.model import Snapshot
from droptop.snapshot_file import load_snapshot


class ReplayCollector:
    def __init__(self, path: str | os.PathLike) -> None:
        self.path = path
        self._snap = load_snapshot(path)
        self._base: dict = {}

    def poll(self) -> Snapshot:
        snap = self._snap
        if not self._base:
            return snap
        rows = tuple(r._replace(packets=r.packets - self._base.get(r.key, 0)) for r in snap.rows)
        return replace(snap, rows=rows, total_packets=sum(r.packets for r in rows))

    def reset(self) -> None:
        self._base = {r.key: r.packets for r in self._snap.rows}

    def close(self) -> None:
        pass
