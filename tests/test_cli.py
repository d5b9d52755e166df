"""The droptop command as a user runs it: real BPF, real drops, real signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from droptop import dropgen
from tests.conftest import need_bpf
from tests.factories import row, snapshot

ROOT = Path(__file__).resolve().parents[1]
EVIL_COMM = "[b]dt\x1b[2Jz"  # Rich markup and a terminal escape, 11 bytes


def droptop(*args: str, **kw) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        [sys.executable, "-m", "droptop", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


def run_droptop(*args: str, timeout: float = 60, **kw) -> subprocess.CompletedProcess:
    p = droptop(*args, **kw)
    out, err = p.communicate(timeout=timeout)
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)


def droptop_prog_ids() -> set[int]:
    out = subprocess.run(
        ["bpftool", "prog", "show", "--json"], check=True, capture_output=True, text=True
    ).stdout
    return {
        p["id"]
        for p in json.loads(out)
        if p.get("type") in ("raw_tracepoint", "tracing") and p.get("name") == "kfree_skb"
    }


def prog_ids_held_by(pid: int) -> set[int]:
    """BPF programs a process holds fds for (fdinfo shows prog_id for program fds)."""
    ids = set()
    for fd in os.listdir(f"/proc/{pid}/fdinfo"):
        try:
            text = Path(f"/proc/{pid}/fdinfo/{fd}").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("prog_id:"):
                ids.add(int(line.split()[1]))
    return ids


def wait_gone(ids: set[int], timeout: float = 5.0) -> set[int]:
    deadline = time.monotonic() + timeout
    while (left := ids & droptop_prog_ids()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


# --- errors: one line, no traceback -------------------------------------------


def test_not_root_is_one_clear_line():
    r = subprocess.run(
        [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            sys.executable,
            "-m",
            "droptop",
            "-b",
            "-n",
            "1",
        ],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 1
    assert "needs root" in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("-b", "--filter", "rate>>"), "bad filter"),
        (("-b", "-o", "/nonexistent-dir/x.json"), "does not exist"),
        (("--replay", "/nonexistent.json", "-b"), "cannot read"),
        (("-b", "-d", "0"), "-d must be"),
        (("reasons", "not-a-number"), ""),
    ],
)
def test_bad_input_is_a_message_not_a_traceback(args, message):
    r = run_droptop(*args)
    assert r.returncode != 0
    assert message in r.stderr
    assert "Traceback" not in r.stderr


def test_replay_needs_no_root():
    import shutil
    import tempfile

    from droptop.render import write_output

    public = Path(tempfile.mkdtemp(prefix="droptop-replay-"))  # pytest's tmp_path is 0700
    public.chmod(0o755)
    path = write_output(snapshot(row(comm=EVIL_COMM)), public / "snap.json")
    r = subprocess.run(
        [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            sys.executable,
            "-m",
            "droptop",
            "--replay",
            str(path),
            "-b",
            "--format",
            "json",
        ],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    shutil.rmtree(public)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["rows"][0]["comm"] == EVIL_COMM


# --- real runs -----------------------------------------------------------------


def _batch_with_drops(fmt: str, tmp_path: Path) -> tuple[str, Path]:
    out_file = tmp_path / f"final.{'txt' if fmt == 'text' else fmt}"
    p = droptop("-b", "-d", "0.5", "-n", "4", "--format", fmt, "-o", str(out_file))
    # The first line appears after the first interval: the program is attached by then.
    first = p.stdout.readline()
    assert first, p.stderr.read()
    dropgen.spawn("udp", 25, comm=EVIL_COMM)
    rest, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    return first + rest, out_file


@pytest.mark.bpf
def test_markup_and_escape_bytes_in_comm_are_escaped_in_text(tmp_path):
    need_bpf()
    text, out_file = _batch_with_drops("text", tmp_path)
    assert "\x1b" not in text
    assert "[b]dt\\x1b[2Jz" in text
    assert "[b]dt\\x1b[2Jz" in out_file.read_text()
    assert all(len(line) <= 80 for line in text.splitlines())


@pytest.mark.bpf
def test_markup_and_escape_bytes_in_comm_are_exact_in_json(tmp_path):
    need_bpf()
    text, out_file = _batch_with_drops("json", tmp_path)
    assert "\x1b" not in text
    frames = [json.loads(line) for line in text.splitlines()]
    assert len(frames) == 4
    rows = [r for r in frames[-1]["rows"] if r["comm"] == EVIL_COMM]
    assert rows and sum(r["packets"] for r in rows) == 25
    assert all(r["reason"] == "NO_SOCKET" and r["ifname"] == "lo" for r in rows)
    final = json.loads(out_file.read_text())
    assert final["reason_table"] and final["kernel"] == os.uname().release


@pytest.mark.bpf
@pytest.mark.parametrize("how", ["sigterm", "sigint", "normal"])
def test_no_bpf_program_stays_attached_after_exit(how):
    need_bpf()
    p = droptop("-b", "-d", "0.3", *(["-n", "3"] if how == "normal" else []))
    assert p.stdout.readline()  # running and attached
    mine = prog_ids_held_by(p.pid)
    assert len(mine) == 1, "droptop should hold exactly its one program while it runs"
    assert mine <= droptop_prog_ids()  # and the kernel lists it as kfree_skb's
    if how == "sigterm":
        p.send_signal(signal.SIGTERM)
    elif how == "sigint":
        p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=30)
    assert p.returncode == {"sigterm": 143, "sigint": 0, "normal": 0}[how], err
    assert "Traceback" not in err
    assert wait_gone(mine) == set()


def test_replay_batch_filter_and_hide_unspecified(tmp_path):
    from droptop.render import write_output

    path = write_output(
        snapshot(
            row(name="NOT_SPECIFIED", raw=2, comm="kworker"),
            row(name="NO_SOCKET", comm="curl"),
            row(name="NETFILTER_DROP", raw=6, comm="curl"),
        ),
        tmp_path / "snap.json",
    )
    r = run_droptop("--replay", str(path), "-b", "--format", "json", "--hide-unspecified")
    assert r.returncode == 0, r.stderr
    assert [x["reason"] for x in json.loads(r.stdout)["rows"]] == ["NO_SOCKET", "NETFILTER_DROP"]
    r = run_droptop("--replay", str(path), "-b", "--format", "csv", "--filter", "!reason:netfilter")
    assert r.returncode == 0, r.stderr
    reasons = [line.split(",")[1] for line in r.stdout.splitlines()[1:]]
    assert reasons == ["NOT_SPECIFIED", "NO_SOCKET"]
