from __future__ import annotations

from droptop.collector.ksyms import KernelSymbols

KALLSYMS = """\
ffffffff81000000 T _stext
ffffffff81000ff0 t __pfx_kfree_skb_reason
ffffffff81001000 T kfree_skb_reason
ffffffff81001200 t __udp4_lib_rcv
ffffffff81002000 D some_data
ffffffffc0001000 t ieee80211_rx_handlers\t[mac80211]
"""


def test_names_with_offsets_and_modules(tmp_path):
    path = tmp_path / "kallsyms"
    path.write_text(KALLSYMS)
    k = KernelSymbols(path)
    assert k.name(0xFFFFFFFF81001000) == "kfree_skb_reason+0x0"
    assert k.name(0xFFFFFFFF810016BC) == "__udp4_lib_rcv+0x4bc"
    assert k.name(0xFFFFFFFFC0001010) == "ieee80211_rx_handlers+0x10 [mac80211]"
    assert k.name(0x1000) == "0x1000"  # below every symbol
    # Data symbols are not code: an address past the last text symbol in .text stays there.
    assert k.name(0xFFFFFFFF81002008).startswith("__udp4_lib_rcv+")


def test_hidden_kallsyms_gives_hex(tmp_path):
    path = tmp_path / "kallsyms"
    path.write_text("0000000000000000 T _stext\n0000000000000000 T kfree_skb\n")
    assert KernelSymbols(path).name(0xFFFFFFFF81001000) == "0xffffffff81001000"


def test_missing_file_gives_hex(tmp_path):
    assert KernelSymbols(tmp_path / "none").name(0x10) == "0x10"


def test_out_of_order_file_is_sorted(tmp_path):
    # Module symbols may come after the core kernel's, out of address order.
    path = tmp_path / "kallsyms"
    path.write_text(
        "ffffffffc0002000 t mod_fn\t[mymod]\n"
        "ffffffff81000000 T _stext\n"
        "ffffffff81001000 T kfree_skb_reason\n"
        "ffffffffc0001000 t other_mod_fn\t[mymod]\n"
    )
    k = KernelSymbols(path)
    assert k.name(0xFFFFFFFF81001004) == "kfree_skb_reason+0x4"
    assert k.name(0xFFFFFFFFC0001008) == "other_mod_fn+0x8 [mymod]"
    assert k.name(0xFFFFFFFFC0002000) == "mod_fn+0x0 [mymod]"


def test_padding_symbols_are_never_named(tmp_path):
    path = tmp_path / "kallsyms"
    path.write_text(KALLSYMS)
    # Inside __pfx_kfree_skb_reason's 16 bytes: the function before it, not the padding.
    assert KernelSymbols(path).name(0xFFFFFFFF81000FF4) == "_stext+0xff4"


def test_load_reads_once(tmp_path):
    path = tmp_path / "kallsyms"
    path.write_text(KALLSYMS)
    k = KernelSymbols(path)
    k.load()
    path.write_text("")  # a second read would lose every symbol
    k.load()
    assert k.name(0xFFFFFFFF81001000) == "kfree_skb_reason+0x0"
