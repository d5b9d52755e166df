"""The Attributor's cache (collector/attribute.py): when a key is looked up again.

Counting resolvers stand in for /proc and the cgroup tree, so each test can say how
many lookups an answer cost: an incomplete answer is resolved again when due() names
it, even though its stacks did not change; new stack counts that leave the context
as it was cost no lookup; new stacks that change the context are resolved again.
"""

from __future__ import annotations

from droptop.collector.attribute import Attributor
from droptop.model import DropKey, SocketOwner, StackSample

HOST = 4026531833
SYSCALL = ("sk_skb_reason_drop+0x90", "__udp4_lib_rcv+0x4bc", "ip_rcv+0x40", "do_syscall_64+0x7a")
AT_IRQ_EXIT = (
    "sk_skb_reason_drop+0x90",
    "__udp4_lib_rcv+0x4bc",
    "net_rx_action+0x1f0",
    "handle_softirqs+0xd5",
    "irq_exit_rcu+0x9a",
    "common_interrupt+0x80",
)


class Sockets:
    """Knows nobody until `known` is set."""

    def __init__(self) -> None:
        self.calls = 0
        self.known = False

    def owner(self, inode: int) -> SocketOwner | None:
        self.calls += 1
        return SocketOwner(inode, 42, "server") if self.known else None


class Cgroups:
    notes = ()

    def __init__(self) -> None:
        self.calls = 0

    def path(self, cgroup_id: int) -> str:
        self.calls += 1
        return "/system.slice/server.service"


class Netns:
    def __init__(self) -> None:
        self.calls = 0

    def current_name(self, inum: int) -> str:
        self.calls += 1
        return "host"


def attributor() -> tuple[Attributor, Sockets, Cgroups, Netns]:
    sockets, cgroups, netns = Sockets(), Cgroups(), Netns()
    return Attributor(cgroups=cgroups, netns=netns, sockets=sockets), sockets, cgroups, netns  # type: ignore[arg-type]


KEY = DropKey(2, "server", False, 1, HOST, sock_ino=99, cgroup_id=7)


def test_an_incomplete_answer_is_resolved_again_when_due_even_with_the_same_stacks():
    a, sockets, _, _ = attributor()
    stacks = (StackSample(SYSCALL, 4),)
    assert a.attribute(KEY, stacks).socket == SocketOwner(99, None, None)
    sockets.known = True  # the owner's process is found at the next rescan
    assert a.attribute(KEY, stacks).socket == SocketOwner(99, None, None)  # not due yet
    assert a.due() == {KEY}
    assert a.attribute(KEY, stacks).socket == SocketOwner(99, 42, "server")
    assert a.due() == frozenset()  # complete now: no more retries


def test_retries_are_bounded_per_call_and_take_turns():
    from droptop.collector.attribute import RETRIES

    a, _, _, _ = attributor()  # nobody's socket owner is known: every key incomplete
    keys = [KEY._replace(sock_ino=100 + i) for i in range(5)]
    for k in keys:
        a.attribute(k, ())
    first, second, third = a.due(limit=2), a.due(limit=2), a.due(limit=2)
    assert len(first) == len(second) == len(third) == 2
    assert first | second | {*third} >= set(keys)  # every key had its turn
    assert not first & second
    # Each key is retried RETRIES times in all, then no more.
    total = len(first) + len(second) + len(third)
    while batch := a.due(limit=2):
        total += len(batch)
    assert total == RETRIES * len(keys)


def test_new_stack_counts_with_the_same_context_cost_no_lookup():
    a, sockets, cgroups, netns = attributor()
    sockets.known = True
    first = a.attribute(KEY, (StackSample(SYSCALL, 4),))
    calls = (sockets.calls, cgroups.calls, netns.calls)
    again = a.attribute(KEY, (StackSample(SYSCALL, 5),))  # a new tuple, one more sample
    assert again is first
    assert (sockets.calls, cgroups.calls, netns.calls) == calls


def test_new_stacks_that_change_the_context_are_resolved_again():
    a, sockets, _, _ = attributor()
    sockets.known = True
    first = a.attribute(KEY, (StackSample(SYSCALL, 4),))
    assert first.context == "process"
    calls = sockets.calls
    later = a.attribute(KEY, (StackSample(SYSCALL, 4), StackSample(AT_IRQ_EXIT, 9)))
    assert later.context == "softirq" and not later.blames_task
    assert sockets.calls == calls + 1


def test_first_stacks_that_only_refine_the_context_cost_no_lookup():
    # A key's stacks arrive a poll or more after the key (collector/details.py): on an
    # interrupt stack "softirq" becomes "softirq-irq". Neither blames the task, so the
    # socket, cgroup and netns stay as resolved.
    a, sockets, cgroups, netns = attributor()
    sockets.known = True
    key = KEY._replace(irq=True)
    first = a.attribute(key, ())
    assert first.context == "softirq" and not first.blames_task
    calls = (sockets.calls, cgroups.calls, netns.calls)
    later = a.attribute(key, (StackSample(AT_IRQ_EXIT, 1),))
    assert later.context == "softirq-irq"
    assert (later.socket, later.cgroup, later.netns_name) == (
        first.socket,
        first.cgroup,
        first.netns_name,
    )
    assert (sockets.calls, cgroups.calls, netns.calls) == calls
    assert a.attribute(key, (StackSample(AT_IRQ_EXIT, 1),)) == later


def test_forget_drops_every_answer():
    a, sockets, _, _ = attributor()
    sockets.known = True
    stacks = (StackSample(SYSCALL, 4),)
    a.attribute(KEY, stacks)
    calls = sockets.calls
    a.forget()
    a.attribute(KEY, stacks)
    assert sockets.calls == calls + 1
