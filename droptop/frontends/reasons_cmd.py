"""``droptop reasons``: the drop-reason names of this kernel, or of another one.

A raw reason value from a log, from perf or from another machine means nothing
without the kernel it came from. This lists every reason the kernel knows (value,
hex, subsystem, name, and where the name came from), or names the values given;
``--btf`` reads another kernel's BTF (a vmlinux file, or a copy of its
/sys/kernel/btf directory) instead of the running one's.

Exit codes: 0 on success, 1 when no names are known at all, 2 for bad input
(an unparsable value, an unreadable or corrupt ``--btf``), always with one line
on stderr and never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from droptop.model import Reason
from droptop.names.btf import BtfError
from droptop.names.reasons import ReasonResolver

PROG = "droptop reasons"
_U32_MAX = 0xFFFFFFFF
_COLUMNS = ("RAW", "HEX", "SUBSYS", "NAME", "SOURCE")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``droptop reasons`` (dests: values, format, btf)."""
    parser.add_argument(
        "values",
        nargs="*",
        metavar="RAW",
        help="raw reason values to name, decimal or 0x hex (default: list every reason)",
    )
    parser.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text table or a JSON list of {raw, hex, subsys, name, source} (default: text)",
    )
    parser.add_argument(
        "--btf",
        metavar="PATH",
        help="use another kernel's BTF: a raw vmlinux BTF file, or a directory laid out "
        "like /sys/kernel/btf (vmlinux plus one split-BTF file per module)",
    )


def parse_raw(text: str) -> int:
    """A raw reason value as the kernel passes it: a u32, in decimal or 0x hex."""
    s = text.strip()
    try:
        value = int(s[2:], 16) if s[:2].lower() == "0x" else int(s, 10)
    except ValueError:
        raise ValueError(f"not a reason value: {text!r} (use decimal or 0x hex)") from None
    if not 0 <= value <= _U32_MAX:
        raise ValueError(f"reason value out of range (0..0xffffffff): {text!r}")
    return value


def run(args: argparse.Namespace) -> int:
    """Print the reasons asked for; see the module docstring for exit codes."""
    try:
        values = [parse_raw(v) for v in args.values]
    except ValueError as e:
        return _fail(str(e))
    if args.btf:
        try:
            resolver = ReasonResolver.from_path(Path(args.btf))
        except BtfError as e:
            return _fail(str(e))
    else:
        resolver = ReasonResolver.for_running_kernel()
    for note in resolver.notes:
        print(f"{PROG}: {_clean(note)}", file=sys.stderr)
    reasons = [resolver.resolve(v) for v in values] if values else list(resolver.table())
    if not reasons:
        print(f"{PROG}: no drop-reason names found for this kernel", file=sys.stderr)
        return 1
    text = format_json(reasons) if args.format == "json" else format_text(reasons)
    return _write(text)


def format_text(reasons: Sequence[Reason]) -> str:
    """An aligned table; kernel-supplied strings are escaped before they reach a tty."""
    rows = [
        (str(r.raw), r.hex, _clean(r.subsys), _clean(r.name), _clean(r.source)) for r in reasons
    ]
    widths = [max(len(col), *(len(row[i]) for row in rows)) for i, col in enumerate(_COLUMNS)]
    lines = []
    for row in [_COLUMNS, *rows]:
        pairs = zip(row[1:], widths[1:], strict=True)
        cells = [row[0].rjust(widths[0])] + [cell.ljust(width) for cell, width in pairs]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines) + "\n"


def format_json(reasons: Sequence[Reason]) -> str:
    """A JSON list of objects; json's ASCII escaping keeps control bytes harmless."""
    items = [
        {"raw": r.raw, "hex": r.hex, "subsys": r.subsys, "name": r.name, "source": r.source}
        for r in reasons
    ]
    return json.dumps(items, indent=2) + "\n"


def _clean(text: str) -> str:
    """Escape anything unprintable: names come from BTF files, which may be hostile."""
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")


def _fail(message: str) -> int:
    print(f"{PROG}: {_clean(message)}", file=sys.stderr)
    return 2


def _write(text: str) -> int:
    """Write to stdout; a closed pipe (``| head``) is not an error worth a traceback."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        # Stop the interpreter's final flush from failing again on the dead pipe.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
    return 0
