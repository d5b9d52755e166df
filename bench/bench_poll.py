"""What a poll costs in user space: ms per poll, CPU % of batch mode, peak RSS.

    bench_poll.py [--sizes 100,1000,10000] [--polls 40] [--batch-intervals 20] [--out NAME]

1. Poll cost. For each map size a fresh KernelCollector (default: stacks on) is
   filled with that many distinct keys by keygen.py, then polled repeatedly.
   Each poll is timed whole (poll()), with cyclic garbage collection paused as
   droptop's poll loop runs it (loop.gc_paused), and the counter map read it
   contains (one batch syscall, summed over CPUs) is also timed on its own. Polls run
   about every 50 ms, so the collector's "stacks at most every 2 s" rule makes
   only some polls re-read the stack map; those are reported separately, and
   a 1 s interval re-reads stacks on every other poll. "recent" polls see no
   counter change, but every key dropped within the last minute (its rate
   history is not all zero yet); "aged" polls come after 60 more polls, when
   every history is zero; "busy" polls follow a refill that bumps every key
   (the first wakes every key after a minute idle, and is reported on its own;
   it and the next two are each key's 2nd-4th drop on its CPU, so every key also
   has new stacks and samples, "newly sampled"; then the steady state, in which it
   has none), with stacks and samples due at each. The details those refills made
   are taken in a bounded number a poll (collector/details.py): the polls after
   the busy ones, nothing else moving, until all are in are counted ("catch up").
   With the incremental poll recent and aged should cost the same (an unchanged
   key is the same row object either way); the old assembler rebuilt every row
   until its history was all zero, so the two states are kept apart.
2. Batch CPU. `python -m droptop -b -d 1 -n N --format json` in a child; once it
   prints its first line, 1,000 keys are added; its CPU time (utime + stime
   from /proc) is read between the 3rd and the last-but-one line.
3. Peak RSS. The same with 10,000 keys; VmHWM of the child before it exits.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common

KEYGEN = common.BENCH / "keygen.py"
HISTORY_LEN = 60  # droptop.stats.HISTORY_LEN: samples of rate history per row


def keygen(n: int, prefix: str) -> None:
    """n drops, one per key. Pinned to one CPU, so that each key's count on that CPU
    says whether its next drop is sampled (the first 4 are)."""
    saved = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(saved)})  # the child inherits it
    try:
        common.run([sys.executable, str(KEYGEN), str(n), prefix])
    finally:
        os.sched_setaffinity(0, saved)


_held: list = [None]
"""The last snapshot, held while the next poll runs, as droptop's front ends hold theirs."""


def timed_poll(col) -> tuple[float, float, bool]:
    """(map read ms, whole poll ms, stacks re-read?) for one poll.

    The map read (one batch syscall for the counters, summed over CPUs) is timed on
    its own just before the poll; the poll repeats it and adds key discovery,
    stacks (at most every 2 s) and the snapshot assembly. As in droptop's poll loop,
    cyclic GC is paused, and the last snapshot is held until the new one is in (so
    the poll cannot reuse its rows' memory, and freeing them is not timed).
    """
    from droptop.loop import gc_paused

    before = getattr(col, "_details_read_at", None)
    with gc_paused():
        t0 = time.perf_counter()
        col._read_counters(len(col._keys))
        t1 = time.perf_counter()
        snap = col.poll()
        t2 = time.perf_counter()
        _held[0] = snap
    return (t1 - t0) * 1e3, (t2 - t1) * 1e3, getattr(col, "_details_read_at", None) != before


