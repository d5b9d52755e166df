"""``droptop reasons``: listing, resolving, JSON, and one-line errors for bad input."""

from __future__ import annotations

import argparse
import json
import os

import pytest

from droptop.frontends import reasons_cmd as reasons_cli
from tests.btf_encoder import LAYOUTS, BtfEncoder, vmlinux_encoder, write_btf_dir


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="droptop reasons")
    reasons_cli.add_arguments(parser)
    return reasons_cli.run(parser.parse_args(argv))


@pytest.fixture
def btf_618(tmp_path):
    return str(write_btf_dir(tmp_path / "btf", LAYOUTS["6.18"]))


def test_lists_every_reason_as_a_table(btf_618, capsys):
    assert run("--btf", btf_618) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["RAW", "HEX", "SUBSYS", "DROP", "NAME", "SOURCE"]
    assert out[11].split() == ["10", "0xa", "core", "yes", "TCP_CSUM", "btf"]
    assert ["65538", "0x10002", "mac80211_unusable", "yes", "RX_DROP_U_REPLAY", "btf"] in [
        line.split() for line in out
    ]
    assert out[-1].split()[4] == "OVS_DROP_METER"
    assert max(len(line) for line in out) < 80


def test_resolves_given_values_decimal_and_hex(btf_618, capsys):
    assert run("--btf", btf_618, "--format", "json", "0x20001", "65538", "0x30001", "0") == 0
    items = json.loads(capsys.readouterr().out)
    rows = [(i["raw"], i["hex"], i["subsys"], i["name"], i["source"]) for i in items]
    assert rows == [
        (0x20001, "0x20001", "openvswitch", "OVS_DROP_LAST_ACTION", "btf"),
        (0x10002, "0x10002", "mac80211_unusable", "RX_DROP_U_REPLAY", "btf"),
        (0x30001, "0x30001", "subsys3", "subsys3:0x30001", "raw"),
        (0, "0x0", "core", "SKB_NOT_DROPPED_YET", "btf"),
    ]
    assert all(len(i) == 7 and i["drop"] and i["note"] == "" for i in items[:3])
    assert (items[3]["drop"], items[3]["note"]) == (False, "not a drop")


