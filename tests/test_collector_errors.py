"""Start-up failures of the real collector: one sentence each, nothing left attached."""

from __future__ import annotations

import pytest

from droptop.collector import kernel as bcc_collector
from droptop.collector.headers import Headers
from droptop.collector.offsets import NO_REASON_LABEL
from droptop.errors import DroptopError
from tests.conftest import need_bpf


@pytest.fixture
def as_root(monkeypatch):
    monkeypatch.setattr(bcc_collector, "check_privileges", lambda: None)


def test_missing_capabilities(monkeypatch):
    monkeypatch.setattr(bcc_collector, "_capabilities", lambda: 0)
    with pytest.raises(DroptopError, match="needs root"):
        bcc_collector.KernelCollector()


def test_caps_bpf_and_perfmon_are_enough(monkeypatch):
    monkeypatch.setattr(bcc_collector, "_capabilities", lambda: (1 << 38) | (1 << 39))
    bcc_collector.check_privileges()


def test_corrupt_btf(tmp_path, as_root):
    bad = tmp_path / "vmlinux"
    bad.write_bytes(b"\x9f\xeb\x01\x00" + b"\xff" * 40)
    with pytest.raises(DroptopError, match="cannot read kernel BTF"):
        bcc_collector.KernelCollector(btf_path=str(bad))


def test_no_btf(tmp_path, as_root):
    with pytest.raises(DroptopError, match="CONFIG_DEBUG_INFO_BTF"):
        bcc_collector.KernelCollector(btf_path=str(tmp_path / "missing"))


def test_bad_max_keys():
    with pytest.raises(DroptopError, match="max-keys"):
        bcc_collector.KernelCollector(max_keys=0)


def test_no_reason_kernel_label():
    r = bcc_collector.NoReasonNames().resolve(0)
    assert r.name == NO_REASON_LABEL and r.source == "none"


@pytest.mark.bpf
def test_broken_headers_tree_is_a_clear_error(tmp_path):
    need_bpf()
    (tmp_path / "include").mkdir()
    with pytest.raises(DroptopError, match="could not compile or load") as info:
        bcc_collector.KernelCollector(headers=Headers(tmp_path, "an empty test tree"))
    assert "an empty test tree" in str(info.value)


@pytest.mark.bpf
def test_compile_error_names_the_line(tmp_path, monkeypatch):
    """clang ends with "1 error generated."; the message must carry the error itself."""
    need_bpf()
    bad = tmp_path / "bad.bpf.c"
    bad.write_text(bcc_collector.BPF_SOURCE.read_text() + "\nint broken(void) { return nope; }\n")
    monkeypatch.setattr(bcc_collector, "BPF_SOURCE", bad)
    with pytest.raises(DroptopError, match="could not compile or load") as info:
        bcc_collector.KernelCollector()
    assert "error: use of undeclared identifier 'nope'" in str(info.value)
    assert "errors generated" not in str(info.value) and "error generated" not in str(info.value)
