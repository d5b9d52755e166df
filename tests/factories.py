"""Small builders for model objects, so unit tests read as data."""

from __future__ import annotations

from droptop.model import DropKey, DropRow, Location, Reason, Snapshot, StackSample


def row(
    name: str = "NO_SOCKET",
    raw: int = 3,
    comm: str = "curl",
    packets: int = 10,
    rate: float = 1.0,
    ifname: str = "eth0",
    ifindex: int = 2,
    netns: int = 4026531833,
    subsys: str = "core",
    kernel_context: bool = False,
) -> DropRow:
    key = DropKey(raw, comm, kernel_context, ifindex, netns)
    return DropRow.of(
        key=key,
        reason=Reason(raw, name, subsys, "btf"),
        ifname=ifname,
        packets=packets,
        bytes=packets * 60,
        rate=rate,
        byte_rate=rate * 60,
        history=(0.0, rate),
        locations=(Location("__udp4_lib_rcv+0x4bc", packets),),
        stacks=(StackSample(("kfree_skb_reason+0x1", "__udp4_lib_rcv+0x4bc"), 2),),
        first_seen=1000.0,
    )


def snapshot(*rows: DropRow, **kw) -> Snapshot:
    defaults = dict(
        time=1_700_000_000.0,
        interval=1.0,
        kernel="6.18.0-test",
        hostname="testhost",
        rows=tuple(rows),
        total_packets=sum(r.packets for r in rows),
        total_rate=sum(r.rate for r in rows),
        map_capacity=10240,
        map_used=len(rows),
        names_source="btf",
        reason_table=(Reason(3, "NO_SOCKET", "core", "btf"),),
    )
    defaults.update(kw)
    return Snapshot(**defaults)
