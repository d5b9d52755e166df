"""Make strings that came from the kernel, a process or a file safe to show.

A task can name itself anything (prctl PR_SET_NAME), including terminal escape
sequences, bidi overrides and Rich markup; interface names are almost as free, and
a snapshot file can hold anything at all. `printable` is the one sanitizer every
sink uses: characters a terminal or a viewer would act on instead of showing are
replaced by visible escapes (`\\x1b`, `\\u202e`, `\\U000e0001`), so nothing reaches a
terminal raw and nothing reorders or hides the text around it. Rich markup is not
touched here: the TUI never interprets data as markup (it builds Text objects).
`spreadsheet_cell` adds what a CSV cell needs on top: no formula.
"""

from __future__ import annotations

import unicodedata

ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp", "Cn"})
"""Unicode categories shown as escapes.

Cc: C0, DEL and C1 controls (ESC, BEL, the 8-bit CSI 0x9b). Cf: format characters
(bidi embeddings, overrides and isolates, LRM/RLM/ALM, zero-width characters, the
BOM, soft hyphen, tag characters). Cs: lone surrogates, which cannot even be
encoded to UTF-8. Zl/Zp: line and paragraph separators, which break lines.
Cn: unassigned code points, which a terminal with a newer Unicode table may treat
as format characters. Private-use (Co) and ordinary spaces (Zs) are kept.
"""

SPREADSHEET_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
"""First characters that make a spreadsheet read a CSV cell as a formula (OWASP)."""


def decode_c_string(raw: bytes) -> str:
    """A fixed-size kernel char array -> str: stop at NUL, keep undecodable bytes visible."""
    return raw.split(b"\0", 1)[0].decode("utf-8", errors="backslashreplace")


def _escape(ch: str) -> str:
    cp = ord(ch)
    if cp <= 0xFF:
        return f"\\x{cp:02x}"
    if cp <= 0xFFFF:
        return f"\\u{cp:04x}"
    return f"\\U{cp:08x}"


def printable(text: str) -> str:
    r"""Replace controls, format characters, separators and lone surrogates with escapes.

    `str.isprintable()` is False for every escaped category (and for a few kept
    ones: private use, non-ASCII spaces), so it is an exact fast path: the TUI
    calls this for every cell, and almost every comm is plain printable text,
    returned as the same object without a per-character loop in Python.
    """
    if text.isprintable():
        return text
    category = unicodedata.category
    return "".join(_escape(c) if category(c) in ESCAPED_CATEGORIES else c for c in text)


def spreadsheet_cell(text: str) -> str:
    """A text cell for CSV: printable, and prefixed with `'` when it would be a formula.

    A comm such as `=HYPERLINK(...)` or `+cmd|' /C calc'!A0` runs when the CSV is
    opened in a spreadsheet. OWASP's rule: a cell that starts with = + - @, tab or
    CR gets a leading single quote. Leading spaces are looked through, since some
    spreadsheets skip them. Only for text from the kernel, a process or a file:
    numeric columns are written by droptop and stay numbers.
    """
    text = printable(text)
    if text.lstrip(" ")[:1] in SPREADSHEET_TRIGGERS:
        return "'" + text
    return text
