"""The droptop command as a user runs it: real BPF, real drops, real signals."""

from __future__ import annotations

import fcntl
import json
import os
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from droptop import dropgen
from tests.conftest import need_bpf
from tests.factories import row, snapshot

ROOT = Path(__file__).resolve().parents[1]
EVIL_COMM = "[b]dt\x1b[2Jz"  # Rich markup and a terminal escape, 11 bytes


FAKE_MAIN = """
import sys
import droptop.cli as cli
import droptop.runner as runner
from droptop.collector.fake import FakeCollector

class Collector(FakeCollector):
    def close(self):
        super().close()
        print("fake: closed", file=sys.stderr, flush=True)

runner.make_collector = lambda args: Collector()
raise SystemExit(cli.main(sys.argv[1:]))
"""
"""main() exactly as `droptop` runs it, with the scripted collector instead of BPF."""


def droptop(*args: str, **kw) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    return subprocess.Popen(
        [sys.executable, "-m", "droptop", *args], cwd=ROOT, env=env, text=True, **kw
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


class PtyRun:
    """droptop with a pseudo-terminal as stdin, stdout and stderr (80x24, xterm)."""

    def __init__(
        self,
        *args: str,
        fake: bool = False,
        ignore: tuple[int, ...] = (),
        term: str | None = "xterm-256color",
    ) -> None:
        self.master, self.slave = os.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        self.modes_before = termios.tcgetattr(self.slave)
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        env.pop("NO_COLOR", None)
        env.pop("TERM", None)
        if term is not None:
            env["TERM"] = term
        cmd = [sys.executable, "-c", FAKE_MAIN] if fake else [sys.executable, "-m", "droptop"]

        def child() -> None:
            for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(s, signal.SIG_IGN if s in ignore else signal.SIG_DFL)

        self.proc = subprocess.Popen(
            [*cmd, *args],
            cwd=ROOT,
            env=env,
            stdin=self.slave,
            stdout=self.slave,
            stderr=self.slave,
            start_new_session=True,
            preexec_fn=child,
        )
        self.output = b""

    def read(self, timeout: float) -> None:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if ready:
            try:
                self.output += os.read(self.master, 65536)
            except OSError:
                pass

    def wait_for(self, marker: bytes, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while marker not in self.output:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError(f"no {marker!r} on screen: {self.output[-500:]!r}")
            self.read(0.05)

    def finish(self, timeout: float) -> float:
        """Seconds until the process ended (draining the screen meanwhile)."""
        t0 = time.monotonic()
        while self.proc.poll() is None:
            if time.monotonic() - t0 > timeout:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"still running after {timeout} s: {self.output[-500:]!r}")
            self.read(0.02)
        took = time.monotonic() - t0
        for _ in range(20):
            before = len(self.output)
            self.read(0.02)
            if len(self.output) == before:
                break
        return took

    def modes_restored(self) -> bool:
        now = termios.tcgetattr(self.slave)
        keep = termios.ICANON | termios.ECHO | termios.ISIG
        return now[3] & keep == self.modes_before[3] & keep

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)
        os.close(self.slave)


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
@pytest.mark.parametrize("how", ["sigterm", "sigint", "sighup", "normal"])
def test_no_bpf_program_stays_attached_after_exit(how):
    need_bpf()
    p = droptop("-b", "-d", "0.3", *(["-n", "3"] if how == "normal" else []))
    assert p.stdout.readline()  # running and attached
    mine = prog_ids_held_by(p.pid)
    assert len(mine) == 1, "droptop should hold exactly its one program while it runs"
    assert mine <= droptop_prog_ids()  # and the kernel lists it as kfree_skb's
    if how != "normal":
        p.send_signal(getattr(signal, how.upper()))
    _, err = p.communicate(timeout=30)
    assert p.returncode == {"sigterm": 143, "sigint": 130, "sighup": 129, "normal": 0}[how], err
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


# --- usage errors: exit 2, one line, before anything loads ---------------------
# `--replay /nonexistent.json` proves "before anything loads": were the option
# checked later, the message would be about the missing file.

NOWHERE = "/nonexistent-dt-replay.json"


def assert_usage_error(r: subprocess.CompletedProcess, message: str) -> None:
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert message in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and "cannot read" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not r.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("-n", "-1"), "-n must be 0"),
        (("-n", "-100"), "-n must be 0"),
        (("--max-keys", "0"), "--max-keys must be at least 1"),
        (("--max-keys", "-5"), "--max-keys must be at least 1"),
        (("-d", "-1"), "-d must be"),
        (("-d", "nan"), "-d must be"),
        (("-d", "inf"), "-d must be"),
        (("-d", "0.01"), "-d must be"),
    ],
)
def test_every_numeric_option_is_a_usage_error(args, message):
    assert_usage_error(run_droptop("-b", "--replay", NOWHERE, *args), message)


