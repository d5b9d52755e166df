"""The one sanitizer, and a sweep of every batch sink with a snapshot whose every string is hostile.

The hostile snapshot is built the way an attacker would: a JSON file on disk in which
*every* string value of a full snapshot (found by walking the dict, not by a list of
field names) holds one hostile value, loaded through the real loader. Whatever a sink
prints must then hold no raw control, format, bidi or separator character.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import unicodedata
from pathlib import Path
from typing import Any

import pytest

from droptop import render, snapshot_file
from droptop.model import Snapshot
from droptop.sanitize import printable, spreadsheet_cell
from tests.factories import row, snapshot

HOSTILE = (
    "\x1b]2;PWNED\x07",  # OSC 2: renames the terminal window
    "\x1b]52;c;SGVsbG8=\x07",  # OSC 52: writes the clipboard
    "[red]x[/]",  # Rich markup
    "\u202e",  # RIGHT-TO-LEFT OVERRIDE
    "\x9b31m",  # C1 CSI
    "\u2066x\u2069",  # bidi isolate
    "a\u2028b\u2029",  # line / paragraph separators
    "\ufeff\u200b\u00ad",  # BOM, zero-width space, soft hyphen (all Cf)
    "\U000e0041\u061c\u200f",  # a tag character, Arabic letter mark, RLM
)
"""Each is put in every string of a snapshot in turn."""

DANGEROUS = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp", "Cn"})
"""Categories that must never reach a person raw (newline aside, between lines)."""


def dangerous(text: str) -> list[str]:
    """Every character of `text` a terminal or a viewer could act on, as escapes."""
    return [f"U+{ord(c):04X}" for c in text if c != "\n" and unicodedata.category(c) in DANGEROUS]


ENUMERATED = {"origin": "snap.rows[].source", "hex": None}
"""Format keys whose value is one of a few words, refused otherwise (tested apart): the
sweep leaves them as written, so every other string can be hostile at once."""


def _replace_strings(value: Any, hostile: str) -> Any:
    if isinstance(value, str):
        return hostile
    if isinstance(value, list):
        return [_replace_strings(v, hostile) for v in value]
    if isinstance(value, dict):
        return {k: v if k in ENUMERATED else _replace_strings(v, hostile) for k, v in value.items()}
    return value


def base_snapshot() -> Snapshot:
    """A full snapshot with every kind of string: rows, stacks, locations, notes, interfaces,
    attribution, a counter row, a benign row, packet samples."""

    from droptop.model import Attribution, NicRates, PacketSample, Reason, SocketOwner

    sample = PacketSample(
        1_700_000_000.5,
        2,
        "eth0",
        4026531833,
        0x0800,
        28,
        b"\x00" * 14,
        bytes.fromhex("4500001c000100004011f0e87f0000017f000001d43100090008fffe"),
        1,
    )
    who = Attribution(
        "softirq-irq",
        False,
        "nginx.service",
        "/system.slice/nginx.service",
        "host",
        SocketOwner(77, 812, "nginx"),
    )
    attributed = row(comm="a")._replace(who=who, benign="queue purge", samples=(sample,))
    counter = row(comm="")._replace(
        key=row(comm="").key._replace(raw_reason=-1, counter="snmp:TcpExt:ListenOverflows"),
        reason=Reason(-1, "TcpExt:ListenOverflows", "snmp", "counter"),
        source="counter",
    )
    return snapshot(
        row(),
        row(name="RX_DROP_U_REPLAY", raw=0x10002, subsys="mac80211_unusable", comm="b"),
        row(name="NO_SOCKET", comm="c", kernel_context=True, rate=5.0),
        attributed,
        counter,
        notes=("headers: vmlinux BTF", "attached as tp_btf"),
        interfaces=(NicRates("eth0", 1.0, 0.0, 0.0, 0.0, 3, 0, 0, 0),),
        reason_table=(Reason(3, "NO_SOCKET", "core", "btf"), Reason(0x10002, "X", "m", "btf")),
        total_history=(1.0, 2.0, 3.0),
        poll=2,
    )


def hostile_dict(hostile: str) -> dict[str, Any]:
    """The full snapshot format with every string value replaced by `hostile`."""
    return _replace_strings(snapshot_file.snapshot_to_dict(base_snapshot(), full=True), hostile)


def write_hostile(tmp_path: Path, hostile: str) -> Path:
    path = tmp_path / "hostile.json"
    path.write_text(json.dumps(hostile_dict(hostile)), encoding="utf-8")
    return path


def model_strings(value: Any, where: str = "snap") -> dict[str, str]:
    """Every str in a loaded model object, by where it is."""
    from dataclasses import fields, is_dataclass

    out: dict[str, str] = {}
    if isinstance(value, str):
        out[where] = value
    elif is_dataclass(value):
        for f in fields(value):
            out |= model_strings(getattr(value, f.name), f"{where}.{f.name}")
    elif isinstance(value, tuple):
        names = getattr(value, "_fields", None)
        for i, v in enumerate(value):
            out |= model_strings(v, f"{where}.{names[i]}" if names else f"{where}[{i}]")
    return out


# --- printable ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("\x1b]2;x\x07", "\\x1b]2;x\\x07"),
        ("\x9b31m", "\\x9b31m"),
        ("\x7f\x00\n", "\\x7f\\x00\\x0a"),
        ("a\u202eb", "a\\u202eb"),
        ("\u2066\u2067\u2068\u2069", "\\u2066\\u2067\\u2068\\u2069"),
        ("\u200e\u200f\u061c", "\\u200e\\u200f\\u061c"),
        ("\u2028\u2029", "\\u2028\\u2029"),
        ("\ufeff\u00ad", "\\ufeff\\xad"),  # U+00AD is a Cf below 0x100
        ("\U000e0001", "\\U000e0001"),
        ("\ud800", "\\ud800"),  # a lone surrogate cannot even be encoded
        ("\U0010fffe", "\\U0010fffe"),  # unassigned (a noncharacter)
    ],
)
def test_printable_escapes_controls_format_and_separators(raw, shown):
    assert printable(raw) == shown


def test_printable_keeps_ordinary_text():
    for text in ("ksoftirqd/0", "nginx: worker", "café", "日本語", "emoji 🙂", "a\u00a0b", "[b]x"):
        assert printable(text) == text


def test_printable_is_idempotent_and_fast_path_returns_the_same_object():
    comm = "systemd-journal"
    assert printable(comm) is comm
    for h in HOSTILE:
        once = printable(h)
        assert printable(once) == once
        assert not dangerous(once)


def test_every_format_and_control_character_is_escaped():
    """The whole code space, by category, so a new Unicode version cannot slip one past."""
    bad = [
        cp
        for cp in range(sys.maxunicode + 1)
        if unicodedata.category(chr(cp)) in DANGEROUS and dangerous(printable(chr(cp)))
    ]
    assert bad == []


# --- spreadsheet cells -------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ['=HYPERLINK("http://x.test","c")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(1+1)", "\t=1", "\r=1"],
)
def test_spreadsheet_cell_neutralises_formulas(text):
    cell = spreadsheet_cell(text)
    assert cell.startswith("'") or cell.startswith("\\")
    assert not dangerous(cell)
    assert cell[0] not in "=+-@\t\r"


def test_spreadsheet_cell_leaves_plain_text_and_catches_leading_spaces():
    assert spreadsheet_cell("nginx") == "nginx"
    assert spreadsheet_cell("") == ""
    assert spreadsheet_cell("a=b") == "a=b"
    assert spreadsheet_cell("  =1") == "'  =1"


@pytest.mark.parametrize(
    "comm",
    ['=HYPERLINK("http://x.test","c")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(1+1)", "\t=1", "\r=1"],
)
def test_csv_text_cells_are_neutralised_numbers_are_not(comm):
    snap = snapshot(
        row(comm=comm, ifname=comm, name=comm, subsys=comm, packets=7, rate=2.5, ifindex=3)
    )
    text = render.to_csv(snap)
    head, line = list(csv.reader(io.StringIO(text)))
    cells = dict(zip(head, line, strict=True))
    for field in ("reason", "subsys", "comm", "ifname"):
        assert cells[field][0] not in "=+-@\t\r", (field, cells[field])
    assert cells["packets"] == "7" and cells["bytes"] == "420" and cells["rate"] == "2.500"
    assert cells["ifindex"] == "3" and cells["raw"] == "3" and cells["kernel_context"] == "0"
    assert float(cells["time"]) == snap.time


# --- the sweep over batch sinks ------------------------------------------------------------


@pytest.fixture(params=HOSTILE, ids=[f"h{i}" for i in range(len(HOSTILE))])
def hostile(request) -> str:
    return request.param


SET_BY_LOADER = {
    "snap.names_source",
    "snap.source",
    "snap.rows[].reason.source",
    "snap.rows[].key.counter",  # "" for a drop row, whose "counter" is null
}
"""Model strings the loader fills in itself rather than from the file."""
NOT_IN_FORMAT = {path for path in ENUMERATED.values() if path}
"""Model strings the snapshot format does not carry (yet): loaded as their defaults.

