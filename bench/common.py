"""Shared plumbing for droptop's benchmarks: the flood, the nft rule, statistics, results.

The benchmarks live outside the test suite on purpose: they need root, take
minutes, and their numbers mean something only on a quiet machine. Every helper
here that creates kernel state (an nft table, a sysctl value) is a context
manager, so an exception or Ctrl-C never leaves the machine changed.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
BUILD = BENCH / "build"
RESULTS = BENCH / "results"
PYTHON = str(REPO / ".venv" / "bin" / "python")

NFT_TABLE = "droptop_bench"
NFT_PORT = 9998
CLOSED_PORT = 9997
FLOOD_COMM = "dtbench_flood"

if str(REPO) not in sys.path:  # the checkout's droptop, not an installed copy
    sys.path.insert(0, str(REPO))
from droptop import dropgen  # noqa: E402


def ensure_droptop_importable() -> None:
    """Make `import droptop` work from bench/ (the checkout, not an installed copy)."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))


def droptop_env() -> dict[str, str]:
    """Environment for a `python -m droptop` child: this checkout first on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])
    return env


run = dropgen.run


# --- the flood -------------------------------------------------------------


def build_flood() -> Path:
    """Compile flood.c into bench/build/ unless the binary is newer than the source."""
    src, exe = BENCH / "flood.c", BUILD / "flood"
    BUILD.mkdir(exist_ok=True)
    if not exe.exists() or exe.stat().st_mtime < src.stat().st_mtime:
        run(["gcc", "-O2", "-Wall", "-pthread", "-o", str(exe), str(src)])
    return exe


@dataclass(frozen=True)
class FloodResult:
    sent: int
    seconds: float


def parse_flood(out: str) -> FloodResult:
    words = out.split()
    return FloodResult(
        int(words[words.index("sent") + 1]), float(words[words.index("seconds") + 1])
    )


def flood_cmd(
    seconds: float, *, threads: int = 2, port: int = NFT_PORT, comm: str = FLOOD_COMM
) -> list[str]:
    return [str(build_flood()), "-t", str(threads), "-d", str(seconds), "-p", str(port), "-c", comm]


def flood(seconds: float, **kw: object) -> FloodResult:
    return parse_flood(run(flood_cmd(seconds, **kw)).stdout)  # type: ignore[arg-type]


@contextmanager
def nft_input_drop(port: int = NFT_PORT, table: str = NFT_TABLE) -> Iterator[str]:
    """dropgen's counted drop rule, on the *input* hook (see nft_drop_rule)."""
    with dropgen.nft_drop_rule(port, table, hook="input") as name:
        yield name


def nft_counter(table: str = NFT_TABLE) -> int:
    return dropgen.nft_counter(table)


# --- kernel state ------------------------------------------------------------


@contextmanager
def sysctl(name: str, value: str) -> Iterator[None]:
    """Set a sysctl for the duration of a block and restore the old value."""
    path = Path("/proc/sys") / name.replace(".", "/")
    old = path.read_text().strip()
    path.write_text(value)
    try:
        yield
    finally:
        path.write_text(old)


def foreign_kfree_skb_tracers() -> int:
    """BPF links on skb:kfree_skb right now (other engineers' tests add noise to a run)."""
    try:
        links = json.loads(run(["bpftool", "-j", "link", "list"]).stdout or "[]")
    except (OSError, subprocess.CalledProcessError, ValueError):
        return -1
    return sum(1 for link in links if link.get("tp_name") == "kfree_skb")


