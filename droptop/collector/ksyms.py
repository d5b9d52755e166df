"""Kernel addresses -> `function+0xoff`, from /proc/kallsyms.

Read once, lazily (the first stack or drop location to name), and kept sorted
for bisection. Only text symbols are kept: stack frames and drop locations are
always code addresses.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from pathlib import Path

# Text symbols only, without the `__pfx_` padding before functions (never a frame).
_TEXT_SYMBOL = re.compile(rb"^([0-9a-f]+) [tT] (?!__pfx_)(\S+)(?:\t(\[\S+\]))?$", re.M)


class KernelSymbols:
    def __init__(self, path: str | Path = "/proc/kallsyms") -> None:
        self.path = Path(path)
        self._addrs: list[int] | None = None
        self._names: list[tuple[bytes, bytes]] = []
        self._cache: dict[int, str] = {}

    def load(self) -> None:
        """Read /proc/kallsyms now (idempotent) instead of at the first name asked for."""
        if self._addrs is None:
            self._load()

    def _load(self) -> None:
        # The first poll of a run pays for this, so it is kept lean (~4x faster than
        # building sorted (addr, str) tuples): one regex pass, names decoded only
        # when asked for, and a sort only if the file is out of order (the core
        # kernel's symbols come sorted; module symbols may not).
        try:
            data = self.path.read_bytes()
        except OSError:
            data = b""
        found = _TEXT_SYMBOL.findall(data)
        addrs = [int(addr, 16) for addr, _, _ in found]
        names = [(name, mod) for _, name, mod in found]
        if any(addrs[i] > addrs[i + 1] for i in range(len(addrs) - 1)):
            order = sorted(range(len(addrs)), key=addrs.__getitem__)
            addrs = [addrs[i] for i in order]
            names = [names[i] for i in order]
        # All-zero addresses mean kallsyms is hidden from this process (kptr_restrict).
        first = bisect_right(addrs, 0)
        self._addrs = addrs[first:]
        self._names = names[first:]

    def name(self, addr: int) -> str:
        """`function+0xoff`, or the bare hex address when no symbol covers it."""
        hit = self._cache.get(addr)
        if hit is not None:
            return hit
        self.load()
        assert self._addrs is not None
        i = bisect_right(self._addrs, addr) - 1
        if i < 0:
            out = f"0x{addr:x}"
        else:
            name, module = self._names[i]
            out = f"{name.decode(errors='replace')}+0x{addr - self._addrs[i]:x}"
            if module:
                out += " " + module.decode(errors="replace")
        self._cache[addr] = out
        return out
