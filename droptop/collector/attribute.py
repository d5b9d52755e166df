"""Whose drop a row is: context, socket owner, cgroup service and netns name, per row key.

The kernel records, per key, whether the drop ran on an interrupt stack, the socket
(its inode and cgroup id) and the task's cgroup; the sampled stacks say how softirq
was entered. This turns those into an `Attribution` with droptop.attribution's
resolvers, once per key and again only when the key's stacks change: lookups walk
/proc and the cgroup tree, so they must never run per drop or per idle row. New stack
counts for a key re-derive only its context.

Rules (issue 11): a row with a socket belongs to the socket's cgroup even in softirq;
a row the task made itself (process context, or softirq inline in its own syscall)
without a socket takes the task's cgroup; a drop at interrupt exit without a socket
has no service. The named task is blamed only for its own code path.

A resolver may not know an answer yet when a row is first attributed (its rate limit
held a rescan back: a socket or cgroup made a moment ago). Such an attribution is
incomplete: `due()` names its key again a few times, and the collector has the row
attributed anew, so a row does not keep a bare inode or an unknown owner for good.
"""

from __future__ import annotations

from dataclasses import replace
from itertools import islice

from droptop.attribution import context as ctx
from droptop.attribution.cgroups import CgroupResolver, service_name
from droptop.attribution.netns import NetnsNamer
from droptop.attribution.sockets import SocketOwners
from droptop.model import Attribution, DropKey, SocketOwner, StackSample


def context_code(key: DropKey) -> int:
    """The kernel's facts about a key as droptop.attribution.context's code."""
    code = ctx.CTX_SOFTIRQ if key.irq else ctx.CTX_PROCESS
    if key.kernel_context:
        code |= ctx.CTX_IDLE if key.comm.startswith("swapper/") else ctx.CTX_KTHREAD
    return code


RETRIES = 5
"""How many more times an incomplete attribution is retried (each at a stack re-read,
STACK_REFRESH seconds apart); the resolvers' own rate limits bound what a retry costs."""


class Attributor:
    """Resolvers plus a per-key cache. Not thread-safe: the collector's poll calls it."""

    def __init__(
        self,
        *,
        cgroups: CgroupResolver | None = None,
        netns: NetnsNamer | None = None,
        sockets: SocketOwners | None = None,
    ) -> None:
        self.cgroups = cgroups if cgroups is not None else CgroupResolver()
        self.netns = netns if netns is not None else NetnsNamer()
        self.sockets = sockets if sockets is not None else SocketOwners()
        self._cache: dict[DropKey, tuple[tuple[StackSample, ...], Attribution]] = {}
        self._retry: dict[DropKey, int] = {}
        self._stale: set[DropKey] = set()  # due(): resolve again whatever the stacks

    @property
    def notes(self) -> tuple[str, ...]:
        return tuple(self.cgroups.notes)

    def attribute(self, key: DropKey, stacks: tuple[StackSample, ...]) -> Attribution:
        hit = self._cache.get(key)
        context = None
        if hit is not None and key not in self._stale:
            if hit[0] is stacks:
                return hit[1]
            # New stack counts can change the context alone (the socket, cgroup and
            # netns are the key's): 10,000 keys whose first drops were all sampled
            # get new stacks at once, and are not looked up all over again. One stack
            # both times, the same frames: the same context, whatever its count.
            old = hit[0]
            if len(stacks) == len(old) == 1 and stacks[0].frames is old[0].frames:
                self._cache[key] = (stacks, hit[1])
                return hit[1]
            context = self._context(key, stacks)
            if context == hit[1].context:
                self._cache[key] = (stacks, hit[1])
                return hit[1]
            if ctx.blames_task(context) == hit[1].blames_task:
                # Only the context moved (a key's first stacks, seen a poll after the
                # key): whose socket, cgroup and netns it is stays as resolved.
                who = replace(hit[1], context=context)
                self._cache[key] = (stacks, who)
                return who
        self._stale.discard(key)
        who = self._resolve(key, stacks, context)
        self._cache[key] = (stacks, who)
        return who

    def forget(self) -> None:
        self._cache.clear()
        self._retry.clear()
        self._stale.clear()

    def due(self, limit: int = 1000) -> frozenset[DropKey]:
        """Keys whose attribution was incomplete and should be resolved again now, at
        most `limit` (each call uses up one of a key's RETRIES). A resolve walks /proc
        or the cgroup tree (~7 us here): 10,000 keys of processes that have exited
        would otherwise be 70 ms in one poll. Those not due now go first next time."""
        if not self._retry:
            return frozenset()
        keys = frozenset(islice(self._retry, limit))
        self._stale |= keys
        for key in keys:
            left = self._retry.pop(key) - 1
            if left > 0:
                self._retry[key] = left  # to the back of the queue
        return keys

    @staticmethod
    def _context(key: DropKey, stacks: tuple[StackSample, ...]) -> str:
        code = context_code(key)
        if not key.irq and stacks:
            # "Not on an interrupt stack" is not "process context": an interrupt that
            # arrives in user mode runs its handler, and the softirq at its exit, on the
            # task's own stack (x86-64 switches to the irq stack only from kernel mode).
            # Where stacks were sampled they decide; each says how it was entered.
            code |= ctx.CTX_UNKNOWN
        return ctx.classify_samples(code, [(s.frames, s.count) for s in stacks], comm=key.comm)

    def _resolve(
        self, key: DropKey, stacks: tuple[StackSample, ...], context: str | None = None
    ) -> Attribution:
        """context: the stacks' context, when the caller has it already."""
        if context is None:
            context = self._context(key, stacks)
        blames = ctx.blames_task(context)
        socket = None
        if key.sock_ino:
            owner = self.sockets.owner(key.sock_ino)
            socket = SocketOwner(
                key.sock_ino, owner.pid if owner else None, owner.comm if owner else None
            )
        # The kernel's cgroup id is the socket's when there is a socket, else the task's;
        # a task's cgroup is only meaningful when the task made the drop.
        cgroup = None
        if key.cgroup_id and (key.sock_ino or blames):
            cgroup = self.cgroups.path(key.cgroup_id)
        netns_name = self.netns.current_name(key.netns)
        incomplete = (
            (socket is not None and socket.pid is None)
            or (cgroup is None and bool(key.cgroup_id) and bool(key.sock_ino or blames))
            or (bool(key.netns) and netns_name == str(key.netns))
        )
        if not incomplete:
            self._retry.pop(key, None)
        elif key not in self._retry:
            self._retry[key] = RETRIES
        return Attribution(
            context=context,
            blames_task=blames,
            service=service_name(cgroup),
            cgroup=cgroup,
            netns_name=netns_name,
            socket=socket,
        )