def busy_other_cpu_seconds() -> float:
    """CPU seconds used by all processes so far (user + system), from /proc/stat."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    ticks = os.sysconf("SC_CLK_TCK")
    user, nice, system, _idle, _iowait, irq, softirq = (int(x) for x in fields[:7])
    return (user + nice + system + irq + softirq) / ticks


# --- statistics and results ----------------------------------------------------


def summary(values: list[float]) -> dict[str, float | int]:
    """Median and min-max: with 2 shared cores the spread matters as much as the centre."""
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
    }


def fmt_range(s: dict, scale: float = 1.0, digits: int = 2) -> str:
    if not s.get("n"):
        return "n/a"
    f = f"{{:.{digits}f}}".format
    return f"{f(s['median'] * scale)} ({f(s['min'] * scale)}-{f(s['max'] * scale)})"


def environment() -> dict[str, object]:
    """What a result depends on, so a number in the README can be traced to its machine."""
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break

    def version(cmd: list[str]) -> str | None:
        if not shutil.which(cmd[0]):
            return None
        try:
            return run(cmd, check=False).stdout.strip().splitlines()[0]
        except (IndexError, OSError):
            return None

    try:
        import bcc

        bcc_version = getattr(bcc, "__version__", "unknown")
    except ImportError:
        bcc_version = None
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "kernel": platform.release(),
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "python": platform.python_version(),
        "bcc": bcc_version,
        "bpftrace": version(["bpftrace", "--version"]),
        "perf": version(["perf", "--version"]),
    }


def write_results(name: str, data: dict) -> Path:
    """bench/results/NAME.json, written atomically (a .tmp file is gitignored)."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"environment": environment(), **data}, indent=2) + "\n")
    tmp.replace(path)
    return path


def script_main(main: Callable[[], int]) -> NoReturn:
    """Run a benchmark's main(); a failing tool (nft, bpftool) ends it with one line."""
    try:
        raise SystemExit(main())
    except subprocess.CalledProcessError as e:
        raise SystemExit(f"{e.cmd[0]} failed: {e.stderr}") from None


def _terminate(signum: int, frame: object) -> None:
    import signal

    # Unwind once: a second signal (`timeout` forwards one, pkill may match twice)
    # must not interrupt the finally blocks that remove the nft table.
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, signal.SIG_IGN)
    raise KeyboardInterrupt(f"signal {signum}")


def require_root() -> None:
    """Refuse to run without root; make SIGTERM/SIGHUP unwind like Ctrl-C.

    Every benchmark cleans up in `finally` blocks (nft table, sysctl, BPF
    programs, children); a plain SIGTERM would skip them, and SIGINT is ignored
    by jobs a non-interactive shell starts in the background.
    """
    if os.geteuid() != 0:
        raise SystemExit("the benchmarks need root (BPF, nftables, sysctl)")
    import signal

    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, _terminate)


def tracefs_reason(name: str) -> int:
    """Raw value of a core drop reason from the tracepoint's format file.

    Independent of droptop's own resolver, so a benchmark cannot agree with a
    wrong name by construction.
    """
    import re

    fmt = Path("/sys/kernel/tracing/events/skb/kfree_skb/format")
    if not fmt.exists():
        run(["mount", "-t", "tracefs", "tracefs", "/sys/kernel/tracing"], check=False)
    m = re.search(r'\{ (\d+), "' + re.escape(name) + r'" \}', fmt.read_text())
    if not m:
        raise RuntimeError(f"reason {name} not in {fmt}")
    return int(m.group(1))


def use_droptop_headers() -> None:
    """Point bcc at the same kernel headers droptop would use (for extra BPF programs)."""
    ensure_droptop_importable()
    from droptop.collector.headers import find_headers

    os.environ["BCC_KERNEL_SOURCE"] = str(find_headers().path)


snmp_counter = dropgen.snmp_counter


def children_cpu_seconds() -> float:
    """User + system CPU of this process's reaped children."""
    import resource

    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def proc_cpu_seconds(pid: int | None) -> float:
    """User + system CPU of a live process (0 if it is gone or pid is None)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_quiet(
    max_wait: float = 30.0,
    busy_fraction: float = 0.1,
    sample: float = 0.5,
    no_tracers: bool = False,
) -> float:
    """Wait until the machine is nearly idle (other engineers' tests share these cores)
    and, with no_tracers, until no BPF program is on kfree_skb (their droptops).

    Returns the seconds waited; gives up after max_wait and lets the caller's
    noise check (others_cpu_s) flag the result instead.
    """
    start = time.monotonic()
    ncpu = os.cpu_count() or 1
    while True:
        b0 = busy_other_cpu_seconds()
        time.sleep(sample)
        idle = (busy_other_cpu_seconds() - b0) / (sample * ncpu) < busy_fraction
        if idle and (not no_tracers or foreign_kfree_skb_tracers() <= 0):
            break
        if time.monotonic() - start > max_wait:
            break
    return time.monotonic() - start