@pytest.mark.parametrize("args", [("-n", "x"), ("--max-keys", "1e3"), ("-d", "soon")])
def test_unparsable_numbers_are_argparse_usage_errors(args):
    r = run_droptop("-b", "--replay", NOWHERE, *args)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "cannot read" not in r.stderr


@pytest.mark.bpf
def test_max_keys_zero_is_a_usage_error_before_bpf_loads():
    need_bpf()
    before = droptop_prog_ids()
    r = run_droptop("-b", "-n", "1", "--max-keys", "0")
    assert_usage_error(r, "--max-keys")
    assert droptop_prog_ids() <= before


# --- -o is checked at start -----------------------------------------------------


@pytest.fixture
def ro_mount(tmp_path):
    """A read-only tmpfs; unmounted afterwards."""
    d = tmp_path / "ro"
    d.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "dt-ro", str(d)], check=True)
    yield d
    subprocess.run(["umount", str(d)], check=True)


def unwritable(tmp_path: Path, kind: str) -> tuple[str, str]:
    """(an -o path, what the message says) for each kind of unwritable target."""
    if kind == "proc":
        return "/proc/x.json", "cannot create a file in /proc"
    if kind == "directory":
        return str(tmp_path), "is a directory"
    if kind == "parent-is-file":
        (tmp_path / "file").write_text("x")
        return str(tmp_path / "file" / "x.json"), "is not a directory"
    if kind == "read-only-file":
        f = tmp_path / "ro.json"
        f.write_text("{}")
        f.chmod(0o444)
        return str(f), "read-only"
    if kind == "device":
        return "/dev/null", "not a regular file"
    if kind == "missing-parent":
        return "/nonexistent-dir/x.json", "does not exist"
    if kind == "empty":
        return "", "-o needs a file name"
    raise AssertionError(kind)


KINDS = ["proc", "directory", "parent-is-file", "read-only-file", "device", "missing-parent"]


@pytest.mark.parametrize("kind", [*KINDS, "empty"])
def test_unwritable_output_is_a_usage_error_at_start(tmp_path, kind):
    path, message = unwritable(tmp_path, kind)
    assert_usage_error(run_droptop("-b", "--replay", NOWHERE, "-o", path), message)


def test_output_on_a_read_only_mount_is_a_usage_error_at_start(ro_mount):
    r = run_droptop("-b", "--replay", NOWHERE, "-o", str(ro_mount / "x.json"))
    assert_usage_error(r, "Read-only file system")


@pytest.mark.bpf
def test_output_checked_before_bpf_loads(tmp_path):
    """Live: nothing is attached, and no one waits for a run to hear about it."""
    need_bpf()
    before = droptop_prog_ids()
    t0 = time.monotonic()
    r = run_droptop("-b", "-d", "5", "-n", "2", "-o", "/proc/x.json")
    assert time.monotonic() - t0 < 3
    assert_usage_error(r, "/proc/x.json")
    assert droptop_prog_ids() <= before


def test_output_through_a_symlink_writes_the_file_it_points_to(tmp_path):
    """The write is a rename over the target: the link must stay a link."""
    target = tmp_path / "real" / "final.json"
    target.parent.mkdir()
    target.write_text("{}")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    replay = _replay_file(tmp_path)
    r = run_droptop("--replay", str(replay), "-b", "-o", str(link))
    assert r.returncode == 0, r.stderr
    assert link.is_symlink()
    from droptop.snapshot_file import load_snapshot

    assert [x.key.comm for x in load_snapshot(target).rows] == ["curl"]


def _replay_file(tmp_path: Path) -> Path:
    from droptop.render import write_output

    return write_output(snapshot(row(comm="curl")), tmp_path / "replay.json")


# --- the TUI needs a terminal -----------------------------------------------------


@pytest.mark.parametrize(("term", "message"), [("dumb", "TERM=dumb"), (None, "TERM is not set")])
def test_tui_refuses_a_dumb_terminal_before_loading(tmp_path, term, message):
    run = PtyRun("--replay", NOWHERE, term=term)
    try:
        run.finish(10.0)
    finally:
        run.close()
    text = run.output.decode(errors="replace")
    assert run.proc.returncode == 2, text
    assert message in text and "-b" in text and "cannot read" not in text
    assert "\x1b[" not in text  # no full-screen escape sequences at all
    assert len(text.strip().splitlines()) == 1


@pytest.mark.parametrize("where", ["stdout-pipe", "stdout-file"])
def test_tui_refuses_when_stdout_is_not_a_terminal(tmp_path, where):
    with open(tmp_path / "out", "w") as f:
        r = run_droptop("--replay", NOWHERE, **({"stdout": f} if where == "stdout-file" else {}))
    assert_usage_error(r, "stdout is not a terminal; use -b")


