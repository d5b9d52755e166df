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
    assert out[0].split() == ["RAW", "HEX", "SUBSYS", "NAME", "SOURCE"]
    assert out[11].split() == ["10", "0xa", "core", "TCP_CSUM", "btf"]
    assert ["65538", "0x10002", "mac80211_unusable", "RX_DROP_U_REPLAY", "btf"] in [
        line.split() for line in out
    ]
    assert out[-1].split()[3] == "OVS_DROP_METER"
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
    assert all(len(i) == 5 for i in items)


def test_raw_vmlinux_file(tmp_path, capsys):
    blob = tmp_path / "vmlinux-5.17"
    blob.write_bytes(vmlinux_encoder(LAYOUTS["5.17"]).to_bytes())
    assert run("--btf", str(blob), "3") == 0
    assert capsys.readouterr().out.splitlines()[1].split() == [
        "3",
        "0x3",
        "core",
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
    assert capsys.readouterr().out.splitlines()[1].split() == ["5", "0x5", "core", "0x5", "raw"]


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
    assert {"raw", "hex", "subsys", "name", "source"} == set(items[0])
    assert any(item["name"] == "NO_SOCKET" and item["source"] == "btf" for item in items)
