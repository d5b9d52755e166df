"""Kernel overhead with the host's drift taken out: one long flood, programs attached
and detached in short alternating windows.

    bench_interleaved.py [--seconds 90] [--window 0.3] [--out NAME]

bench_overhead.py compares 3-second floods run one after another. On this shared
VM the flood rate itself wanders by +-5% from one flood to the next, so a
difference of 1-2% between two programs needs dozens of repetitions to show.
Here one flood runs for the whole measurement, and every program is loaded once,
up front, and then only attached and detached (a BPF link opened and closed), in
windows of a fraction of a second, cycling through the conditions in a rotated
order:

  off               nothing attached
  empty_tpbtf       droptop's program built with -DDROPTOP_BENCH_EMPTY (returns at once), loaded
                    and attached by droptop's own loader exactly like droptop: the floor
  droptop           droptop as it runs by default (tp_btf, stacks sampled)
  droptop_nostacks  the same with --no-stacks

The rate in a window is the loopback device's packet count over the window's
wall time (every flooded datagram crosses lo once, then the nft rule drops it).
Each cycle's ratio is a condition's rate over the mean of the cycle's `off`
windows, so anything slower than a cycle (a few seconds) cancels out. Each
attached droptop is polled once per second of its attached time, as the CLI polls
once a second (inside a window, so the poll's CPU is charged to that window). Drops lost are
checked by bench_overhead.py, which counts whole floods; here windows start
after an attach and end before a detach, so the tool's count is not meant to
match the window's.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_overhead as ov
import common

LO_PACKETS = Path("/sys/class/net/lo/statistics/rx_packets")
SETTLE = 0.03
"""Seconds between an attach or detach and the start of a window."""


def variant_spec(name: str) -> tuple[str, bool, tuple[str, ...]]:
    """One of bench_variants.py's tp_btf variants, by name (--also)."""
    import bench_variants

    spec = bench_variants.VARIANTS.get(name)
    if spec is None or spec[0] != "tp_btf":
        raise SystemExit(f"--also: {name} is not a tp_btf variant of bench_variants.py")
    bench_variants.check_switches(spec[2])
    return spec


def lo_packets() -> int:
    return int(LO_PACKETS.read_text())


class Attachable:
    """A droptop collector whose program can be detached and attached again."""

    def __init__(self, name: str, tracer: ov.Droptop) -> None:
        self.name, self.tracer = name, tracer
        tracer.start()  # loads, attaches and polls once (start-up)
        self.col = tracer.col
        self.attached_s = 0.0  # seconds attached so far, over all of its windows
        self.polled_at = 0.0  # attached_s at the last poll
        self.detach()

    def attach(self) -> None:
        self.tracer.relink()

    def detach(self) -> None:
        self.tracer.unlink()

    def tick(self, seconds: float) -> None:
        """Count `seconds` more attached time; poll once per second of it, as the CLI
        polls once a second of its run (polling in every window, ~1.8 s apart, would
        charge a tool's windows with 3x the poll CPU of a real run)."""
        self.attached_s += seconds
        if self.attached_s - self.polled_at >= 1.0:
            self.col.poll()
            self.polled_at = self.attached_s

    def close(self) -> None:
        self.tracer.stop()


def window(seconds: float, tool: Attachable | None) -> float:
    """Packets per second through lo over one window (the tool attached, if any)."""
    if tool is not None:
        tool.attach()
    try:
        time.sleep(SETTLE)
        c0, t0 = lo_packets(), time.monotonic()
        if tool is not None:
            tool.tick(seconds)
        time.sleep(max(0.0, seconds - (time.monotonic() - t0)))
        c1, t1 = lo_packets(), time.monotonic()
    finally:
        if tool is not None:
            tool.detach()
    return (c1 - c0) / (t1 - t0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--seconds", type=float, default=90.0, help="length of the one flood")
    p.add_argument("--window", type=float, default=0.3, help="seconds per condition window")
    p.add_argument("--out", default="interleaved")
    p.add_argument(
        "--also",
        default="",
        help="comma-separated bench_variants.py variants (tp_btf builds) to interleave too",
    )
    args = p.parse_args(argv)
    common.require_root()
    common.build_flood()
    common.ensure_droptop_importable()
    tools: dict[str, Attachable] = {}
    windows: list[dict] = []
    try:
        tools["empty_tpbtf"] = Attachable(
            "empty_tpbtf",
            ov.Droptop("empty_tpbtf", stacks=True, cflags=("-DDROPTOP_BENCH_EMPTY",)),
        )
        tools["droptop"] = Attachable("droptop", ov.Droptop("droptop", stacks=True))
        tools["droptop_nostacks"] = Attachable(
            "droptop_nostacks", ov.Droptop("droptop_nostacks", stacks=False)
        )
        for name in filter(None, args.also.split(",")):
            _, stacks, flags = variant_spec(name)
            tools[name] = Attachable(name, ov.Droptop(name, stacks=stacks, cflags=flags))
        names = ["off", *tools]
        with common.nft_input_drop():
            common.wait_quiet(no_tracers=False)
            if common.foreign_kfree_skb_tracers() > 0:
                print("warning: another program is attached to kfree_skb", flush=True)
            flood = subprocess.Popen(
                common.flood_cmd(args.seconds + 2.0), stdout=subprocess.PIPE, text=True
            )
            try:
                time.sleep(1.0)  # threads up and running
                end = time.monotonic() + args.seconds
                cycle = 0
                busy0 = common.busy_other_cpu_seconds()
                cycle_s = 0.0  # the longest cycle so far: none may run past the flood
                while time.monotonic() + cycle_s < end:
                    started = time.monotonic()
                    order = names[cycle % len(names) :] + names[: cycle % len(names)]
                    # `off` twice per cycle, at both ends, so its mean brackets the others.
                    for name in ["off", *[n for n in order if n != "off"], "off"]:
                        rate = window(args.window, tools.get(name))
                        windows.append({"cycle": cycle, "condition": name, "rate": rate})
                    cycle += 1
                    cycle_s = max(cycle_s, time.monotonic() - started)
                busy = common.busy_other_cpu_seconds() - busy0
            finally:
                flood.wait()
    finally:
        for t in tools.values():
            t.close()

    ratios: dict[str, list[float]] = {n: [] for n in tools}
    for c in range(cycle):
        mine = [w for w in windows if w["cycle"] == c]
        off = statistics.mean(w["rate"] for w in mine if w["condition"] == "off")
        for w in mine:
            if w["condition"] != "off" and off > 0:
                ratios[w["condition"]].append(w["rate"] / off)
    summary = {n: common.summary(r) for n, r in ratios.items()}
    off_rates = [w["rate"] for w in windows if w["condition"] == "off"]
    off_median = statistics.median(off_rates) / 1e6
    print(f"{cycle} cycles of {args.window:.2f} s windows; nothing attached {off_median:.3f} M/s")
    print("| condition | ratio to nothing attached, median (min-max) | mean | cycles |")
    print("|---|---|---|---|")
    for n, s in summary.items():
        mean = statistics.mean(ratios[n])
        print(f"| {n} | {common.fmt_range(s, digits=3)} | {mean:.3f} | {s['n']} |")
    path = common.write_results(
        args.out,
        {
            "seconds": args.seconds,
            "window": args.window,
            "cycles": cycle,
            "busy_cpu_s": round(busy, 2),
            "summary": summary,
            "means": {n: statistics.mean(r) for n, r in ratios.items()},
            "windows": windows,
        },
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    common.script_main(main)
