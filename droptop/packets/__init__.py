"""Sampled packet headers of dropped packets: the sample, its decoding, flows, pcapng.

`sample` holds the dataclass the kernel reader fills; `decode` turns its bytes into fields;
`flows` groups decoded samples into "top flows among samples"; `pcapng` writes them for
tcpdump and tshark. Nothing here imports bcc or Textual.
"""

from __future__ import annotations

from droptop.packets.decode import Decoded, decode, decode_cached, sample_record
from droptop.packets.flows import FLOWS_TITLE, Flow, top_flows
from droptop.packets.pcapng import pcapng_bytes, write_pcapng
from droptop.packets.sample import PacketSample

__all__ = [
    "FLOWS_TITLE",
    "Decoded",
    "Flow",
    "PacketSample",
    "decode",
    "decode_cached",
    "pcapng_bytes",
    "sample_record",
    "top_flows",
    "write_pcapng",
]
