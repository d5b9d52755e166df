"""Real drops, real BPF program, exact counts checked against independent oracles.

Each test makes its drops from a fresh process with a unique comm (or inside
namespaces it creates), so other traffic on the machine cannot be mistaken for them.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

from droptop import dropgen
from droptop.model import DropRow, Snapshot
from tests.conftest import wait_for

pytestmark = pytest.mark.bpf

PAYLOAD = 32
UDP_HEADER = 8


def unique_comm(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:6]}"


def rows_for(snap: Snapshot, comm: str) -> list[DropRow]:
    return [r for r in snap.rows if r.key.comm == comm]


def packets_for(snap: Snapshot, comm: str, reason: str | None = None) -> int:
    return sum(r.packets for r in rows_for(snap, comm) if reason is None or r.reason.name == reason)


def test_udp_closed_port_counts_exactly(bpf_collector):
    comm = unique_comm("dt-udp")
    n = 500
    # A namespace of its own, so UdpNoPorts counts only these datagrams.
    with dropgen.private_netns() as ns:
        inode = dropgen.netns_inode(ns)
        before = dropgen.snmp_counter("Udp", "NoPorts", netns=ns)
        sent = dropgen.spawn("udp", n, comm=comm, netns=ns)
        snap = wait_for(bpf_collector.poll, lambda s: packets_for(s, comm) >= n)
        no_ports = dropgen.snmp_counter("Udp", "NoPorts", netns=ns) - before

    assert sent == n
    assert no_ports == n
    rows = rows_for(snap, comm)
    assert [(r.reason.name, r.reason.subsys, r.reason.source) for r in rows] == [
        ("NO_SOCKET", "core", "btf")
    ]
    row = rows[0]
    assert row.packets == n
    assert row.bytes == n * (PAYLOAD + UDP_HEADER)  # skb->len at the drop: UDP header + data
    assert row.ifname == "lo"
    assert row.key.ifindex == 1
    assert row.key.netns == inode
    assert not row.key.kernel_context
    assert row.locations and row.locations[0].symbol.startswith("__udp4_lib_rcv")


def test_polls_during_a_burst_never_go_back_and_the_end_is_exact(bpf_collector):
    """A burst counts in the kernel's per-CPU slot and reaches the counters only at the
    next miss (BURST_COUNT): polls in the middle of it read the slots too, so totals
    only grow, and the last burst, never stored back, is counted at the end."""
    comm = unique_comm("dt-burst")
    n = 20000
    seen: list[int] = []
    with dropgen.private_netns() as ns:
        before = dropgen.snmp_counter("Udp", "NoPorts", netns=ns)
        sender = threading.Thread(
            target=dropgen.spawn, args=("udp", n), kwargs={"comm": comm, "netns": ns}
        )
        sender.start()
        while sender.is_alive():
            seen.append(packets_for(bpf_collector.poll(), comm))
            time.sleep(0.005)
        sender.join()
        snap = wait_for(bpf_collector.poll, lambda s: packets_for(s, comm) >= n)
        no_ports = dropgen.snmp_counter("Udp", "NoPorts", netns=ns) - before
    assert no_ports == n
    assert packets_for(snap, comm) == n
    assert seen == sorted(seen)
    assert any(0 < p < n for p in seen), seen  # some polls did land inside the burst


def test_stacks_are_sampled_and_symbolized(bpf_collector):
    comm = unique_comm("dt-stk")
    dropgen.spawn("udp", 50, comm=comm)
    snap = wait_for(bpf_collector.poll, lambda s: any(r.stacks for r in rows_for(s, comm)))
    (row,) = rows_for(snap, comm)
    assert row.stacks, "a rare drop must still get a stack"
    frames = row.stacks[0].frames
    assert any(f.startswith("__udp4_lib_rcv+0x") for f in frames), frames
    # The tracing machinery (bpf_prog_*, bpf_trace_run*) is stripped: the first frame
    # is the kernel function that freed the packet.
    assert re.match(r"(kfree_skb_reason|sk_skb_reason_drop)\+0x", frames[0]), frames[:3]
    # Sampled, not one per drop: far fewer samples than drops.
    assert 1 <= sum(s.count for s in row.stacks) < row.packets


@pytest.mark.parametrize("n", [400, 5000])
def test_a_keys_first_4_drops_on_a_cpu_get_a_stack_then_1_in_4096(bpf_collector, n):
    """The documented rule, exactly: each key's first STACK_FIRST (4) drops on a CPU are
    sampled, then every 4096th on that CPU. The sender is pinned to one CPU (loopback
    receives inline, in its syscall), so the row's per-CPU count runs 1..n there."""
    from droptop.collector.kernel import STACK_REFRESH

    comm = unique_comm("dt-bst")
    saved = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(saved)})  # the generator child inherits it
    try:
        sent = dropgen.spawn("udp", n, comm=comm)
    finally:
        os.sched_setaffinity(0, saved)
    assert sent == n

    def samples(s: Snapshot) -> int:
        return sum(st.count for r in rows_for(s, comm) for st in r.stacks)

    wait_for(bpf_collector.poll, lambda s: packets_for(s, comm) >= n and samples(s) >= 4)
    time.sleep(STACK_REFRESH + 0.1)  # the stack map is re-read at most this often
    snap = bpf_collector.poll()
    (row,) = rows_for(snap, comm)
    assert row.packets == n
    # One counter per drop location; each is its own key in the kernel.
    expected = sum(min(4, loc.packets) + loc.packets // 4096 for loc in row.locations)
    assert samples(snap) == expected, [(st.count, st.frames[:2]) for st in row.stacks]
    assert expected == 4 + n // 4096  # udp to a closed port: one location


def test_periodic_samples_are_at_most_one_per_gap_per_key_and_cpu():
    """Past the first 4, a 4096th drop is sampled only when the key's last periodic
    sample on that CPU is sample_gap_ns old (a one-key flood would walk hundreds of
    stacks a second otherwise). With a 30 s gap, 3 x 4096 drops make one."""
    from tests.conftest import need_bpf

    need_bpf()
    from droptop.collector.kernel import STACK_REFRESH, KernelCollector

    class LongGap(KernelCollector):
        sample_gap_ns = 30 * 10**9

    comm = unique_comm("dt-gap")
    n = 3 * 4096 + 10
    with LongGap(max_keys=64, samples=False) as c:
        saved = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {min(saved)})  # one CPU: its count of the key runs 1..n
        try:
            assert dropgen.spawn("udp", n, comm=comm) == n
        finally:
            os.sched_setaffinity(0, saved)
        wait_for(c.poll, lambda s: packets_for(s, comm) >= n)
        time.sleep(STACK_REFRESH + 0.1)
        (row,) = rows_for(c.poll(), comm)
    assert row.packets == n
    assert sum(st.count for st in row.stacks) == 4 + 1


