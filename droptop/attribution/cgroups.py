"""cgroup v2 ids -> cgroup paths -> short service names (systemd units, containers, pods).

The kernel records a socket's or a task's cgroup v2 id: the kernfs node id, which on
64-bit kernels is the inode number of the cgroup's directory on the cgroup2 mount. This
module finds that mount, turns ids into paths (by file handle in O(1) when it can, else by
walking the hierarchy into a cache) and names the service a path belongs to from a table
of patterns. Paths are raw (a cgroup can be named anything); front ends sanitize.
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

MOUNTINFO = "/proc/self/mountinfo"
FILEID_KERNFS = 0xFE
"""include/linux/exportfs.h: kernfs file handles carry the 64-bit node id (the cgroup id)."""
MIN_RESCAN = 1.0
"""Seconds between two walks of the hierarchy caused by unknown ids."""


# --- the mount -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CgroupMount:
    """Where cgroup v2 is mounted, and which cgroup the mount's root directory is."""

    path: str
    """Mount point, e.g. /sys/fs/cgroup or /sys/fs/cgroup/unified (hybrid hosts)."""
    root: str
    """The cgroup shown at the mount point: "/" unless in a cgroup namespace or a bind mount."""


def _unescape_mountinfo(field: str) -> str:
    r"""mountinfo writes space, tab, newline and backslash as \040 \011 \012 \134."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def parse_cgroup2_mount(mountinfo: str) -> CgroupMount | None:
    """The first cgroup2 mount in mountinfo text, or None (a pure cgroup v1 host).

    Format (proc(5)): id parent major:minor root mountpoint options [optional...] - fstype ...
    The optional fields vary in number, so the fstype is found after the lone "-".
    """
    for line in mountinfo.splitlines():
        fields = line.split()
        try:
            sep = fields.index("-", 6)
        except ValueError:
            continue
        if len(fields) > sep + 1 and fields[sep + 1] == "cgroup2":
            return CgroupMount(_unescape_mountinfo(fields[4]), _unescape_mountinfo(fields[3]))
    return None


def find_cgroup2_mount(mountinfo_path: str = MOUNTINFO) -> CgroupMount | None:
    try:
        with open(mountinfo_path, encoding="utf-8", errors="surrogateescape") as f:
            return parse_cgroup2_mount(f.read())
    except OSError:
        return None


def task_cgroup_id(pid: int, mount: CgroupMount | None = None, proc: str = "/proc") -> int:
    """The cgroup v2 id of a process: the inode of its directory, from the `0::` line.

    For tests and cross-checks against what the kernel records. Raises OSError when the
    process is gone or has no cgroup v2 membership (no `0::` line, or no cgroup2 mount).
    """
    mount = mount or find_cgroup2_mount()
    if mount is None:
        raise OSError(errno.ENOENT, "no cgroup v2 mount")
    with open(f"{proc}/{pid}/cgroup", encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            if line.startswith("0::"):
                rel = _relative_to_root(line[3:].rstrip("\n"), mount.root)
                return os.stat(mount.path + rel).st_ino
    raise OSError(errno.ENOENT, f"pid {pid} has no cgroup v2 line")


def _relative_to_root(path: str, root: str) -> str:
    """A path as /proc/<pid>/cgroup shows it -> the same cgroup relative to the mount point."""
    if root not in ("/", "") and (path == root or path.startswith(root + "/")):
        path = path[len(root) :]
    return path if path not in ("", "/") else ""


# --- ids -> paths ----------------------------------------------------------------


class _FileHandle(ctypes.Structure):
    _fields_ = (
        ("handle_bytes", ctypes.c_uint),
        ("handle_type", ctypes.c_int),
        ("f_handle", ctypes.c_ubyte * 8),
    )


class _HandleOpener:
    """open_by_handle_at(2) on the cgroup2 mount: id -> path in a few microseconds.

    Needs CAP_DAC_READ_SEARCH; a removed cgroup answers ESTALE. Built only if the kernel
    hands out FILEID_KERNFS handles whose bytes are the id we expect (checked on the root).
    """

    def __init__(self, mount_path: str) -> None:
        self._libc = ctypes.CDLL(None, use_errno=True)
        self._open = self._libc.open_by_handle_at
        self._open.argtypes = (ctypes.c_int, ctypes.POINTER(_FileHandle), ctypes.c_int)
        self._mount_path = mount_path
        self._mount_fd = os.open(mount_path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self._handle = _FileHandle()
        self._check()

    def _check(self) -> None:
        """The root's handle must be FILEID_KERNFS holding the root's inode, or give up."""
        name_to = self._libc.name_to_handle_at
        h = _FileHandle(handle_bytes=8)
        mount_id = ctypes.c_int()
        if name_to(self._mount_fd, b"", ctypes.byref(h), ctypes.byref(mount_id), 0x1000) != 0:
            raise OSError(ctypes.get_errno(), "name_to_handle_at failed")  # AT_EMPTY_PATH
        (node_id,) = struct.unpack("<Q", bytes(h.f_handle))
        if h.handle_type != FILEID_KERNFS or node_id != os.fstat(self._mount_fd).st_ino:
            raise OSError(errno.EOPNOTSUPP, "cgroup2 file handles are not kernfs node ids")
        if self.path(node_id) != "/":
            raise OSError(errno.EOPNOTSUPP, "open_by_handle_at does not work here")

    def path(self, cgroup_id: int) -> str | None:
        """The path below the mount point ("/" for the root), or None if the id is unknown."""
        h = self._handle
        h.handle_bytes = 8
        h.handle_type = FILEID_KERNFS
        struct.pack_into("<Q", h.f_handle, 0, cgroup_id)
        fd = self._open(self._mount_fd, ctypes.byref(h), os.O_RDONLY | os.O_PATH | os.O_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno()
            if err in (errno.ESTALE, errno.ENOENT, errno.EINVAL):
                return None
            raise OSError(err, os.strerror(err))
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        finally:
            os.close(fd)
        if target == self._mount_path:
            return "/"
        if target.startswith(self._mount_path + "/"):
            return target[len(self._mount_path) :]
        return None  # outside our mount (should not happen); the walk decides

    def close(self) -> None:
        os.close(self._mount_fd)


class CgroupResolver:
    """cgroup v2 id -> path, cached; a removed cgroup keeps its last known path.

    Paths are global when the mount shows the whole hierarchy (mount root "/"), else
    prefixed with the mount's root so that a container's view still names the same cgroup.
    """

    def __init__(
        self,
        mount: CgroupMount | Literal["auto"] | None = "auto",
        *,
        use_handles: bool = True,
        min_rescan: float = MIN_RESCAN,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.mount: CgroupMount | None = find_cgroup2_mount() if mount == "auto" else mount
        self.min_rescan = min_rescan
        self._clock = clock
        self._cache: dict[int, str] = {}
        self._walked_at: float | None = None
        self.walks = 0
        """How many times the hierarchy was walked (tests check the rate limit with it)."""
        self.notes: tuple[str, ...] = ()
        """One-line facts for the front ends ("no cgroup v2 mount"), each said once."""
        self._handles: _HandleOpener | None = None
        if self.mount is None:
            self.notes = ("no cgroup v2 mount: cgroups and services are not resolved",)
            return
        if use_handles:
            try:
                self._handles = _HandleOpener(self.mount.path)
            except (OSError, AttributeError):
                self._handles = None  # no CAP_DAC_READ_SEARCH, old libc, or not kernfs

    @property
    def method(self) -> str:
        """handle (open_by_handle_at), walk, or none."""
        if self.mount is None:
            return "none"
        return "handle" if self._handles is not None else "walk"

    def path(self, cgroup_id: int) -> str | None:
        """The cgroup path ("/" for the root cgroup), or None when the id is not known."""
        if self.mount is None or cgroup_id <= 0:
            return None
        hit = self._cache.get(cgroup_id)
        if hit is not None:
            return hit
        rel = None
        if self._handles is not None:
            try:
                rel = self._handles.path(cgroup_id)
            except OSError:
                self._handles = None  # stop trying: the walk still works
            else:
                if rel is None:
                    return None  # removed before we saw it: a walk cannot find it either
        if rel is None and self._may_walk():
            self.walk()
            return self._cache.get(cgroup_id)
        if rel is None:
            return None
        self._cache[cgroup_id] = path = self._global(rel)
        return path

    def _may_walk(self) -> bool:
        return self._walked_at is None or self._clock() - self._walked_at >= self.min_rescan

    def _global(self, rel: str) -> str:
        root = self.mount.root if self.mount is not None else "/"
        if root in ("/", "") or root.startswith("/.."):
            return rel
        return root if rel == "/" else root + rel

    def walk(self) -> int:
        """Index every cgroup directory by inode (DirEntry.inode() is the kernfs id, no
        stat needed); entries of removed cgroups stay. Returns the number of cgroups seen."""
        assert self.mount is not None
        self._walked_at = self._clock()
        self.walks += 1
        top = self.mount.path
        try:
            self._cache[os.stat(top).st_ino] = self._global("/")
        except OSError:
            return 0
        seen = 1
        stack = [(top, "")]
        while stack:
            d, rel = stack.pop()
            try:
                with os.scandir(d) as it:
                    for e in it:
                        if e.is_dir(follow_symlinks=False):
                            sub = f"{rel}/{e.name}"
                            self._cache[e.inode()] = self._global(sub)
                            stack.append((e.path, sub))
                            seen += 1
            except OSError:
                continue  # removed while walking
        return seen

    def close(self) -> None:
        if self._handles is not None:
            self._handles.close()
            self._handles = None


# --- paths -> service names --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServiceRule:
    """One recognised path shape: a regex searched in the whole path and a name format."""

    kind: str
    pattern: re.Pattern[str]
    template: str
    """str.format with the match's named groups; {id} is shortened to 12 hex digits."""
    why: str


