"""Small /proc readers the resolvers share; a process that is gone reads as "?"."""

from __future__ import annotations


def read_comm(proc: str, pid: int) -> str:
    """A process's task name, undecodable bytes kept visible."""
    try:
        with open(f"{proc}/{pid}/comm", "rb") as f:
            return f.read().rstrip(b"\n").decode("utf-8", errors="backslashreplace")
    except OSError:
        return "?"