def test_tcp_syn_to_closed_port(bpf_collector):
    comm = unique_comm("dt-tcp")
    n = 40
    dropgen.spawn("tcp", n, comm=comm)
    snap = wait_for(bpf_collector.poll, lambda s: packets_for(s, comm, "NO_SOCKET") >= n)
    assert packets_for(snap, comm, "NO_SOCKET") == n
    assert any(
        loc.symbol.startswith("tcp_v4_rcv") for r in rows_for(snap, comm) for loc in r.locations
    )


def test_nft_drop_rule_matches_nft_counter(bpf_collector):
    comm = unique_comm("dt-nft")
    n = 300
    with dropgen.nft_drop_rule() as table:
        dropgen.spawn("udp", n, comm=comm, port=dropgen.NFT_PORT)
        counter = dropgen.nft_counter(table)
    snap = wait_for(bpf_collector.poll, lambda s: packets_for(s, comm, "NETFILTER_DROP") >= n)
    assert counter == n
    assert packets_for(snap, comm, "NETFILTER_DROP") == counter


def test_two_namespaces_same_ifindex_and_deleted_veth(bpf_collector):
    comm = unique_comm("dt-ns")
    counts = (70, 130)
    with dropgen.veth_lab(receivers=2) as (sender, targets):
        assert targets[0].ifindex == targets[1].ifindex  # the point of the test
        inodes = [dropgen.netns_inode(t.netns) for t in targets]
        assert inodes[0] != inodes[1]

        def by_ns(s: Snapshot) -> dict[int, list[DropRow]]:
            out: dict[int, list[DropRow]] = {}
            for r in s.rows:
                if r.key.netns in inodes and r.reason.name == "NO_SOCKET" and r.key.ifindex:
                    out.setdefault(r.key.netns, []).append(r)
            return out

        # A netns inode is reused once its namespace is gone: rows that an earlier test's
        # namespace left under the same number are the baseline, not this test's drops.
        old = {r.key: r.packets for rows in by_ns(bpf_collector.poll()).values() for r in rows}
        for t, n in zip(targets, counts):
            dropgen.spawn("udp", n, comm=comm, netns=sender, addr=t.addr)

        def mine(s: Snapshot, inode: int) -> list[DropRow]:
            """This test's rows in the namespace: those that grew since the baseline."""
            return [r for r in by_ns(s).get(inode, ()) if r.packets > old.get(r.key, 0)]

        def added(rows: list[DropRow]) -> int:
            return sum(r.packets - old.get(r.key, 0) for r in rows)

        snap = wait_for(
            bpf_collector.poll,
            lambda s: all(added(mine(s, i)) >= n for i, n in zip(inodes, counts)),
        )
        for t, inode, n in zip(targets, inodes, counts):
            rows = mine(snap, inode)
            assert added(rows) == n
            assert {r.ifname for r in rows} == {t.ifname}
            assert {r.key.ifindex for r in rows} == {t.ifindex}
            # The softirq runs either in the sender's syscall or in ksoftirqd.
            assert all(r.key.comm == comm or r.key.kernel_context for r in rows)

        # Delete the first receiver's interface mid-run: its rows keep their name.
        keys = {r.key for r in mine(snap, inodes[0])}
        dropgen.run(["ip", "-n", targets[0].netns, "link", "del", targets[0].ifname])
        assert not os.path.exists(f"/sys/class/net/{targets[0].ifname}")
        after = [r for r in bpf_collector.poll().rows if r.key in keys]
        assert {r.ifname for r in after} == {targets[0].ifname}
        assert added(after) == counts[0]


