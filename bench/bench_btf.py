"""How long droptop's start-up spends in BTF (a benchmark, not a test).

Budget (issue 3): loading this machine's ~5.5 MB vmlinux BTF and naming every
drop reason must take under 100 ms. Each figure is a fresh load, as at start-up:

    .venv/bin/python bench/bench_btf.py [--runs N] [--btf /sys/kernel/btf/vmlinux]

Prints median / min / max milliseconds for: the load alone, load + every reason
name (ReasonResolver + table()), and load + what the collector asks (member
offsets and the tracepoint prototype).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from droptop.names.btf import load_vmlinux
from droptop.names.reasons import ReasonResolver

LAYOUT_LOOKUPS = [
    ("sk_buff", "dev"),
    ("sk_buff", "len"),
    ("net_device", "ifindex"),
    ("net_device", "nd_net"),
    ("net_device", "name"),
    ("net", "ns.inum"),
    ("task_struct", "flags"),
]


def measure(label: str, runs: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    median = statistics.median(times)
    print(f"{label:<34} median {median:7.1f} ms   min {min(times):7.1f}   max {max(times):7.1f}")
    return median


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--btf", default="/sys/kernel/btf/vmlinux")
    args = parser.parse_args()
    path = args.btf
    btf_dir = Path(path).parent

    def names() -> int:
        return len(ReasonResolver(load_vmlinux(path), btf_dir).table())

    def layout() -> None:
        btf = load_vmlinux(path)
        for struct_name, member in LAYOUT_LOOKUPS:
            btf.member_offset(struct_name, member)
        btf.func_proto_params("btf_trace_kfree_skb")

    btf = load_vmlinux(path)
    print(f"{path}: {Path(path).stat().st_size / 1e6:.1f} MB, {len(btf)} types, {names()} reasons")
    print(f"{args.runs} runs each, Python {sys.version.split()[0]}")
    measure("load", args.runs, lambda: load_vmlinux(path))
    total = measure("load + every reason name", args.runs, names)
    measure("load + layout offsets + prototype", args.runs, layout)
    verdict = "within" if total < 100 else "OVER"
    print(f"reason names: {total:.1f} ms, {verdict} the 100 ms budget")
    return 0 if total < 100 else 1


if __name__ == "__main__":
    raise SystemExit(main())
