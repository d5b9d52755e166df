"""Batch text and CSV, the snapshot file, labels: what droptop writes to files and stdout."""

import csv
import io
import json
import os
import stat

import pytest

from droptop import render, snapshot_file, units
from droptop.atomic import write_atomic
from droptop.errors import DroptopError
from tests.factories import row, snapshot

EVIL = "[b]x\x1b[2J\x07"


def test_text_fits_80_columns_and_escapes_control_bytes():
    snap = snapshot(
        row(comm=EVIL, ifname="veth\x1bX", packets=123456789, rate=98765.4),
        row(name="RX_DROP_U_REPLAY", raw=0x10002, subsys="mac80211_unusable", kernel_context=True),
    )
    text = render.to_text(snap)
    lines = text.splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert "\x1b" not in text and "\x07" not in text
    assert "[b]x\\x1b[2J\\x07" in text
    assert "mac80211_unusable:RX_DROP_U_REPLAY" in text
    assert "[curl]" in text  # kernel context is marked
    assert "123.5M" in text and "98.8k" in text


def test_text_narrow_width_truncates_instead_of_wrapping():
    text = render.to_text(snapshot(row()), width=60)
    assert all(len(line) <= 60 for line in text.splitlines())


def test_json_line_has_the_documented_fields():
    d = json.loads(snapshot_file.to_json(snapshot(row(comm=EVIL))))
    for field in ("time", "interval", "kernel", "overflow", "rows"):
        assert field in d
    r = d["rows"][0]
    assert set(r) >= {
        "reason",
        "raw",
        "subsys",
        "comm",
        "kernel_context",
        "ifindex",
        "ifname",
        "netns",
        "packets",
        "bytes",
        "rate",
    }
    assert r["comm"] == EVIL  # exact value, JSON-escaped on the wire
    assert "\x1b" not in snapshot_file.to_json(snapshot(row(comm=EVIL)))


def test_csv_header_once_and_escaped():
    text = render.to_csv(snapshot(row(comm=EVIL), row(comm="b")))
    parsed = list(csv.reader(io.StringIO(text)))
    assert parsed[0] == list(render.CSV_FIELDS)
    assert len(parsed) == 3
    assert "\x1b" not in text
    assert render.to_csv(snapshot(row()), header=False).count("reason") == 0


def test_full_snapshot_round_trips(tmp_path):
    snap = snapshot(
        row(comm=EVIL), row(name="OVS_DROP_LAST_ACTION", raw=0x20001, subsys="openvswitch")
    )
    path = snapshot_file.save_snapshot(snap, tmp_path)
    assert path.name.startswith("droptop-") and path.suffix == ".json"
    back = snapshot_file.load_snapshot(path)
    assert back.source == "replay"
    assert [r.key for r in back.rows] == [r.key for r in snap.rows]
    assert [r.reason.name for r in back.rows] == ["NO_SOCKET", "OVS_DROP_LAST_ACTION"]
    assert back.rows[0].stacks == snap.rows[0].stacks
    assert back.rows[0].locations == snap.rows[0].locations
    assert back.reason_table[0].name == "NO_SOCKET"


def test_write_output_picks_format_from_extension(tmp_path):
    snap = snapshot(row())
    render.write_output(snap, tmp_path / "a.csv")
    render.write_output(snap, tmp_path / "a.txt")
    render.write_output(snap, tmp_path / "a.json")
    assert (tmp_path / "a.csv").read_text().startswith("time,reason")
    assert "NO_SOCKET" in (tmp_path / "a.txt").read_text()
    assert json.loads((tmp_path / "a.json").read_text())["droptop_snapshot"] == 1
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]  # no temp files left


def test_unwritable_directory_is_a_clear_error(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    with pytest.raises(DroptopError, match="not a directory"):
        snapshot_file.save_snapshot(snapshot(row()), tmp_path / "missing")
    # Root ignores permission bits, so make writing fail another way: a file as the parent.
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(DroptopError, match="cannot write"):
        write_atomic(blocker / "out.json", "{}")
    ro.chmod(stat.S_IRUSR | stat.S_IXUSR)


def test_load_rejects_garbage(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DroptopError, match="not a droptop snapshot"):
        snapshot_file.load_snapshot(bad)
    with pytest.raises(DroptopError, match="cannot read"):
        snapshot_file.load_snapshot(tmp_path / "nope.json")


def test_human_count():
    assert [units.human_count(n) for n in (0, 999, 1000, 1234567, 2.5e9)] == [
        "0",
        "999",
        "1.0k",
        "1.2M",
        "2.5G",
    ]


def test_text_names_namespaces_and_marks_counters_and_benign_rows():

    from droptop.model import Attribution, Reason

    blue = row(comm="curl")._replace(who=Attribution(context="process", netns_name="blue"))
    host = row(comm="nginx")._replace(
        who=Attribution(context="softirq-irq", blames_task=False, netns_name="host"),
        benign="queue purge",
    )
    ctr = row(comm="")._replace(
        source="counter", reason=Reason(-1, "TcpExt:ListenOverflows", "snmp", "c")
    )
    text = render.to_text(snapshot(blue, host, ctr))
    lines = text.splitlines()
    assert "NETNS" in lines[1]
    (b,) = [ln for ln in lines if " curl " in ln]
    assert b.rstrip().endswith("blue")
    (h,) = [ln for ln in lines if "[nginx]" in ln]  # interrupted, not the culprit
    assert "~NO_SOCKET" in h and h.rstrip().endswith("host")
    assert any("#TcpExt:ListenOverflows" in ln for ln in lines)
    assert all(len(ln) <= 80 for ln in lines)
    # One namespace only: no column for it.
    assert "NETNS" not in render.to_text(snapshot(row())).splitlines()[1]
