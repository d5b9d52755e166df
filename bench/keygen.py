"""Fill droptop's key map: N drops, each under a different comm, in well under a second.

    python keygen.py N [PREFIX]

The process renames itself (prctl PR_SET_NAME) before each datagram to a closed
UDP port, so each drop has its own comm and so its own key. Datagrams alternate
between 127.0.0.1 and ::1: droptop's per-CPU burst cache is tagged by task, device,
location, reason and jiffy but not by comm, so two drops from one task within
one jiffy (4 ms here) at the same location would share the first one's key.
IPv4 and IPv6 drop at different locations, which makes every drop a cache miss.
Prints the number of datagrams sent.
"""

from __future__ import annotations

import ctypes
import errno
import socket
import sys

PR_SET_NAME = 15
CLOSED_PORT = 9  # discard: nothing listens here


def main(argv: list[str]) -> int:
    n = int(argv[1])
    prefix = argv[2] if len(argv) > 2 else "dtk"
    libc = ctypes.CDLL(None, use_errno=True)
    v4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    v6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    for i in range(n):
        libc.prctl(PR_SET_NAME, ctypes.c_char_p(f"{prefix}{i:07d}".encode()[:15]), 0, 0, 0)
        sock, addr = (v4, ("127.0.0.1", CLOSED_PORT)) if i % 2 == 0 else (v6, ("::1", CLOSED_PORT))
        try:
            sock.sendto(b"k", addr)
        except OSError as e:  # an ICMP error from an earlier datagram
            if e.errno != errno.ECONNREFUSED:
                raise
    print(n)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
