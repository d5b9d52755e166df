"""classify_context on stacks captured from real drops on 6.18 (tests/attribution/stacks/,
each file says how it was made) and on synthetic stacks for paths this VM cannot make.

The captured files carry `# code:`, the context code the kernel side would report for
that drop (the collector that captured them did not record one yet): the class follows
from the stack (handle_softirqs present -> softirq), the flags from the comm.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from droptop.attribution.context import (
    CONTEXTS,
    CTX_HARDIRQ,
    CTX_IDLE,
    CTX_KTHREAD,
    CTX_NMI,
    CTX_PROCESS,
    CTX_SOFTIRQ,
    CTX_UNKNOWN,
    blames_task,
    classify_context,
    classify_samples,
    frame_function,
    softirq_entry,
)

STACKS = Path(__file__).parent / "stacks"
CODES = {
    "process": CTX_PROCESS,
    "softirq": CTX_SOFTIRQ,
    "idle": CTX_IDLE,
    "kthread": CTX_KTHREAD,
}


def load(path: Path) -> tuple[dict[str, str], tuple[str, ...]]:
    meta, frames = {}, []
    for line in path.read_text().splitlines():
        if line.startswith("# ") and ":" in line:
            k, v = line[2:].split(":", 1)
            meta[k.strip()] = v.strip()
        elif line and not line.startswith("#"):
            frames.append(line)
    return meta, tuple(frames)


def code_of(text: str) -> int:
    code = 0
    for part in text.split("|"):
        code |= CODES[part]
    return code


FIXTURES = sorted(STACKS.glob("*.txt"))


def test_fixtures_present():
    assert len(FIXTURES) >= 8


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_real_stack(path):
    meta, frames = load(path)
    assert frames[0].startswith("sk_skb_reason_drop+")
    expected = meta["expect"]
    assert classify_context(code_of(meta["code"]), frames, comm=meta["comm"]) == expected
    # the stack alone (a kernel side that could not read preempt_count) agrees, except that
    # it cannot know the task kind without the flags
    flags = code_of(meta["code"]) & (CTX_IDLE | CTX_KTHREAD)
    assert classify_context(CTX_UNKNOWN | flags, frames, comm=meta["comm"]) == expected


def test_busy_process_not_blamed_for_timer_drop():
    meta, frames = load(STACKS / "neigh_failed_busy_cpu.txt")
    assert meta["comm"] == "dtspin"
    ctx = classify_context(CTX_SOFTIRQ, frames)
    assert ctx == "softirq-irq"
    assert not blames_task(ctx)


def test_sender_blamed_for_inline_loopback_drop():
    _, frames = load(STACKS / "udp_lo_closed_port.txt")
    ctx = classify_context(CTX_SOFTIRQ, frames)
    assert ctx == "softirq-inline"
    assert blames_task(ctx)


def test_frame_function():
    assert frame_function("do_softirq.part.0+0x3b") == "do_softirq"
    assert frame_function("handle_softirqs+0xcd") == "handle_softirqs"
    assert frame_function("net_rx_action.cold+0x10") == "net_rx_action"
    assert frame_function("foo.isra.0+0x1") == "foo"
    assert frame_function("[unknown]") == "[unknown]"


DROP = ("kfree_skb_reason+0x10", "ip_rcv_core+0x1")
NET_RX = ("__netif_receive_skb+0x1", "net_rx_action+0x16e")
KSOFTIRQD_STACK = (
    *DROP,
    *NET_RX,
    "handle_softirqs+0xcd",
    "run_ksoftirqd+0x2b",
    "smpboot_thread_fn+0xdd",
    "kthread+0xfa",
    "ret_from_fork+0x31",
)
OLD_KERNEL_IRQ = (  # 5.x: __do_softirq, irq_exit_rcu, common_interrupt
    *DROP,
    *NET_RX,
    "__do_softirq+0xd6",
    "irq_exit_rcu+0x9c",
    "common_interrupt+0x43",
    "asm_common_interrupt+0x1e",
)
OLD_KERNEL_INLINE = (
    *DROP,
    *NET_RX,
    "__do_softirq+0xd6",
    "do_softirq+0x5c",
    "__local_bh_enable_ip+0x4b",
    "ip_finish_output2+0x1aa",
    "__sys_sendto+0x1c",
    "do_syscall_64+0x5c",
    "entry_SYSCALL_64_after_hwframe+0x61",
)
# a timer interrupt hits a task inside its own syscall: still only interrupted
IRQ_OVER_SYSCALL = (
    "sk_skb_reason_drop+0x90",
    "neigh_invalidate+0x7e",
    "run_timer_softirq+0x88",
    "handle_softirqs+0xcd",
    "__irq_exit_rcu+0x8e",
    "sysvec_apic_timer_interrupt+0x65",
    "asm_sysvec_apic_timer_interrupt+0x16",
    "__local_bh_enable_ip+0x64",
    "__dev_queue_xmit+0x394",
    "__sys_sendto+0x239",
    "entry_SYSCALL_64_after_hwframe+0x76",
)
HARDIRQ_STACK = (*DROP, "e1000_intr+0x20", "__handle_irq_event_percpu+0x4", "common_interrupt+1")
NMI_STACK = (*DROP, "nmi_handle+0x5", "default_do_nmi+0x1", "exc_nmi+0x1", "asm_exc_nmi+0x1")
TRUNCATED = (*DROP, *NET_RX, "handle_softirqs+0xcd")


@pytest.mark.parametrize(
    ("code", "frames", "comm", "expected"),
    [
        (CTX_SOFTIRQ | CTX_KTHREAD, KSOFTIRQD_STACK, "ksoftirqd/1", "ksoftirqd"),
        (CTX_SOFTIRQ | CTX_KTHREAD, (), "ksoftirqd/1", "ksoftirqd"),  # no stack: comm tells
        (CTX_SOFTIRQ | CTX_KTHREAD, (), "kworker/0:1", "softirq"),
        (CTX_SOFTIRQ, OLD_KERNEL_IRQ, None, "softirq-irq"),
        (CTX_SOFTIRQ, OLD_KERNEL_INLINE, None, "softirq-inline"),
        (CTX_SOFTIRQ, IRQ_OVER_SYSCALL, None, "softirq-irq"),
        (CTX_SOFTIRQ | CTX_IDLE, OLD_KERNEL_IRQ, "swapper/0", "softirq-irq"),
        (CTX_SOFTIRQ | CTX_KTHREAD, OLD_KERNEL_IRQ, "kworker/0:1", "softirq-irq"),
        (CTX_SOFTIRQ, (), None, "softirq"),  # sampled stacks off or not sampled
        (CTX_SOFTIRQ, TRUNCATED, None, "softirq"),
        (CTX_PROCESS, (), None, "process"),
        (CTX_PROCESS | CTX_KTHREAD, (), "kworker/1:0", "kthread"),
        (CTX_PROCESS | CTX_IDLE, (), "swapper/1", "idle"),
        (CTX_HARDIRQ, HARDIRQ_STACK, None, "hardirq"),
        (CTX_HARDIRQ | CTX_IDLE, (), "swapper/0", "hardirq"),
        (CTX_NMI, NMI_STACK, None, "nmi"),
        (CTX_UNKNOWN, HARDIRQ_STACK, None, "hardirq"),
        (CTX_UNKNOWN, NMI_STACK, None, "nmi"),
        (CTX_UNKNOWN, ("sk_skb_reason_drop+0x90", "__sys_sendto+1"), None, "process"),
        (CTX_UNKNOWN, (), None, "softirq"),
    ],
)
def test_synthetic(code, frames, comm, expected):
    assert classify_context(code, frames, comm=comm) == expected


def test_softirq_entry():
    assert softirq_entry(OLD_KERNEL_INLINE) == "inline"
    assert softirq_entry(OLD_KERNEL_IRQ) == "irq"
    assert softirq_entry(KSOFTIRQD_STACK) == "ksoftirqd"
    assert softirq_entry(TRUNCATED) == "unknown"
    assert softirq_entry(DROP) is None


def test_rows_with_mixed_samples_blame_nobody():
    _, inline = load(STACKS / "udp_lo_closed_port.txt")
    _, irq = load(STACKS / "ipv6_mc_irq_exit_python.txt")
    assert classify_samples(CTX_SOFTIRQ, [(inline, 9)]) == "softirq-inline"
    assert classify_samples(CTX_SOFTIRQ, [(inline, 9), (irq, 1)]) == "softirq"
    assert classify_samples(CTX_SOFTIRQ, [(irq, 3), (irq, 1)]) == "softirq-irq"
    assert classify_samples(CTX_SOFTIRQ, []) == "softirq"
    assert classify_samples(CTX_PROCESS, []) == "process"


def test_only_the_tasks_own_paths_blame_it():
    assert {c for c in CONTEXTS if blames_task(c)} == {"process", "softirq-inline"}
    assert not blames_task("bogus")
    assert {classify_context(c, ()) for c in range(16)} <= set(CONTEXTS)
    assert classify_context(CTX_NMI | CTX_IDLE, ()) == "nmi"
