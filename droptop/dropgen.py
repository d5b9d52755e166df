"""Make a known number of real kernel packet drops (tests, screenshots, benchmarks).

    python -m droptop.dropgen udp  --count 100 --comm myproc      # NO_SOCKET on lo
    python -m droptop.dropgen tcp  --count 20                      # SYN to a closed port
    python -m droptop.dropgen nft  --count 50                      # NETFILTER_DROP via a rule
    python -m droptop.dropgen veth --count 30                      # NO_SOCKET on a veth in a netns

Each prints the number of packets it sent that the kernel must have dropped.
Addresses are from 198.18.0.0/15 (reserved for benchmarking) and live only in
namespaces this module creates; nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import ctypes
import errno
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

CLOSED_PORT = 9  # discard: nothing listens on it in a fresh namespace or here
NFT_TABLE = "droptop_dropgen"
NFT_PORT = 9999
PR_SET_NAME = 15


def set_comm(name: str | bytes) -> None:
    """Rename the calling thread (what the kernel reports as comm); 15 bytes at most."""
    raw = name.encode("utf-8", "surrogateescape") if isinstance(name, str) else name
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NAME, ctypes.c_char_p(raw[:15]), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NAME) failed")


def send_udp(count: int, addr: str = "127.0.0.1", port: int = CLOSED_PORT, size: int = 32) -> int:
    """Send `count` datagrams; sends the kernel refuses (EPERM from a drop rule) still count."""
    payload = b"d" * size
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _ in range(count):
            try:
                s.sendto(payload, (addr, port))
            except OSError as e:
                if e.errno not in (errno.EPERM, errno.ECONNREFUSED):
                    raise
    return count


def send_tcp_syn(count: int, addr: str = "127.0.0.1", port: int = CLOSED_PORT) -> int:
    """One SYN per connect() to a closed port; the kernel drops each as NO_SOCKET."""
    for _ in range(count):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.settimeout(2)
            try:
                s.connect((addr, port))
            except (ConnectionRefusedError, TimeoutError):
                pass
    return count


def run(cmd: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=check, capture_output=True, text=True)


# --- nftables -----------------------------------------------------------


@contextmanager
def nft_drop_rule(
    port: int = NFT_PORT, table: str = NFT_TABLE, hook: str = "output"
) -> Iterator[str]:
    """A table with one counted drop rule for UDP to `port` on `hook`; removed on exit.

    The benchmarks' flood drops on *input*: an output drop makes sendmmsg() fail with
    EPERM at the first datagram, so nothing would be flooded.
    """
    run(["nft", "delete", "table", "inet", table], check=False)
    rules = (
        f"table inet {table} {{ chain {hook} {{ type filter hook {hook} priority 0; "
        f"policy accept; udp dport {port} counter drop; }}; }}"
    )
    subprocess.run(["nft", "-f", "-"], input=rules, text=True, check=True, capture_output=True)
    try:
        yield table
    finally:
        run(["nft", "delete", "table", "inet", table], check=False)


def nft_counter(table: str = NFT_TABLE) -> int:
    """Packets the table's drop rule has counted: the kernel's own count of our drops."""
    data = json.loads(run(["nft", "-j", "list", "table", "inet", table]).stdout)
    for item in data["nftables"]:
        for expr in item.get("rule", {}).get("expr", ()):
            if "counter" in expr:
                return int(expr["counter"]["packets"])
    raise RuntimeError(f"no counter in nft table {table}")


# --- namespaces -----------------------------------------------------------


@dataclass(frozen=True)
class VethTarget:
    """A receiver namespace reachable from the sender namespace over a veth pair."""

    netns: str
    ifname: str
    ifindex: int
    addr: str


@contextmanager
def veth_lab(
    receivers: int = 1, ifindex: int = 7, prefix: str = "dtg"
) -> Iterator[tuple[str, list[VethTarget]]]:
    """A sender netns and `receivers` receiver namespaces, each behind its own veth pair.

    Every receiver's interface gets the same ifindex on purpose: droptop must tell
    them apart by namespace. Yields (sender netns name, targets). Removed on exit.
    """
    sender = f"{prefix}-s{os.getpid()}"
    names = [f"{prefix}-r{i}-{os.getpid()}" for i in range(receivers)]
    for ns in [sender, *names]:
        run(["ip", "netns", "del", ns], check=False)
        run(["ip", "netns", "add", ns])
    targets = []
    try:
        run(["ip", "-n", sender, "link", "set", "lo", "up"])
        for i, ns in enumerate(names):
            rname, sname = f"dtr{i}", f"dts{i}"
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
            run(
                [
                    "ip",
                    "link",
                    "add",
                    sname,
                    "netns",
                    sender,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    rname,
                    "netns",
                    ns,
                    "index",
                    str(ifindex),
                ]
            )
            saddr, raddr = f"198.18.{i}.1", f"198.18.{i}.2"
            run(["ip", "-n", sender, "addr", "add", f"{saddr}/24", "dev", sname])
            run(["ip", "-n", ns, "addr", "add", f"{raddr}/24", "dev", rname])
            run(["ip", "-n", sender, "link", "set", sname, "up"])
            run(["ip", "-n", ns, "link", "set", rname, "up"])
            idx = int(
                run(["ip", "netns", "exec", ns, "cat", f"/sys/class/net/{rname}/ifindex"]).stdout
            )
            targets.append(VethTarget(ns, rname, idx, raddr))
        # Static neighbour entries: no ARP, so the counted packets are the only traffic.
        for i, t in enumerate(targets):
            mac = run(["ip", "netns", "exec", t.netns, "cat", f"/sys/class/net/{t.ifname}/address"])
            run(
                [
                    "ip",
                    "-n",
                    sender,
                    "neigh",
                    "replace",
                    t.addr,
                    "lladdr",
                    mac.stdout.strip(),
                    "dev",
                    f"dts{i}",
                    "nud",
                    "permanent",
                ]
            )
        yield sender, targets
    finally:
        for ns in [sender, *names]:
            run(["ip", "netns", "del", ns], check=False)


@contextmanager
def private_netns(prefix: str = "dtg") -> Iterator[str]:
    """A fresh network namespace with only lo (up): its counters see only our traffic."""
    name = f"{prefix}-p{os.getpid()}"
    run(["ip", "netns", "del", name], check=False)
    run(["ip", "netns", "add", name])
    try:
        run(["ip", "-n", name, "link", "set", "lo", "up"])
        yield name
    finally:
        run(["ip", "netns", "del", name], check=False)


def netns_inode(name: str) -> int:
    return os.stat(f"/run/netns/{name}").st_ino


CLONE_NEWNET = 0x40000000
T = TypeVar("T")


def in_netns(
    name: str, fn: Callable[[], T], *, comm: str | None = None, cpu: int | None = None
) -> T:
    """Run fn in a thread that joined the named netns (sockets it makes stay in it),
    optionally renamed (the kernel reports the thread's comm) and pinned to one CPU."""
    out: dict[str, object] = {}

    def body() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns")
            if comm is not None:
                set_comm(comm)
            if cpu is not None:
                os.sched_setaffinity(0, {cpu})  # 0: this thread
            out["value"] = fn()
        except BaseException as e:
            out["error"] = e
        finally:
            os.close(fd)

    t = threading.Thread(target=body)
    t.start()
    t.join()
    if "error" in out:
        raise out["error"]  # type: ignore[misc]
    return out["value"]  # type: ignore[return-value]


@contextmanager
def arp_lab(tag: str) -> Iterator[tuple[str, int]]:
    """A netns whose veth peer (in a second netns) never answers ARP for 198.18.7.50-.99:
    sends there end as NEIGH_FAILED from the neighbour timer. (netns name, its inode)."""
    a, b = f"dt-aa-{tag}", f"dt-ab-{tag}"
    try:
        for ns in (a, b):
            run(["ip", "netns", "add", ns])
        run(["ip", "link", "add", "dtxa", "netns", a, "type", "veth", "peer", "name", "dtxb",
             "netns", b])  # fmt: skip
        run(["ip", "-n", a, "addr", "add", "198.18.7.1/24", "dev", "dtxa"])
        run(["ip", "-n", b, "addr", "add", "198.18.7.2/24", "dev", "dtxb"])
        # Fail fast: one probe, 100 ms.
        for key, val in (("mcast_solicit", "1"), ("retrans_time_ms", "100")):
            run(["ip", "netns", "exec", a, "sysctl", "-q", f"net.ipv4.neigh.dtxa.{key}={val}"])
        run(["ip", "-n", a, "link", "set", "dtxa", "up"])
        run(["ip", "-n", b, "link", "set", "dtxb", "up"])
        yield a, netns_inode(a)
    finally:
        for ns in (a, b):
            run(["ip", "netns", "del", ns], check=False)


LISTEN_OVERFLOW = r"""
import socket, time
l = socket.socket()
l.bind(("127.0.0.1", 5555)); l.listen(1)
cs = []
for _ in range(10):
    s = socket.socket(); s.setblocking(False)
    try:
        s.connect(("127.0.0.1", 5555))
    except BlockingIOError:
        pass
    cs.append(s)
time.sleep(1.5)  # SYN retransmits at 1 s overflow again
"""
"""Python for `ip netns exec NS python -c`: a full accept queue. TcpExt:ListenOverflows
moves, and kfree_skb sees none of it (the SYN is freed with consume_skb)."""


def spawn(
    kind: str,
    count: int,
    *,
    comm: str | None = None,
    netns: str | None = None,
    addr: str | None = None,
    port: int | None = None,
) -> int:
    """Run the generator in a fresh process (own comm, optionally inside a netns)."""
    cmd = [sys.executable, "-m", "droptop.dropgen", kind, "--count", str(count)]
    if comm is not None:
        cmd += ["--comm", comm]
    if addr is not None:
        cmd += ["--addr", addr]
    if port is not None:
        cmd += ["--port", str(port)]
    if netns is not None:
        cmd = ["ip", "netns", "exec", netns, *cmd]
    env = dict(os.environ)
    src = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    return int(out.stdout.split()[-1])


def snmp_counter(proto: str, field: str, netns: str | None = None) -> int:
    """A counter from /proc/net/snmp of a namespace (default: ours), e.g. ('Udp', 'NoPorts')."""
    cmd = ["cat", "/proc/net/snmp"]
    if netns is not None:
        cmd = ["ip", "netns", "exec", netns, *cmd]
    text = run(cmd).stdout
    lines = [line.split() for line in text.splitlines() if line.startswith(proto + ":")]
    header, values = lines[0], lines[1]
    return int(values[header.index(field)])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m droptop.dropgen",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("kind", choices=("udp", "tcp", "nft", "veth"))
    p.add_argument("--count", type=int, default=100)
    p.add_argument("--comm", help="process name the kernel will report (15 bytes max)")
    p.add_argument("--addr", default="127.0.0.1")
    p.add_argument("--port", type=int, default=None)
    p.add_argument(
        "--rate", type=float, default=0.0, help="packets per second (0: as fast as possible)"
    )
    args = p.parse_args(argv)
    if args.comm:
        set_comm(args.comm)
    n = 0
    if args.kind == "udp":
        if args.rate:
            for _ in range(args.count):
                n += send_udp(1, args.addr, args.port or CLOSED_PORT)
                time.sleep(1 / args.rate)
        else:
            n = send_udp(args.count, args.addr, args.port or CLOSED_PORT)
    elif args.kind == "tcp":
        n = send_tcp_syn(args.count, args.addr, args.port or CLOSED_PORT)
    elif args.kind == "nft":
        with nft_drop_rule(args.port or NFT_PORT):
            n = send_udp(args.count, args.addr, args.port or NFT_PORT)
    elif args.kind == "veth":
        with veth_lab(1) as (sender, targets):
            n = spawn("udp", args.count, comm=args.comm, netns=sender, addr=targets[0].addr)
    print(n)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
