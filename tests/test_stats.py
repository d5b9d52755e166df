from __future__ import annotations

from droptop.stats import per_second
from tests.factories import row


def test_per_second_guards():
    assert per_second(10, 0) == 0.0
    assert per_second(-5, 1) == 0.0
    assert per_second(10, 0.5) == 20.0


def test_history_at_pads_idle_polls_with_zeros():

    r = row()._replace(rates=(1.0, 2.0, 3.0), rates_end=3, history_end=10)
    assert r.history_at(10) == (1.0, 2.0, 3.0)
    assert r.history_at(12) == (1.0, 2.0, 3.0, 0.0, 0.0)
    assert r.history_at(12, length=3) == (3.0, 0.0, 0.0)
    assert r.history_at(500) == (0.0,) * 60
