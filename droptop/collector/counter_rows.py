"""Loss counters as table rows: the losses kfree_skb never shows, beside the drops.

The kernel's SNMP counters (per network namespace) and the drivers' per-interface
counters (collector/counters.py says which count losses that never reach kfree_skb
as drops, and how each was checked) are read once a poll and turned into DropRows
with source "counter" by a SnapshotAssembler of their own, so they get rates,
totals since start, history and resets exactly as drop rows do, and sort, filter
and export with them. A counter gets a row once it has moved since droptop started;
its reason is the counter's name (`snmp` `TcpExt:ListenOverflows`, `driver`
`rx_missed_errors`), named from the table, never guessed. Counter rows are not part
of the header's drop total: several of them overlap drops the tracepoint counts.
"""

from __future__ import annotations

import platform
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable

from droptop.collector.assemble import RawRow, SnapshotAssembler
from droptop.collector.counters import (
    COUNTERS,
    SOURCE_ETHTOOL,
    CounterReader,
    CounterRow,
    CounterSample,
    advance,
    loss_rows,
    netns_inode,
    sysfs_for_pid,
)
from droptop.collector.ethtool import EthtoolStats
from droptop.model import Attribution, DropKey, DropRow, Reason

_RAW: dict[tuple[str, str], int] = {
    (spec.source, spec.counter): -(i + 1) for i, spec in enumerate(COUNTERS)
}
"""Each counter's synthetic raw reason: negative, so never a kernel reason value. The
table's counters come first; ethtool statistics (named by their driver) are numbered
as they are first seen."""
_BY_RAW: dict[int, tuple[str, str]] = {raw: sc for sc, raw in _RAW.items()}

MAX_NETNS = 32
"""Network namespaces whose counters are read each poll (host first, then named ones)."""


def counter_raw(source: str, counter: str) -> int:
    raw = _RAW.get((source, counter))
    if raw is None:
        raw = _RAW[(source, counter)] = -(len(_RAW) + 1)
        _BY_RAW[raw] = (source, counter)
    return raw


def _order(r: DropRow) -> tuple[float, int]:
    return -r.rate, -r.packets


def merge_rows(drops: tuple[DropRow, ...], counters: tuple[DropRow, ...]) -> tuple[DropRow, ...]:
    """Counter rows among the drop rows in the snapshot's order: active by rate, then idle.

    The drop rows come in that order already and counter rows are few, so each active
    counter row goes in by bisection, after drop rows of its rate and total: 10,000
    drop rows sorted again with a Python key cost a busy poll ~4 ms.
    """
    active = sorted((r for r in counters if r.rate > 0), key=_order)
    idle = [r for r in counters if r.rate <= 0]
    k = bisect_left(drops, 0, key=lambda r: -(r.rate > 0))  # drops[:k] are the active
    head = list(drops[:k])
    for r in active:  # after the drop rows, and counter rows, that tie with it
        head.insert(bisect_right(head, _order(r), key=_order), r)
    return (*head, *drops[k:], *idle)


class CounterNames:
    """What the assembler needs from a reason resolver, for counter rows."""

    best_source = "counter"

    def resolve(self, raw: int) -> Reason:
        source, counter = _BY_RAW[raw]
        return Reason(raw, counter, source, "counter")

    def table(self) -> tuple[Reason, ...]:
        return ()


class CounterRows:
    """Reads the loss counters of some network namespaces and keeps their rows.

    Args:
        netns_pids: inode -> a pid living in that netns, for the namespaces to read
            (called each poll; our own netns is always read).
    """

    def __init__(
        self,
        netns_pids: Callable[[], Iterable[tuple[int, int]]] = tuple,
        *,
        netns_name: Callable[[int], str] = str,
        hostname: str | None = None,
        ethtool: bool = True,
    ) -> None:
        self._netns_pids = netns_pids
        self._own = netns_inode("/proc/self/net")
        self._state: tuple[CounterRow, ...] = ()
        self._ethtool = EthtoolStats() if ethtool else None
        self.assembler = SnapshotAssembler(
            CounterNames(),
            kernel=platform.release(),
            capacity=0,
            stacks_enabled=False,
            hostname=hostname,
            row_source="counter",
            # A counter belongs to no task and no socket: only its namespace is named.
            attribute=lambda key, _stacks: Attribution(
                blames_task=False, netns_name=netns_name(key.netns)
            ),
        )

    def _reader(self) -> CounterReader:
        proc_nets = ["/proc/self/net"]
        sysfs = [(self._own, "/sys/class/net")]
        for inode, pid in self._netns_pids():
            if inode == self._own or len(proc_nets) >= MAX_NETNS:
                continue
            proc_nets.append(f"/proc/{pid}/net")
            path = sysfs_for_pid(pid)
            if path is not None:
                sysfs.append((inode, str(path)))
        return CounterReader(proc_nets=tuple(proc_nets), sysfs_nets=tuple(sysfs))

    def poll(self) -> tuple[DropRow, ...]:
        # advance()'s own rate is not used: the assembler rates totals over its interval.
        samples = self._reader().read()
        if self._ethtool is not None:  # the drivers' own statistics, in droptop's netns
            samples += [
                CounterSample(SOURCE_ETHTOOL, name, self._own, ifname, value)
                for ifname in self._ethtool.devices()
                for name, value in self._ethtool.read(ifname).items()
            ]
        self._state = advance(self._state, samples, 1.0)
        raw = [
            RawRow(
                DropKey(
                    raw_reason=counter_raw(r.source, r.counter),
                    comm="",
                    kernel_context=False,
                    ifindex=0,
                    netns=r.netns,
                    counter=f"{r.source}:{r.counter}",
                ),
                r.ifname,
                r.total,
                0,
            )
            for r in loss_rows(self._state)
            if r.total > 0
        ]
        return self.assembler.build(raw).rows

    def reset(self) -> None:
        self.assembler.reset()
