"""Find a kernel headers tree for bcc's run-time compile, without touching system dirs.

droptop's BPF C uses no kernel struct layouts (every offset comes from BTF), so
any reasonably recent Linux headers tree works, not only the running kernel's.
Order: the running kernel's build dir, /sys/kernel/kheaders.tar.xz (extracted
into droptop's cache), then the newest /usr/src/linux-headers-* tree. Debian
splits that tree into -common and -<arch>; bcc wants one tree, so the two are
merged as a symlink farm in the cache dir.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path

from droptop.errors import DroptopError

CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME", "/var/cache")) / "droptop"
INSTALL_HINT = (
    "no Linux kernel headers found for bcc; install them with "
    "`apt-get install linux-headers-$(uname -r)` or, where that does not exist, "
    "`apt-get install linux-headers-amd64` (any version works for droptop)"
)


@dataclass(frozen=True, slots=True)
class Headers:
    path: Path
    """Directory to give bcc as BCC_KERNEL_SOURCE (a tree with include/ and arch/)."""
    description: str
    """What a person is told, e.g. 'linux-headers-6.1.0-56 (merged -common + -amd64)'."""


def _arch_dir() -> str:
    machine = platform.machine()
    return {
        "x86_64": "x86",
        "aarch64": "arm64",
        "armv7l": "arm",
        "ppc64le": "powerpc",
        "s390x": "s390",
        "riscv64": "riscv",
    }.get(machine, machine)


def _usable(tree: Path) -> bool:
    return (tree / "include" / "linux").is_dir() and (tree / "arch" / _arch_dir()).is_dir()


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", name))


def _debian_pairs(src: Path) -> list[tuple[Path, Path | None]]:
    """(arch tree, its -common tree or None), newest first."""
    out = []
    for d in src.glob("linux-headers-*"):
        if (
            not d.is_dir()
            or d.name.endswith("-common")
            or d.name.startswith("linux-headers-droptop")
        ):
            continue
        base = re.sub(r"-[a-z0-9_]+$", "", d.name)  # linux-headers-6.1.0-56-amd64 -> ...-56
        common = src / f"{base}-common"
        out.append((d, common if common.is_dir() else None))
    out.sort(key=lambda p: _version_key(p[0].name), reverse=True)
    return out


def merge_tree(primary: Path, secondary: Path, dest: Path) -> None:
    """Symlink farm: dest mirrors primary overlaid on secondary (primary wins).

    Built in a temp dir and renamed, so a half-built tree is never used.
    """
    tmp = dest.with_name(dest.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    for root in (primary, secondary):
        for dirpath, _dirnames, filenames in os.walk(root, followlinks=True):
            rel = Path(dirpath).relative_to(root)
            target_dir = tmp / rel
            target_dir.mkdir(parents=True, exist_ok=True)
            for f in filenames:
                link = target_dir / f
                if not link.exists() and not link.is_symlink():
                    link.symlink_to(Path(dirpath) / f)
    if dest.exists():
        shutil.rmtree(dest)
    tmp.rename(dest)


def _from_kheaders(cache: Path, release: str) -> Headers | None:
    archive = Path("/sys/kernel/kheaders.tar.xz")
    if not archive.exists():
        return None
    dest = cache / f"kheaders-{release}"
    if not _usable(dest):
        tmp = dest.with_name(dest.name + f".tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        shutil.rmtree(dest, ignore_errors=True)
        tmp.rename(dest)
    return Headers(dest, f"/sys/kernel/kheaders.tar.xz (extracted to {dest})")


def find_headers(
    *,
    release: str | None = None,
    modules_dir: Path = Path("/lib/modules"),
    src_dir: Path = Path("/usr/src"),
    cache: Path | None = None,
) -> Headers:
    """Return a headers tree for bcc or raise DroptopError naming the package to install."""
    release = release or platform.release()
    cache = cache or CACHE_DIR
    override = os.environ.get("BCC_KERNEL_SOURCE")
    if override:
        return Headers(Path(override), f"{override} (from BCC_KERNEL_SOURCE)")
    build = modules_dir / release / "build"
    if _usable(build):
        return Headers(build, f"{build} (headers of the running kernel)")
    try:
        kh = _from_kheaders(cache, release)
    except (OSError, tarfile.TarError):
        kh = None
    if kh is not None:
        return kh
    for arch_tree, common in _debian_pairs(src_dir):
        if common is None:
            if _usable(arch_tree):
                return Headers(
                    arch_tree, f"{arch_tree} (not the running kernel's; fine for droptop)"
                )
            continue
        dest = cache / f"{arch_tree.name}-merged"
        try:
            if not _usable(dest):
                merge_tree(arch_tree, common, dest)
        except OSError as e:
            raise DroptopError(f"cannot merge kernel headers into {dest}: {e}") from None
        if _usable(dest):
            return Headers(
                dest,
                f"{arch_tree.name} + {common.name}, merged in {dest} "
                "(not the running kernel's headers; fine for droptop)",
            )
    raise DroptopError(INSTALL_HINT)