def poll_cost(n: int, polls: int, stacks: bool, busy_polls: int) -> dict:
    common.ensure_droptop_importable()
    from droptop.collector.kernel import KernelCollector
    from droptop.runner import tune_gc

    prefix = f"p{n}{'s' if stacks else 'n'}"
    with KernelCollector(stacks=stacks) as col:
        tune_gc()  # as droptop's run modes do
        col.poll()
        keygen(n, prefix)
        t0 = time.perf_counter()
        first = col.poll()
        first_ms = (time.perf_counter() - t0) * 1e3
        idle: list[tuple[float, float, bool]] = []
        for _ in range(polls):
            time.sleep(0.05)
            idle.append(timed_poll(col))
        # Age the rows until their whole rate history (60 samples) is zero.
        for _ in range(max(0, HISTORY_LEN + 1 - polls)):
            col.poll()
        aged: list[tuple[float, float, bool]] = []
        for _ in range(polls // 2):
            time.sleep(0.05)
            aged.append(timed_poll(col))
        # The same comms again: every key's counter moves. The first refill wakes
        # every key from a minute of idleness. Drops 2-4 of a key on its CPU are
        # sampled, so those refills give every key new stacks and samples too (what
        # 10,000 keys dropping for the first time cost); later ones do not (the
        # steady state of 10,000 busy keys). Stacks and samples are made due at every
        # timed poll, the worst case of the 2 s schedule.
        sampled: list[tuple[float, float, bool]] = []
        busy: list[tuple[float, float, bool]] = []
        for i in range(3 + busy_polls):
            keygen(n, prefix)
            col._details_read_at = 0.0
            (sampled if i < 3 else busy).append(timed_poll(col))
        woke = sampled.pop(0)
        # The stacks and samples those refills made are taken in a bounded number a
        # poll: how many more polls (nothing else moving) until all of them are in.
        backlog = col.details_backlog()
        catch_up: list[float] = []
        while col.details_backlog() and len(catch_up) < 1000:
            catch_up.append(timed_poll(col)[1])
        keys = len(col._keys)
        rows = len(first.rows)

    def part(samples: list[tuple[float, float, bool]], which: int) -> dict:
        if which == 0:
            return common.summary([s[0] for s in samples])
        return common.summary([max(0.0, s[1] - s[0]) for s in samples])  # rest of the poll

    def total(samples: list[tuple[float, float, bool]]) -> dict:
        return common.summary([s[1] for s in samples])

    with_st = [s for s in idle if s[2]]
    without = [s for s in idle if not s[2]]
    return {
        "keys_requested": n,
        "keys_in_map": keys,
        "rows": rows,
        "stacks": stacks,
        "first_poll_ms": round(first_ms, 2),
        "idle_total_ms": total(idle),
        "idle_read_raw_ms": part(idle, 0),
        "idle_build_ms": part(idle, 1),
        "idle_no_stack_read_ms": total(without),
        "idle_with_stack_read_ms": total(with_st),
        "aged_total_ms": total(aged),
        "aged_read_raw_ms": part(aged, 0),
        "aged_build_ms": part(aged, 1),
        "busy_total_ms": total(busy),
        "busy_read_raw_ms": part(busy, 0),
        "busy_build_ms": part(busy, 1),
        "woke_total_ms": round(woke[1], 2),
        "busy_sampled_total_ms": total(sampled),
        "details_backlog_after_busy": backlog,
        "catch_up_polls": len(catch_up),
        "catch_up_max_ms": round(max(catch_up, default=0.0), 2),
    }


def proc_status(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def batch_run(keys: int, intervals: int, stacks: bool = True) -> dict:
    """CPU % and peak RSS of the real CLI in batch mode at a 1 s interval."""
    cmd = [
        common.PYTHON,
        "-m",
        "droptop",
        "-b",
        "-d",
        "1",
        "-n",
        str(intervals),
        "--format",
        "json",
    ]
    if not stacks:
        cmd.append("--no-stacks")
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, env=common.droptop_env(), text=True)
    assert p.stdout is not None
    lines = 0
    cpu_at: dict[int, tuple[float, float]] = {}
    rss_kb = now_kb = 0
    try:
        for _line in p.stdout:
            lines += 1
            cpu_at[lines] = (time.monotonic(), common.proc_cpu_seconds(p.pid))
            if lines < intervals:
                rss_kb = max(rss_kb, proc_status(p.pid, "VmHWM"))
                now_kb = proc_status(p.pid, "VmRSS")
            if lines == 1 and keys:
                keygen(keys, f"b{keys}")
    finally:
        p.wait(timeout=60)
    start, end = 3, intervals - 1
    if end <= start or start not in cpu_at or end not in cpu_at:
        return {"error": f"only {lines} lines"}
    (t0, c0), (t1, c1) = cpu_at[start], cpu_at[end]
    return {
        "keys": keys,
        "intervals_measured": end - start,
        "cpu_percent": round(100 * (c1 - c0) / (t1 - t0), 3),
        "cpu_total_s": round(cpu_at[end][1], 3),
        "peak_rss_mb": round(rss_kb / 1024, 1),
        "rss_at_end_mb": round(now_kb / 1024, 1),
    }


def table(res: dict) -> str:
    f = common.fmt_range
    lines = [
        "| keys | first poll ms | poll ms, recent | map read ms | rest of poll ms "
        "| poll ms, stacks re-read | poll ms, aged | poll ms, every key woke "
        "| poll ms, every key changed | ... and newly sampled "
        "| details taken in after, polls (max ms) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in res["poll"]:
        label = f"{r['keys_in_map']}" + ("" if r["stacks"] else " (no stacks)")
        lines.append(
            f"| {label} | {r['first_poll_ms']:.1f} | {f(r['idle_total_ms'])} "
            f"| {f(r['idle_read_raw_ms'])} | {f(r['idle_build_ms'])} "
            f"| {f(r['idle_with_stack_read_ms'])} | {f(r['aged_total_ms'])} "
            f"| {r.get('woke_total_ms', '-')} "
            f"| {f(r['busy_total_ms'])} | {f(r.get('busy_sampled_total_ms', {}))} "
            f"| {r.get('catch_up_polls', '-')} ({r.get('catch_up_max_ms', '-')}) |"
        )
    for b in res["batch"]:
        if "error" in b:
            lines.append(f"\nbatch run with {b.get('keys')} keys: {b['error']}")
            continue
        lines.append(
            f"\nbatch mode, 1 s interval, {b['keys']} keys: {b['cpu_percent']:.2f} % of one core "
            f"over {b['intervals_measured']} intervals; peak RSS {b['peak_rss_mb']} MB, "
            f"RSS at the end {b.get('rss_at_end_mb')} MB"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--sizes", default="100,1000,10000")
    p.add_argument("--polls", type=int, default=40)
    p.add_argument("--busy-polls", type=int, default=5)
    p.add_argument("--batch-intervals", type=int, default=20)
    p.add_argument("--out", default="poll")
    args = p.parse_args(argv)
    common.require_root()
    res: dict = {"poll": [], "batch": []}
    for n in (int(x) for x in args.sizes.split(",")):
        common.wait_quiet()
        r = poll_cost(n, args.polls, True, args.busy_polls)
        res["poll"].append(r)
        print(
            f"  {n} keys: poll {r['idle_total_ms']['median']:.2f} ms idle, "
            f"{r['busy_total_ms']['median']:.2f} ms busy",
            flush=True,
        )
    common.wait_quiet()
    r = poll_cost(10000, args.polls, False, args.busy_polls)
    res["poll"].append(r)
    common.wait_quiet()
    res["batch"].append(batch_run(1000, args.batch_intervals))
    common.wait_quiet()
    res["batch"].append(batch_run(10000, 8))
    print(table(res))
    path = common.write_results(args.out, res)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
