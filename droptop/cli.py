"""Command line: picks the TUI, batch mode, replay or the `reasons` subcommand.

Textual is imported only when the TUI runs, so batch mode starts fast and works
on a machine without a terminal.

One rule for usage errors: every option is checked before anything loads (no
BPF program, no snapshot file read), and a bad one is one line on stderr and
exit status 2, whether argparse or droptop finds it. Runtime failures exit 1;
SIGINT, SIGTERM and SIGHUP exit 128 + the signal's number (droptop.signals).
"""

from __future__ import annotations

import argparse
import os
import stat
import sys
import tempfile
from pathlib import Path

from droptop import __version__
from droptop.errors import DroptopError
from droptop.loop import check_interval
from droptop.render import FORMATS, write_output
from droptop.signals import ExitSignals, Terminated

EPILOG = """\
keys (TUI): q quit, ? help, / filter, < > sort, I invert, p pause, Enter stacks,
ctrl+s snapshot.  Batch: droptop -b -n 5 --format json
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


def check_options(args: argparse.Namespace) -> None:
    """Every numeric option, checked before anything loads (usage error: exit 2)."""
    if args.count < 0:
        raise DroptopError(f"-n must be 0 (no limit) or more, not {args.count}", exit_code=2)
    check_interval(args.delay)
    if args.max_keys < 1:
        raise DroptopError(f"--max-keys must be at least 1, not {args.max_keys}", exit_code=2)


def check_output(path: str) -> Path:
    """`-o FILE`, checked at start so that a long run is not lost at exit (exit 2).

    Returns the path to write, with symlinks resolved: the snapshot is written to
    a temp file beside the target and renamed over it, which would otherwise
    replace the link instead of the file it points to. Only regular files are
    replaced; `/dev/null`, a fifo or `/dev/stdout` would be renamed over, not
    written to, so they are refused.
    """

    def refuse(why: str) -> DroptopError:
        return DroptopError(f"cannot write {path}: {why}", exit_code=2)

    if not path:
        raise DroptopError("-o needs a file name", exit_code=2)
    target = Path(os.path.realpath(path))
    parent = target.parent
    try:
        st = target.stat()
    except FileNotFoundError:
        st = None
    except OSError as e:  # ENOTDIR: a parent is a file; ELOOP; EACCES
        if not parent.exists():
            raise refuse(f"{parent} does not exist") from None
        if not parent.is_dir():
            raise refuse(f"{parent} is not a directory") from None
        raise refuse(e.strerror or str(e)) from None
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            raise refuse("it is a directory")
        if not stat.S_ISREG(st.st_mode):
            raise refuse("it is not a regular file")
        if not st.st_mode & 0o222 or not os.access(target, os.W_OK):
            raise refuse("it is read-only")
    if not parent.exists():
        raise refuse(f"{parent} does not exist")
    if not parent.is_dir():
        raise refuse(f"{parent} is not a directory")
    try:  # what the final write does: a temp file in the same directory
        fd, probe = tempfile.mkstemp(prefix=".droptop-check.", dir=parent)
    except OSError as e:
        raise refuse(f"cannot create a file in {parent} ({e.strerror or e})") from None
    os.close(fd)
    os.unlink(probe)
    return target


def check_terminal() -> None:
    """The TUI draws a full screen in colour: refuse where that cannot work (exit 2).

    Here and not in DroptopApp, so Textual's headless test runs are not affected.
    """
    hint = "use -b for batch output (text, --format json or csv)"
    if not _isatty(sys.stdout):
        raise DroptopError(f"stdout is not a terminal; {hint}", exit_code=2)
    if not _isatty(sys.stdin):
        raise DroptopError(f"stdin is not a terminal (the TUI reads keys); {hint}", exit_code=2)
    term = os.environ.get("TERM", "")
    if term in ("", "dumb"):
        what = "TERM is not set" if not term else "TERM=dumb"
        raise DroptopError(f"{what}: the TUI needs a full-screen terminal; {hint}", exit_code=2)


def _isatty(stream: object) -> bool:
    try:
        return stream is not None and stream.isatty()  # type: ignore[attr-defined]
    except (OSError, ValueError):
        return False


def _write_final(snap, output: Path | None) -> None:
    """`-o`: the last snapshot, and one line on stderr saying where it went."""
    if output is None:
        return
    if snap is None:
        _say(f"droptop: stopped before the first poll; nothing written to {output}")
        return
    _say(f"droptop: wrote {write_output(snap, output)}")


def run_batch(
    args: argparse.Namespace,
    collector,
    *,
    signals: ExitSignals | None = None,
    output: Path | None = None,
) -> int:
    """The poll loop in this thread, BatchOutput its front end; 0, or 128 + a signal."""
    from droptop.filtering import Filter, Selection
    from droptop.frontends.batch import BatchOutput
    from droptop.hostinfo import NicMonitor
    from droptop.loop import PollLoop

    signals = signals or ExitSignals()
    selection = Selection(_row_filter(args.filter) or Filter(), args.hide_unspecified)
    loop = PollLoop(collector, interval=args.delay, nic_sample=NicMonitor().sample)
    batch = BatchOutput(loop, fmt=args.format, selection=selection, count=args.count)
    loop.front_ends.append(batch)

    def on_signal(signum: int) -> None:
        # The first signal ends the loop after the frame in progress (the loop's
        # lock is re-entrant, so this is safe on its own thread); a second one
        # raises, to get out of a write to a stdout nobody reads.
        if loop.stopped:
            raise Terminated(signals.received or signum)
        loop.stop()

    try:
        with signals.stopping(on_signal):
            loop.run()
    except KeyboardInterrupt:  # run_batch called without droptop's handlers installed
        return 130
    finally:
        _write_final(batch.last, output)
    return signals.exit_code or 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    stdout_closed = _reopen_closed_std_fds()
    signals = ExitSignals()
    code = 1
    try:
        code = _main(argv, signals, stdout_closed)
    except DroptopError as e:
        _say(f"droptop: {e}")
        code = e.exit_code
    except Terminated as e:
        code = e.exit_code
    except KeyboardInterrupt:  # SIGINT before droptop's handler was installed
        code = 130
    except BrokenPipeError:
        # `droptop -b | head`: the reader left; not an error worth a word.
        _quiet_stdout()
        code = 0
    finally:
        signals.restore()
    if not _flush_stdout(report=code == 0):
        code = code or 1
    return code


def _main(argv: list[str], signals: ExitSignals, stdout_closed: bool) -> int:
    if argv and argv[0] == "reasons":
        from droptop.frontends import reasons_cmd as reasons_cli

        rp = argparse.ArgumentParser(
            prog="droptop reasons", description="List or resolve drop-reason values."
        )
        reasons_cli.add_arguments(rp)
        rargs = rp.parse_args(argv[1:])
        if stdout_closed:
            raise DroptopError(STDOUT_CLOSED)
        return reasons_cli.run(rargs)
    args = build_parser().parse_args(argv)
    check_options(args)
    output = check_output(args.output) if args.output is not None else None
    _row_filter(args.filter)
    if args.batch:
        if stdout_closed:
            raise DroptopError(STDOUT_CLOSED)
    else:
        check_terminal()
    signals.install()  # from here on SIGINT/SIGTERM/SIGHUP end droptop cleanly
    collector = _make_collector(args)
    try:
        if args.batch:
            return run_batch(args, collector, signals=signals, output=output)
        from droptop.frontends.tui.app import run_tui

        return run_tui(
            collector,
            interval=args.delay,
            snapshot_dir=Path(args.snapshot_dir),
            show_not_specified=not args.hide_unspecified,
            initial_filter=args.filter,
            output=output,
            signals=signals,
        )
    finally:
        collector.close()


# --- stdin, stdout and stderr that are closed, full or gone --------------------


def _reopen_closed_std_fds() -> bool:
    """Put /dev/null on a closed fd 0, 1 or 2; True when stdout was closed.

    Otherwise the next file droptop opens (the loader's socket, a BPF map) would
    get that number, and output meant for stdout or stderr (ours, or the loader
    child's, which inherits them) would land in it. A closed stderr stays silent.
    """
    closed = []
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
            closed.append(False)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
            closed.append(True)
    if closed[2] or sys.stderr is None:
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    if closed[1] or sys.stdout is None:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        return True
    return False


def _say(line: str) -> None:
    """One line on stderr; nothing when stderr is full or gone."""
    try:
        print(line, file=sys.stderr, flush=True)
    except (OSError, ValueError, AttributeError):
        pass


def _quiet_stdout() -> None:
    """After stdout failed: point fd 1 at /dev/null so the interpreter's final flush of
    what is still buffered succeeds instead of printing "Exception ignored"."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)
    except (OSError, ValueError, AttributeError):
        pass


def _flush_stdout(*, report: bool) -> bool:
    """Flush what is left; False when stdout cannot take it (said on stderr if `report`:
    a run that already failed has said why)."""
    try:
        sys.stdout.flush()
        return True
    except BrokenPipeError:
        _quiet_stdout()
        return True
    except (OSError, ValueError) as e:
        if report:
            _say(f"droptop: cannot write to stdout: {getattr(e, 'strerror', None) or e}")
        _quiet_stdout()
        return False
