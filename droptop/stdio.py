"""stdin, stdout and stderr that are closed, full or gone: one line, never a traceback."""

from __future__ import annotations

import os
import sys

from droptop.sanitize import printable


def reopen_closed_std_fds() -> bool:
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


def say(line: str) -> None:
    """One line on stderr, escaped (it may quote a file name, a kernel's or a
    compiler's words); nothing when stderr is full or gone."""
    try:
        print(printable(line), file=sys.stderr, flush=True)
    except (OSError, ValueError, AttributeError):
        pass


def quiet_stdout() -> None:
    """After stdout failed: point fd 1 at /dev/null so the interpreter's final flush of
    what is still buffered succeeds instead of printing "Exception ignored"."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)
    except (OSError, ValueError, AttributeError):
        pass


def flush_stdout(*, report: bool) -> bool:
    """Flush what is left; False when stdout cannot take it (said on stderr if `report`:
    a run that already failed has said why)."""
    try:
        sys.stdout.flush()
        return True
    except BrokenPipeError:
        quiet_stdout()
        return True
    except (OSError, ValueError) as e:
        if report:
            say(f"droptop: cannot write to stdout: {getattr(e, 'strerror', None) or e}")
        quiet_stdout()
        return False
