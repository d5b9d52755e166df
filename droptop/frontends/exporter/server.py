"""The exporter front end: snapshots in from the poll thread, /metrics out over HTTP.

update() runs on the poll thread: it credits the snapshot's increases to the
counters (SeriesBook), builds the small metric families and swaps one immutable
ExportState reference. Scrapes run on the HTTP server's threads and only read the
current reference; rendering takes no lock the poll thread could wait for, so a
slow scrape never delays a poll and a slow poll never blocks a scrape (it gets
the previous state).
"""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client.metrics_core import CounterMetricFamily, Metric

from droptop import __version__
from droptop.frontends.exporter import catalog
from droptop.frontends.exporter.labels import clean
from droptop.frontends.exporter.render import (
    BuildInfo,
    ExportState,
    counter,
    gauge,
    info,
    render,
)
from droptop.frontends.exporter.series import DEFAULT_MAX_SERIES, SeriesBook, increase
from droptop.model import Reason, Snapshot

INDEX = (
    b"<html><head><title>droptop exporter</title></head><body>"
    b'<h1>droptop exporter</h1><p><a href="/metrics">Metrics</a></p></body></html>\n'
)


def attach_from_notes(notes: tuple[str, ...]) -> str:
    """tp_btf, raw_tp or unknown, from the collector's "attached to kfree_skb as ..." note."""
    for note in notes:
        if "attached" in note:
            if "tp_btf" in note:
                return "tp_btf"
            if "raw tracepoint" in note:
                return "raw_tp"
    return "unknown"


class _Monotonic:
    """One exported counter fed with cumulative values that may reset."""

    __slots__ = ("last", "value")

    def __init__(self) -> None:
        self.last = 0
        self.value = 0

    def feed(self, cumulative: int) -> int:
        self.value += increase(cumulative, self.last)
        self.last = cumulative
        return self.value


class _Server(ThreadingHTTPServer):
    daemon_threads = True