A new string field in the model fails the test below until it is either written
and read by snapshot_file (and so swept here) or listed here on purpose.
"""


def test_every_string_of_the_format_reaches_the_model(tmp_path, hostile):
    """The walk covers every string the loader keeps (the rest it sets itself)."""
    import re

    snap = snapshot_file.load_snapshot(write_hostile(tmp_path, hostile))
    strings = model_strings(snap)
    own = {re.sub(r"\[\d+\]", "[]", k) for k, v in strings.items() if v != hostile}
    assert own <= SET_BY_LOADER | NOT_IN_FORMAT, own - SET_BY_LOADER - NOT_IN_FORMAT
    assert sum(v == hostile for v in strings.values()) > 20  # comm, ifname, frames, notes...


def test_text_csv_and_files_are_clean(tmp_path, hostile):
    snap = snapshot_file.load_snapshot(write_hostile(tmp_path, hostile))
    outputs = {
        "text": render.to_text(snap),
        "wide text": render.to_text(snap, width=10_000),
        "csv": render.to_csv(snap),
    }
    for ext in ("csv", "txt"):
        path = render.write_output(snap, tmp_path / f"out.{ext}")
        outputs[ext] = path.read_text(encoding="utf-8")
    for name, out in outputs.items():
        assert not dangerous(out), (name, dangerous(out))
        assert printable(hostile) in out, name  # shown, escaped, not dropped
    if hostile == "[red]x[/]":
        assert "[red]x[/]" in outputs["text"]


def test_json_stays_exact_and_ascii(tmp_path, hostile):
    snap = snapshot_file.load_snapshot(write_hostile(tmp_path, hostile))
    line = render.render(snap, "json")
    assert line.isascii() and not dangerous(line)
    assert json.loads(line)["rows"][0]["comm"] == hostile
    path = render.write_output(snap, tmp_path / "again.json")
    back = snapshot_file.load_snapshot(path)
    assert model_strings(back) == model_strings(snap)


def test_lone_surrogate_survives_json_and_is_escaped_elsewhere(tmp_path):
    path = tmp_path / "s.json"
    d = hostile_dict("x")
    d["rows"][0]["comm"] = "a\ud800b"
    path.write_text(json.dumps(d), encoding="utf-8")  # ensure_ascii: "\ud800" on disk
    snap = snapshot_file.load_snapshot(path)
    assert snap.rows[0].key.comm == "a\ud800b"
    assert "a\\ud800b" in render.to_text(snap) and "a\\ud800b" in render.to_csv(snap)
    out = render.write_output(snap, tmp_path / "o.json")
    assert snapshot_file.load_snapshot(out).rows[0].key.comm == "a\ud800b"
    render.to_text(snap).encode("utf-8")  # nothing left that stdout cannot encode


def test_batch_cli_prints_nothing_raw(tmp_path, hostile):
    """The real batch front end, as a user runs it, in each format."""
    path = write_hostile(tmp_path, hostile)
    exe = Path(sys.executable).with_name("droptop")
    for fmt in ("text", "csv", "json"):
        p = subprocess.run(
            [exe, "--replay", path, "-b", "--format", fmt],
            capture_output=True,
            timeout=30,
        )
        out = p.stdout.decode("utf-8")
        assert p.returncode == 0, p.stderr
        assert not dangerous(out) and not dangerous(p.stderr.decode("utf-8")), fmt
        if fmt == "json":
            assert json.loads(out)["hostname"] == hostile


def test_every_stderr_line_is_escaped(capsys):
    """say() is the one way droptop writes to stderr; what it quotes (a verifier's or
    compiler's words, a file name) may hold terminal controls."""
    from droptop.stdio import say

    say("droptop: could not load: \x1b]2;PWNED\x07 \u202e")
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\x07" not in err and "\u202e" not in err
    assert err.startswith("droptop: could not load: ") and err.endswith("\n")
