"""Per-interface counters from the driver, next to the kernel table's drops on that interface.

NIC and driver drops (ring overflows, bad frames) never reach kfree_skb, so the
drop table cannot show them. Putting the driver's numbers beside the kernel's
for each interface tells a person whether the table is the whole story.
"""

from __future__ import annotations

from collections import defaultdict

from rich.table import Table
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from droptop.frontends.tui.format import human_count, human_rate, safe
from droptop.model import NicRates, Snapshot


class InterfacePanel(Widget):
    """Hidden until `i`; one line per interface that exists here or has kernel drops."""

    DEFAULT_CSS = """
    InterfacePanel {
        height: auto;
        max-height: 12;
        display: none;
        border-top: solid $primary;
        border-title-align: left;
        padding: 0 1;
        &.-open { display: block; }
    }
    """

    snapshot: reactive[Snapshot | None] = reactive(None)
    """The snapshot on screen, for the kernel-drops column."""
    nics: reactive[tuple[NicRates, ...]] = reactive(())
    """Driver counters of this machine at the last poll."""

    def on_mount(self) -> None:
        self.border_title = (
            "interfaces, per second: kernel drops vs driver counters (droptop's netns)"
        )

    def watch_snapshot(self, snap: Snapshot | None) -> None:
        if snap is not None and snap.source == "replay":
            self.border_title = (
                "interfaces: kernel drops from the snapshot, driver counters of THIS machine"
            )

    def render(self) -> Table:
        table = Table(box=None, padding=(0, 1), pad_edge=False, expand=False, show_edge=False)
        table.add_column("IFACE", no_wrap=True)
        for name in ("KERNEL/s", "RX DROP/s", "TX DROP/s", "RX ERR/s", "TX ERR/s"):
            table.add_column(name, justify="right", no_wrap=True)
        table.add_column("RX DROPS", justify="right", no_wrap=True)
        table.add_column("TX DROPS", justify="right", no_wrap=True)
        kernel: dict[str, float] = defaultdict(float)
        snap = self.snapshot
        if snap is not None:
            for row in snap.rows:
                if row.ifname:
                    kernel[row.ifname] += row.rate
        nics = {n.name: n for n in self.nics}
        for name in sorted(set(nics) | set(kernel)):
            nic = nics.get(name)
            cells = [safe(name), Text(human_rate(kernel[name]) if name in kernel else "-")]
            if nic is None:
                cells += [Text("-")] * 6
            else:
                cells += [
                    Text(human_rate(v), style="bold" if v else "")
                    for v in (nic.rx_drop_rate, nic.tx_drop_rate, nic.rx_err_rate, nic.tx_err_rate)
                ]
                cells += [Text(human_count(nic.rx_drops)), Text(human_count(nic.tx_drops))]
            table.add_row(*cells)
        if not nics and not kernel:
            table.add_row(Text("no interfaces", style="dim"))
        return table
