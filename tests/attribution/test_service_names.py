"""service_name on real-world cgroup path shapes (systemd, docker, containerd, cri-o,
podman, LXC, Kubernetes with both cgroup drivers)."""

from __future__ import annotations

import pytest

from droptop.attribution.cgroups import CONTAINER_RULES, POD_RULES, service_name

CID = "3f2a1b9c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8"
UID = "0c2e8a4f-1b3d-4e5f-8a9b-0c1d2e3f4a5b"
UID_ = UID.replace("-", "_")

CASES = [
    # systemd units
    ("/system.slice/nginx.service", "nginx.service"),
    ("/system.slice/system-getty.slice/getty@tty1.service", "getty@tty1.service"),
    ("/init.scope", "init.scope"),
    ("/user.slice/user-1000.slice/session-3.scope", "session-3.scope"),
    ("/user.slice/user-1000.slice/user@1000.service/app.slice/x.service", "x.service"),
    ("/user.slice/user-1000.slice/user@1000.service/init.scope", "user@1000.service"),
    (
        "/user.slice/user-1000.slice/user@1000.service/app.slice/app-gnome-firefox-4242.scope",
        "app-gnome-firefox-4242.scope",
    ),
    ("/system.slice/nginx.service/worker", "nginx.service"),  # delegated sub-cgroup
    ("/system.slice", "system.slice"),
    ("/dt-test-123.service", "dt-test-123.service"),
    ("/mygroup/sub", "sub"),  # hand-made cgroup: its last component
    # docker
    (f"/system.slice/docker-{CID}.scope", f"docker:{CID[:12]}"),
    (f"/docker/{CID}", f"docker:{CID[:12]}"),
    (f"/docker/{CID}/nested", f"docker:{CID[:12]}"),
    # a service inside a container is named by the container
    (f"/system.slice/docker-{CID}.scope/system.slice/nginx.service", f"docker:{CID[:12]}"),
    # containerd / cri-o / podman / lxc / machined
    (f"/system.slice/cri-containerd-{CID}.scope", f"containerd:{CID[:12]}"),
    (f"/machine.slice/crio-{CID}.scope", f"crio:{CID[:12]}"),
    (f"/machine.slice/crio-conmon-{CID}.scope", f"crio-conmon:{CID[:12]}"),
    (f"/machine.slice/libpod-{CID}.scope", f"podman:{CID[:12]}"),
    (f"/machine.slice/libpod-{CID}.scope/container", f"podman:{CID[:12]}"),
    (f"/machine.slice/libpod-conmon-{CID}.scope", f"podman-conmon:{CID[:12]}"),
    (
        f"/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{CID}.scope",
        f"podman:{CID[:12]}",
    ),
    (f"/libpod_parent/libpod-{CID}", f"podman:{CID[:12]}"),
    ("/lxc.payload.web1", "lxc:web1"),
    ("/lxc.payload.web1/system.slice/nginx.service", "lxc:web1"),
    ("/machine.slice/machine-debian.scope", "machine:debian"),
    # Kubernetes, systemd driver
    (
        f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice/"
        f"cri-containerd-{CID}.scope",
        f"pod:{UID}/{CID[:12]}",
    ),
    (
        f"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{UID_}.slice/"
        f"crio-{CID}.scope",
        f"pod:{UID}/{CID[:12]}",
    ),
    (f"/kubepods.slice/kubepods-pod{UID_}.slice/docker-{CID}.scope", f"pod:{UID}/{CID[:12]}"),
    (f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice", f"pod:{UID}"),
    # Kubernetes, cgroupfs driver
    (f"/kubepods/burstable/pod{UID}/{CID}", f"pod:{UID}/{CID[:12]}"),
    (f"/kubepods/pod{UID}/{CID}", f"pod:{UID}/{CID[:12]}"),
    (f"/kubepods/besteffort/pod{UID}", f"pod:{UID}"),
    # not a service
    ("/", None),
    ("", None),
    (None, None),
    ("/kubepods.slice", "kubepods.slice"),
]


@pytest.mark.parametrize(("path", "expected"), CASES)
def test_service_name(path, expected):
    assert service_name(path) == expected


def test_short_hex_is_not_a_container():
    # a 64-hex directory is a container id; an 8-hex one under /docker is not
    assert service_name("/docker/deadbeef") == "deadbeef"
    assert service_name("/system.slice/docker.service") == "docker.service"


def test_every_rule_says_why():
    for rule in (*POD_RULES, *CONTAINER_RULES):
        assert len(rule.why) > 20, rule.kind