def _rule(kind: str, pattern: str, template: str, why: str) -> ServiceRule:
    return ServiceRule(kind, re.compile(pattern), template, why)


_HEX = r"[0-9a-f]{12,64}"
_POD_UID = r"[0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12}"

POD_RULES: tuple[ServiceRule, ...] = (
    _rule(
        "pod",
        rf"(?:^|/)kubepods(?:-[a-z]+)?-pod(?P<uid>{_POD_UID})\.slice(?:/|$)",
        "pod:{uid}",
        "kubelet with the systemd cgroup driver: kubepods-<qos>-pod<uid>.slice, the uid's "
        "dashes escaped as underscores (systemd reserves '-' for nesting); no <qos> part for "
        "Guaranteed pods",
    ),
    _rule(
        "pod",
        rf"(?:^|/)kubepods(?:/[a-z]+)?/pod(?P<uid>{_POD_UID})(?:/|$)",
        "pod:{uid}",
        "kubelet with the cgroupfs driver: /kubepods/<qos>/pod<uid>, /kubepods/pod<uid> when "
        "Guaranteed",
    ),
)
"""A pod's name is pod:<uid> as `kubectl get pod -o jsonpath={.metadata.uid}` prints it."""

CONTAINER_RULES: tuple[ServiceRule, ...] = (
    _rule(
        "docker",
        rf"(?:^|/)docker-(?P<id>{_HEX})\.scope(?:/|$)",
        "docker:{id}",
        "dockerd with the systemd cgroup driver (the default on cgroup v2 hosts)",
    ),
    _rule(
        "docker",
        rf"(?:^|/)docker/(?P<id>{_HEX})(?:/|$)",
        "docker:{id}",
        "dockerd with the cgroupfs driver: /docker/<id>",
    ),
    _rule(
        "containerd",
        rf"(?:^|/)cri-containerd-(?P<id>{_HEX})\.scope(?:/|$)",
        "containerd:{id}",
        "containerd's CRI plugin with the systemd driver (Kubernetes)",
    ),
    _rule(
        "crio",
        rf"(?:^|/)crio-conmon-(?P<id>{_HEX})\.scope(?:/|$)",
        "crio-conmon:{id}",
        "cri-o's conmon monitor process, beside its container's scope",
    ),
    _rule(
        "crio",
        rf"(?:^|/)crio-(?P<id>{_HEX})\.scope(?:/|$)",
        "crio:{id}",
        "cri-o with the systemd driver",
    ),
    _rule(
        "podman",
        rf"(?:^|/)libpod-conmon-(?P<id>{_HEX})\.scope(?:/|$)",
        "podman-conmon:{id}",
        "podman's conmon monitor process",
    ),
    _rule(
        "podman",
        rf"(?:^|/)libpod-(?P<id>{_HEX})(?:\.scope)?(?:/|$)",
        "podman:{id}",
        "podman: libpod-<id>.scope (systemd, also rootless under user@N.service) or "
        "/libpod_parent/libpod-<id> (cgroupfs)",
    ),
    _rule(
        "lxc",
        r"(?:^|/)lxc\.payload\.(?P<name>[^/]+)",
        "lxc:{name}",
        "LXC 4+: lxc.payload.<name> (lxc.monitor.<name> is LXC's own monitor)",
    ),
    _rule(
        "nspawn",
        r"(?:^|/)machine-(?P<name>[^/]+)\.scope(?:/|$)",
        "machine:{name}",
        "systemd-machined registered VMs and containers: machine-<name>.scope",
    ),
    _rule(
        "container",
        r"/(?P<id>[0-9a-f]{64})(?:/|$)",
        "{id}",
        "a bare 64-hex directory: a container of a runtime with the cgroupfs driver (under "
        "a pod, containerd and cri-o use this shape)",
    ),
)
"""Containers outrank systemd units: a service inside a container is named by the container."""

