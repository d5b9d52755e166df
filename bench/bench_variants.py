"""Where droptop's per-drop nanoseconds go: the kernel's own timing of program variants.

    bench_variants.py [--reps 6] [--seconds 1.5] [--variants name,...] [--out NAME]

Throughput ratios on 2 shared cores move by a few percent between runs, which
is more than the difference between two good BPF programs. The kernel's BPF
run-time accounting (kernel.bpf_stats_enabled, run_time_ns / run_cnt) times
only the program, so it separates variants that differ by a few ns. Each
variant is a copy of droptop's program (bench/proto/droptop_variants.bpf.c)
with one part of the hot path switched off or replaced; they run in rotated
order, several times, under the same nft flood, and every run also checks that
the variant still counted every drop (so a "cheaper" variant cannot win by
miscounting).

The stats add two clock reads around every run; on this VM that alone is most
of what the empty program shows, so compare each variant with `empty`.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_overhead as ov
import common

PROTO = common.BENCH / "proto" / "droptop_variants.bpf.c"

# name -> (stacks, extra -D flags); None means the real bpf/droptop.bpf.c
VARIANTS: dict[str, tuple[bool, tuple[str, ...]] | None] = {
    "empty": None,
    "droptop": (True, ()),
    "droptop_nostacks": (False, ()),
    "two_reads": (True, ("-DV_TWO_READS",)),
    "pid_tag": (True, ("-DV_PID_TAG",)),
    "no_task": (True, ("-DV_NO_TASK",)),
    "no_skb_read": (True, ("-DV_NO_SKB",)),
    "no_skb_no_task": (True, ("-DV_NO_SKB", "-DV_NO_TASK")),
    "tp_btf": (True, ()),
    "tp_btf_nostacks": (False, ()),
}


def make(name: str) -> ov.Tracer:
    spec = VARIANTS[name]
    if spec is None:
        return ov.EmptyBpf()
    stacks, flags = spec
    if name in ("droptop", "droptop_nostacks"):
        return ov.Droptop(name, stacks=stacks)  # the real program, not the copy
    if name.startswith("tp_btf"):
        import tpbtf

        return ov.Droptop(
            name, stacks=stacks, cflags=flags, collector_class=tpbtf.tp_btf_collector_class
        )
    return ov.Droptop(name, stacks=stacks, source=PROTO, cflags=flags)


def one(name: str, seconds: float) -> dict:
    """One flood under one variant: ns per run, drops/s, and drops lost."""
    common.ensure_droptop_importable()
    from droptop.collector.bcc import _bpf_prog_stats

    t = make(name)
    t.start()
    try:
        fd = t.prog_fd()
        assert fd is not None
        t.mark()
        ns0, cnt0, _ = _bpf_prog_stats(fd)
        c0 = common.nft_counter()
        fl = common.parse_flood(common.run(common.flood_cmd(seconds)).stdout)
        dropped = common.nft_counter() - c0
        ns1, cnt1, _ = _bpf_prog_stats(fd)
        extra = t.finish()
    finally:
        t.stop()
    runs = cnt1 - cnt0
    r = {
        "variant": name,
        "ns_per_run": (ns1 - ns0) / runs if runs else None,
        "runs": runs,
        "rate": dropped / fl.seconds,
        "dropped": dropped,
    }
    if "seen" in extra:
        r["lost"] = dropped - extra["seen"] - extra["seen_ksoftirqd"]
    return r


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--reps", type=int, default=6)
    p.add_argument("--seconds", type=float, default=1.5)
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--out", default="variants")
    args = p.parse_args(argv)
    common.require_root()
    names = args.variants.split(",")
    common.build_flood()
    runs: list[dict] = []
    with common.nft_input_drop(), common.sysctl("kernel.bpf_stats_enabled", "1"):
        for rep in range(args.reps):
            for name in names[rep % len(names) :] + names[: rep % len(names)]:
                common.wait_quiet()
                r = one(name, args.seconds)
                r["rep"] = rep
                runs.append(r)
                lost = f" lost {r['lost']}" if "lost" in r else ""
                print(
                    f"  rep {rep} {name:17s} {r['ns_per_run']:6.1f} ns/drop "
                    f"{r['rate'] / 1e6:.3f} M/s{lost}",
                    flush=True,
                )
    summary = {}
    for name in names:
        mine = [r for r in runs if r["variant"] == name]
        summary[name] = {
            "ns_per_drop": common.summary([r["ns_per_run"] for r in mine if r["ns_per_run"]]),
            "rate": common.summary([r["rate"] for r in mine]),
            "lost_total": sum(r.get("lost", 0) for r in mine)
            if any("lost" in r for r in mine)
            else None,
        }
    empty = summary.get("empty", {}).get("ns_per_drop", {}).get("median")
    print("| variant | BPF ns/drop median (min-max) | minus empty | lost |")
    print("|---|---|---|---|")
    for name, s in summary.items():
        d = s["ns_per_drop"]
        over = f"{d['median'] - empty:+.1f}" if empty is not None and d.get("n") else "-"
        lost = "-" if s["lost_total"] is None else str(s["lost_total"])
        print(f"| {name} | {common.fmt_range(d, digits=1)} | {over} | {lost} |")
    path = common.write_results(
        args.out, {"reps": args.reps, "seconds": args.seconds, "summary": summary, "runs": runs}
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except subprocess.CalledProcessError as e:
        raise SystemExit(f"{e.cmd[0]} failed: {e.stderr}") from None
