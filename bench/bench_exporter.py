"""What the Prometheus exporter costs: update() per poll, a scrape, CPU at 15 s scrapes.

    .venv/bin/python bench/bench_exporter.py [--repeat 7]

No kernel needed: snapshots come from droptop's real SnapshotAssembler fed with
synthetic counters (one label set per key: each key has its own device), so idle
rows are the same objects poll after poll, as in a live run. Scrapes go over HTTP
to the real server with the headers Prometheus 2.x sends (OpenMetrics preferred,
gzip). "cold" is the first scrape after an update in which every series changed
(it renders); "warm" is a second scrape of the same update (cached bytes).
"naive" is the same families built with prometheus_client's CounterMetricFamily
and generate_latest on each scrape: what the cache and the hand-written drop lines
save. The CPU figure is the exporter's share of a core at one poll per second and
one scrape every 15 s: process CPU of 15 updates plus one cold scrape, minus the
same 15 polls without an exporter (the no-exporter baseline), over 15 s.
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import CounterMetricFamily
from prometheus_client.openmetrics.exposition import (
    generate_latest as om_generate_latest,
)

from droptop.collector.assemble import SnapshotAssembler
from droptop.collector.fake import FakeReasonNames
from droptop.frontends.exporter import Exporter, bind_listener, parse_listen
from droptop.model import DropKey, Snapshot

PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.1"
)
REASONS = (2, 3, 5, 6, 10, 16, 17, 18, 19, 20, 21, 27, 36, 47, 64)


class Feed:
    """A SnapshotAssembler over n keys whose counters we move by hand."""

    def __init__(self, n: int) -> None:
        self.asm = SnapshotAssembler(
            FakeReasonNames(), kernel="bench", capacity=n, stacks_enabled=False, hostname="b"
        )
        for i in range(n):
            key = DropKey(REASONS[i % len(REASONS)], f"comm{i % 97}", False, 10 + i, 4026531840)
            self.asm.add_slot(i, key, f"veth{i:05d}", "__udp4_lib_rcv+0x4bc")
        self.p = [0] * n
        self.b = [0] * n
        self.step = 0

    def poll(self, fraction: float) -> Snapshot:
        """One poll in which `fraction` of the keys saw new drops."""
        n = len(self.p)
        k = int(n * fraction)
        start = (self.step * 7919) % n
        for j in range(k):
            i = (start + j) % n
            self.p[i] += 3
            self.b[i] += 180
        self.step += 1
        return self.asm.build_counts(self.p, self.b, map_used=n)


def scrape(port: int, accept: str | None, gz: bool) -> int:
    headers = {"Accept": accept} if accept else {}
    if gz:
        headers["Accept-Encoding"] = "gzip"
    req = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", headers=headers)
    with urllib.request.urlopen(req, timeout=10) as r:
        data = r.read()
    return len(gzip.decompress(data) if gz else data)


def ms(f, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def naive(exporter: Exporter, openmetrics: bool) -> None:
    view = exporter.state.series

    class Families:
        def collect(self):
            for name, values in (
                ("droptop_drops", view.packets),
                ("droptop_drop_bytes", view.bytes),
            ):
                fam = CounterMetricFamily(name, "x", labels=view.names)
                for k, v in values.items():
                    fam.add_metric(k, v)
                yield fam
            yield from exporter.state.families

    (om_generate_latest if openmetrics else generate_latest)(Families())


def bench_size(n: int, repeat: int) -> dict[str, float]:
    feed = Feed(n)
    exporter = Exporter(bind_listener(parse_listen("127.0.0.1:0")), max_series=max(n, 1000))
    exporter.start()
    port = exporter.address[1]
    out: dict[str, float] = {}
    try:
        first = feed.poll(1.0)
        t = time.perf_counter()
        exporter.update(first)
        out["update: first (all new)"] = (time.perf_counter() - t) * 1000
        for label, frac in (("all changed", 1.0), ("1% changed", 0.01), ("none changed", 0.0)):
            snaps = [feed.poll(frac) for _ in range(repeat)]
            it = iter(snaps)
            out[f"update: {label}"] = ms(lambda it=it: exporter.update(next(it)), repeat)

        def cold(accept: str | None, gz: bool) -> float:
            times = []
            for _ in range(repeat):
                exporter.update(feed.poll(1.0))
                t = time.perf_counter()
                size = scrape(port, accept, gz)
                times.append(time.perf_counter() - t)
            out["body bytes (text)" if not accept else "body bytes (openmetrics)"] = size
            return statistics.median(times) * 1000

        out["scrape cold: Prometheus (OpenMetrics+gzip)"] = cold(PROMETHEUS_ACCEPT, True)
        out["scrape cold: text, no gzip"] = cold(None, False)
        out["scrape cold: OpenMetrics, no gzip"] = cold(PROMETHEUS_ACCEPT, False)
        out["scrape warm: Prometheus (cached)"] = ms(
            lambda: scrape(port, PROMETHEUS_ACCEPT, True), repeat
        )
        out["naive render: text (no HTTP)"] = ms(lambda: naive(exporter, False), repeat)
        out["naive render: OpenMetrics (no HTTP)"] = ms(lambda: naive(exporter, True), repeat)
    finally:
        exporter.close()
    return out


def cpu_share(n: int, changed: float, repeat: int) -> tuple[float, float]:
    """(% of a core with the exporter, % for the same polls without it) at 1 Hz polls and
    a scrape every 15 s."""
    feed = Feed(n)
    exporter = Exporter(bind_listener(parse_listen("127.0.0.1:0")))
    exporter.start()
    port = exporter.address[1]
    with_exp, without = [], []
    try:
        exporter.update(feed.poll(1.0))
        for _ in range(repeat):
            t = time.process_time()
            for _ in range(15):
                feed.poll(changed)
            without.append(time.process_time() - t)
            t = time.process_time()
            for _ in range(15):
                exporter.update(feed.poll(changed))
            scrape(port, PROMETHEUS_ACCEPT, True)
            with_exp.append(time.process_time() - t)
    finally:
        exporter.close()
    total = statistics.median(with_exp) / 15 * 100
    base = statistics.median(without) / 15 * 100
    return total, base


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=7)
    args = p.parse_args()
    sizes = (1000, 10000)
    results = {n: bench_size(n, args.repeat) for n in sizes}
    print(
        f"{f'exporter cost (median of {args.repeat})':<46}"
        + "".join(f"{f'{n} series':>14}" for n in sizes)
    )
    for label in results[sizes[0]]:
        unit = "" if label.startswith("body") else " ms"
        cells = "".join(
            f"{results[n][label]:>11.0f}   " if unit == "" else f"{results[n][label]:>11.2f}{unit}"
            for n in sizes
        )
        print(f"{label:<46}{cells}")
    print()
    print(
        f"{'CPU at 1 poll/s, 1 scrape/15 s, 1000 series':<46}"
        f"{'with':>10}{'without':>10}{'exporter':>10}"
    )
    for changed in (0.1, 1.0):
        total, base = cpu_share(1000, changed, args.repeat)
        print(
            f"{f'  {changed:.0%} of keys change per poll':<46}"
            f"{total:>9.2f}%{base:>9.2f}%{total - base:>9.2f}%"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
