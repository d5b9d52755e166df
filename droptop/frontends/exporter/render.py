"""The exposition: Prometheus text or OpenMetrics, rendered once per update and format.

prometheus_client chooses the format from the Accept header (choose_encoder) and
renders the small families (info, gauges, overflow counters). The two drop
counters can have 10,000 label sets: building a metric family object per sample on
each scrape costs ~90 ms (text) or ~150 ms (OpenMetrics) at that size, so their
lines are written here from label text cached per label set (~5 ms), with the
same escaping, and the result is cached on the immutable view: a second scrape of
the same update, or a scrape while the drop counters have not moved, costs a
dictionary lookup. tests/exporter check the output with prometheus_client's
parsers and promtool.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)

from droptop.frontends.exporter import catalog
from droptop.frontends.exporter.series import SeriesView

OPENMETRICS = "application/openmetrics-text"
_EOF = b"# EOF\n"
GZIP_LEVEL = 1
"""Scrape bodies are mostly repeated label text: level 1 gets ~10x at a fraction of
level 6's CPU."""


@dataclass(frozen=True, slots=True)
class BuildInfo:
    """What droptop_build_info says; attach is found in the snapshot's notes when None."""

    version: str
    attach: str | None = None
    """tp_btf or raw_tp."""


@dataclass(frozen=True, slots=True)
class ExportState:
    """Everything one scrape shows: the drop counters and the snapshot-level values."""

    series: SeriesView
    families: tuple[Metric, ...]
    """The small families, built once per update by the poll thread."""
    cache: dict[tuple[str, bool], bytes] = field(default_factory=dict, compare=False)
    """Whole bodies per (content type, gzip)."""


def _base(name: str) -> str:
    return name[: -len("_total")] if name.endswith("_total") else name


def counter(series: catalog.Series, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(_base(series.name), series.help, value=value)


def gauge(series: catalog.Series, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(series.name, series.help, value=value)


def info(series: catalog.Series, rows: list[dict[str, str]]) -> InfoMetricFamily:
    fam = InfoMetricFamily(series.name[: -len("_info")], series.help)
    for labels in rows:
        fam.add_metric((), labels)
    return fam


class _Families:
    """A prometheus_client Collector over prebuilt families."""

    def __init__(self, families: tuple[Metric, ...]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


def _drop_lines(view: SeriesView, openmetrics: bool) -> bytes:
    key = OPENMETRICS if openmetrics else "text"
    body = view.cache.get(key)
    if body is not None:
        return body
    parts: list[str] = []
    text = view.text
    for series, values in ((catalog.DROPS, view.packets), (catalog.DROP_BYTES, view.bytes)):
        name = series.name
        family = _base(name) if openmetrics else name
        parts.append(f"# HELP {family} {series.help}\n# TYPE {family} counter\n")
        if openmetrics and name.endswith("_bytes_total"):
            parts.append(f"# UNIT {family} bytes\n")
        parts.extend([f"{name}{text[k]} {v}\n" for k, v in values.items()])
    body = "".join(parts).encode("utf-8")
    view.cache[key] = body
    return body


def render(state: ExportState, accept: str | None, gzipped: bool = False) -> tuple[bytes, str]:
    """(body, content type) for a scrape with this Accept header; cached per state."""
    encoder, content_type = choose_encoder(accept or "")
    key = (content_type, gzipped)
    body = state.cache.get(key)
    if body is not None:
        return body, content_type
    openmetrics = content_type.startswith(OPENMETRICS)
    small = encoder(_Families(state.families))
    drops = _drop_lines(state.series, openmetrics)
    if openmetrics:
        small = small[: -len(_EOF)] if small.endswith(_EOF) else small
        body = small + drops + _EOF
    else:
        body = small + drops
    if gzipped:
        body = gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)
    state.cache[key] = body
    return body, content_type
