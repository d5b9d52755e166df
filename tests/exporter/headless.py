"""A headless droptop exporter for the end-to-end test, until the CLI wires --listen.

    python -m tests.exporter.headless 127.0.0.1:0 [labels]

Runs the real KernelCollector and the Exporter on one poll loop, the way
``droptop --listen`` will, prints the bound port, and exits cleanly on SIGTERM.
"""

from __future__ import annotations

import signal
import sys
import threading
import time

from droptop.errors import DroptopError
from droptop.frontends.exporter import Exporter, bind_listener, parse_labels, parse_listen

POLL = 0.5


def main(argv: list[str]) -> int:
    try:
        sock = bind_listener(parse_listen(argv[0]))  # before BPF loads, as the CLI must
        labels = parse_labels(argv[1] if len(argv) > 1 else "")
        from droptop.collector.kernel import KernelCollector

        collector = KernelCollector()
    except DroptopError as e:
        print(f"droptop: {e}", file=sys.stderr)
        return e.exit_code
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    exporter = Exporter(sock, labels=labels)
    exporter.start()
    print(exporter.address[1], flush=True)
    try:
        while not stop.is_set():
            t = time.perf_counter()
            snap = collector.poll()
            exporter.update(snap, poll_seconds=time.perf_counter() - t)
            stop.wait(POLL)
    finally:
        exporter.close()
        collector.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