class Exporter:
    """Serves droptop's counters on an already-bound socket (see listen.bind_listener)."""

    def __init__(
        self,
        sock: socket.socket,
        *,
        labels: tuple[str, ...] = (),
        max_series: int = DEFAULT_MAX_SERIES,
        build: BuildInfo | None = None,
    ) -> None:
        self._sock = sock
        self._book = SeriesBook(labels, max_series)
        self._build = build or BuildInfo(__version__)
        self._overflow = _Monotonic()
        self._overflow_bytes = _Monotonic()
        self._bpf_ns = _Monotonic()
        self._bpf_runs = _Monotonic()
        self._bpf_missed = _Monotonic()
        self._counter_rows: dict[tuple[str, ...], _Monotonic] = {}
        self._benign: dict[tuple[str, str], tuple[dict[object, int], _Monotonic]] = {}
        self._reason_table: tuple[Reason, ...] | None = None
        self._reason_family: Metric | None = None
        self._state = ExportState(self._book.view(), self._families(None, None))
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) actually bound (port 0 becomes the kernel's choice)."""
        name = self._sock.getsockname()
        return name[0], name[1]

    @property
    def state(self) -> ExportState:
        """What a scrape would render now (tests and the benchmark read it)."""
        return self._state

    # --- poll thread ------------------------------------------------------------

    def update(self, snap: Snapshot, poll_seconds: float | None = None) -> None:
        """Take a snapshot from the poll loop. `poll_seconds`: how long the poll took
        (the loop times collector.poll(); without it droptop_poll_duration_seconds is
        not exported)."""
        self._book.add(snap)
        self._state = ExportState(self._book.view(), self._families(snap, poll_seconds))

    def _reasons(self, table: tuple[Reason, ...]) -> Metric:
        if table is not self._reason_table or self._reason_family is None:
            self._reason_family = info(
                catalog.REASON_INFO,
                [{"subsys": clean(r.subsys), "reason": clean(r.name), "raw": r.hex} for r in table],
            )
            self._reason_table = table
        return self._reason_family

    def _families(self, snap: Snapshot | None, poll_seconds: float | None) -> tuple[Metric, ...]:
        attach = self._build.attach or (attach_from_notes(snap.notes) if snap else "unknown")
        kernel = snap.kernel if snap else ""
        fams: list[Metric] = [
            info(
                catalog.BUILD_INFO,
                [
                    {
                        "version": clean(self._build.version),
                        "kernel": clean(kernel),
                        "attach": attach,
                    }
                ],
            ),
            gauge(catalog.FOLDED, self._state_folded()),
        ]
        if snap is None:
            return tuple(fams)
        fams += [
            self._reasons(snap.reason_table),
            counter(catalog.OVERFLOW, self._overflow.feed(snap.overflow_packets)),
            counter(catalog.OVERFLOW_BYTES, self._overflow_bytes.feed(snap.overflow_bytes)),
            gauge(catalog.MAP_ENTRIES, snap.map_used),
            gauge(catalog.MAP_CAPACITY, snap.map_capacity),
            gauge(catalog.LAST_POLL, snap.time),
            counter(catalog.BPF_MISSED, self._bpf_missed.feed(snap.bpf_missed)),
            self._counter_losses(snap),
            self._benign_frees(snap),
        ]
        if poll_seconds is not None:
            fams.append(gauge(catalog.POLL_DURATION, poll_seconds))
        if snap.bpf_ns_per_drop is not None:
            fams.append(gauge(catalog.BPF_SECONDS_PER_DROP, snap.bpf_ns_per_drop / 1e9))
        if snap.bpf_run_ns is not None and snap.bpf_run_count is not None:
            fams.append(counter(catalog.BPF_RUN_SECONDS, self._bpf_ns.feed(snap.bpf_run_ns) / 1e9))
            fams.append(counter(catalog.BPF_RUNS, self._bpf_runs.feed(snap.bpf_run_count)))
        return tuple(fams)

    def _counter_losses(self, snap: Snapshot) -> Metric:
        """Counter rows: one series per (source, counter, netns, device); bounded by the
        counter table, the namespaces read (collector/counter_rows.MAX_NETNS) and devices."""
        fam = CounterMetricFamily(
            catalog.COUNTER_LOSSES.name[: -len("_total")],
            catalog.COUNTER_LOSSES.help,
            labels=catalog.COUNTER_LOSSES.labels,
        )
        for row in snap.rows:
            if row.source != "counter":
                continue
            netns = row.who.netns_name or str(row.key.netns)
            labels = tuple(
                clean(v) for v in (row.reason.subsys, row.reason.name, netns, row.ifname or "none")
            )
            mono = self._counter_rows.setdefault(labels, _Monotonic())
            mono.feed(row.packets)
        for labels, mono in self._counter_rows.items():  # a vanished row keeps its series
            fam.add_metric(labels, mono.value)
        return fam

    def _benign_frees(self, snap: Snapshot) -> Metric:
        """Benign rows' packets per reason, monotonic like every counter here."""
        fam = CounterMetricFamily(
            catalog.BENIGN.name[: -len("_total")], catalog.BENIGN.help, labels=catalog.BENIGN.labels
        )
        for row in snap.rows:
            if row.benign is None or row.source != "kfree_skb":
                continue
            labels = (clean(row.reason.name), clean(row.reason.subsys))
            per_row, mono = self._benign.setdefault(labels, ({}, _Monotonic()))
            per_row[row.key] = row.packets
            mono.feed(sum(per_row.values()))
        for labels, (_, mono) in self._benign.items():
            fam.add_metric(labels, mono.value)
        return fam

    def _state_folded(self) -> int:
        return self._book.view().folded

    # --- HTTP -------------------------------------------------------------------

    def start(self) -> None:
        """Serve /metrics from a daemon thread on the bound socket."""
        if self._server is not None:
            return
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                self._respond(body=True)

            def do_HEAD(self) -> None:
                self._respond(body=False)

            def _respond(self, body: bool) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    gz = "gzip" in (self.headers.get("Accept-Encoding") or "")
                    data, ctype = render(exporter._state, self.headers.get("Accept"), gz)
                    self.send_response(200)
                    self.send_header("Content-Type", ctype)
                    if gz:
                        self.send_header("Content-Encoding", "gzip")
                elif path == "/":
                    data = INDEX
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html; charset=utf-8")
                else:
                    data = b"not found: try /metrics\n"
                    self.send_response(404)
                    self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if body:
                    self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass  # a scrape every 15 s is not news

        server = _Server(self._sock.getsockname()[:2], Handler, bind_and_activate=False)
        server.socket.close()
        server.socket = self._sock
        server.server_address = self._sock.getsockname()
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.2},
            daemon=True,
            name="droptop-exporter",
        )
        self._thread.start()

    def close(self) -> None:
        """Stop serving and close the socket. Idempotent."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        else:
            self._sock.close()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