def test_every_run_is_counted_even_when_the_map_is_full():
    """With room for 2 keys, drops beyond are overflow: rows + overflow == program runs."""
    from tests.conftest import need_bpf

    need_bpf()
    from droptop.collector.kernel import KernelCollector, _bpf_prog_stats

    old = Path("/proc/sys/kernel/bpf_stats_enabled").read_text().strip()
    subprocess.run(["sysctl", "-qw", "kernel.bpf_stats_enabled=1"], check=True)
    try:
        with KernelCollector(max_keys=2, stacks=False) as c:
            for i in range(4):
                dropgen.spawn("udp", 25, comm=unique_comm(f"dt-full{i}"))
            _, runs_before, _ = _bpf_prog_stats(c._prog_fd)
            rows, overflow = c.read_raw()
            _, runs_after, _ = _bpf_prog_stats(c._prog_fd)
            snap = c.poll()
            counted = sum(r.packets for r in rows) + overflow[0]
            assert snap.map_used == 2
            assert overflow[0] >= 50  # at least two of our four comms had no room
            assert snap.overflow_packets >= 50
            # Every finished run has counted its drop before the kernel counts the run;
            # at most one run per CPU can be in flight while the maps are read.
            assert runs_before <= counted <= runs_after + os.cpu_count()
    finally:
        subprocess.run(["sysctl", "-qw", f"kernel.bpf_stats_enabled={old}"], check=True)


# --- the benchmark's program variants are built from this very program -----------------------

ROOT = Path(__file__).resolve().parents[1]
BPF_PROGRAM = ROOT / "bpf" / "droptop.bpf.c"


def bench_switches() -> list[str]:
    """The DROPTOP_BENCH_* switches bench/bench_variants.py builds variants with."""
    text = (ROOT / "bench" / "bench_variants.py").read_text()
    return sorted(set(re.findall(r'bench_flag\("(\w+)"\)', text)))


def test_bench_switches_are_in_the_program_and_off_by_default():
    """A switch the program no longer tests would silently bench droptop's own build."""
    source = BPF_PROGRAM.read_text()
    switches = bench_switches()
    assert len(switches) >= 6, switches
    for name in switches:
        assert f"defined(DROPTOP_BENCH_{name})" in source, name
        assert f"#define DROPTOP_BENCH_{name}" not in source, f"{name} must default to off"
    assert not (ROOT / "bench" / "proto").exists(), "no hand copy of the program"


@pytest.mark.parametrize("switch", bench_switches())
def test_each_bench_variant_loads_and_counts_as_it_should(switch):
    """Every variant compiles, loads as tp_btf and counts exactly (the EMPTY ones
    count nothing): a bench run can never time a program that would not work."""
    from tests.conftest import need_bpf

    need_bpf()
    from droptop.collector.kernel import KernelCollector

    class Variant(KernelCollector):
        def cflags(self) -> list[str]:
            return [*super().cflags(), f"-DDROPTOP_BENCH_{switch}"]

    comm = unique_comm("dt-var")
    n = 30
    with Variant(max_keys=64) as c:
        assert c.attach == "tp_btf", c.attach_note
        dropgen.spawn("udp", n, comm=comm)
        if switch.startswith("EMPTY"):
            time.sleep(0.2)
            rows, overflow = c.read_raw()
            assert rows == [] and overflow == (0, 0)
        else:
            snap = wait_for(c.poll, lambda s: packets_for(s, comm) >= n)
            assert packets_for(snap, comm, "NO_SOCKET") == n
