"""--listen and --labels parsing, and bind errors that must stop droptop before BPF loads."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from droptop.errors import DroptopError
from droptop.frontends.exporter import (
    ListenAddress,
    bind_listener,
    parse_labels,
    parse_listen,
)


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("9469", ListenAddress("", 9469)),
        (":9469", ListenAddress("", 9469)),
        ("127.0.0.1:9000", ListenAddress("127.0.0.1", 9000)),
        ("localhost:0", ListenAddress("localhost", 0)),
        ("[::1]:9000", ListenAddress("::1", 9000)),
    ],
)
def test_parse_listen(text, want):
    assert parse_listen(text) == want


@pytest.mark.parametrize(
    "text", ["", "abc", "1.2.3.4:", "::1:9000", "[::1]9000", "[]:9", ":70000", "h:-1", "a b:9"]
)
def test_parse_listen_rejects(text):
    with pytest.raises(DroptopError) as e:
        parse_listen(text)
    assert e.value.exit_code == 2
    assert "\n" not in str(e.value) and "--listen" in str(e.value)


def test_parse_labels():
    assert parse_labels("service,netns") == ("netns", "service")
    assert parse_labels("comm, location ,comm") == ("comm", "location")
    assert parse_labels("") == ()
    with pytest.raises(DroptopError) as e:
        parse_labels("netns,pod")
    assert e.value.exit_code == 2 and "'pod'" in str(e.value)


def test_bind_port_in_use():
    taken = socket.socket()
    taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        port = taken.getsockname()[1]
        with pytest.raises(DroptopError) as e:
            bind_listener(ListenAddress("127.0.0.1", port))
        assert e.value.exit_code == 2
        assert str(e.value) == f"--listen 127.0.0.1:{port}: port {port} is already in use"
        with pytest.raises(DroptopError):  # the wildcard overlaps it too
            bind_listener(ListenAddress("", port))
    finally:
        taken.close()


@pytest.mark.parametrize("host", ["192.0.2.77", "no-such-host.invalid"])
def test_bind_bad_address(host):
    with pytest.raises(DroptopError) as e:
        bind_listener(ListenAddress(host, 0))
    assert e.value.exit_code == 2
    assert "\n" not in str(e.value)


def test_bind_listens_and_wildcard_is_dual_stack():
    sock = bind_listener(ListenAddress("", 0))
    try:
        port = sock.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass
    finally:
        sock.close()


PRIVILEGED = """
import os, sys
os.setgid(65534); os.setgroups([]); os.setuid(65534)
from droptop.errors import DroptopError
from droptop.frontends.exporter import bind_listener, parse_listen
try:
    bind_listener(parse_listen("127.0.0.1:80"))
except DroptopError as e:
    print(e.exit_code, e)
"""


def test_bind_privileged_port_as_nobody():
    if os.geteuid() != 0:
        pytest.skip("needs root to drop to uid 65534")
    with open("/proc/sys/net/ipv4/ip_unprivileged_port_start") as f:
        if int(f.read()) <= 80:
            pytest.skip("this machine lets any user bind port 80")
    out = subprocess.run(
        [sys.executable, "-c", PRIVILEGED],
        capture_output=True,
        text=True,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(
        "2 --listen 127.0.0.1:80: permission denied; port 80 is privileged"
    )
