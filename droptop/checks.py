"""Every option checked before anything loads: one line and exit status 2 when it is wrong.

The rule (issue 9): a usage error never costs a BPF load, a snapshot read or a long
run before it is found. Checks that need the kernel's facts (what --max-keys would
cost) live beside those facts and are called from here.
"""

from __future__ import annotations

import argparse
import os
import stat
import sys
import tempfile
from pathlib import Path

from droptop.collector.limits import check_max_keys
from droptop.errors import DroptopError
from droptop.loop import check_interval

MAX_SAMPLE_BYTES = 128
"""--sample-bytes: the kernel copies at most this much from the network header."""


def row_filter(text: str):
    """The --filter expression parsed, or a usage error naming what is wrong."""
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
    if not args.replay:
        check_max_keys(args.max_keys)
    if not 0 <= args.sample_bytes <= MAX_SAMPLE_BYTES:
        raise DroptopError(
            f"--sample-bytes must be between 0 and {MAX_SAMPLE_BYTES}, not {args.sample_bytes}",
            exit_code=2,
        )
    if args.listen is not None and not args.listen.strip():
        raise DroptopError("--listen needs [HOST:]PORT, e.g. --listen :9469", exit_code=2)
    if args.tui and not args.listen:
        raise DroptopError("--tui goes with --listen (the TUI is the default without it)", 2)
    if args.tui and args.batch:
        raise DroptopError("--tui and -b are two front ends of one terminal: pick one", 2)


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
