"""What droptop costs the kernel under a drop flood, against nothing and against peers.

    bench_overhead.py [--reps 5] [--seconds 3] [--mode nft|closed] [--conditions a,b,...]
                      [--proto FILE] [--stats-reps 3] [--out NAME]

Each repetition runs every condition once, in a rotated order, so slow drift
(another engineer's test suite, thermal, the page cache) spreads over all
conditions instead of landing on one. A condition is: set up a tracer, read
the kernel's own drop count (the nft rule's counter), flood for N seconds,
read it again. Throughput is that delta over the flood's wall time; the ratio
is each repetition's throughput over the *same repetition's* baseline.

Conditions:
  baseline                nothing attached
  empty_bpf               a raw-tracepoint program that returns 0: the floor of any BPF design
  droptop                 KernelCollector(stacks=True) as the CLI runs it, polled every second:
                          attached as tp_btf (the default; the run fails if it is not)
  droptop_nostacks        KernelCollector(stacks=False), tp_btf
  droptop_rawtp           KernelCollector(stacks=True) with DROPTOP_NO_TP_BTF=1: the
                          raw-tracepoint fallback older kernels get
  droptop_rawtp_nostacks  the same with stacks=False
  droptop_proto           droptop with the BPF source replaced by --proto FILE (prototypes)
  empty_tpbtf             droptop's program built with -DDROPTOP_BENCH_EMPTY (returns at
                          once), loaded, attached (tp_btf) and polled like droptop
  droptop_detached        droptop loaded and polled, its link closed: the collector's cost
                          without any program on the tracepoint
  bpftrace                tracepoint:skb:kfree_skb { @[args->reason, comm] = count(); }
  perf                    perf record -e skb:kfree_skb -a (events enabled only once attached)

For droptop, bpftrace and perf the run also checks that no drop was lost: the
tool's NETFILTER_DROP count for the flood's comm against the nft counter delta.

A second phase turns on kernel.bpf_stats_enabled (restored afterwards) and reads
run_time_ns / run_cnt of each BPF program: the kernel's own ns per drop. It is a
separate phase because the stats themselves add two clock reads per run.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common

EMPTY_PROG = "RAW_TRACEPOINT_PROBE(kfree_skb) { return 0; }"
BPFTRACE_PROG = "tracepoint:skb:kfree_skb { @[args->reason, comm] = count(); }"
ALL = [
    "baseline",
    "empty_bpf",
    "droptop",
    "droptop_nostacks",
    "droptop_rawtp",
    "droptop_rawtp_nostacks",
    "bpftrace",
    "perf",
]
NO_TP_BTF_ENV = "DROPTOP_NO_TP_BTF"
"""droptop's loader child attaches as a raw tracepoint when this is set (loader.py)."""


class Mode:
    """How drops are made and counted by the kernel itself."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.port = common.NFT_PORT if name == "nft" else common.CLOSED_PORT
        self.reason = "NETFILTER_DROP" if name == "nft" else "NO_SOCKET"

    def kernel_count(self) -> int:
        """The nft rule's counter, or Udp NoPorts from /proc/net/snmp for a closed port."""
        if self.name == "nft":
            return common.nft_counter()
        return common.snmp_counter("Udp", "NoPorts")


MODE = Mode("nft")


class Tracer:
    """One condition. start() before the flood, tick() about once a second during it,
    finish() right after it (returns what the tool saw), stop() always."""

    name = "baseline"

    def start(self) -> None:
        pass

    def mark(self) -> None:
        pass

    def tick(self) -> None:
        pass

    def finish(self) -> dict:
        return {}

    def stop(self) -> None:
        pass

    def prog_fd(self) -> int | None:
        return None

    def pid(self) -> int | None:
        """The tool's own process, if it runs in one (its CPU is not "someone else's")."""
        return None


class EmptyBpf(Tracer):
    name = "empty_bpf"

    def start(self) -> None:
        common.use_droptop_headers()
        from bcc import BPF

        self.b = BPF(text=EMPTY_PROG)

    def prog_fd(self) -> int | None:
        return self.b.funcs[b"raw_tracepoint__kfree_skb"].fd

    def stop(self) -> None:
        self.b.cleanup()


