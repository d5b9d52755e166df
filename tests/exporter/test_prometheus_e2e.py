"""End to end: real drops -> real BPF -> droptop's exporter -> a real Prometheus.

Prometheus (the Debian package) scrapes droptop every second; N datagrams to a
closed port in a private netns are dropped on a veth named after this test's pid;
Prometheus's HTTP API must report exactly N for that device, and the receiving
namespace's own Udp NoPorts counter (an independent oracle) must say N as well.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from droptop import dropgen
from tests.conftest import REQUIRE_BPF, need_bpf

ROOT = Path(__file__).resolve().parents[2]
N = 37
TIMEOUT = 20.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_droptop(tmp: Path) -> tuple[subprocess.Popen, int]:
    """`droptop --listen` exactly as the systemd unit runs it (headless); (process, port)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    err = open(tmp / "droptop.stderr", "w")  # noqa: SIM115 (lives as long as the process)
    port = free_port()
    cmd = [str(ROOT / ".venv/bin/droptop"), "--listen", f"127.0.0.1:{port}"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err)
    return proc, port


def wait_http(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def query(prom: int, expr: str) -> list[dict]:
    url = f"http://127.0.0.1:{prom}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=5) as r:
        reply = json.load(r)
    assert reply["status"] == "success", reply
    return reply["data"]["result"]


def stop(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


class Veth:
    """Sender and receiver namespaces joined by a veth pair with pid-unique names."""

    def __init__(self) -> None:
        pid = os.getpid()
        self.sender, self.receiver = f"dtx-s{pid}", f"dtx-r{pid}"
        self.sname, self.rname = f"dtxs{pid}", f"dtxr{pid}"
        self.addr = "198.19.77.2"

    def __enter__(self) -> Veth:
        run = dropgen.run
        for ns in (self.sender, self.receiver):
            run(["ip", "netns", "del", ns], check=False)
            run(["ip", "netns", "add", ns])
            run(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"])
            run(
                ["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"]
            )
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
        run(["ip", "link", "add", self.sname, "netns", self.sender, "type", "veth",
             "peer", "name", self.rname, "netns", self.receiver])  # fmt: skip
        run(["ip", "-n", self.sender, "addr", "add", "198.19.77.1/24", "dev", self.sname])
        run(["ip", "-n", self.receiver, "addr", "add", f"{self.addr}/24", "dev", self.rname])
        run(["ip", "-n", self.sender, "link", "set", self.sname, "up"])
        run(["ip", "-n", self.receiver, "link", "set", self.rname, "up"])
        mac = run(["ip", "netns", "exec", self.receiver, "cat",
                   f"/sys/class/net/{self.rname}/address"]).stdout.strip()  # fmt: skip
        run(["ip", "-n", self.sender, "neigh", "replace", self.addr, "lladdr", mac,
             "dev", self.sname, "nud", "permanent"])  # fmt: skip
        return self

    def __exit__(self, *exc: object) -> None:
        for ns in (self.sender, self.receiver):
            dropgen.run(["ip", "netns", "del", ns], check=False)


def prometheus_binary() -> str:
    path = shutil.which("prometheus") or (
        "/usr/bin/prometheus" if Path("/usr/bin/prometheus").exists() else None
    )
    if path is None:
        if REQUIRE_BPF:
            pytest.fail(
                "DROPTOP_REQUIRE_BPF=1 but prometheus is missing (apt-get install prometheus)"
            )
        pytest.skip("prometheus not installed (apt-get install prometheus)")
    return path


@pytest.mark.bpf
def test_prometheus_counts_real_drops_on_a_veth(tmp_path):
    need_bpf()
    prom_bin = prometheus_binary()
    droptop = prom = None
    try:
        droptop, port = start_droptop(tmp_path)
        wait_http(f"http://127.0.0.1:{port}/metrics", 30)
        prom_port = free_port()
        (tmp_path / "prometheus.yml").write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "scrape_configs:\n"
            "  - job_name: droptop\n"
            f"    static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n"
        )
        prom = subprocess.Popen(
            [
                prom_bin,
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=open(tmp_path / "prometheus.log", "w"),  # noqa: SIM115
        )
        wait_http(f"http://127.0.0.1:{prom_port}/-/ready", 30)
        with Veth() as lab:
            sent = dropgen.spawn("udp", N, netns=lab.sender, addr=lab.addr)
            assert sent == N
            oracle = dropgen.snmp_counter("Udp", "NoPorts", netns=lab.receiver)
            assert oracle == N
            expr = (
                f'sum(droptop_drops_total{{job="droptop",device="{lab.rname}",reason="NO_SOCKET"}})'
            )
            deadline = time.monotonic() + TIMEOUT
            got = None
            while time.monotonic() < deadline:
                result = query(prom_port, expr)
                got = int(float(result[0]["value"][1])) if result else None
                if got == N:
                    break
                time.sleep(0.5)
            assert got == N, (
                f"Prometheus reports {got} drops on {lab.rname} after {TIMEOUT:.0f}s, "
                f"want {N} (receiver Udp NoPorts = {oracle})"
            )
            up = query(prom_port, 'up{job="droptop"}')
            assert up and up[0]["value"][1] == "1"
            info = query(prom_port, "droptop_build_info")
            assert info and info[0]["metric"]["attach"] in ("tp_btf", "raw_tp")
            # every device series is a name: no bare ifindex
            devices = {r["metric"]["device"] for r in query(prom_port, "droptop_drops_total")}
            assert lab.rname in devices and not any(d.isdigit() for d in devices)
    finally:
        stop(prom)
        stop(droptop)
    # SIGTERM ends droptop cleanly with 128 + 15, as documented (droptop.signals).
    assert droptop.returncode == 143, (tmp_path / "droptop.stderr").read_text()
