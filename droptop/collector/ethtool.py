"""The drivers' own statistics, as `ethtool -S` shows them, for the counter rows.

sysfs has the generic per-interface counters; many drivers count more in their
ethtool statistics (per-queue drops, XDP_DROP, buffer exhaustion: losses that never
have an skb). Names are the driver's own, so which are losses is told by the name:
a statistic whose name says drop, discard, miss, overrun, FIFO or no buffer. Read with
the SIOCETHTOOL ioctl (ETHTOOL_GSSET_INFO, GSTRINGS, GSTATS) on a socket of droptop's
own network namespace; other namespaces' devices are not reachable this way and are
read from sysfs only. A device that has no statistics, or vanishes, reads as none.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import re
import socket
import struct

SIOCETHTOOL = 0x8946
ETHTOOL_GSTRINGS = 0x1B
ETHTOOL_GSTATS = 0x1D
ETHTOOL_GSSET_INFO = 0x37
ETH_SS_STATS = 1
ETH_GSTRING_LEN = 32
MAX_STATS = 4096
"""A NIC with many queues has a few hundred statistics; more is not a NIC."""

LOSS_NAME = re.compile(r"drop|discard|miss|overrun|fifo|no_?buf|nobuf|no_?desc", re.I)
"""Statistic names that count lost packets (rx_queue_0_drops, rx_missed, rx_no_buffer...)."""


def _ioctl(sock: socket.socket, ifname: str, buf: ctypes.Array) -> None:
    ifreq = struct.pack("16sQ", ifname.encode()[:15], ctypes.addressof(buf)) + bytes(16)
    fcntl.ioctl(sock.fileno(), SIOCETHTOOL, bytearray(ifreq))


class EthtoolStats:
    """Reads the loss statistics of every device of droptop's netns; names cached per device."""

    def __init__(self, sysfs_net: str = "/sys/class/net") -> None:
        self.sysfs_net = sysfs_net
        self._names: dict[str, tuple[str, ...]] = {}
        self._sock: socket.socket | None = None

    def _socket(self) -> socket.socket:
        if self._sock is None:
            self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        return self._sock

    def names(self, ifname: str) -> tuple[str, ...]:
        """The device's statistic names (empty when it has none)."""
        cached = self._names.get(ifname)
        if cached is not None:
            return cached
        sock = self._socket()
        info = ctypes.create_string_buffer(
            struct.pack("IIQI", ETHTOOL_GSSET_INFO, 0, 1 << ETH_SS_STATS, 0)
        )
        _ioctl(sock, ifname, info)
        _, _, mask, n = struct.unpack_from("IIQI", info.raw)
        names: tuple[str, ...] = ()
        if mask and 0 < n <= MAX_STATS:
            strings = ctypes.create_string_buffer(
                struct.pack("III", ETHTOOL_GSTRINGS, ETH_SS_STATS, n) + bytes(ETH_GSTRING_LEN * n)
            )
            _ioctl(sock, ifname, strings)
            raw = strings.raw[12:]
            names = tuple(
                raw[i * ETH_GSTRING_LEN : (i + 1) * ETH_GSTRING_LEN]
                .split(b"\0", 1)[0]
                .decode("ascii", "backslashreplace")
                for i in range(n)
            )
        self._names[ifname] = names
        return names

    def read(self, ifname: str) -> dict[str, int]:
        """Loss statistics of one device by name; {} when it has none or is gone."""
        try:
            names = self.names(ifname)
            if not names:
                return {}
            n = len(names)
            stats = ctypes.create_string_buffer(struct.pack("II", ETHTOOL_GSTATS, n) + bytes(8 * n))
            _ioctl(self._socket(), ifname, stats)
            got = struct.unpack_from("I", stats.raw, 4)[0]
            if got != n:  # the driver's set changed (a queue added): names again next time
                self._names.pop(ifname, None)
                return {}
            values = struct.unpack_from(f"{n}Q", stats.raw, 8)
        except OSError:
            self._names.pop(ifname, None)
            return {}
        return {name: v for name, v in zip(names, values) if LOSS_NAME.search(name)}

    def devices(self) -> list[str]:
        try:
            return sorted(os.listdir(self.sysfs_net))
        except OSError:
            return []

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
