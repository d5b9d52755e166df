"""cgroup2 mount discovery and the id -> path cache, on a directory tree in tmp_path (a
walk indexes any tree by inode the same way it indexes cgroupfs)."""

from __future__ import annotations

import os

from droptop.attribution.cgroups import (
    CgroupMount,
    CgroupResolver,
    parse_cgroup2_mount,
    task_cgroup_id,
)

HYBRID = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime shared:9 - cgroup2 cgroup2 rw
"""
SYSTEMD = """\
22 28 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
29 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 \
rw,nsdelegate,memory_recursiveprot
"""
CONTAINER = "1200 1100 0:26 /../.. /sys/fs/cgroup ro - cgroup2 cgroup rw\n"
BIND = r"900 800 0:26 /system.slice/my\040app.service /mnt/cg rw - cgroup2 cgroup2 rw" + "\n"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_mount_found_on_hybrid_and_systemd_hosts():
    assert parse_cgroup2_mount(HYBRID) == CgroupMount("/sys/fs/cgroup/unified", "/")
    assert parse_cgroup2_mount(SYSTEMD) == CgroupMount("/sys/fs/cgroup", "/")
    assert parse_cgroup2_mount(HYBRID.splitlines()[0]) is None  # v1 only
    assert parse_cgroup2_mount("") is None
    assert parse_cgroup2_mount("garbage\n- cgroup2\n") is None


def test_mount_root_and_escapes():
    m = parse_cgroup2_mount(BIND)
    assert m == CgroupMount("/mnt/cg", "/system.slice/my app.service")
    assert parse_cgroup2_mount(CONTAINER) == CgroupMount("/sys/fs/cgroup", "/../..")


def _tree(tmp_path, *dirs):
    for d in dirs:
        (tmp_path / d).mkdir(parents=True)
    return {d: os.stat(tmp_path / d).st_ino for d in dirs}


def test_walk_resolves_ids_and_root(tmp_path):
    ino = _tree(tmp_path, "system.slice/nginx.service", "user.slice")
    r = CgroupResolver(CgroupMount(str(tmp_path), "/"), use_handles=False, clock=Clock())
    assert r.method == "walk"
    assert r.path(ino["system.slice/nginx.service"]) == "/system.slice/nginx.service"
    assert r.path(ino["user.slice"]) == "/user.slice"
    assert r.path(os.stat(tmp_path).st_ino) == "/"
    assert r.path(0) is None
    assert r.walks == 1  # one walk answered all three


def test_new_cgroup_found_after_rate_limit_and_removed_one_kept(tmp_path):
    clock = Clock()
    ino = _tree(tmp_path, "a.service")
    r = CgroupResolver(CgroupMount(str(tmp_path), "/"), use_handles=False, clock=clock)
    assert r.path(ino["a.service"]) == "/a.service"
    new = _tree(tmp_path, "b.service")["b.service"]
    clock.now += 0.5
    assert r.path(new) is None  # within a second of the last walk: no rewalk
    assert r.walks == 1
    clock.now += 0.6
    assert r.path(new) == "/b.service"
    assert r.walks == 2
    os.rmdir(tmp_path / "a.service")
    clock.now += 5
    r.walk()
    assert r.path(ino["a.service"]) == "/a.service"  # removed since: last known path
    assert r.path(new) == "/b.service"
    assert r.walks == 3  # hits never walk


def test_mount_root_prefixes_paths(tmp_path):
    ino = _tree(tmp_path, "worker")
    r = CgroupResolver(CgroupMount(str(tmp_path), "/system.slice/x.service"), use_handles=False)
    assert r.path(ino["worker"]) == "/system.slice/x.service/worker"
    assert r.path(os.stat(tmp_path).st_ino) == "/system.slice/x.service"
    # a cgroup namespace's "/../.." cannot be made global: paths stay as the mount shows them
    r2 = CgroupResolver(CgroupMount(str(tmp_path), "/../.."), use_handles=False)
    assert r2.path(ino["worker"]) == "/worker"


def test_no_cgroup2_resolves_nothing_and_says_so_once():
    r = CgroupResolver(None)
    assert r.method == "none"
    assert r.path(1) is None
    assert len(r.notes) == 1 and "no cgroup v2" in r.notes[0]


def test_handles_refused_on_a_plain_directory(tmp_path):
    # tmpfs/ext4 handles are not FILEID_KERNFS: the resolver must fall back to walking
    ino = _tree(tmp_path, "x.scope")
    r = CgroupResolver(CgroupMount(str(tmp_path), "/"))
    assert r.method == "walk"
    assert r.path(ino["x.scope"]) == "/x.scope"


def test_task_cgroup_id_from_fake_proc(tmp_path):
    ino = _tree(tmp_path, "cg/system.slice/dt.service")
    proc = tmp_path / "proc" / "42"
    proc.mkdir(parents=True)
    (proc / "cgroup").write_text("1:name=systemd:/\n0::/system.slice/dt.service\n")
    mount = CgroupMount(str(tmp_path / "cg"), "/")
    assert (
        task_cgroup_id(42, mount, proc=str(tmp_path / "proc")) == ino["cg/system.slice/dt.service"]
    )
    (proc / "cgroup").write_text("0::/\n")
    assert task_cgroup_id(42, mount, proc=str(tmp_path / "proc")) == os.stat(tmp_path / "cg").st_ino
