"""Top flows among a row's sampled packets: which traffic a drop row is made of.

These are counts of *samples*, not of drops: the kernel keeps the first drops of a key and
then 1 in N, so a flow's share is its share of the samples kept. Front ends must label them
that way (FLOWS_TITLE) and never add them to packet counts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from droptop.packets.decode import Decoded

FLOWS_TITLE = "Top flows among samples"
"""The heading front ends use: says these are samples, not drop counts."""


@dataclass(frozen=True, slots=True)
class Flow:
    """One 5-tuple seen among the samples, with how many of the samples it was."""

    proto: str
    src: str
    sport: int | None
    dst: str
    dport: int | None
    samples: int
    """How many samples had this 5-tuple (samples, not drops)."""
    share: float
    """samples / all samples given, 0..1."""

    @property
    def label(self) -> str:
        """`udp 198.18.0.1:4000 > 198.18.0.2:9` (IPv6 addresses in brackets when with a port)."""
        src, dst = endpoint(self.src, self.sport), endpoint(self.dst, self.dport)
        return f"{self.proto or '?'} {src} > {dst}"


def endpoint(addr: str, port: int | None) -> str:
    """`addr:port`, `[v6addr]:port`, or the address alone without a port (`?` if none)."""
    addr = addr or "?"
    if port is None:
        return addr
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"


def _sort_key(item: tuple[tuple[str, str, int | None, str, int | None], int]) -> tuple:
    (proto, src, sport, dst, dport), n = item
    return (-n, proto, src, -1 if sport is None else sport, dst, -1 if dport is None else dport)


def top_flows(decoded: Iterable[Decoded], limit: int | None = None) -> list[Flow]:
    """Group samples by (proto, src, sport, dst, dport); most samples first, then by tuple.

    The order is total (ties broken by the tuple) so that two polls with the same samples
    draw the same table.
    """
    counts: Counter[tuple[str, str, int | None, str, int | None]] = Counter(
        d.five_tuple for d in decoded
    )
    total = sum(counts.values())
    items = sorted(counts.items(), key=_sort_key)
    if limit is not None:
        items = items[:limit]
    return [
        Flow(proto, src, sport, dst, dport, n, n / total)
        for (proto, src, sport, dst, dport), n in items
    ]