class Droptop(Tracer):
    """The real collector in this process; BPF_SOURCE swapped for --proto prototypes.

    `attach` is what the collector must end up as: "tp_btf" (droptop's default,
    with DROPTOP_NO_TP_BTF cleared), "raw_tp" (the variable set before the loader
    child starts; the child inherits it) or None (whatever the loader manages, for
    prototypes). A default run that silently fell back would measure the wrong
    program, so a mismatch fails the trial.
    """

    def __init__(
        self,
        name: str,
        stacks: bool,
        source: Path | None = None,
        cflags: tuple[str, ...] = (),
        comm: str = common.FLOOD_COMM,
        attach: str | None = "tp_btf",
        samples: bool = True,
    ) -> None:
        self.name, self.stacks, self.source, self.comm = name, stacks, source, comm
        self.samples = samples
        self.extra_cflags = list(cflags)
        self.want_attach = attach
        self.reason = common.tracefs_reason(MODE.reason)

    def start(self) -> None:
        common.ensure_droptop_importable()
        import droptop.collector.kernel as kernel_mod

        saved, saved_env = kernel_mod.BPF_SOURCE, os.environ.get(NO_TP_BTF_ENV)
        if self.source is not None:
            kernel_mod.BPF_SOURCE = self.source
        if self.want_attach == "raw_tp":
            os.environ[NO_TP_BTF_ENV] = "1"
        else:
            os.environ.pop(NO_TP_BTF_ENV, None)
        extra = self.extra_cflags

        class Collector(kernel_mod.KernelCollector):
            def cflags(self) -> list[str]:
                return super().cflags() + extra

        try:
            self.col = Collector(stacks=self.stacks, samples=self.samples)
        finally:
            kernel_mod.BPF_SOURCE = saved
            if saved_env is None:
                os.environ.pop(NO_TP_BTF_ENV, None)
            else:
                os.environ[NO_TP_BTF_ENV] = saved_env
        self.attach = self.col.attach
        if self.want_attach is not None and self.attach != self.want_attach:
            note = self.col.attach_note
            self.col.close()
            raise RuntimeError(
                f"{self.name}: attached as {self.attach}, not {self.want_attach}"
                + (f" ({note})" if note else "")
            )
        self._stats = kernel_mod._bpf_prog_stats
        # Start-up, done before the flood window so that it times the steady state:
        # the first poll (as the CLI's before its first frame) and the /proc/kallsyms
        # read (~0.1 s of CPU) that the first poll seeing a drop would otherwise do,
        # inside the window (measured by bench_startup.py and bench_poll.py).
        self.col.poll()
        self.col.load_symbols()

    def _ours(self) -> tuple[int, int]:
        """(NETFILTER_DROP count for the flood's comm, the same in ksoftirqd), cumulative."""
        rows, _ = self.col.read_raw()
        mine = soft = 0
        for r in rows:
            if r.key.raw_reason != self.reason:
                continue
            if r.key.comm == self.comm:
                mine += r.packets
            elif r.key.comm.startswith("ksoftirqd"):
                soft += r.packets
        return mine, soft

    def mark(self) -> None:
        self.before = self._ours()
        self.misses0 = self._stats(self.col._prog_fd)[2]

    def tick(self) -> None:
        self.col.poll()

    def finish(self) -> dict:
        mine, soft = self._ours()
        snap = self.col.poll()
        return {
            "seen": mine - self.before[0],
            "seen_ksoftirqd": soft - self.before[1],
            "overflow": snap.overflow_packets,
            "recursion_misses": self._stats(self.col._prog_fd)[2] - self.misses0,
            "attach": self.attach,
        }

    def prog_fd(self) -> int | None:
        return self.col._prog_fd

    def unlink(self) -> None:
        """Close the program's link (it stays loaded, its maps and polls go on)."""
        fd = self.col._fds.pop("link", None)
        if fd is not None:
            os.close(fd)

    def relink(self) -> None:
        """Attach the loaded program again (a new link)."""
        from droptop.collector import tpbtf

        attr = tpbtf._RawTpOpenAttr(name=0, prog_fd=self.col._prog_fd)
        self.col._fds["link"] = tpbtf._bpf(tpbtf._RAW_TRACEPOINT_OPEN, attr)

    def stop(self) -> None:
        self.col.close()


