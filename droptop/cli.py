"""Command line: picks the TUI, batch mode, replay or the `reasons` subcommand.

Textual is imported only when the TUI runs, so batch mode starts fast and works
on a machine without a terminal.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from droptop import __version__
from droptop.errors import DroptopError
from droptop.loop import check_interval
from droptop.render import FORMATS, write_output

EPILOG = """\
keys (TUI): q quit, ? help, / filter, < > sort, I invert, p pause, Enter stacks,
ctrl+s snapshot.  Batch: droptop -b -n 5 --format json
Reason names: droptop reasons [RAW ...].  BPF cost per drop is shown when
`sysctl kernel.bpf_stats_enabled=1`.
"""


class Terminated(Exception):
    """SIGTERM, turned into an exception so the normal clean-up path runs."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated()


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
        default=10240,
        metavar="N",
        help="rows the kernel map can hold; drops beyond are counted as overflow",
    )
    p.add_argument("--no-stacks", action="store_true", help="do not sample kernel stacks")
    p.add_argument("--replay", metavar="FILE", help="show a saved snapshot (no root needed)")
    p.add_argument(
        "--snapshot-dir",
        default=".",
        metavar="DIR",
        help="where ctrl+s writes snapshots (default: current directory)",
    )
    p.add_argument("-V", "--version", action="version", version=f"droptop {__version__}")
    return p


def _make_collector(args: argparse.Namespace):
    if args.replay:
        from droptop.collector.replay import ReplayCollector

        return ReplayCollector(args.replay)
    from droptop.collector.kernel import KernelCollector

    return KernelCollector(max_keys=args.max_keys, stacks=not args.no_stacks)


def _row_filter(text: str):
    if not text:
        return None
    from droptop.filtering import FilterError, parse_filter

    try:
        return parse_filter(text)
    except FilterError as e:
        raise DroptopError(f"bad filter {text!r}: {e}", exit_code=2) from None


def run_batch(args: argparse.Namespace, collector) -> int:
    from droptop.filtering import Filter, Selection
    from droptop.frontends.batch import BatchOutput
    from droptop.hostinfo import NicMonitor
    from droptop.loop import PollLoop

    selection = Selection(_row_filter(args.filter) or Filter(), args.hide_unspecified)
    loop = PollLoop(collector, interval=args.delay, nic_sample=NicMonitor().sample)
    batch = BatchOutput(loop, fmt=args.format, selection=selection, count=args.count)
    loop.front_ends.append(batch)
    try:
        loop.run()
    except KeyboardInterrupt:
        pass
    finally:
        if args.output and batch.last is not None:
            path = write_output(batch.last, args.output)
            print(f"droptop: wrote {path}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        if argv and argv[0] == "reasons":
            from droptop.frontends import reasons_cmd as reasons_cli

            rp = argparse.ArgumentParser(
                prog="droptop reasons", description="List or resolve drop-reason values."
            )
            reasons_cli.add_arguments(rp)
            return reasons_cli.run(rp.parse_args(argv[1:]))
        args = build_parser().parse_args(argv)
        check_interval(args.delay)
        if args.output:
            parent = Path(args.output).resolve().parent
            if not parent.is_dir():
                raise DroptopError(f"cannot write {args.output}: {parent} does not exist", 2)
        signal.signal(signal.SIGTERM, _on_sigterm)
        _row_filter(args.filter)  # reject a bad filter before anything is loaded
        collector = _make_collector(args)
        try:
            if args.batch:
                return run_batch(args, collector)
            from droptop.frontends.tui.app import run_tui

            return run_tui(
                collector,
                interval=args.delay,
                snapshot_dir=Path(args.snapshot_dir),
                show_not_specified=not args.hide_unspecified,
                initial_filter=args.filter,
            )
        finally:
            collector.close()
    except DroptopError as e:
        print(f"droptop: {e}", file=sys.stderr)
        return e.exit_code
    except Terminated:
        return 143
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `droptop -b | head`: the reader left; not an error worth a traceback.
        sys.stderr.close()
        return 0
