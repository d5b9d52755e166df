"""``droptop reasons``: the drop-reason names of this kernel, or of another one.

A raw reason value from a log, from perf or from another machine means nothing
without the kernel it came from. This lists every reason the kernel knows (value,
hex, subsystem, name, and where the name came from), or names the values given;
``--btf`` reads another kernel's BTF (a vmlinux file, or a copy of its
/sys/kernel/btf directory) instead of the running one's.

Not every member of the reason enums is a drop: ``SKB_NOT_DROPPED_YET`` and
``SKB_CONSUMED`` (values 0 and 1 since 6.2, but not on 5.17, so they are told by
name) are listed with the note "not a drop"; sentinels (``*_MAX``,
``SUBSYS_MASK``, a subsystem's code-0 base) are never listed, and a value asked
for that is one is named by its raw label with a note saying which sentinel it is.

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
from droptop.names.btf import Btf, BtfError, load_vmlinux
from droptop.names.reasons import (
    BTF_DIR,
    CORE_ENUM,
    VMLINUX_BTF,
    ReasonResolver,
    is_sentinel,
    source_for,
)

PROG = "droptop reasons"
_U32_MAX = 0xFFFFFFFF
_COLUMNS = ("RAW", "HEX", "SUBSYS", "DROP", "NAME", "SOURCE", "NOTE")
NOT_DROPS = frozenset({"SKB_NOT_DROPPED_YET", "SKB_CONSUMED"})
"""Core enum members that are not drop reasons: a packet not dropped (yet), or freed
normally. Told by name: on 5.17 value 0 was NOT_SPECIFIED, a drop."""
NOT_A_DROP = "not a drop"


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
            resolver, sentinels = _from_path(Path(args.btf))
        except BtfError as e:
            return _fail(str(e))
    else:
        resolver, sentinels = _running_kernel()
    for note in resolver.notes:
        print(f"{PROG}: {_clean(note)}", file=sys.stderr)
    reasons = [resolver.resolve(v) for v in values] if values else list(resolver.table())
    if not reasons:
        print(f"{PROG}: no drop-reason names found for this kernel", file=sys.stderr)
        return 1
    notes = [note_for(r, sentinels, resolver.shift) for r in reasons]
    text = format_json(reasons, notes) if args.format == "json" else format_text(reasons, notes)
    return _write(text)


def _from_path(path: Path) -> tuple[ReasonResolver, dict[int, str]]:
    """As ReasonResolver.from_path, keeping the BTF to find the sentinels in."""
    if path.is_dir():
        vmlinux = Btf.from_file(path / "vmlinux")
        resolver = ReasonResolver(vmlinux, path)
        return resolver, sentinel_values(vmlinux, path, resolver)
    vmlinux = Btf.from_file(path)
    resolver = ReasonResolver(vmlinux)
    return resolver, sentinel_values(vmlinux, None, resolver)


def _running_kernel() -> tuple[ReasonResolver, dict[int, str]]:
    try:
        vmlinux = load_vmlinux(str(VMLINUX_BTF))
    except BtfError:
        return ReasonResolver.for_running_kernel(), {}  # it says why in its notes
    resolver = ReasonResolver.for_running_kernel(vmlinux)
    btf_dir = BTF_DIR if BTF_DIR.is_dir() else None
    return resolver, sentinel_values(vmlinux, btf_dir, resolver)


def sentinel_values(vmlinux: Btf, btf_dir: Path | None, resolver: ReasonResolver) -> dict[int, str]:
    """Raw value -> enum member name of every sentinel this kernel's reason enums hold.

    The core enum (MAX, SUBSYS_MASK) is in vmlinux; each subsystem's enum is in
    vmlinux or its module's BTF, where only members carrying that subsystem's id
    count (mac80211's enum also holds RX_QUEUED = 0, which is not core 0). An
    unreadable enum just finds none: the resolver has already said why.
    """
    found: dict[int, str] = {}

    def add(enum_name: str, sid: int | None, module: str | None = None) -> None:
        try:
            if module is None:
                enum = vmlinux.find_enum(enum_name)
            else:
                if btf_dir is None or not (btf_dir / module).is_file():
                    return
                enum = Btf.from_file(btf_dir / module, base=vmlinux).find_enum(enum_name)
        except BtfError:
            return
        code_mask = (1 << resolver.shift) - 1
        for name, value in enum.members if enum is not None else ():
            if not 0 <= value <= _U32_MAX:
                continue
            if sid is not None and value >> resolver.shift != sid:
                continue
            base = sid is not None and not value & code_mask
            if is_sentinel(name) or base:
                found.setdefault(value, name)

    add(CORE_ENUM, None)
    for sid, label in resolver.subsystems.items():
        if label == "core":
            continue
        source = source_for(label)
        before = len(found)
        add(source.enum, sid)
        for module in source.modules if len(found) == before else ():
            add(source.enum, sid, module)
    return found


def note_for(reason: Reason, sentinels: dict[int, str], shift: int = 16) -> str:
    """What a listed value is besides its name: not a drop, a sentinel, or nothing."""
    if reason.subsys == "core" and reason.name in NOT_DROPS:
        return NOT_A_DROP
    if reason.source == "raw":
        name = sentinels.get(reason.raw)
        if name is not None:
            return f"sentinel {name}, not a reason"
        if 0 <= reason.raw <= _U32_MAX and reason.raw >> shift and not reason.raw & 0xFFFF:
            return "subsystem base, not a reason"
    return ""


def format_text(reasons: Sequence[Reason], notes: Sequence[str] | None = None) -> str:
    """An aligned table; kernel-supplied strings are escaped before they reach a tty.

    DROP is "no" for the members that are not drop reasons. The NOTE column (which
    sentinel a value is) appears only when a row has one, so that the full listing
    stays under 80 columns.
    """
    notes = notes if notes is not None else [""] * len(reasons)
    rows = [
        (
            str(r.raw),
            r.hex,
            _clean(r.subsys),
            "no" if note else "yes",
            _clean(r.name),
            _clean(r.source),
            note,
        )
        for r, note in zip(reasons, notes, strict=True)
    ]
    ncols = len(_COLUMNS) if any(n and n != NOT_A_DROP for n in notes) else len(_COLUMNS) - 1
    rows = [row[:ncols] for row in rows]
    header = _COLUMNS[:ncols]
    widths = [max(len(col), *(len(row[i]) for row in rows)) for i, col in enumerate(header)]
    lines = []
    for row in [header, *rows]:
        pairs = zip(row[1:], widths[1:], strict=True)
        cells = [row[0].rjust(widths[0])] + [cell.ljust(width) for cell, width in pairs]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines) + "\n"


def format_json(reasons: Sequence[Reason], notes: Sequence[str] | None = None) -> str:
    """A JSON list of objects; json's ASCII escaping keeps control bytes harmless.

    ``drop`` is false for the members that are not drop reasons; ``note`` says why.
    """
    notes = notes if notes is not None else [""] * len(reasons)
    items = [
        {
            "raw": r.raw,
            "hex": r.hex,
            "subsys": r.subsys,
            "name": r.name,
            "source": r.source,
            "drop": not note,
            "note": note,
        }
        for r, note in zip(reasons, notes, strict=True)
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