def test_tui_refuses_when_stdin_is_not_a_terminal():
    """stdout a terminal, stdin /dev/null: no keys to read, not even q."""
    master, slave = os.openpty()
    try:
        p = subprocess.run(
            [sys.executable, "-m", "droptop", "--replay", NOWHERE],
            cwd=ROOT,
            env=dict(os.environ, PYTHONPATH=str(ROOT), TERM="xterm-256color"),
            stdin=subprocess.DEVNULL,
            stdout=slave,
            stderr=subprocess.PIPE,
            text=True,
            timeout=30,
        )
    finally:
        os.close(master)
        os.close(slave)
    assert_usage_error(subprocess.CompletedProcess(p.args, p.returncode, "", p.stderr), "use -b")


# --- stdout that is full, closed or gone ----------------------------------------


@pytest.mark.parametrize("fmt", ["text", "json", "csv"])
def test_stdout_full_is_one_line_exit_1(tmp_path, fmt):
    replay = _replay_file(tmp_path)
    with open("/dev/full", "w") as full:
        r = run_droptop("--replay", str(replay), "-b", "--format", fmt, stdout=full)
    assert r.returncode == 1
    assert r.stderr == "droptop: cannot write to stdout: No space left on device\n"


def test_stdout_full_still_writes_o(tmp_path):
    replay = _replay_file(tmp_path)
    out = tmp_path / "o.json"
    with open("/dev/full", "w") as full:
        r = run_droptop("--replay", str(replay), "-b", "-o", str(out), stdout=full)
    assert r.returncode == 1
    assert sorted(r.stderr.splitlines()) == [
        "droptop: cannot write to stdout: No space left on device",
        f"droptop: wrote {out}",
    ]


@pytest.mark.parametrize("args", [("-b",), ("reasons",)])
def test_stdout_closed_is_one_line_exit_1(tmp_path, args):
    replay = _replay_file(tmp_path)
    extra = ("--replay", str(replay)) if args == ("-b",) else ()
    r = run_droptop(*args, *extra, stdout=None, preexec_fn=lambda: os.close(1))
    assert r.returncode == 1, r.stderr
    assert r.stderr == "droptop: cannot write to stdout: it is closed\n"


def test_stdout_and_stderr_closed_is_a_silent_exit_1(tmp_path):
    replay = _replay_file(tmp_path)
    out = tmp_path / "o.json"

    def close_both() -> None:
        os.close(1)
        os.close(2)

    p = subprocess.run(
        [sys.executable, "-m", "droptop", "--replay", str(replay), "-b", "-o", str(out)],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        preexec_fn=close_both,
        timeout=30,
    )
    assert p.returncode == 1
    assert not out.exists()  # refused before anything ran


def test_reader_that_left_is_a_quiet_exit_0():
    """`droptop -b | head -1`: the next frame hits a closed pipe."""
    p = subprocess.Popen(
        [sys.executable, "-c", FAKE_MAIN, "-b", "-d", "0.1", "--format", "csv"],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert p.stdout.readline().startswith(b"time,reason")
    p.stdout.close()
    err = p.stderr.read()
    assert p.wait(timeout=10) == 0
    assert err == b"fake: closed\n"


@pytest.mark.bpf
def test_live_stdout_full_is_one_line_exit_1_and_detaches():
    need_bpf()
    before = droptop_prog_ids()
    with open("/dev/full", "w") as full:
        r = run_droptop("-b", "-d", "0.3", "-n", "2", stdout=full)
    assert r.returncode == 1
    lines = r.stderr.splitlines()
    assert lines[-1] == "droptop: cannot write to stdout: No space left on device", r.stderr
    assert "Traceback" not in r.stderr and "Exception ignored" not in r.stderr
    assert wait_gone(droptop_prog_ids() - before) == set()


@pytest.mark.parametrize(
    ("listen", "message"),
    [("127.0.0.1:notaport", "--listen"), ("999.1.1.1:9469", "--listen"), ("", "--listen")],
)
def test_bad_listen_is_one_line_and_exit_2_before_anything_loads(listen, message):
    r = run_droptop("--listen", listen, "-b", "-n", "1")
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in r.stderr
    assert "attached" not in r.stderr  # no BPF program was loaded


def test_listen_on_a_taken_port_is_exit_2_before_bpf_loads():
    import socket

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        port = taken.getsockname()[1]
        r = run_droptop("--listen", f"127.0.0.1:{port}", "-b", "-n", "1")
    finally:
        taken.close()
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "attached" not in r.stderr
