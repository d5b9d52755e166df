"""Parse ``--listen [HOST:]PORT`` and bind the socket before anything else starts.

The socket is bound and listening before the BPF program loads, so a port in use,
a bad address or a privileged port is one line and exit 2 with nothing attached;
the HTTP server later serves on this very socket (no second bind, no race).
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass

from droptop.errors import DroptopError
from droptop.sanitize import printable

BACKLOG = 64


@dataclass(frozen=True, slots=True)
class ListenAddress:
    """Where to serve /metrics. host "" means every address (IPv6 and IPv4 when possible)."""

    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def _bad(text: str, why: str) -> DroptopError:
    return DroptopError(f"--listen {printable(text)!r}: {why} (expected [HOST:]PORT)", 2)


def parse_listen(text: str) -> ListenAddress:
    """ "9469", ":9469", "127.0.0.1:9469", "localhost:9469", "[::1]:9469" -> ListenAddress.

    A bare IPv6 address without brackets is refused: "::1:9469" cannot be split
    unambiguously.
    """
    s = text.strip()
    if not s:
        raise _bad(text, "empty")
    if s.startswith("["):
        end = s.find("]")
        if end < 0 or not s[end + 1 :].startswith(":"):
            raise _bad(text, "an IPv6 address in brackets must be followed by :PORT")
        host, port_text = s[1:end], s[end + 2 :]
        if not host:
            raise _bad(text, "empty address in brackets")
    elif ":" in s:
        host, _, port_text = s.rpartition(":")
        if ":" in host:
            raise _bad(text, "put an IPv6 address in brackets, e.g. [::1]:9469")
    else:
        host, port_text = "", s
    if not port_text.isdigit() or not port_text.isascii():
        raise _bad(text, f"port {printable(port_text)!r} is not a number")
    port = int(port_text)
    if port > 65535:
        raise _bad(text, f"port {port} is out of range 0-65535")
    if any(c.isspace() or c in "/[]" for c in host):
        raise _bad(text, f"{printable(host)!r} is not a host name or address")
    return ListenAddress(host, port)


def _candidates(addr: ListenAddress) -> list[tuple[int, tuple]]:
    """(family, sockaddr) to try, in order."""
    if not addr.host:
        out = []
        if socket.has_ipv6:
            out.append((socket.AF_INET6, ("::", addr.port, 0, 0)))
        out.append((socket.AF_INET, ("0.0.0.0", addr.port)))
        return out
    try:
        infos = socket.getaddrinfo(
            addr.host, addr.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except (socket.gaierror, UnicodeError) as e:
        raise DroptopError(
            f"--listen {printable(str(addr))}: cannot resolve {printable(addr.host)!r} ({e})", 2
        ) from None
    seen, out = set(), []
    for family, _, _, _, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6) and (family, sockaddr) not in seen:
            seen.add((family, sockaddr))
            out.append((family, sockaddr))
    return out


def _explain(addr: ListenAddress, e: OSError) -> str:
    where = printable(str(addr))
    if e.errno == errno.EADDRINUSE:
        return f"--listen {where}: port {addr.port} is already in use"
    if e.errno == errno.EACCES:
        return (
            f"--listen {where}: permission denied; port {addr.port} is privileged "
            "(needs root or CAP_NET_BIND_SERVICE; pick a port above 1023)"
        )
    if e.errno == errno.EADDRNOTAVAIL:
        return f"--listen {where}: {printable(addr.host)!r} is not an address of this machine"
    return f"--listen {where}: {printable(e.strerror or str(e))}"


def bind_listener(addr: ListenAddress) -> socket.socket:
    """A TCP socket bound to `addr` and listening; DroptopError(one line, 2) if it cannot be.

    It listens already (not only binds): on Linux two SO_REUSEADDR sockets may both
    bind one port, and only listen() would find the conflict, after BPF has loaded.
    """
    last: OSError | None = None
    for family, sockaddr in _candidates(addr):
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6 and not addr.host:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            sock.bind(sockaddr)
            sock.listen(BACKLOG)
            return sock
        except OSError as e:
            sock.close()
            last = e
            # The wildcard IPv6 socket may fail on a host without IPv6: try IPv4.
            if e.errno not in (errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL) or addr.host:
                break
    if last is None:
        raise DroptopError(f"--listen {printable(str(addr))}: no usable address", 2)
    raise DroptopError(_explain(addr, last), 2)
