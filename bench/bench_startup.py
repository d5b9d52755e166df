"""Start-up, TUI cost and where start-up time goes.

    bench_startup.py [--reps 5] [--tui-seconds 15] [--out NAME]

1. Batch: wall time from exec of `python -m droptop -b -d 0.2 -n 1 --format json`
   to its first output line (one 0.2 s interval is part of it by design: batch
   mode prints rates, which need two readings).
2. Breakdown, in a fresh interpreter: imports, BTF parse + layout, reason names,
   the collector (droptop's loader child imports bcc, compiles, loads, attaches
   and hands the fds back), first poll; and the peak RSS of the loader child
   and of the monitor itself.
3. TUI first complete frame: the real TUI under a pseudo-terminal (120x40); the
   time from exec until the screen holds both the snapshot line of the header
   ("map N/M") and the table's column header, i.e. the first frame drawn from data.
4. TUI CPU % and peak RSS at a 1 s interval with no keys, 1,000 keys and
   10,000 keys (the RSS target), read from /proc from 3 s after the keys were
   added to the end; the terminal is drained as a real one would be, and the
   app is quit with `q`.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common

ANSI = re.compile(rb"\x1b(\[[0-9;?<>=$]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[@-Z\\-_])")

BREAKDOWN = r"""
import json, resource, time
marks = [("exec", %(t_exec)r)]
def mark(name): marks.append((name, time.time()))
mark("interpreter")
import droptop.cli, droptop.collector.kernel as m
mark("import droptop")
from droptop.names.btf import load_vmlinux
from droptop.collector.offsets import read_layout
v = load_vmlinux(); read_layout(v)
mark("BTF parse + layout")
from droptop.names.reasons import ReasonResolver
ReasonResolver.for_running_kernel(v).table()
mark("reason names")
col = m.KernelCollector()
mark("KernelCollector() (loader child: bcc compile, load, attach)")
col.poll()
mark("first poll")
col.close()
out = {b: round((t - a) * 1e3, 1) for (_, a), (b, t) in zip(marks, marks[1:])}
peak = lambda who: round(resource.getrusage(who).ru_maxrss / 1024, 1)
out["loader child peak RSS (MB)"] = peak(resource.RUSAGE_CHILDREN)
out["monitor peak RSS after first poll (MB)"] = peak(resource.RUSAGE_SELF)
print(json.dumps(out))
"""


def batch_first_row() -> dict:
    cmd = [common.PYTHON, "-m", "droptop", "-b", "-d", "0.2", "-n", "1", "--format", "json"]
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, env=common.droptop_env())
    assert p.stdout is not None
    line = p.stdout.readline()
    first = time.monotonic() - t0
    p.wait(timeout=30)
    return {"first_row_s": first, "exit_s": time.monotonic() - t0, "ok": line.startswith(b"{")}


def breakdown() -> dict:
    code = BREAKDOWN % {"t_exec": time.time()}
    out = subprocess.run(
        [common.PYTHON, "-c", code],
        capture_output=True,
        text=True,
        env=common.droptop_env(),
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


class Tui:
    """The real TUI in a pseudo-terminal; output drained and screen text kept."""

    def __init__(self, cols: int = 120, rows: int = 40) -> None:
        env = dict(common.droptop_env(), TERM="xterm-256color", COLUMNS=str(cols), LINES=str(rows))
        self.t0 = time.monotonic()
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # child
            os.execve(common.PYTHON, [common.PYTHON, "-m", "droptop", "-d", "1"], env)
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.text = b""

    def pump(self, seconds: float) -> bool:
        """Read for up to `seconds`; False once the child closed the terminal."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            r, _, _ = select.select([self.fd], [], [], min(left, 0.05))
            if r:
                try:
                    data = os.read(self.fd, 1 << 16)
                except OSError:
                    return False
                if not data:
                    return False
                self.text = (self.text + ANSI.sub(b"", data))[-(1 << 16) :]
        return True

    def wait_for(self, *needles: bytes, timeout: float = 20.0) -> float | None:
        """Seconds since exec until every needle has appeared, or None."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if all(n in self.text for n in needles):
                return time.monotonic() - self.t0
            if not self.pump(0.01):
                return None
        return None

    def cpu_seconds(self) -> float:
        return common.proc_cpu_seconds(self.pid)

    def peak_rss_mb(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def quit(self) -> None:
        try:
            os.write(self.fd, b"q")
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.pump(0.1):
                pass
        except OSError:
            pass
        if os.waitpid(self.pid, os.WNOHANG) == (0, 0):
            os.kill(self.pid, signal.SIGTERM)
            time.sleep(1)
            if os.waitpid(self.pid, os.WNOHANG) == (0, 0):
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
        os.close(self.fd)


FIRST_FRAME = (rb"map ", rb"REASON")


def tui_first_frame() -> float | None:
    tui = Tui()
    try:
        return tui.wait_for(*FIRST_FRAME)
    finally:
        tui.quit()


def tui_cpu(seconds: float, keys: int) -> dict:
    tui = Tui()
    try:
        first = tui.wait_for(*FIRST_FRAME)
        if first is None:
            return {"error": "no first frame"}
        if keys:
            common.run([sys.executable, str(common.BENCH / "keygen.py"), str(keys), "tui"])
        tui.pump(3.0)
        c0, t0 = tui.cpu_seconds(), time.monotonic()
        tui.pump(seconds)
        c1, t1 = tui.cpu_seconds(), time.monotonic()
        rss = tui.peak_rss_mb()
    finally:
        tui.quit()
    return {
        "keys": keys,
        "seconds": round(t1 - t0, 1),
        "cpu_percent": round(100 * (c1 - c0) / (t1 - t0), 2),
        "peak_rss_mb": round(rss, 1),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--tui-seconds", type=float, default=15.0)
    p.add_argument("--tui-keys", type=int, default=1000)
    p.add_argument("--tui-big-keys", type=int, default=10000, help="0: skip the big run")
    p.add_argument("--out", default="startup")
    args = p.parse_args(argv)
    common.require_root()
    tui_exists = (common.REPO / "droptop" / "tui" / "app.py").exists()
    batch, frames, parts = [], [], []
    for _ in range(args.reps):  # alternate the three so drift hits all of them
        common.wait_quiet()
        batch.append(batch_first_row())
        common.wait_quiet()
        parts.append(breakdown())
        if tui_exists:
            common.wait_quiet()
            frames.append(tui_first_frame())
    res: dict = {
        "batch_first_row_s": common.summary([b["first_row_s"] for b in batch]),
        "batch_exit_s": common.summary([b["exit_s"] for b in batch]),
        "batch_ok": all(b["ok"] for b in batch),
        "breakdown_ms": {k: common.summary([p[k] for p in parts]) for k in parts[0]},
        "tui_exists": tui_exists,
    }
    if tui_exists:
        res["tui_first_frame_s"] = common.summary([f for f in frames if f is not None])
        res["tui_first_frame_failures"] = sum(1 for f in frames if f is None)
        common.wait_quiet()
        res["tui_cpu_no_keys"] = tui_cpu(args.tui_seconds, 0)
        common.wait_quiet()
        res["tui_cpu"] = tui_cpu(args.tui_seconds, args.tui_keys)
        if args.tui_big_keys:
            common.wait_quiet()
            res["tui_cpu_big"] = tui_cpu(args.tui_seconds, args.tui_big_keys)
    print(f"batch first row: {common.fmt_range(res['batch_first_row_s'], digits=3)} s")
    for k, s in res["breakdown_ms"].items():
        unit = "" if "(MB)" in k else " ms"
        print(f"  {k:34s} {common.fmt_range(s, digits=1)}{unit}")
    if tui_exists:
        print(f"TUI first frame: {common.fmt_range(res['tui_first_frame_s'], digits=3)} s")
        print(f"TUI, no keys: {res['tui_cpu_no_keys']}")
        print(f"TUI: {res['tui_cpu']}")
        if "tui_cpu_big" in res:
            print(f"TUI: {res['tui_cpu_big']}")
    path = common.write_results(args.out, res)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