USER_MANAGER = re.compile(r"(?:^|/)(?P<unit>user@[^/]+\.service)/init\.scope$")
"""The systemd --user manager itself lives in user@N.service/init.scope: name it by its unit."""
UNIT = re.compile(r"[^/]+\.(?:service|scope)$")
"""systemd units that hold processes; a socket or task is always in one (or in the root)."""
SLICE = re.compile(r"[^/]+\.slice$")


def _short(groups: dict[str, str]) -> dict[str, str]:
    out = dict(groups)
    if "id" in out:
        out["id"] = out["id"][:12]
    if "uid" in out:
        out["uid"] = out["uid"].replace("_", "-")
    return out


def service_name(path: str | None) -> str | None:
    """A short name for the service a cgroup path belongs to; None for the root and for no path.

    Order: a Kubernetes pod (pod:<uid>, plus /<12 hex> when the path goes down into one of
    its containers: pod:<uid>/<cid>), then the outermost container (docker:<12 hex>,
    containerd:, crio:, podman:, lxc:<name>, machine:<name>), then the innermost systemd unit
    (.service or .scope: nginx.service, session-3.scope, x.service under user@1000.service),
    then the innermost slice, then the last path component (a hand-made cgroup).
    """
    if not path or path == "/":
        return None
    path = path.rstrip("/")
    for rule in POD_RULES:
        m = rule.pattern.search(path)
        if m is None:
            continue
        pod = rule.template.format(**_short(m.groupdict()))
        rest = path[m.end() :]
        for crule in CONTAINER_RULES:
            c = crule.pattern.search("/" + rest)
            if c is not None and "id" in c.groupdict():
                return f"{pod}/{c.group('id')[:12]}"
        return pod
    best: tuple[int, str] | None = None
    for rule in CONTAINER_RULES:
        m = rule.pattern.search(path)
        if m is not None and (best is None or m.start() < best[0]):
            best = (m.start(), rule.template.format(**_short(m.groupdict())))
    if best is not None:
        return best[1]
    m = USER_MANAGER.search(path)
    if m is not None:
        return m.group("unit")
    parts = [p for p in path.split("/") if p]
    for pattern in (UNIT, SLICE):
        for part in reversed(parts):
            if pattern.fullmatch(part):
                return part
    return parts[-1] if parts else None
