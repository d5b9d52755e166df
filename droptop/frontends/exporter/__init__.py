"""The Prometheus exporter front end: ``droptop --listen [HOST:]PORT``.

One more consumer of the poll loop's snapshots, like batch output and the TUI.
listen.py binds the socket before BPF loads; labels.py says which labels a drop
counter carries; series.py turns cumulative snapshots into monotonic, bounded
counters; render.py writes the exposition; server.py serves it; catalog.py lists
every exported series (dashboards and rules are tested against it).
"""

from __future__ import annotations

from droptop.frontends.exporter.catalog import EXPORTED_NAMES, SERIES
from droptop.frontends.exporter.labels import OPTIONAL_LABELS, parse_labels
from droptop.frontends.exporter.listen import ListenAddress, bind_listener, parse_listen
from droptop.frontends.exporter.render import BuildInfo
from droptop.frontends.exporter.series import DEFAULT_MAX_SERIES
from droptop.frontends.exporter.server import Exporter

__all__ = [
    "DEFAULT_MAX_SERIES",
    "EXPORTED_NAMES",
    "OPTIONAL_LABELS",
    "SERIES",
    "BuildInfo",
    "Exporter",
    "ListenAddress",
    "bind_listener",
    "parse_labels",
    "parse_listen",
]
