"""Command line: parses, checks every option, then hands over to a run mode.

The modes (TUI, batch, headless exporter, replay) live in runner.py; option checks
in checks.py. One rule for usage errors: every option is checked before anything
loads (no BPF program, no snapshot file read), and a bad one is one line on stderr
and exit status 2, whether argparse or droptop finds it. Runtime failures exit 1;
SIGINT, SIGTERM and SIGHUP exit 128 + the signal's number (droptop.signals).
"""

from __future__ import annotations

import argparse
import sys

from droptop import __version__
from droptop.checks import check_options, check_output, check_terminal, row_filter
from droptop.collector.limits import DEFAULT_MAX_KEYS
from droptop.errors import DroptopError
from droptop.frontends.exporter.series import DEFAULT_MAX_SERIES
from droptop.render import FORMATS
from droptop.signals import ExitSignals, Terminated
from droptop.stdio import flush_stdout, quiet_stdout, reopen_closed_std_fds, say

EPILOG = """\
keys (TUI): q quit, ? help, / filter, < > sort, I invert, p pause, Enter stacks,
ctrl+s snapshot.  Batch: droptop -b -n 5 --format json
Fleet: droptop --listen :9469 serves Prometheus metrics (headless).
Reason names: droptop reasons [RAW ...].  BPF cost per drop is shown when
`sysctl kernel.bpf_stats_enabled=1`.
SIGINT, SIGTERM, SIGHUP: a clean exit (-o written), status 130, 143, 129.
"""
STDOUT_CLOSED = "cannot write to stdout: it is closed"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="droptop",
        description="top for Linux kernel packet drops: which packets the kernel drops, "
        "why, for which process and on which interface.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("-b", "--batch", action="store_true", help="print to stdout instead of the TUI")
    p.add_argument(
        "-n",
        "--count",
        type=int,
        default=0,
        metavar="COUNT",
        help="batch: stop after COUNT intervals (default: until Ctrl-C)",
    )
    p.add_argument(
        "-d",
        "--delay",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="refresh interval (default 1)",
    )
    p.add_argument("--format", choices=FORMATS, default="text", help="batch output format")
    p.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="write the final snapshot to FILE at exit (format from the extension)",
    )
    p.add_argument(
        "--filter",
        default="",
        metavar="EXPR",
        help="show only matching rows, e.g. 'reason:no_socket rate>10 !comm:ping'",
    )
    p.add_argument(
        "--hide-unspecified",
        action="store_true",
        help="hide NOT_SPECIFIED rows (plain kfree_skb calls, often harmless; TUI key n)",
    )
    p.add_argument(
        "--max-keys",
        type=int,
        default=DEFAULT_MAX_KEYS,
        metavar="N",
        help="rows the kernel map can hold; drops beyond are counted as overflow",
    )
    p.add_argument(
        "--hide-benign",
        action="store_true",
        help="hide rows that are frees, not losses (a socket's queue at close...; TUI key b)",
    )
    p.add_argument("--no-stacks", action="store_true", help="do not sample kernel stacks")
    p.add_argument(
        "--no-samples",
        action="store_true",
        help="do not copy sampled packets' headers (no host:/port: filters, no --pcap)",
    )
    p.add_argument(
        "--sample-bytes",
        type=int,
        default=128,
        metavar="N",
        help="bytes of a sampled packet copied from its network header (0-128, default 128); "
        "samples hold packet bytes",
    )
    p.add_argument(
        "--pcap",
        metavar="FILE",
        help="write every sampled packet as pcapng at exit (and beside each ctrl+s snapshot)",
    )
    p.add_argument(
        "--no-counters",
        action="store_true",
        help="no counter rows (SNMP and driver loss counters that kfree_skb never sees)",
    )
    p.add_argument(
        "--listen",
        metavar="[HOST:]PORT",
        help="serve Prometheus metrics on /metrics; alone it runs headless (with -b or --tui "
        "beside them)",
    )
    p.add_argument(
        "--labels",
        default="",
        metavar="L,...",
        help="extra metric labels: netns, service, cgroup, comm, location, context",
    )
    p.add_argument(
        "--max-series",
        type=int,
        default=DEFAULT_MAX_SERIES,
        metavar="N",
        help=f'label sets beyond N fold into reason="other" (default {DEFAULT_MAX_SERIES})',
    )
    p.add_argument("--tui", action="store_true", help="with --listen: keep the TUI too")
    p.add_argument("--replay", metavar="FILE", help="show a saved snapshot (no root needed)")
    p.add_argument(
        "--snapshot-dir",
        default=".",
        metavar="DIR",
        help="where ctrl+s writes snapshots (default: current directory)",
    )
    p.add_argument("-V", "--version", action="version", version=f"droptop {__version__}")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    stdout_closed = reopen_closed_std_fds()
    signals = ExitSignals()
    code = 1
    try:
        code = _main(argv, signals, stdout_closed)
    except DroptopError as e:
        say(f"droptop: {e}")
        code = e.exit_code
    except Terminated as e:
        code = e.exit_code
    except KeyboardInterrupt:  # SIGINT before droptop's handler was installed
        code = 130
    except BrokenPipeError:
        # `droptop -b | head`: the reader left; not an error worth a word.
        quiet_stdout()
        code = 0
    finally:
        signals.restore()
    if not flush_stdout(report=code == 0):
        code = code or 1
    return code


def _main(argv: list[str], signals: ExitSignals, stdout_closed: bool) -> int:
    if argv and argv[0] == "reasons":
        from droptop.frontends import reasons_cmd

        rp = argparse.ArgumentParser(
            prog="droptop reasons", description="List or resolve drop-reason values."
        )
        reasons_cmd.add_arguments(rp)
        rargs = rp.parse_args(argv[1:])
        if stdout_closed:
            raise DroptopError(STDOUT_CLOSED)
        return reasons_cmd.run(rargs)
    args = build_parser().parse_args(argv)
    check_options(args)
    output = check_output(args.output) if args.output is not None else None
    pcap = check_output(args.pcap) if args.pcap is not None else None
    row_filter(args.filter)
    headless = bool(args.listen) and not args.batch and not args.tui
    if args.batch:
        if stdout_closed:
            raise DroptopError(STDOUT_CLOSED)
    elif not headless:
        check_terminal()
    from droptop import runner

    exporter = runner.make_exporter(args)  # binds now: a taken port fails before BPF loads
    try:
        signals.install()  # from here on SIGINT/SIGTERM/SIGHUP end droptop cleanly
        collector = runner.make_collector(args)
        try:
            if exporter is not None:
                exporter.start()
            if args.batch:
                return runner.run_batch(
                    args, collector, signals=signals, output=output, pcap=pcap, exporter=exporter
                )
            if headless:
                assert exporter is not None
                return runner.run_headless(
                    args, collector, exporter, signals=signals, output=output, pcap=pcap
                )
            return runner.run_tui(
                args, collector, signals=signals, output=output, pcap=pcap, exporter=exporter
            )
        finally:
            collector.close()
    finally:
        if exporter is not None:
            exporter.close()
