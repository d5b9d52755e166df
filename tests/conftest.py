"""Shared fixtures. Kernel tests load the real BPF program; CI sets DROPTOP_REQUIRE_BPF=1
so that a machine where BPF is unavailable fails those tests instead of skipping them."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

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
