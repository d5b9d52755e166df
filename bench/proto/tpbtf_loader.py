"""droptop's loader child, except that the program is attached as tp_btf (see tpbtf.py).

Run by TpBtfCollector in place of `python -m droptop.collector.loader`: the
protocol, the maps and the fds handed back are droptop's own; only bcc.BPF is
replaced by a subclass that loads the compiled function as a BTF-typed raw
tracepoint and files its prog and link fds where the loader looks for them.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bcc
import common
import tpbtf

common.ensure_droptop_importable()
from droptop.collector import loader  # noqa: E402


class TpBtfBPF(bcc.BPF):
    def __init__(self, *args: object, **kw: object) -> None:
        super().__init__(*args, **kw)
        prog_fd, link_fd = tpbtf.load_tp_btf(self)
        self.funcs[loader.PROG_FUNC] = bcc.BPF.Function(self, loader.PROG_FUNC, prog_fd)
        self.raw_tracepoint_fds[loader.TRACEPOINT] = link_fd


bcc.BPF = TpBtfBPF  # loader.load() imports BPF from bcc when it runs

if __name__ == "__main__":
    raise SystemExit(loader.main(sys.argv))
