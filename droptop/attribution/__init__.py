"""Who a drop belongs to: user-space resolvers for what the kernel records per drop.

- :mod:`.context`: the context code plus a sampled stack -> process / softirq-inline /
  softirq-irq / ksoftirqd / ... and whether the task in `comm` is to blame (pure).
- :mod:`.cgroups`: cgroup v2 id -> cgroup path -> service name (systemd unit, container,
  Kubernetes pod).
- :mod:`.netns`: netns inode -> `host`, an `ip netns` name, `pid N (comm)` or the inode.
- :mod:`.sockets`: socket inode -> owning process (pid, comm), as `ss -p` finds it.

Every resolver caches, keeps the last answer for things that have gone away, and rescans
on a miss at most once per second. Strings are raw; front ends sanitize them.
"""

from __future__ import annotations

from droptop.attribution.cgroups import CgroupResolver, service_name, task_cgroup_id
from droptop.attribution.context import CONTEXTS, blames_task, classify_context, classify_samples
from droptop.attribution.netns import NetnsNamer
from droptop.attribution.sockets import SocketOwner, SocketOwners

__all__ = [
    "CONTEXTS",
    "CgroupResolver",
    "NetnsNamer",
    "SocketOwner",
    "SocketOwners",
    "blames_task",
    "classify_context",
    "classify_samples",
    "service_name",
    "task_cgroup_id",
]
