"""The layer rules in pyproject.toml's [tool.importlinter] hold (as harlequin checks its own)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept():
    lint = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run(
        [str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout


def test_a_broken_contract_is_caught(tmp_path):
    """The check can fail: a model that imports a front end breaks the layers contract."""
    pkg = tmp_path / "droptop"
    (pkg / "frontends").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "frontends" / "__init__.py").write_text("")
    (pkg / "frontends" / "batch.py").write_text("")
    (pkg / "model.py").write_text("import droptop.frontends.batch\n")
    (tmp_path / ".importlinter").write_text(
        "[importlinter]\nroot_package = droptop\n\n"
        "[importlinter:contract:layers]\nname = layers\ntype = layers\n"
        "layers =\n    droptop.frontends\n    droptop.model\n"
    )
    lint = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run(
        [str(lint), "--no-cache"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode != 0 and "BROKEN" in proc.stdout, proc.stdout + proc.stderr
