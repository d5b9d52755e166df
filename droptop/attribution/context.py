"""In which context a drop ran, and so whether the task named in `comm` made it.

The kernel reports a context code per drop (which of process / softirq / hardirq / NMI
the CPU was in, plus whether `current` was the idle task or a kernel thread); a sampled
kernel stack tells how softirq was entered. Pure: no kernel, no /proc.

Vocabulary (the JSON key `context`):

=================  =====================================================================
process            the task's own code path (a syscall, a page fault): blame the task
softirq-inline     softirq run inside the task's own syscall when it re-enabled bottom
                   halves (loopback/veth receive in sendto): blame the task
softirq-irq        softirq run at interrupt exit on top of whatever task the interrupt
                   hit (timers, NIC receive): the task was only interrupted
ksoftirqd          softirq deferred to the per-CPU ksoftirqd thread
softirq            softirq, but no stack says how it was entered: blame nobody
hardirq            an interrupt handler
nmi                a non-maskable interrupt
kthread            a kernel thread's own work (kworker, napi/... threads), including
                   softirq it ran inline
idle               the idle task's own work (softirq at interrupt exit on an idle CPU is
                   softirq-irq, as on any other task)
=================  =====================================================================

Only `process` and `softirq-inline` blame the task: see :func:`blames_task`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence

# --- the kernel's context code (one byte in the map key) ---------------------------
CTX_PROCESS = 0
"""Task context: preempt_count has no NMI, hardirq or SOFTIRQ_OFFSET (serving) bit.
Bottom halves merely disabled (local_bh_disable in the TX path) is still process."""
CTX_SOFTIRQ = 1
"""preempt_count & SOFTIRQ_OFFSET (0x100): serving a softirq."""
CTX_HARDIRQ = 2
"""preempt_count & HARDIRQ_MASK (0xf0000)."""
CTX_NMI = 3
"""preempt_count & NMI_MASK (0xf00000)."""
CTX_CLASS_MASK = 0x3
CTX_IDLE = 0x4
"""current is the idle task (pid 0)."""
CTX_KTHREAD = 0x8
"""current->flags & PF_KTHREAD."""
CTX_UNKNOWN = 0x80
"""The kernel could not read preempt_count: classify from the stack alone."""

PROCESS = "process"
SOFTIRQ_INLINE = "softirq-inline"
SOFTIRQ_IRQ = "softirq-irq"
KSOFTIRQD = "ksoftirqd"
SOFTIRQ = "softirq"
HARDIRQ = "hardirq"
NMI = "nmi"
KTHREAD = "kthread"
IDLE = "idle"
CONTEXTS = (PROCESS, SOFTIRQ_INLINE, SOFTIRQ_IRQ, KSOFTIRQD, SOFTIRQ, HARDIRQ, NMI, KTHREAD, IDLE)
"""Every value classify_context returns; the filter field ctx: matches these."""

_BLAMES = frozenset((PROCESS, SOFTIRQ_INLINE))

# --- what frames mean (names without +0xoff and without .part/.cold/.isra suffixes) ---
SOFTIRQ_RUN = frozenset(("handle_softirqs", "__do_softirq"))
"""The softirq loop: 5.x calls it __do_softirq, 6.8+ handle_softirqs (both may show)."""
INLINE_ENTRY = frozenset(
    (
        "do_softirq",
        "__local_bh_enable_ip",
        "local_bh_enable",
        "_local_bh_enable",
        "do_softirq_post_smp_call_flush",
        "netif_rx_ni",
        "__netif_rx",
    )
)
"""Softirq run because the current task re-enabled bottom halves (its own code path)."""
IRQ_EXIT = re.compile(
    r"^(irq_exit|irq_exit_rcu|__irq_exit_rcu|invoke_softirq|common_interrupt|"
    r"asm_common_interrupt|spurious_interrupt|__sysvec_\w+|sysvec_\w+|asm_sysvec_\w+|"
    r"run_sysvec_on_irqstack_cond|__common_interrupt|do_IRQ|handle_irq|"
    r"irqentry_exit|gic_handle_irq|el[01]_irq|el[01]h_64_irq\w*|call_on_irqstack)$"
)
"""Interrupt entry/exit (x86-64 idtentry names; arm64 el*_irq, gic_handle_irq)."""
KSOFTIRQD_RUN = frozenset(("run_ksoftirqd",))
NMI_ENTRY = re.compile(r"^(exc_nmi|asm_exc_nmi|default_do_nmi|nmi_handle|do_nmi)$")
HARDIRQ_HANDLER = re.compile(r"^(__handle_irq_event_percpu|handle_irq_event\w*|__sysvec_\w+)$")

_SUFFIX = re.compile(r"\.(?:part|cold|isra|constprop|lto_priv|llvm)\.?\d*")


def frame_function(frame: str) -> str:
    """`do_softirq.part.0+0x3b` -> `do_softirq`; `[unknown]` stays as is."""
    name = frame.split("+", 1)[0].split(" ", 1)[0]
    return _SUFFIX.split(name, 1)[0]


def softirq_entry(stack_frames: Sequence[str]) -> str | None:
    """How the innermost softirq run in a stack (innermost first) was entered.

    `inline` (the task re-enabled bottom halves), `irq` (interrupt exit), `ksoftirqd`,
    `unknown` (softirq frames but nothing telling past them: a truncated stack), or None
    (no softirq frame at all).
    """
    funcs = [frame_function(f) for f in stack_frames]
    start = next((i for i, f in enumerate(funcs) if f in SOFTIRQ_RUN), None)
    if start is None:
        return None
    for f in funcs[start + 1 :]:
        if f in SOFTIRQ_RUN:
            continue  # __do_softirq calling handle_softirqs
        if f in KSOFTIRQD_RUN or f == "smpboot_thread_fn":
            return "ksoftirqd"
        if f in INLINE_ENTRY:
            return "inline"
        if IRQ_EXIT.match(f):
            return "irq"
    return "unknown"


def _class_from_stack(funcs: Sequence[str]) -> int:
    """For CTX_UNKNOWN codes: the innermost telling frame decides."""
    for f in funcs:
        if f in SOFTIRQ_RUN:
            return CTX_SOFTIRQ
        if NMI_ENTRY.match(f):
            return CTX_NMI
        if HARDIRQ_HANDLER.match(f) or IRQ_EXIT.match(f):
            return CTX_HARDIRQ
    return CTX_PROCESS


# A stack's answers depend on its frames only, and a node's 10,000 keys share a few
# hundred stacks at most: when they all get new stack counts at once (a key's first
# drops on each CPU are all sampled), each distinct stack is read once, not per key.
@functools.lru_cache(maxsize=4096)
def _stack_entry(frames: tuple[str, ...]) -> str | None:
    return softirq_entry(frames)


@functools.lru_cache(maxsize=4096)
def _stack_class(frames: tuple[str, ...]) -> int:
    return _class_from_stack([frame_function(f) for f in frames])


def classify_context(
    code: int, stack_frames: Sequence[str] | None = None, *, comm: str | None = None
) -> str:
    """One of CONTEXTS for a context code and one sampled stack (innermost first, may be
    empty). `comm` is only a fallback: `ksoftirqd/N` tells ksoftirqd when no stack does."""
    frames = tuple(stack_frames or ())
    if code & CTX_UNKNOWN:
        cls = _stack_class(frames) if frames else None
        if cls is None:
            return SOFTIRQ if comm is None or not comm.startswith("ksoftirqd/") else KSOFTIRQD
    else:
        cls = code & CTX_CLASS_MASK
    if cls == CTX_NMI:
        return NMI
    if cls == CTX_HARDIRQ:
        return HARDIRQ
    task = IDLE if code & CTX_IDLE else KTHREAD if code & CTX_KTHREAD else None
    if cls == CTX_PROCESS:
        return task or PROCESS
    entry = _stack_entry(frames) if frames else None
    if entry == "irq":
        return SOFTIRQ_IRQ
    if entry == "ksoftirqd":
        return KSOFTIRQD
    if entry == "inline":
        return task or SOFTIRQ_INLINE
    if comm is not None and comm.startswith("ksoftirqd/") and task == KTHREAD:
        return KSOFTIRQD
    return SOFTIRQ


def classify_samples(
    code: int, samples: Iterable[tuple[Sequence[str], int]], *, comm: str | None = None
) -> str:
    """The context of a row from all its sampled stacks ((frames, count) pairs).

    Stacks are sampled, and one key can hold drops entered both ways (a sender whose
    loopback drops run inline, and a timer that hits it). When the samples disagree the
    row is `softirq` if any was softirq (never blame a task that was only interrupted),
    else the most sampled context.
    """
    counts: dict[str, int] = {}
    for frames, n in samples:
        ctx = classify_context(code, frames, comm=comm)
        counts[ctx] = counts.get(ctx, 0) + n
    if not counts:
        return classify_context(code, (), comm=comm)
    if len(counts) == 1:
        return next(iter(counts))
    softirqs = {SOFTIRQ_INLINE, SOFTIRQ_IRQ, KSOFTIRQD, SOFTIRQ}
    if softirqs & counts.keys():
        return SOFTIRQ
    return max(counts.items(), key=lambda kv: (kv[1], kv[0]))[0]


def blames_task(context: str) -> bool:
    """True when the task named in comm made the drop itself (kernel_context is the opposite)."""
    return context in _BLAMES
