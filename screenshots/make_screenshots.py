#!/usr/bin/env python3
"""Make the README's screenshots from a real run: the real collector, real drops.

    sudo .venv/bin/python screenshots/make_screenshots.py      # real: root, BPF -> screenshots/
    .venv/bin/python screenshots/make_screenshots.py --fake    # scripted, no root -> $TMPDIR

Real mode loads droptop's BPF program (KernelCollector), starts the drop generator
(`python -m droptop.dropgen`) in the background: a steady UDP stream to a closed
port, repeated nftables drop bursts, TCP SYNs to a closed port and UDP into a veth
namespace, each under its own comm; and, for the counter and benign rows, a
`listen(1)` socket flooded with connects in a netns of its own (a
TcpExt:ListenOverflows counter row: the SYNs are freed with consume_skb, never as
drops) and UDP sockets closed with datagrams still queued (a benign NOT_SPECIFIED
row at udp_destruct_common). It lets the app collect for a few seconds, then drives
it with Textual's pilot and writes table.svg, filter.svg, drilldown.svg and
drilldown_samples.svg (the UDP row, then scrolled to its sampled packets and the
flows among them), help.svg and ifaces.svg.
Whatever else the machine drops meanwhile shows up too: that is the point.

To look at an SVG as a PNG: rsvg-convert table.svg -o table.png
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from droptop import dropgen  # noqa: E402
from droptop.errors import DroptopError  # noqa: E402
from droptop.frontends.tui.app import DroptopApp  # noqa: E402
from droptop.frontends.tui.drilldown import DrillDownScreen  # noqa: E402

OUT = Path(__file__).resolve().parent
FAKE_OUT = Path(tempfile.gettempdir()) / "droptop-screenshots-fake"
"""Fake screenshots never land next to the real ones by accident."""
SIZE = (120, 34)
UDP_COMM = "dropgen-udp"
NFT_COMM = "dropgen-nft"
TCP_COMM = "dropgen-tcp"
VETH_COMM = "dropgen-veth"
LISTEN_NETNS = f"dtshot-{os.getpid()}"
"""The netns of the accept-queue overflow (removed on the way out)."""

LISTEN_BURST = dropgen.LISTEN_OVERFLOW


def close_with_queued_datagrams(n: int = 7) -> None:
    """A UDP socket closed with `n` datagrams unread: freed at udp_destruct_common (benign)."""
    import socket

    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for _ in range(n):
        tx.sendto(b"queued", rx.getsockname())
    tx.close()
    rx.close()


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def dropgen_cmd(kind: str, count: int, comm: str, rate: float = 0.0) -> list[str]:
    cmd = [sys.executable, "-m", "droptop.dropgen", kind, "--count", str(count), "--comm", comm]
    if rate:
        cmd += ["--rate", str(rate)]
    return cmd


DEMO_UNIT = "droptop-demo.service"
"""The cgroup the UDP stream runs in, so the SERVICE column has something to name."""


def demo_cgroup() -> Path | None:
    """A real cgroup v2 directory named like a systemd unit, or None without cgroup v2."""
    from droptop.attribution.cgroups import find_cgroup2_mount

    mount = find_cgroup2_mount()
    if mount is None:
        return None
    path = Path(mount.path) / DEMO_UNIT
    path.mkdir(exist_ok=True)
    return path


def join_cgroup(path: Path | None):
    """A preexec_fn that moves the child into `path` before it runs."""

    def join() -> None:
        if path is not None:
            (path / "cgroup.procs").write_text(str(os.getpid()))

    return join


class DropLoad:
    """Background drop generators for the length of a `with` block.

    The UDP stream runs as one long process; nft, tcp and veth (drops inside a
    namespace dropgen creates) run as repeated bursts from a thread (dropgen has no
    --rate for them). Every process is ours and is stopped
    by its own pid with SIGINT, so dropgen removes its nftables table on the way out.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.procs: list[subprocess.Popen[bytes]] = []
        self.cgroup: Path | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._bursts, daemon=True)

    def __enter__(self) -> DropLoad:
        subprocess.run(["ip", "netns", "del", LISTEN_NETNS], capture_output=True)
        subprocess.run(["ip", "netns", "add", LISTEN_NETNS], check=True)
        subprocess.run(["ip", "-n", LISTEN_NETNS, "link", "set", "lo", "up"], check=True)
        # A process living in it, so the collector reads its counters (and names it).
        self.procs.append(
            subprocess.Popen(["ip", "netns", "exec", LISTEN_NETNS, "sleep", str(self.seconds + 60)])
        )
        rate = 300.0
        self.cgroup = demo_cgroup()
        self.procs.append(
            subprocess.Popen(
                dropgen_cmd("udp", int(rate * (self.seconds + 30)), UDP_COMM, rate),
                preexec_fn=join_cgroup(self.cgroup),
                env=_env(),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,  # SIGINT ends it with a KeyboardInterrupt trace
            )
        )
        self._thread.start()
        return self

    def _bursts(self) -> None:
        n = 0
        while not self._stop.is_set():
            cmd = (
                dropgen_cmd("nft", 60, NFT_COMM),
                dropgen_cmd("tcp", 8, TCP_COMM),
                dropgen_cmd("veth", 25, VETH_COMM),  # its own netns and interface
                ["ip", "netns", "exec", LISTEN_NETNS, sys.executable, "-c", LISTEN_BURST],
            )[n % 4]
            subprocess.run(cmd, env=_env(), capture_output=True, check=False)
            close_with_queued_datagrams()
            n += 1
            self._stop.wait(0.5)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        subprocess.run(["ip", "netns", "del", LISTEN_NETNS], capture_output=True)
        if self.cgroup is not None:
            try:
                self.cgroup.rmdir()
            except OSError:
                pass  # a process still in it: the next run reuses it
        if self.cgroup is not None:
            try:
                self.cgroup.rmdir()
            except OSError:
                pass  # a process still in it: the next run reuses it


