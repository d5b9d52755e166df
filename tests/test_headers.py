from __future__ import annotations

from pathlib import Path

import pytest

from droptop.collector import headers
from droptop.errors import DroptopError


def make_debian_split(src: Path, version: str = "6.1.0-56") -> None:
    arch = src / f"linux-headers-{version}-amd64"
    common = src / f"linux-headers-{version}-common"
    (arch / "include" / "generated").mkdir(parents=True)
    (arch / "include" / "generated" / "autoconf.h").write_text("/* arch */")
    (arch / "arch" / "x86" / "include" / "generated").mkdir(parents=True)
    (common / "include" / "linux").mkdir(parents=True)
    (common / "include" / "linux" / "types.h").write_text("/* common */")
    (common / "arch" / "x86" / "include" / "asm").mkdir(parents=True)
    (common / "Makefile").write_text("common")
    (arch / "Makefile").write_text("arch")


def test_merges_debian_split_tree_into_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("BCC_KERNEL_SOURCE", raising=False)
    monkeypatch.setattr(headers, "_arch_dir", lambda: "x86")
    src, cache = tmp_path / "src", tmp_path / "cache"
    make_debian_split(src, "6.1.0-50")
    make_debian_split(src, "6.1.0-56")
    h = headers.find_headers(
        release="9.9.9-none", modules_dir=tmp_path / "mods", src_dir=src, cache=cache
    )
    assert h.path == cache / "linux-headers-6.1.0-56-amd64-merged"  # the newest
    assert (h.path / "include" / "linux" / "types.h").read_text() == "/* common */"
    assert (h.path / "include" / "generated" / "autoconf.h").read_text() == "/* arch */"
    assert (h.path / "Makefile").read_text() == "arch"  # the arch tree wins
    assert "merged" in h.description and "not the running kernel" in h.description
    assert not list(src.glob("*merged*"))  # nothing written outside the cache


def test_prefers_running_kernel_build_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("BCC_KERNEL_SOURCE", raising=False)
    monkeypatch.setattr(headers, "_arch_dir", lambda: "x86")
    build = tmp_path / "mods" / "6.18.0" / "build"
    (build / "include" / "linux").mkdir(parents=True)
    (build / "arch" / "x86").mkdir(parents=True)
    h = headers.find_headers(
        release="6.18.0",
        modules_dir=tmp_path / "mods",
        src_dir=tmp_path / "src",
        cache=tmp_path / "c",
    )
    assert h.path == build and "running kernel" in h.description


def test_no_headers_names_the_package(tmp_path, monkeypatch):
    monkeypatch.delenv("BCC_KERNEL_SOURCE", raising=False)
    monkeypatch.setattr(headers, "_from_kheaders", lambda cache, release: None)
    with pytest.raises(DroptopError, match="apt-get install linux-headers"):
        headers.find_headers(
            release="x", modules_dir=tmp_path, src_dir=tmp_path / "none", cache=tmp_path / "c"
        )


def test_env_override_is_reported(tmp_path, monkeypatch):
    monkeypatch.setenv("BCC_KERNEL_SOURCE", str(tmp_path))
    h = headers.find_headers()
    assert h.path == tmp_path and "BCC_KERNEL_SOURCE" in h.description
