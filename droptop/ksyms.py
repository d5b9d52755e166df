"""Kernel addresses -> `function+0xoff`, from /proc/kallsyms.

Read once, lazily (the first stack or drop location to name), and kept sorted
for bisection. Only text symbols are kept: stack frames and drop locations are
always code addresses.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from pathlib import Path

_TEXT_SYMBOL = re.compile(rb"^([0-9a-f]+) [tT] (\S+)(?:\t(\[\S+\]))?$", re.M)


class KernelSymbols:
    def __init__(self, path: str | Path = "/proc/kallsyms") -> None:
        self.path = Path(path)
        self._addrs: list[int] | None = None
        self._names: list[str] = []
        self._cache: dict[int, str] = {}

    def _load(self) -> None:
        try:
            data = self.path.read_bytes()
        except OSError:
            data = b""
        # One regex pass over the whole file: ~3x faster than splitting 200k lines.
        pairs = sorted(
            (int(addr, 16), (name + b" " + mod if mod else name).decode(errors="replace"))
            for addr, name, mod in _TEXT_SYMBOL.findall(data)
            if not name.startswith(b"__pfx_")  # padding before functions, never a frame
        )
        # All-zero addresses mean kallsyms is hidden from this process (kptr_restrict).
        pairs = [p for p in pairs if p[0]]
        self._addrs = [a for a, _ in pairs]
        self._names = [n for _, n in pairs]

    def name(self, addr: int) -> str:
        """`function+0xoff`, or the bare hex address when no symbol covers it."""
        hit = self._cache.get(addr)
        if hit is not None:
            return hit
        if self._addrs is None:
            self._load()
        assert self._addrs is not None
        i = bisect_right(self._addrs, addr) - 1
        if i < 0:
            out = f"0x{addr:x}"
        else:
            name, _, module = self._names[i].partition(" ")
            out = f"{name}+0x{addr - self._addrs[i]:x}" + (f" {module}" if module else "")
        self._cache[addr] = out
        return out
