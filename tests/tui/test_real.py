"""The real app on the real collector with real drops: the row appears, drill-down shows
the kernel stack down to the function that frees the packet."""

from __future__ import annotations

import re
import uuid

import pytest

from droptop import dropgen
from droptop.frontends.tui.app import DroptopApp
from droptop.frontends.tui.drilldown import DrillDownScreen
from tests.tui.conftest import polls, run, started, wait_until

pytestmark = pytest.mark.bpf

FREE_FUNCTION = re.compile(r"^(kfree_skb_reason|sk_skb_reason_drop|kfree_skb)\+0x")
"""The tracepoint's caller: kfree_skb_reason before 6.11, sk_skb_reason_drop since."""


def test_real_drops_show_up_and_drill_down_has_the_free_function(bpf_collector):
    comm = f"dt-tui{uuid.uuid4().hex[:6]}"
    app = DroptopApp(bpf_collector, auto_poll=False)  # the session fixture closes it

    async def scenario(pilot):
        await started(pilot)
        assert dropgen.spawn("udp", 200, comm=comm) == 200

        def row():
            snap = pilot.app.latest
            return next((r for r in snap.rows if r.key.comm == comm), None)

        for _ in range(50):
            await polls(pilot)
            # Stacks may come a poll after the counts when the maps hold many entries
            # (they are read in bounded steps: collector/details.py).
            if row() is not None and row().packets >= 200 and row().stacks:
                break
            await pilot.pause(0.1)
        found = row()
        assert found is not None and found.packets >= 200
        assert found.reason.name == "NO_SOCKET"

        table = pilot.app.main.table
        table.move_cursor(row=table.get_row_index(found.key))
        await pilot.pause()
        await pilot.press("enter")
        screen = pilot.app.screen
        assert isinstance(screen, DrillDownScreen) and screen.key == found.key
        await wait_until(pilot, lambda: screen.processes is not None)
        frames = [f for st in screen.row.stacks for f in st.frames]
        assert any(FREE_FUNCTION.match(f) for f in frames), frames[:8]
        await pilot.pause()
        shown = pilot.app.export_screenshot().replace("&#160;", " ")
        assert re.search(r"(kfree_skb_reason|sk_skb_reason_drop)\+0x", shown)

    run(app, scenario, size=(120, 60))
