"""Write sampled dropped packets as pcapng, for tcpdump, tshark and Wireshark (`--pcap`).

pcapng rather than legacy pcap because one file holds packets from many devices (and
namespaces), and each packet should say why it was dropped: pcapng has an
Interface Description Block per device and a comment option per packet. Layout (pcapng
spec, draft-ietf-opsawg-pcapng): one Section Header Block, one Interface Description Block
per (device, netns, device type, whether the MAC header is synthetic) with if_name,
if_description and if_tsresol, then one Enhanced Packet Block per sample with its comment.

Every interface block says LINKTYPE_ETHERNET (1): libpcap (so tcpdump) reads a pcapng with
one link-layer type only (its API has one pcap_datalink() per file; libpcap issue #1252).
Measured with libpcap 1.10.3 / tcpdump 4.99.3: Ethernet plus LINKTYPE_RAW interfaces fail
with "an interface has a type 101 different from the type of the first interface", and so
do two interfaces that are *both* LINKTYPE_RAW (101), because libpcap compares the first
one's mapped DLT with the next one's raw value; several Ethernet interfaces read fine, and
tshark reads all of these. So:
- a sample with an Ethernet-shaped MAC header (Ethernet, lo) is written as on the wire: its
  MAC header, then the network bytes;
- a sample without one (tun, TX paths before the device, a non-Ethernet device) gets a
  14-byte header of zero addresses with skb->protocol as EtherType (the IP version when the
  protocol is unset), which is how lo's packets look anyway; its interface block says so
  ("no MAC header copied"), and its original length counts those 14 bytes.

The comment and interface strings come from the kernel and processes and will be printed by
tshark, so the writer passes them through `sanitize.printable`: this file is a sink.
"""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Iterable
from pathlib import Path

from droptop.atomic import write_atomic
from droptop.packets.sample import (
    ARPHRD_UNKNOWN,
    ETH_P_IP,
    ETH_P_IPV6,
    ETHERNET_LINK_TYPES,
    PacketSample,
)
from droptop.sanitize import printable

LINKTYPE_ETHERNET = 1

_SHB = 0x0A0D0D0A
_IDB = 0x00000001
_EPB = 0x00000006
_BYTE_ORDER_MAGIC = 0x1A2B3C4D

_OPT_END = 0
_OPT_COMMENT = 1
_SHB_USERAPPL = 4
_IF_NAME = 2
_IF_DESCRIPTION = 3
_IF_TSRESOL = 9

TS_RESOLUTION = 6
"""if_tsresol: microseconds. PacketSample.time is a float of epoch seconds, good to ~0.2 us,
so nanoseconds would be false precision."""

SNAPLEN = 65535
_ETH_HEADER = 14


def _pad(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + _pad(value)


_BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _text(value: str) -> bytes:
    """A string option's value: sanitized, UTF-8, never raising on odd input.

    Bidi controls are escaped too (as \\u202e): tshark prints comments and interface names
    to terminals, where an override reorders the rest of the line. (`sanitize.printable`
    escapes C0/C1 controls only; once it escapes bidi controls this extra step is a no-op.)
    """
    text = _BIDI.sub(lambda m: f"\\u{ord(m.group()):04x}", printable(value))
    return text.encode("utf-8", "backslashreplace")


def _block(block_type: int, body: bytes) -> bytes:
    total = 12 + len(body)
    return struct.pack("<II", block_type, total) + body + struct.pack("<I", total)


def _options(options: list[bytes]) -> bytes:
    return b"".join(options) + struct.pack("<HH", _OPT_END, 0) if options else b""


def _is_ethernet(sample: PacketSample) -> bool:
    """Same rule as the decoder: an Ethernet-shaped MAC header is written as Ethernet."""
    if not sample.mac:
        return False
    if sample.link_type in ETHERNET_LINK_TYPES:
        return True
    return sample.link_type == ARPHRD_UNKNOWN and len(sample.mac) >= 14


def _ethertype(sample: PacketSample) -> int:
    """skb->protocol, or when unset the IP version nibble's EtherType (0 if neither)."""
    if sample.protocol:
        return sample.protocol & 0xFFFF
    version = sample.network[0] >> 4 if sample.network else 0
    return {4: ETH_P_IP, 6: ETH_P_IPV6}.get(version, 0)


def frame(sample: PacketSample) -> tuple[bytes, int, bool]:
    """(captured bytes, original length, MAC header synthetic) for one sample, as Ethernet."""
    if _is_ethernet(sample):
        return sample.mac + sample.network, sample.wire_length, False
    header = bytes(12) + struct.pack("!H", _ethertype(sample))
    return header + sample.network, _ETH_HEADER + max(sample.length, len(sample.network)), True


def _interface_block(sample: PacketSample, synthetic: bool) -> bytes:
    name = sample.ifname or (f"ifindex{sample.ifindex}" if sample.ifindex else "nodev")
    description = f"{name} ifindex {sample.ifindex} netns {sample.netns} type {sample.link_type}"
    if synthetic:
        description += ", no MAC header copied: zero addresses written"
    body = struct.pack("<HHI", LINKTYPE_ETHERNET, 0, SNAPLEN) + _options(
        [
            _option(_IF_NAME, _text(name)),
            _option(_IF_DESCRIPTION, _text(description)),
            _option(_IF_TSRESOL, bytes([TS_RESOLUTION])),
        ]
    )
    return _block(_IDB, body)


def _packet_block(
    interface: int, sample: PacketSample, data: bytes, original: int, comment: str
) -> bytes:
    micros = max(0, round(sample.time * 1_000_000))
    header = struct.pack(
        "<IIIII", interface, (micros >> 32) & 0xFFFFFFFF, micros & 0xFFFFFFFF, len(data), original
    )
    opts = _options([_option(_OPT_COMMENT, _text(comment))] if comment else [])
    return _block(_EPB, header + _pad(data) + opts)


def pcapng_bytes(packets: Iterable[tuple[PacketSample, str]]) -> bytes:
    """A complete pcapng file: each (sample, comment) becomes one packet, in the given order.

    An interface block is emitted when a (device, netns, device type, synthetic MAC header)
    is first seen; readers number them in file order, which the packet blocks refer to.
    """
    shb_body = struct.pack("<IHHq", _BYTE_ORDER_MAGIC, 1, 0, -1) + _options(
        [_option(_SHB_USERAPPL, b"droptop")]
    )
    out = [_block(_SHB, shb_body)]
    interfaces: dict[tuple[int, str, int, int, bool], int] = {}
    for sample, comment in packets:
        data, original, synthetic = frame(sample)
        key = (sample.ifindex, sample.ifname, sample.netns, sample.link_type, synthetic)
        index = interfaces.get(key)
        if index is None:
            index = interfaces[key] = len(interfaces)
            out.append(_interface_block(sample, synthetic))
        out.append(_packet_block(index, sample, data[:SNAPLEN], original, comment))
    return b"".join(out)


def write_pcapng(path: str | os.PathLike, packets: Iterable[tuple[PacketSample, str]]) -> Path:
    """Write `pcapng_bytes(packets)` atomically: a reader never sees half a capture.

    A temp file in the target's directory is renamed over it; any failure is one line.
    """
    return write_atomic(path, pcapng_bytes(packets))