async def wait_until(pilot, done, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError("the app did not get there in time")
        await pilot.pause(0.05)
    await pilot.pause()


def find_row(app: DroptopApp, comms: tuple[str, ...]):
    snap = app.displayed
    if snap is None:
        return None
    for comm in comms:
        rows = [r for r in snap.rows if r.key.comm == comm]
        if rows:
            return max(rows, key=lambda r: r.packets)
    return None


async def shoot(app: DroptopApp, out: Path, *, fake: bool, collect_seconds: float) -> list[Path]:
    written: list[Path] = []

    def save(pilot, name: str) -> None:
        path = out / name
        path.write_text(pilot.app.export_screenshot(title=f"droptop: {path.stem}"))
        written.append(path)

    drill_comms = ("nginx",) if fake else (UDP_COMM,)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.refreshes >= 1)
        if fake:
            for _ in range(9):
                target = app.refreshes + 1
                app.poll_now()
                await wait_until(pilot, lambda t=target: app.refreshes >= t)
        else:
            await pilot.pause(collect_seconds)
            await wait_until(pilot, lambda: find_row(app, drill_comms) is not None, 20)
        row = find_row(app, drill_comms)
        table = app.main.table
        if row is not None:
            table.move_cursor(row=table.get_row_index(row.key))
        await pilot.pause()
        save(pilot, "table.svg")

        await pilot.press("slash", *("comm:nginx" if fake else "dropgen"))
        await pilot.pause(0.3)
        save(pilot, "filter.svg")
        await pilot.press("enter")

        row = find_row(app, drill_comms)
        if row is not None:
            table.move_cursor(row=table.get_row_index(row.key))
            await pilot.pause()
            await pilot.press("enter")
            screen = app.screen
            if isinstance(screen, DrillDownScreen):
                await wait_until(pilot, lambda: screen.processes is not None)
                await pilot.pause(0.2)
                save(pilot, "drilldown.svg")
                # The same row scrolled to its sampled packets and the flows among them.
                title = screen.query_one("#drill-samples-title")
                screen.query_one("#drill-body").scroll_to_widget(title, top=True, animate=False)
                await pilot.pause(0.2)
                save(pilot, "drilldown_samples.svg")
            await pilot.press("escape")
        await pilot.press("escape")  # clear the filter

        await pilot.press("question_mark")
        await pilot.pause(0.2)
        save(pilot, "help.svg")
        await pilot.press("escape")

        await pilot.press("i")
        if not fake:
            await pilot.pause(2.5)  # two polls, so the driver counters have rates
        await pilot.pause(0.2)
        save(pilot, "ifaces.svg")
        app.poller.stop()
    return written


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--fake", action="store_true", help="use the scripted FakeCollector")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"directory for the SVGs (default: {OUT}, or {FAKE_OUT} with --fake)",
    )
    p.add_argument("--seconds", type=float, default=8.0, help="collect this long first")
    args = p.parse_args(argv)
    args.out = args.out or (FAKE_OUT if args.fake else OUT)
    args.out.mkdir(parents=True, exist_ok=True)

    if args.fake:
        from droptop.collector.fake import FakeCollector
        from droptop.hostinfo import ProcessInfo, SelfUsage

        def lookup(comm: str) -> list[ProcessInfo]:
            if comm != "nginx":
                return []
            return [ProcessInfo(812, "root", "nginx: master process /usr/sbin/nginx")]

        app = DroptopApp(
            FakeCollector(bpf_ns_per_drop=87.0),
            auto_poll=False,
            self_usage=lambda: SelfUsage(1.5, 48 << 20),
            nic_sample=lambda: (),
            process_lookup=lookup,
        )
        written = asyncio.run(shoot(app, args.out, fake=True, collect_seconds=0))
        app.collector.close()
    else:
        from droptop.collector.kernel import KernelCollector

        try:
            collector = KernelCollector()
        except DroptopError as e:
            print(f"make_screenshots: {e} (try --fake)", file=sys.stderr)
            return 1
        try:
            with DropLoad(args.seconds + 20):
                app = DroptopApp(collector, interval=1.0)
                written = asyncio.run(
                    shoot(app, args.out, fake=False, collect_seconds=args.seconds)
                )
        finally:
            collector.close()
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
