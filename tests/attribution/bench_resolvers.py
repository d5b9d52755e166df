"""Cost of the attribution resolvers on this machine (not a test: run it by hand, as root).

    .venv/bin/python -m tests.attribution.bench_resolvers [--cgroups 1000] [--sockets 10000]

Makes `--cgroups` empty cgroups under the cgroup2 mount and `--sockets` UDP sockets in this
process, times a full walk / handle lookup, a /proc fd scan and a netns rescan, and removes
everything it made.
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
import time

from droptop.attribution.cgroups import CgroupResolver, find_cgroup2_mount
from droptop.attribution.netns import NetnsNamer
from droptop.attribution.sockets import SocketOwners


def best(fn, repeat: int = 5) -> float:
    """Best of `repeat` wall times in seconds (the least disturbed run)."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def bench_cgroups(n: int) -> None:
    mount = find_cgroup2_mount()
    if mount is None:
        print("cgroups: no cgroup v2 mount")
        return
    top = os.path.join(mount.path, f"dt-bench-{os.getpid()}")
    os.mkdir(top)
    made = []
    try:
        for i in range(n):
            d = os.path.join(top, f"g{i}.service")
            os.mkdir(d)
            made.append(d)
        ids = [os.stat(d).st_ino for d in made]
        walk = CgroupResolver(use_handles=False)
        seen = walk.walk()
        t_walk = best(walk.walk)
        handle = CgroupResolver()
        if handle.method == "handle" and ids:
            handle_res = handle._handles
            assert handle_res is not None
            t0 = time.perf_counter()
            for i in ids:
                handle_res.path(i)
            t_handle = (time.perf_counter() - t0) / len(ids)
            assert handle.path(ids[-1]) == walk.path(ids[-1])
        else:
            t_handle = float("nan")
        t0 = time.perf_counter()
        for i in ids:
            walk.path(i)
        t_hit = (time.perf_counter() - t0) / max(len(ids), 1)
        print(
            f"cgroups: {seen} cgroups; full walk {t_walk * 1e3:.2f} ms; "
            f"handle lookup {t_handle * 1e6:.1f} us; cached hit {t_hit * 1e9:.0f} ns"
        )
    finally:
        for d in reversed(made):
            os.rmdir(d)
        os.rmdir(top)


def bench_sockets(n: int) -> None:
    owners = SocketOwners()
    t_base = best(owners.rescan)
    base = owners.rescan()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = n + 256
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(need, soft), max(need, hard)))
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(n)]
    try:
        t_many = best(owners.rescan)
        live = owners.rescan()
        inode = os.fstat(socks[-1].fileno()).st_ino
        owner = owners.owner(inode)
        assert owner is not None and owner.pid == os.getpid()
        print(
            f"sockets: fd scan with {base} sockets {t_base * 1e3:.2f} ms; "
            f"with {live} sockets {t_many * 1e3:.2f} ms"
        )
    finally:
        for s in socks:
            s.close()


def bench_netns() -> None:
    namer = NetnsNamer()
    t = best(namer.rescan)
    pids = sum(1 for p in os.listdir("/proc") if p.isdigit())
    print(f"netns: rescan of {pids} pids {t * 1e3:.2f} ms")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--cgroups", type=int, default=1000)
    p.add_argument("--sockets", type=int, default=10000)
    args = p.parse_args()
    bench_cgroups(args.cgroups)
    bench_sockets(args.sockets)
    bench_netns()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
