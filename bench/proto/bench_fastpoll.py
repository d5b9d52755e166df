"""Time the incremental-assembly prototype (fast_poll.py) against droptop's poll, same map.

    python bench/proto/bench_fastpoll.py [--keys 10000] [--polls 10]

Both read the real per-CPU counter map of one BccCollector filled by keygen.py;
the prototype's time includes the batch map read and the per-CPU sum, so the
comparison is poll against poll. States: no counter moved (for droptop this is
the minute after the keys' last drops, when their rate history is not all zero
yet), 1% of keys moved, every key moved.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
import fast_poll


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--keys", type=int, default=10000)
    p.add_argument("--polls", type=int, default=10)
    p.add_argument("--out", default="fastpoll")
    args = p.parse_args(argv)
    common.require_root()
    common.ensure_droptop_importable()
    from droptop.collector.bcc import BccCollector
    from droptop.collector.bpfmaps import sum_percpu_u64

    def keygen(n: int) -> None:
        common.run([sys.executable, str(common.BENCH / "keygen.py"), str(n), "fp"])

    res: dict[str, dict] = {}
    with BccCollector(stacks=True) as col:
        inc = fast_poll.IncrementalAssembler()
        last = [time.monotonic()]

        def proto() -> float:
            t0 = time.perf_counter()
            n = len(col._keys)
            _, vals, got = col._counts_reader.read(n)
            packets, nbytes = sum_percpu_u64(vals, got, col._ncpu, col._value_size, 2)
            now = time.monotonic()
            rows = inc.update(packets, nbytes, now - last[0])
            last[0] = now
            assert len(rows) == sum(1 for x in packets if x)
            return (time.perf_counter() - t0) * 1e3

        def current() -> float:
            t0 = time.perf_counter()
            col.poll()
            return (time.perf_counter() - t0) * 1e3

        col.poll()
        proto()
        keygen(args.keys)
        col.poll()  # learns the keys (read once per key, in both designs)
        proto()
        for state, change in (
            ("none moved", 0),
            ("1% moved", args.keys // 100),
            ("all moved", args.keys),
        ):
            cur, pro = [], []
            for _ in range(args.polls if change < args.keys else 3):
                common.wait_quiet(max_wait=5)
                if change:
                    keygen(change)
                else:
                    time.sleep(0.05)
                cur.append(current())
                pro.append(proto())
            res[state] = {"current_ms": common.summary(cur), "prototype_ms": common.summary(pro)}
            print(
                f"{state:12s} current {common.fmt_range(res[state]['current_ms'])} ms   "
                f"prototype {common.fmt_range(res[state]['prototype_ms'])} ms",
                flush=True,
            )
        res["keys_in_map"] = {"n": len(col._keys)}
    common.write_results(args.out, res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
