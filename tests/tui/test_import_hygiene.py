"""Only droptop.frontends.tui may import Textual: batch mode, export and the collectors must not.

Each module is imported in a fresh interpreter (as harlequin's import-hygiene test
does), because one test process has long since loaded Textual.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import droptop

ROOT = Path(__file__).resolve().parents[2]


def non_ui_modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(droptop.__path__, "droptop."):
        if info.name.startswith("droptop.frontends.tui") or info.name == "droptop.__main__":
            continue
        names.append(info.name)
    return sorted(names)


PROBE = """
import importlib, sys
name = sys.argv[1]
try:
    importlib.import_module(name)
except ImportError as e:
    # Only the distribution's bcc may be missing (it is not a PyPI dependency); any
    # other import failure is a broken module, not a pass.
    if e.name != "bcc":
        raise
    print("skip:", e)
    raise SystemExit(0)
loaded = sorted(m for m in sys.modules if m == "textual" or m.startswith("textual."))
assert not loaded, f"{name} imported {loaded[:3]}"
"""


def test_module_list_covers_the_core():
    names = non_ui_modules()
    for must in (
        "droptop.cli",
        "droptop.render",
        "droptop.snapshot_file",
        "droptop.filtering",
        "droptop.hostinfo",
        "droptop.collector.fake",
        "droptop.collector.replay",
    ):
        assert must in names


@pytest.mark.parametrize("module", non_ui_modules())
def test_does_not_import_textual(module):
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, module],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_pure_tui_helpers_do_not_import_textual():
    """The layout, severity and poller logic are testable without Textual too."""
    for module in (
        "droptop.frontends.tui.columns",
        "droptop.severity",
        "droptop.loop",
    ):
        proc = subprocess.run(
            [sys.executable, "-c", PROBE, module],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
