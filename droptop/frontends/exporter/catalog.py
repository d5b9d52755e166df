"""Every series droptop's exporter can expose, as data.

The dashboard test and the alert-rule test read this table to check that each
PromQL query names only series that exist, so a renamed metric breaks a test
instead of a dashboard. Names follow Prometheus practice: counters end in
``_total`` and only count, base units (seconds, bytes), ``_info`` gauges are 1.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Series:
    """One exported metric family."""

    name: str
    """The sample name as it appears in the text format (counters with _total)."""
    kind: str
    """counter, gauge or info."""
    help: str
    labels: tuple[str, ...] = ()
    """Labels always present (opt-in labels of the drop counters are not listed)."""


DROP_LABELS = ("reason", "subsys", "device")
"""Labels every drop counter carries; --labels adds more (see labels.OPTIONAL_LABELS)."""

DROPS = Series(
    "droptop_drops_total",
    "counter",
    "Packets the kernel freed as drops (kfree_skb), by drop reason and device.",
    DROP_LABELS,
)
DROP_BYTES = Series(
    "droptop_drop_bytes_total",
    "counter",
    "Bytes (skb->len) of the packets in droptop_drops_total.",
    DROP_LABELS,
)
COUNTER_LOSSES = Series(
    "droptop_counter_losses_total",
    "counter",
    "Losses kfree_skb never sees as drops, from the kernel's SNMP counters (per network "
    "namespace) and the drivers' interface counters, counted since droptop started.",
    ("source", "counter", "netns", "device"),
)
BENIGN = Series(
    "droptop_benign_frees_total",
    "counter",
    "Packets in droptop_drops_total that droptop classifies as frees, not losses "
    "(a socket's queue flushed at close, ...), by reason.",
    ("reason", "subsys"),
)
REASON_INFO = Series(
    "droptop_reason_info",
    "info",
    "The running kernel's drop reasons: raw tracepoint value to name (1 per reason).",
    ("subsys", "reason", "raw"),
)
BUILD_INFO = Series(
    "droptop_build_info",
    "info",
    "droptop's version, the kernel release and how the BPF program is attached.",
    ("version", "kernel", "attach"),
)
OVERFLOW = Series(
    "droptop_overflow_drops_total",
    "counter",
    "Drops counted while droptop's key map was full: counted, not attributed to a series.",
)
OVERFLOW_BYTES = Series(
    "droptop_overflow_drop_bytes_total",
    "counter",
    "Bytes of the drops in droptop_overflow_drops_total.",
)
MAP_ENTRIES = Series("droptop_map_entries", "gauge", "Keys in use in droptop's BPF key map.")
MAP_CAPACITY = Series("droptop_map_capacity", "gauge", "Keys droptop's BPF key map can hold.")
FOLDED = Series(
    "droptop_folded_series",
    "gauge",
    'Label sets folded into the reason="other" series because of --max-series.',
)
POLL_DURATION = Series(
    "droptop_poll_duration_seconds",
    "gauge",
    "Seconds the last poll of the kernel maps took (reading maps and building the snapshot).",
)
LAST_POLL = Series(
    "droptop_last_poll_timestamp_seconds",
    "gauge",
    "Wall-clock time of the last poll (a stuck poll loop shows as an old value).",
)
BPF_SECONDS_PER_DROP = Series(
    "droptop_bpf_run_seconds_per_drop",
    "gauge",
    "Mean run time of droptop's BPF program per drop over the last interval "
    "(only with sysctl kernel.bpf_stats_enabled=1).",
)
BPF_RUN_SECONDS = Series(
    "droptop_bpf_run_seconds_total",
    "counter",
    "Total run time of droptop's BPF program (only with kernel.bpf_stats_enabled=1).",
)
BPF_RUNS = Series(
    "droptop_bpf_runs_total",
    "counter",
    "Runs of droptop's BPF program (only with kernel.bpf_stats_enabled=1).",
)
BPF_MISSED = Series(
    "droptop_bpf_missed_total",
    "counter",
    "Tracepoint hits the kernel skipped because droptop's program was already running on "
    "that CPU: drops droptop did not count.",
)

SERIES: tuple[Series, ...] = (
    DROPS,
    DROP_BYTES,
    COUNTER_LOSSES,
    BENIGN,
    REASON_INFO,
    BUILD_INFO,
    OVERFLOW,
    OVERFLOW_BYTES,
    MAP_ENTRIES,
    MAP_CAPACITY,
    FOLDED,
    POLL_DURATION,
    LAST_POLL,
    BPF_SECONDS_PER_DROP,
    BPF_RUN_SECONDS,
    BPF_RUNS,
    BPF_MISSED,
)
EXPORTED_NAMES: frozenset[str] = frozenset(s.name for s in SERIES)
"""Every sample name droptop may expose (what dashboards and rules may query)."""
