"""Make strings that came from the kernel or a process safe to show.

A task can name itself anything (prctl PR_SET_NAME), including terminal escape
sequences and Rich markup; interface names are almost as free. Control bytes are
shown as visible escapes so nothing reaches a terminal raw. Rich markup is
escaped separately by the TUI, which is the only place markup is interpreted.
"""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def decode_c_string(raw: bytes) -> str:
    """A fixed-size kernel char array -> str: stop at NUL, keep undecodable bytes visible."""
    return raw.split(b"\0", 1)[0].decode("utf-8", errors="backslashreplace")


def printable(text: str) -> str:
    r"""Replace control characters (C0, DEL, C1) with \xNN escapes."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
