"""Shared fixtures. Kernel tests load the real BPF program; CI sets DROPTOP_REQUIRE_BPF=1
so that a machine where BPF is unavailable fails those tests instead of skipping them."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REQUIRE_BPF = os.environ.get("DROPTOP_REQUIRE_BPF") == "1"


def bpf_unavailable() -> str | None:
    """Why the kernel tests cannot run here, or None."""
    if os.geteuid() != 0:
        return "not root"
    if not os.path.exists("/sys/kernel/btf/vmlinux"):
        return "no /sys/kernel/btf/vmlinux"
    try:
        import bcc  # noqa: F401
    except ImportError:
        return "bcc (python3-bpfcc) not importable"
    return None


def need_bpf() -> None:
    why = bpf_unavailable()
    if why:
        if REQUIRE_BPF:
            pytest.fail(f"DROPTOP_REQUIRE_BPF=1 but BPF is unavailable: {why}")
        pytest.skip(f"BPF unavailable: {why}")


@pytest.fixture(scope="session")
def bpf_collector():
    """One real collector for the session; tests tell their drops apart by comm or netns."""
    need_bpf()
    from droptop.collector.kernel import KernelCollector
    from droptop.errors import DroptopError

    try:
        c = KernelCollector()
    except DroptopError as e:
        if REQUIRE_BPF:
            pytest.fail(f"DROPTOP_REQUIRE_BPF=1 but the collector failed: {e}")
        pytest.skip(str(e))
    yield c
    c.close()


def wait_for(poll: Callable[[], object], done: Callable[[object], bool], timeout: float = 5.0):
    """Poll until done(result) or timeout; return the last result (asserts decide)."""
    deadline = time.monotonic() + timeout
    while True:
        result = poll()
        if done(result) or time.monotonic() > deadline:
            return result
        time.sleep(0.05)


def need_tool(name: str) -> str:
    """The path of a program a real test reads our output with (tcpdump, tshark)."""
    path = shutil.which(name)
    if path is None:
        if REQUIRE_BPF:
            pytest.fail(f"DROPTOP_REQUIRE_BPF=1 but {name} is not installed")
        pytest.skip(f"{name} not installed")
    return path


ROOT = str(Path(__file__).resolve().parents[1])


@contextmanager
def spinners(comm: str) -> Iterator[list[subprocess.Popen[str]]]:
    """A CPU-burning process per CPU, named `comm`: timer softirqs will fire on top of
    them, and must not be blamed on them."""
    prog = f"from droptop.dropgen import set_comm\nset_comm({comm!r})\nwhile True: pass\n"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", prog], cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT}
        )
        for _ in range(os.cpu_count() or 1)
    ]
    try:
        time.sleep(0.3)
        yield procs
    finally:
        for p in procs:
            p.send_signal(signal.SIGKILL)
            p.wait()
