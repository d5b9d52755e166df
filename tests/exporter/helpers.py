"""Scraping helpers shared by the exporter tests."""

from __future__ import annotations

import gzip
import urllib.request

from droptop.frontends.exporter import Exporter, bind_listener, parse_listen

OPENMETRICS_ACCEPT = "application/openmetrics-text; version=1.0.0; charset=utf-8"
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.1"
)


def start_exporter(**kw) -> Exporter:
    e = Exporter(bind_listener(parse_listen("127.0.0.1:0")), **kw)
    e.start()
    return e


def scrape(e: Exporter, accept: str | None = None, path: str = "/metrics", gz: bool = False):
    """(status, content type, body text)."""
    host, port = e.address
    headers = {}
    if accept:
        headers["Accept"] = accept
    if gz:
        headers["Accept-Encoding"] = "gzip"
    req = urllib.request.Request(f"http://{host}:{port}{path}", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            data = r.read()
            if r.headers.get("Content-Encoding") == "gzip":
                data = gzip.decompress(data)
            return r.status, r.headers["Content-Type"], data.decode("utf-8")
    except urllib.error.HTTPError as err:
        return err.code, err.headers["Content-Type"], err.read().decode()
