"""Raw cumulative rows from any collector -> one named, rated Snapshot."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from typing import Protocol

from droptop.model import DropKey, DropRow, Location, Reason, Snapshot, StackSample
from droptop.stats import RateTracker


class ReasonNames(Protocol):
    """What the assembler needs from droptop.reasons (or a test double)."""

    def resolve(self, raw: int) -> Reason: ...

    def table(self) -> tuple[Reason, ...]: ...

    @property
    def best_source(self) -> str: ...


@dataclass(frozen=True, slots=True)
class RawRow:
    """One row as a collector reads it: cumulative counts, not yet named or rated."""

    key: DropKey
    ifname: str
    packets: int
    bytes: int
    locations: tuple[Location, ...] = ()
    stacks: tuple[StackSample, ...] = ()


class SnapshotAssembler:
    """Names reasons, computes rates and keeps per-row history between polls."""

    def __init__(
        self,
        names: ReasonNames,
        *,
        kernel: str,
        capacity: int,
        stacks_enabled: bool,
        source: str = "live",
        notes: tuple[str, ...] = (),
        hostname: str | None = None,
        clock=time.monotonic,
        wallclock=time.time,
    ) -> None:
        self.names = names
        self.kernel = kernel
        self.capacity = capacity
        self.stacks_enabled = stacks_enabled
        self.source = source
        self.notes = notes
        self.hostname = hostname if hostname is not None else socket.gethostname()
        self._clock = clock
        self._wallclock = wallclock
        self._rates = RateTracker()
        self._last_poll: float | None = None
        self._first_seen: dict[DropKey, float] = {}
        self._row_cache: dict[DropKey, tuple[object, RawRow, DropRow]] = {}
        self._overflow_base = (0, 0)
        self._overflow_last = (0, 0)

    def reset(self) -> None:
        self._rates.reset()
        self._overflow_base = self._overflow_last

    def build(
        self,
        raw_rows: list[RawRow] | tuple[RawRow, ...],
        *,
        overflow: tuple[int, int] = (0, 0),
        map_used: int = 0,
        bpf_ns_per_drop: float | None = None,
        bpf_missed: int = 0,
    ) -> Snapshot:
        now = self._clock()
        wall = self._wallclock()
        interval = 0.0 if self._last_poll is None else now - self._last_poll
        self._last_poll = now

        merged: dict[DropKey, RawRow] = {}
        for r in raw_rows:  # several kernel keys (locations, racing slots) make one row
            prev = merged.get(r.key)
            merged[r.key] = r if prev is None else _merge(prev, r)
        rates = self._rates.update({k: (r.packets, r.bytes) for k, r in merged.items()}, interval)
        rows = []
        cache = self._row_cache
        for key, r in merged.items():
            rt = rates[key]
            hit = cache.get(key)
            if hit is not None and hit[0] is rt and hit[1] is r:
                rows.append(hit[2])  # idle row, same raw data: the same immutable row
                continue
            row = DropRow(
                key=key,
                reason=self.names.resolve(key.raw_reason),
                ifname=r.ifname,
                packets=rt.packets,
                bytes=rt.bytes,
                rate=rt.rate,
                byte_rate=rt.byte_rate,
                history=rt.history,
                locations=r.locations,
                stacks=r.stacks,
                first_seen=self._first_seen.setdefault(key, wall),
            )
            cache[key] = (rt, r, row)
            rows.append(row)
        rows.sort(key=lambda row: (-row.rate, -row.packets))
        self._overflow_last = overflow
        total_rate = sum(row.rate for row in rows)
        return Snapshot(
            time=wall,
            interval=interval,
            kernel=self.kernel,
            hostname=self.hostname,
            rows=tuple(rows),
            total_packets=sum(row.packets for row in rows),
            total_rate=total_rate,
            total_history=self._rates.total_history,
            overflow_packets=overflow[0] - self._overflow_base[0],
            overflow_bytes=overflow[1] - self._overflow_base[1],
            map_used=map_used,
            map_capacity=self.capacity,
            names_source=self.names.best_source,
            reason_table=self.names.table(),
            stacks_enabled=self.stacks_enabled,
            bpf_ns_per_drop=bpf_ns_per_drop,
            bpf_missed=bpf_missed,
            source=self.source,
            notes=self.notes,
        )


def _merge(a: RawRow, b: RawRow) -> RawRow:
    locs: dict[str, int] = {}
    for loc in a.locations + b.locations:
        locs[loc.symbol] = locs.get(loc.symbol, 0) + loc.packets
    stacks: dict[tuple[str, ...], int] = {}
    for st in a.stacks + b.stacks:
        stacks[st.frames] = stacks.get(st.frames, 0) + st.count
    return RawRow(
        key=a.key,
        ifname=a.ifname or b.ifname,
        packets=a.packets + b.packets,
        bytes=a.bytes + b.bytes,
        locations=tuple(Location(s, n) for s, n in sorted(locs.items(), key=lambda kv: -kv[1])),
        stacks=tuple(StackSample(f, n) for f, n in sorted(stacks.items(), key=lambda kv: -kv[1])),
    )
