"""Each way droptop runs, as one poll loop and its front ends: batch, TUI, headless exporter.

The CLI has checked every option by the time it calls here (checks.py); this module
makes the collector, connects the front ends the options ask for to one PollLoop,
runs it until the count, the user or a signal ends it, and writes the final files.
Textual is imported only when the TUI runs.
"""

from __future__ import annotations

import argparse
import gc
from pathlib import Path

from droptop import __version__
from droptop.checks import row_filter
from droptop.collector import Collector
from droptop.filtering import Filter, Selection
from droptop.frontends.exporter import Exporter
from droptop.hostinfo import NicMonitor
from droptop.loop import PollLoop
from droptop.model import Snapshot
from droptop.outputs import write_final
from droptop.signals import ExitSignals, Terminated

GC_THRESHOLD = (100_000, 50, 100)
"""A poll in which 10k keys changed allocates ~60k objects, none in a cycle; with the
default gen-0 threshold of 700 the cyclic collector ran ~80 times a poll and a full
collection every few polls (+30 % on such a poll, measured in bench_poll.py)."""


def tune_gc() -> None:
    """For the long-running modes: what start-up loaded is frozen out of collection."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)


def make_collector(args: argparse.Namespace) -> Collector:
    if args.replay:
        from droptop.collector.replay import ReplayCollector

        return ReplayCollector(args.replay)
    from droptop.collector.kernel import KernelCollector

    return KernelCollector(
        max_keys=args.max_keys,
        stacks=not args.no_stacks,
        samples=not args.no_samples,
        sample_bytes=args.sample_bytes,
        counters=not args.no_counters,
    )


def selection(args: argparse.Namespace) -> Selection:
    return Selection(row_filter(args.filter) or Filter(), args.hide_unspecified, args.hide_benign)


class ExporterFeed:
    """The exporter as a front end of the loop: every snapshot, and how long its poll took."""

    def __init__(self, exporter: Exporter) -> None:
        self._exporter = exporter

    def update(self, snap: Snapshot) -> None:
        self._exporter.update(snap, poll_seconds=snap.poll_seconds)

    def poll_failed(self, error: str) -> None:
        """The exporter keeps serving the last good counters; the scrape's age shows it."""


class _Last:
    """Remembers the newest snapshot (headless mode's -o and --pcap)."""

    def __init__(self) -> None:
        self.snap: Snapshot | None = None

    def update(self, snap: Snapshot) -> None:
        self.snap = snap

    def poll_failed(self, error: str) -> None:
        pass


def _run_loop(loop: PollLoop, signals: ExitSignals) -> None:
    """Run in this thread; the first signal ends the loop after the poll in progress, a
    second one raises (to get out of a write to a stdout nobody reads)."""

    def on_signal(signum: int) -> None:
        if loop.stopped:
            raise Terminated(signals.received or signum)
        loop.stop()

    with signals.stopping(on_signal):
        loop.run()


def run_batch(
    args: argparse.Namespace,
    collector: Collector,
    *,
    signals: ExitSignals | None = None,
    output: Path | None = None,
    pcap: Path | None = None,
    exporter: Exporter | None = None,
) -> int:
    """The poll loop in this thread, BatchOutput its front end; 0, or 128 + a signal."""
    from droptop.frontends.batch import BatchOutput

    signals = signals or ExitSignals()
    tune_gc()
    loop = PollLoop(collector, interval=args.delay, nic_sample=NicMonitor().sample)
    batch = BatchOutput(loop, fmt=args.format, selection=selection(args), count=args.count)
    loop.front_ends.append(batch)
    if exporter is not None:
        loop.front_ends.append(ExporterFeed(exporter))
    try:
        _run_loop(loop, signals)
    except KeyboardInterrupt:  # run_batch called without droptop's handlers installed
        return 130
    finally:
        write_final(batch.last, output, pcap)
    return signals.exit_code or 0


def run_headless(
    args: argparse.Namespace,
    collector: Collector,
    exporter: Exporter,
    *,
    signals: ExitSignals,
    output: Path | None = None,
    pcap: Path | None = None,
) -> int:
    """`--listen` alone: serve /metrics until a signal (what the systemd unit runs)."""
    tune_gc()
    loop = PollLoop(collector, interval=args.delay, nic_sample=NicMonitor().sample)
    last = _Last()
    loop.front_ends += [ExporterFeed(exporter), last]
    try:
        _run_loop(loop, signals)
    finally:
        write_final(last.snap, output, pcap)
    return signals.exit_code or 0


def run_tui(
    args: argparse.Namespace,
    collector: Collector,
    *,
    signals: ExitSignals,
    output: Path | None = None,
    pcap: Path | None = None,
    exporter: Exporter | None = None,
) -> int:
    from droptop.frontends.tui.app import run_tui as run_app

    tune_gc()
    feeds = ()
    if exporter is not None:
        feeds = (ExporterFeed(exporter),)
    return run_app(
        collector,
        interval=args.delay,
        snapshot_dir=Path(args.snapshot_dir),
        show_not_specified=not args.hide_unspecified,
        initial_filter=args.filter,
        output=output,
        pcap=pcap,
        signals=signals,
        front_ends=feeds,
        hide_benign=args.hide_benign,
    )


def make_exporter(args: argparse.Namespace) -> Exporter | None:
    """`--listen`: parse and bind now, before BPF loads (a bad address is exit 2)."""
    if not args.listen:
        return None
    from droptop.frontends.exporter import BuildInfo, bind_listener, parse_labels, parse_listen

    addr = parse_listen(args.listen)
    labels = parse_labels(args.labels)
    sock = bind_listener(addr)
    return Exporter(
        sock, labels=labels, max_series=args.max_series, build=BuildInfo(version=__version__)
    )