def test_raw_vmlinux_file(tmp_path, capsys):
    blob = tmp_path / "vmlinux-5.17"
    blob.write_bytes(vmlinux_encoder(LAYOUTS["5.17"]).to_bytes())
    assert run("--btf", str(blob), "3") == 0
    assert capsys.readouterr().out.splitlines()[1].split() == [
        "3",
        "0x3",
        "core",
        "yes",
        "TCP_CSUM",
        "btf",
    ]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["zz"], "not a reason value: 'zz'"),
        (["0x"], "not a reason value"),
        (["-1"], "out of range"),
        (["0x100000000"], "out of range"),
        (["--btf", "/nonexistent/btf"], "cannot read BTF from /nonexistent/btf"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, message, capsys):
    assert run(*argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and message in captured.err
    assert captured.err.startswith("droptop reasons: ")


def test_corrupt_btf_file_and_directory(tmp_path, capsys):
    (tmp_path / "junk").write_bytes(b"\x9f\xeb\x01\x00" + bytes(8))
    assert run("--btf", str(tmp_path / "junk")) == 2
    assert "truncated" in capsys.readouterr().err
    empty = tmp_path / "empty-dir"
    empty.mkdir()
    assert run("--btf", str(empty)) == 2
    assert f"{empty}/vmlinux" in capsys.readouterr().err


def test_no_names_at_all_is_exit_1(tmp_path, capsys):
    enc = BtfEncoder()
    enc.int_("int", 4)
    (tmp_path / "vmlinux").write_bytes(enc.to_bytes())
    assert run("--btf", str(tmp_path / "vmlinux")) == 1
    err = capsys.readouterr().err
    assert "no enum skb_drop_reason" in err and "no drop-reason names" in err
    assert run("--btf", str(tmp_path / "vmlinux"), "5") == 0  # a raw label is still an answer
    assert capsys.readouterr().out.splitlines()[1].split() == [
        "5",
        "0x5",
        "core",
        "yes",
        "0x5",
        "raw",
    ]


def test_hostile_names_are_escaped(tmp_path, capsys):
    enc = BtfEncoder()
    enc.enum("skb_drop_reason", [("SKB_DROP_REASON_\x1b[31mRED", 2)])
    (tmp_path / "vmlinux").write_bytes(enc.to_bytes())
    assert run("--btf", str(tmp_path / "vmlinux")) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\\x1b[31mRED" in out
    assert run("--btf", str(tmp_path / "vmlinux"), "--format", "json") == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and json.loads(out)[0]["name"] == "\x1b[31mRED"


@pytest.mark.skipif(not os.path.exists("/sys/kernel/btf/vmlinux"), reason="no kernel BTF")
def test_running_kernel(capsys):
    assert run("--format", "json") == 0
    items = json.loads(capsys.readouterr().out)
    assert {"raw", "hex", "subsys", "name", "source", "drop", "note"} == set(items[0])
    assert any(item["name"] == "NO_SOCKET" and item["source"] == "btf" for item in items)


# --- hostile --btf paths: bounded reads, one line, exit 2, fast ---------------------------------

_RUN_IN_CHILD = """
import argparse, os, sys, time
from droptop.frontends import reasons_cmd
parser = argparse.ArgumentParser(prog="droptop reasons")
reasons_cmd.add_arguments(parser)
args = parser.parse_args(sys.argv[1:])
start = time.monotonic()
code = reasons_cmd.run(args)
with open(os.environ["DT_ELAPSED"], "w") as f:
    f.write(str(time.monotonic() - start))
sys.exit(code)
"""


def run_in_child(tmp_path, *argv: str) -> tuple[int, str, str, float]:
    """(exit code, stdout, stderr, seconds run() took) in a child capped at 1 GiB of
    address space: an unbounded read fails the test, not the machine."""
    import resource
    import subprocess
    import sys

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    elapsed = tmp_path / "elapsed"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run(
        [sys.executable, "-c", _RUN_IN_CHILD, *argv],
        capture_output=True,
        text=True,
        timeout=8,
        preexec_fn=limit,
        cwd=root,
        env={**os.environ, "DT_ELAPSED": str(elapsed)},
    )
    took = float(elapsed.read_text()) if elapsed.exists() else float("inf")
    return proc.returncode, proc.stdout, proc.stderr, took


@pytest.mark.parametrize(
    "case",
    ["/dev/zero", "/dev/urandom", "fifo", "sparse", "vmlinux is a directory", "huge module"],
)
def test_hostile_btf_paths_are_one_line_exit_2_and_fast(tmp_path, case):
    import struct

    path = case
    if case == "fifo":  # no writer: must not block in open(2)
        path = str(tmp_path / "fifo")
        os.mkfifo(path)
    elif case == "sparse":
        path = str(tmp_path / "sparse")
        with open(path, "wb") as f:
            f.truncate(1 << 30)
    elif case == "vmlinux is a directory":
        path = str(tmp_path / "btf")
        os.makedirs(f"{path}/vmlinux")
    rc, out, err, took = run_in_child(tmp_path, "--btf", path)
    if case == "huge module":
        # A module file whose header declares 3.75 GB: that module's names are lost
        # with a one-line note; the core names still list, quickly.
        btf = write_btf_dir(tmp_path / "btf", LAYOUTS["6.18"])
        huge = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, 0xF0000000, 0, 16)
        (btf / "openvswitch").write_bytes(huge + bytes(64))
        rc, out, err, took = run_in_child(tmp_path, "--btf", str(btf))
        assert rc == 0 and "NO_SOCKET" in out
        assert "module BTF openvswitch unusable" in err and "too large" in err
    else:
        assert rc == 2, (rc, err)
        assert out == ""
        assert err.count("\n") == 1 and err.startswith("droptop reasons: "), err
    assert "Traceback" not in err
    assert took < 1.0, took


# --- not drops and sentinels ----------------------------------------------------------------------


def table_rows(text: str) -> dict[int, list[str]]:
    """RAW -> the line's cells (split on runs of 2+ spaces, so 'not a drop' stays one)."""
    import re

    rows = {}
    for line in text.splitlines()[1:]:
        cells = re.split(r"\s{2,}", line.strip())
        rows[int(cells[0])] = cells
    return rows


def test_not_dropped_yet_and_consumed_are_marked_not_drops(btf_618, capsys):
    assert run("--btf", btf_618) == 0
    out = capsys.readouterr().out
    header = out.splitlines()[0].split()
    assert header == ["RAW", "HEX", "SUBSYS", "DROP", "NAME", "SOURCE"]
    rows = table_rows(out)
    assert rows[0][3:] == ["no", "SKB_NOT_DROPPED_YET", "btf"]
    assert rows[1][3:] == ["no", "SKB_CONSUMED", "btf"]
    assert rows[2][3:] == ["yes", "NOT_SPECIFIED", "btf"]
    assert sum(cells[3] == "no" for cells in rows.values()) == 2
    assert max(len(line) for line in out.splitlines()) < 80
    assert run("--btf", btf_618, "--format", "json") == 0
    items = {i["raw"]: i for i in json.loads(capsys.readouterr().out)}
    assert (items[0]["drop"], items[1]["drop"], items[2]["drop"]) == (False, False, True)
    assert items[1]["note"] == "not a drop" and items[2]["note"] == ""


def test_value_0_is_a_drop_where_it_is_not_specified(tmp_path, capsys):
    """5.17 had no NOT_DROPPED_YET: 0 was NOT_SPECIFIED, a drop. Names decide, not values."""
    blob = tmp_path / "vmlinux-5.17"
    blob.write_bytes(vmlinux_encoder(LAYOUTS["5.17"]).to_bytes())
    assert run("--btf", str(blob), "--format", "json", "0") == 0
    (item,) = json.loads(capsys.readouterr().out)
    assert (item["name"], item["drop"], item["note"]) == ("NOT_SPECIFIED", True, "")


@pytest.mark.parametrize("release", sorted(LAYOUTS))
def test_listing_leaves_every_sentinel_out(tmp_path, release, capsys):
    btf = write_btf_dir(tmp_path / "btf", LAYOUTS[release])
    assert run("--btf", str(btf), "--format", "json") == 0
    items = json.loads(capsys.readouterr().out)
    names = {i["name"] for i in items}
    assert not {n for n in names if n.endswith(("MAX", "NUM", "MASK")) or n.startswith("_")}
    assert {"RX_DROP_UNUSABLE", "RX_DROP_MONITOR", "RX_QUEUED", "RX_CONTINUE"}.isdisjoint(names)
    assert all(i["raw"] & 0xFFFF for i in items if i["subsys"] != "core")  # no bases
    assert all(i["note"] == "" for i in items if i["drop"])


def test_asking_for_a_sentinel_says_it_is_not_a_reason(btf_618, capsys):
    layout = LAYOUTS["6.18"]
    max_raw = layout.value_of("MAX")
    ovs_max = dict(layout.modules["openvswitch"][1])["OVS_DROP_MAX"]
    values = [max_raw, 0xFFFF0000, 0x10000, 0x20000, ovs_max]
    assert run("--btf", btf_618, "--format", "json", *map(hex, values)) == 0
    items = json.loads(capsys.readouterr().out)
    assert [i["raw"] for i in items] == values
    assert all(not i["drop"] for i in items[:4])
    assert items[0]["note"] == "sentinel SKB_DROP_REASON_MAX, not a reason"
    assert items[0]["name"] == f"0x{max_raw:x}"  # never printed as if MAX were a reason
    assert items[1]["note"] == "sentinel SKB_DROP_REASON_SUBSYS_MASK, not a reason"
    assert items[2]["note"] == "sentinel RX_DROP_UNUSABLE, not a reason"
    assert items[3]["note"] == "sentinel __OVS_DROP_REASON, not a reason"
    assert items[4]["note"] == "sentinel OVS_DROP_MAX, not a reason"
    assert run("--btf", btf_618, str(max_raw)) == 0
    head, line = capsys.readouterr().out.splitlines()
    assert head.split()[-1] == "NOTE" and head.split()[3] == "DROP"
    assert line.split()[3] == "no" and line.endswith("sentinel SKB_DROP_REASON_MAX, not a reason")