class EmptyTpBtf(Droptop):
    """droptop's loader, maps and polls around a program that returns at once."""

    def __init__(self) -> None:
        super().__init__(
            "empty_tpbtf",
            stacks=True,
            cflags=("-DDROPTOP_BENCH_EMPTY",),
        )

    def finish(self) -> dict:
        return {"attach": self.attach}  # it counts nothing


class DetachedDroptop(Droptop):
    """droptop as it runs, minus the link: whatever the collector costs by itself."""

    def __init__(self) -> None:
        super().__init__("droptop_detached", stacks=True)

    def start(self) -> None:
        super().start()
        self.unlink()

    def finish(self) -> dict:
        return {}


class Bpftrace(Tracer):
    name = "bpftrace"

    def __init__(self, comm: str = common.FLOOD_COMM):
        self.comm = comm
        self.reason = common.tracefs_reason(MODE.reason)

    def start(self) -> None:
        self.p = subprocess.Popen(
            ["bpftrace", "-e", BPFTRACE_PROG],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        deadline = time.monotonic() + 60
        assert self.p.stdout is not None
        while time.monotonic() < deadline:
            line = self.p.stdout.readline()
            if not line:
                raise RuntimeError("bpftrace exited before attaching")
            if line.startswith("Attaching"):
                return
        raise RuntimeError("bpftrace did not attach within 60 s")

    def pid(self) -> int | None:
        return self.p.pid

    def finish(self) -> dict:
        self.p.send_signal(signal.SIGINT)
        out, _ = self.p.communicate(timeout=60)
        pat = re.compile(r"^@\[(\d+), (.*)\]: (\d+)$")
        seen = soft = 0
        for line in out.splitlines():
            m = pat.match(line.strip())
            if not m or int(m.group(1)) != self.reason:
                continue
            if m.group(2) == self.comm:
                seen += int(m.group(3))
            elif m.group(2).startswith("ksoftirqd"):
                soft += int(m.group(3))
        return {"seen": seen, "seen_ksoftirqd": soft}

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


class PerfRecord(Tracer):
    """perf record, started with events disabled and enabled through its control fifo,
    so the flood starts only once perf is really recording."""

    name = "perf"

    def start(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="droptop-bench-perf-")
        ctl, ack = f"{self.dir}/ctl", f"{self.dir}/ack"
        os.mkfifo(ctl)
        os.mkfifo(ack)
        self.p = subprocess.Popen(
            [
                "perf",
                "record",
                "-e",
                "skb:kfree_skb",
                "-a",
                "-o",
                f"{self.dir}/perf.data",
                "-D",
                "-1",
                "--control",
                f"fifo:{ctl},{ack}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.ctl = os.open(ctl, os.O_RDWR)
        self.ack = os.open(ack, os.O_RDWR)
        os.write(self.ctl, b"enable\n")
        if not os.read(self.ack, 16).startswith(b"ack"):
            raise RuntimeError("perf did not acknowledge enable")

    def pid(self) -> int | None:
        return self.p.pid

    def finish(self) -> dict:
        self.p.send_signal(signal.SIGINT)
        _, err = self.p.communicate(timeout=120)
        m = re.search(r"\((\d+) samples\)", err)
        size = os.path.getsize(f"{self.dir}/perf.data")
        stats = common.run(
            ["perf", "report", "-i", f"{self.dir}/perf.data", "--stats"], check=False
        ).stdout
        lost = re.search(r"LOST events:\s+(\d+)", stats)
        return {
            "samples": int(m.group(1)) if m else None,
            "file_mb": round(size / 1e6, 1),
            "perf_lost_records": int(lost.group(1)) if lost else 0,
        }

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()
        os.close(self.ctl)
        os.close(self.ack)
        for f in ("perf.data", "perf.data.old", "ctl", "ack"):
            try:
                os.unlink(f"{self.dir}/{f}")
            except FileNotFoundError:
                pass
        os.rmdir(self.dir)


def make(name: str, proto: Path | None) -> Tracer:
    if name == "baseline":
        return Tracer()
    if name == "empty_bpf":
        return EmptyBpf()
    if name == "droptop":
        return Droptop("droptop", stacks=True)
    if name == "droptop_nostacks":
        return Droptop("droptop_nostacks", stacks=False)
    if name == "droptop_rawtp":
        return Droptop("droptop_rawtp", stacks=True, attach="raw_tp")
    if name == "droptop_rawtp_nostacks":
        return Droptop("droptop_rawtp_nostacks", stacks=False, attach="raw_tp")
    if name == "droptop_proto":
        if proto is None:
            raise SystemExit("droptop_proto needs --proto FILE")
        return Droptop("droptop_proto", stacks=True, source=proto, attach=None)
    if name == "empty_tpbtf":
        return EmptyTpBtf()
    if name == "droptop_detached":
        return DetachedDroptop()
    if name == "bpftrace":
        return Bpftrace()
    if name == "perf":
        return PerfRecord()
    raise SystemExit(f"unknown condition {name}")


def available(names: list[str]) -> list[str]:
    import shutil

    return [n for n in names if n not in ("bpftrace", "perf") or shutil.which(n)]


def trial(tracer: Tracer, seconds: float, port: int) -> dict:
    """One flood under one tracer: throughput from the nft counter and the sender."""
    foreign = common.foreign_kfree_skb_tracers()  # before ours: anything here is someone else's
    tracer.start()
    try:
        tracer.mark()
        c0 = MODE.kernel_count()
        cpu0 = common.busy_other_cpu_seconds()
        self0, kids0 = time.process_time(), common.children_cpu_seconds()
        tool0 = common.proc_cpu_seconds(tracer.pid())
        p = subprocess.Popen(
            common.flood_cmd(seconds, port=port), stdout=subprocess.PIPE, text=True
        )
        next_tick = time.monotonic() + 1.0
        while p.poll() is None:
            time.sleep(max(0.0, min(0.05, next_tick - time.monotonic())))
            if time.monotonic() >= next_tick:
                tracer.tick()
                next_tick += 1.0
        out, _ = p.communicate()
        fl = common.parse_flood(out)
        time.sleep(0.05)  # let the last softirq batch reach the rule
        dropped = MODE.kernel_count() - c0
        busy = common.busy_other_cpu_seconds() - cpu0
        ours = (
            time.process_time()
            - self0
            + common.children_cpu_seconds()
            - kids0
            + common.proc_cpu_seconds(tracer.pid())
            - tool0
        )
        extra = tracer.finish()
    finally:
        tracer.stop()
    res = {
        "condition": tracer.name,
        "dropped": dropped,
        "sent": fl.sent,
        "seconds": fl.seconds,
        "rate": dropped / fl.seconds,
        "cpu_busy_s": round(busy, 3),
        # CPU time in the flood window used by anything but the flood, this process
        # and the tool: other engineers' tests, kernel threads. High means noisy.
        "others_cpu_s": round(busy - ours, 3),
        # CPU time of this process and the tool in the window: for droptop, its polls.
        "ours_cpu_s": round(ours, 3),
        "foreign_tracers": foreign,
        **extra,
    }
    if "seen" in extra:
        res["lost"] = dropped - extra["seen"] - extra.get("seen_ksoftirqd", 0)
    if "samples" in extra and extra["samples"] is not None:
        # perf records every kfree_skb, ours and a few others: dropped - samples is a
        # slight underestimate of what it lost.
        res["lost"] = max(0, dropped - extra["samples"])
    return res


RETRY_DEADLINE = float("inf")
"""time.monotonic() after which noisy trials are kept instead of retried (--budget)."""


def quiet_trial(name: str, seconds: float, port: int, proto: Path | None, retries: int) -> dict:
    """A trial, repeated (up to `retries` times) while someone else used the CPUs in it.

    On 2 shared cores another engineer's test suite can take a third of the
    machine for seconds; such a trial measures them, not the tracer.
    """
    limit = 0.03 * seconds * (os.cpu_count() or 1)
    waited = 0.0
    attempts = 0
    while True:
        late = time.monotonic() > RETRY_DEADLINE
        waited += common.wait_quiet(max_wait=3.0 if late else 30.0, no_tracers=True)
        attempts += 1
        r = trial(make(name, proto), seconds, port)
        # Someone else's program on kfree_skb (another engineer's droptop) taxes
        # every drop of every condition: such a trial is as noisy as a busy CPU.
        noisy = r["others_cpu_s"] > limit or r["foreign_tracers"] > 0
        if not noisy or attempts > retries:
            break
        if time.monotonic() > RETRY_DEADLINE:
            break
    r.update(attempts=attempts, noisy=noisy, waited_s=round(waited, 1))
    return r


def throughput_phase(
    conds: list[str], reps: int, seconds: float, port: int, proto: Path | None, retries: int = 3
) -> list[dict]:
    trials = []
    for rep in range(reps):
        order = conds[rep % len(conds) :] + conds[: rep % len(conds)]
        for name in order:
            r = quiet_trial(name, seconds, port, proto, retries)
            r["rep"] = rep
            trials.append(r)
            lost = f" lost {r['lost']}" if "lost" in r else ""
            print(
                f"  rep {rep} {name:22s} {r['rate'] / 1e6:6.3f} M drops/s{lost}"
                f"  (others {r['others_cpu_s']:.2f} cpu-s, attempt {r['attempts']}"
                f"{', NOISY' if r['noisy'] else ''})",
                flush=True,
            )
    return trials


def stats_phase(
    conds: list[str], reps: int, seconds: float, port: int, proto: Path | None
) -> list[dict]:
    """ns per drop from the kernel's BPF run-time accounting."""
    out = []
    with common.sysctl("kernel.bpf_stats_enabled", "1"):
        for rep in range(reps):
            for name in conds[rep % len(conds) :] + conds[: rep % len(conds)]:
                common.wait_quiet()
                t = make(name, proto)
                t.start()
                try:
                    fd = t.prog_fd()
                    assert fd is not None
                    common.ensure_droptop_importable()
                    from droptop.collector.kernel import _bpf_prog_stats

                    ns0, cnt0, _ = _bpf_prog_stats(fd)
                    c0 = MODE.kernel_count()
                    fl = common.flood(seconds, port=port)
                    dropped = MODE.kernel_count() - c0
                    ns1, cnt1, _ = _bpf_prog_stats(fd)
                finally:
                    t.stop()
                runs = cnt1 - cnt0
                r = {
                    "condition": name,
                    "rep": rep,
                    "attach": getattr(t, "attach", None),
                    "runs": runs,
                    "ns_per_run": (ns1 - ns0) / runs if runs else None,
                    "rate": dropped / fl.seconds,
                }
                out.append(r)
                print(f"  rep {rep} {name:22s} {r['ns_per_run']:.1f} ns/drop", flush=True)
    return out


def ratios(trials: list[dict], name: str) -> list[float]:
    """Each quiet trial of `name` over its own repetition's baseline, if that was quiet."""
    quiet = [t for t in trials if not t.get("noisy")]
    base = {t["rep"]: t["rate"] for t in quiet if t["condition"] == "baseline"}
    return [
        t["rate"] / base[t["rep"]] for t in quiet if t["condition"] == name and t["rep"] in base
    ]


def summarize(trials: list[dict], stats: list[dict]) -> dict:
    """Medians over the quiet trials; ratios only within a repetition whose baseline was quiet.

    A trial still noisy after its retries (someone else used the CPUs) is left
    out of rates and ratios but counted, and its drops-lost check still counts:
    a lost drop is a lost drop however busy the machine was.
    """
    out: dict[str, dict] = {}
    for name in dict.fromkeys(t["condition"] for t in trials):
        mine = [t for t in trials if t["condition"] == name]
        ok = [t for t in mine if not t.get("noisy")]
        lost = [t["lost"] for t in mine if "lost" in t]
        misses = [t["recursion_misses"] for t in mine if "recursion_misses" in t]
        out[name] = {
            "rate": common.summary([t["rate"] for t in ok]),
            "ratio": common.summary(ratios(trials, name)),
            "lost": common.summary(lost) if lost else None,
            "lost_total": sum(lost) if lost else None,
            "recursion_misses": sum(misses) if misses else None,
            "noisy_trials": len(mine) - len(ok),
            "attach": sorted({t["attach"] for t in mine if t.get("attach")}) or None,
        }
    for name in dict.fromkeys(s["condition"] for s in stats):
        vals = [s["ns_per_run"] for s in stats if s["condition"] == name and s["ns_per_run"]]
        out.setdefault(name, {})["bpf_ns_per_drop"] = common.summary(vals)
    return out


def table(summary: dict) -> str:
    lines = [
        "| condition | M drops/s median (min-max) | ratio to baseline | lost drops | BPF ns/drop |",
        "|---|---|---|---|---|",
    ]
    for name in [*ALL, "droptop_proto", "empty_tpbtf", "droptop_detached"]:
        s = summary.get(name)
        if not s or "rate" not in s:
            continue
        lost = "-" if s.get("lost") is None else f"{s['lost_total']} (max {s['lost']['max']})"
        if s.get("recursion_misses"):
            lost += f", {s['recursion_misses']} recursion misses"
        ns = common.fmt_range(s["bpf_ns_per_drop"], digits=1) if s.get("bpf_ns_per_drop") else "-"
        rate = common.fmt_range(s["rate"], 1e-6, 3)
        ratio = common.fmt_range(s["ratio"], 1, 3)
        label = f"{name} ({', '.join(s['attach'])})" if s.get("attach") else name
        lines.append(f"| {label} | {rate} | {ratio} | {lost} | {ns} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument(
        "--mode",
        choices=("nft", "closed"),
        default="nft",
        help="nft: NETFILTER_DROP on input (cheapest path); closed: NO_SOCKET",
    )
    p.add_argument("--conditions", default=",".join(ALL))
    p.add_argument("--proto", type=Path, help="BPF source for the droptop_proto condition")
    p.add_argument(
        "--retries",
        type=int,
        default=3,
        help="repeat a trial up to this often while other processes used the CPUs",
    )
    p.add_argument(
        "--budget",
        type=float,
        default=330.0,
        help="seconds after which noisy trials are no longer retried",
    )
    p.add_argument("--stats-reps", type=int, default=3)
    p.add_argument("--stats-seconds", type=float, default=2.0)
    p.add_argument("--out", default="overhead")
    args = p.parse_args(argv)
    common.require_root()
    conds = available(args.conditions.split(","))
    if args.proto is not None and "droptop_proto" not in conds:
        conds.append("droptop_proto")
    global MODE, RETRY_DEADLINE
    MODE = Mode(args.mode)
    RETRY_DEADLINE = time.monotonic() + args.budget
    port = MODE.port
    common.build_flood()
    # The nft table exists in both modes; in closed mode nothing matches it.
    with common.nft_input_drop(common.NFT_PORT):
        print(f"throughput: {args.reps} x {args.seconds} s, conditions {conds}", flush=True)
        trials = throughput_phase(conds, args.reps, args.seconds, port, args.proto, args.retries)
        bpf_conds = [
            c
            for c in conds
            if c in ("empty_bpf", "empty_tpbtf")
            or (c.startswith("droptop") and c != "droptop_detached")
        ]
        stats = []
        if bpf_conds and args.stats_reps:
            print("BPF ns per drop (kernel.bpf_stats_enabled=1):", flush=True)
            stats = stats_phase(bpf_conds, args.stats_reps, args.stats_seconds, port, args.proto)
    summ = summarize(trials, stats)
    path = common.write_results(
        args.out,
        {
            "mode": args.mode,
            "reps": args.reps,
            "seconds": args.seconds,
            "summary": summ,
            "trials": trials,
            "bpf_stats": stats,
        },
    )
    print(table(summ))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
