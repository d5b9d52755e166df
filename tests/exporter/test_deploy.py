"""The deployment files: manifests parse with the expected kinds, every query names only
series droptop exports, promtool accepts droptop's scrape output and the alert rules."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from droptop.frontends.exporter import EXPORTED_NAMES
from tests.exporter.helpers import OPENMETRICS_ACCEPT, scrape, start_exporter
from tests.factories import row, snapshot

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
NODE_EXPORTER = {"node_network_receive_packets_total", "up"}
KEYWORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "offset", "bool",
}  # fmt: skip
HOSTILE = 'x"y\\z\nq\x1b[2J\u202eevil'


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get("DROPTOP_REQUIRE_BPF") == "1":
            pytest.fail(
                "DROPTOP_REQUIRE_BPF=1 but promtool is missing (apt-get install prometheus)"
            )
        pytest.skip("promtool not installed (apt-get install prometheus)")
    return path


def series_names(expr: str) -> set[str]:
    """Metric names a PromQL expression reads (a small lexer, enough for our queries)."""
    s = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings
    s = re.sub(r"\{[^}]*\}", "", s)  # label matchers
    s = re.sub(r"\[[^\]]*\]", "", s)  # ranges
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r"\1", s)
    s = re.sub(r"\boffset\s+\w+", "", s)
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", s):
        word, rest = m.group(), s[m.end() :].lstrip()
        if rest.startswith("(") or re.match(r"(by|without)\b", rest) or word in KEYWORDS:
            continue
        if s[m.start() - 1 : m.start()] == "$":
            continue  # $__rate_interval and friends
        if re.fullmatch(r"\d+[smhdwy]?", word):
            continue
        names.add(word)
    return names


def test_series_names_lexer():
    assert series_names('sum by (a, b) (rate(x_total{a="b{c}"}[5m])) / on (d) y offset 1h') == {
        "x_total",
        "y",
    }


def test_manifests_parse_with_expected_kinds():
    kinds = {}
    for name in ("daemonset.yaml", "service.yaml", "servicemonitor.yaml"):
        for doc in yaml.safe_load_all((DEPLOY / "kubernetes" / name).read_text()):
            kinds[doc["kind"]] = doc
    assert set(kinds) == {"Namespace", "DaemonSet", "Service", "ServiceMonitor"}
    assert kinds["ServiceMonitor"]["apiVersion"] == "monitoring.coreos.com/v1"
    pod = kinds["DaemonSet"]["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert "SYS_ADMIN" not in c["securityContext"]["capabilities"]["add"]
    assert c["args"][:2] == ["--listen", ":9469"]
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    for path in ("/sys/kernel/btf", "/sys/kernel/tracing", "/sys/fs/cgroup", "/run/netns",
                 "/lib/modules", "/usr/src"):  # fmt: skip
        assert mounts[path]["readOnly"] is True
    # the Service selects the DaemonSet's pods and names the port the monitor scrapes
    labels = kinds["DaemonSet"]["spec"]["template"]["metadata"]["labels"]
    assert kinds["Service"]["spec"]["selector"].items() <= labels.items()
    port = kinds["ServiceMonitor"]["spec"]["endpoints"][0]["port"]
    assert port in {p["name"] for p in kinds["Service"]["spec"]["ports"]}


def dashboard_queries() -> list[str]:
    dash = json.loads((DEPLOY / "grafana" / "droptop-dashboard.json").read_text())
    queries = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    for v in dash["templating"]["list"]:
        if v["type"] == "query":  # Grafana's label_values(METRIC, LABEL): the metric is a query
            m = re.fullmatch(r"label_values\((.*),\s*\w+\)", v["query"]["query"])
            assert m, v["query"]["query"]
            queries.append(m.group(1))
    return queries


def test_dashboard_queries_name_only_exported_series():
    queries = dashboard_queries()
    assert len(queries) >= 6
    named = set()
    for q in queries:
        names = series_names(q)
        assert names <= EXPORTED_NAMES | NODE_EXPORTER, (q, names - EXPORTED_NAMES)
        named |= names
    assert {"droptop_drops_total", "node_network_receive_packets_total"} <= named


def test_rule_queries_name_only_exported_series():
    rules = yaml.safe_load((DEPLOY / "prometheus" / "droptop-rules.yml").read_text())
    items = [r for g in rules["groups"] for r in g["rules"]]
    recorded = {r["record"] for r in items if "record" in r}
    alerts = {r["alert"] for r in items if "alert" in r}
    assert {"DroptopDropShareHigh", "DroptopNewDropReason", "DroptopMapOverflow",
            "DroptopExporterDown"} <= alerts  # fmt: skip
    for r in items:
        names = series_names(r["expr"])
        assert names <= EXPORTED_NAMES | NODE_EXPORTER | recorded, (r["expr"], names)


def test_promtool_check_and_test_rules():
    tool = promtool()
    rules = DEPLOY / "prometheus"
    out = subprocess.run(
        [tool, "check", "rules", "droptop-rules.yml"], cwd=rules, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr
    out = subprocess.run(
        [tool, "test", "rules", "droptop-rules.test.yml"],
        cwd=rules,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout


@pytest.mark.parametrize("accept", [None, OPENMETRICS_ACCEPT])
def test_promtool_check_metrics_on_a_scrape(accept):
    tool = promtool()
    e = start_exporter(labels=("comm", "netns", "location", "service", "cgroup", "context"))
    try:
        e.update(
            snapshot(
                row(comm=HOSTILE, ifname=HOSTILE, packets=4),
                row(name="TCP_CSUM", raw=10, packets=9, ifname=""),
                notes=("attached to kfree_skb as a raw tracepoint",),
                bpf_ns_per_drop=120.0,
            ),
            poll_seconds=0.003,
        )
        status, ctype, body = scrape(e, accept)
    finally:
        e.close()
    assert status == 200 and "droptop_drops_total" in body
    assert ctype.startswith("application/openmetrics-text" if accept else "text/plain")
    if accept:  # promtool 2.42 reads the text format; check the OpenMetrics body parses
        from prometheus_client.openmetrics.parser import text_string_to_metric_families

        assert sum(len(f.samples) for f in text_string_to_metric_families(body)) > 10
        return
    out = subprocess.run([tool, "check", "metrics"], input=body, capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout + out.stderr == "", out.stdout + out.stderr
