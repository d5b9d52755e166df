from __future__ import annotations

import pytest

from droptop.stats import RateTracker, per_second


def test_rates_are_deltas_over_the_interval():
    t = RateTracker()
    first = t.update({"a": (100, 1000)}, 0.0)
    assert first["a"].rate == 0.0  # no rate from a single reading
    second = t.update({"a": (300, 5000)}, 2.0)
    assert second["a"].rate == pytest.approx(100.0)
    assert second["a"].byte_rate == pytest.approx(2000.0)
    assert second["a"].packets == 300
    assert second["a"].history == (0.0, 100.0)
    assert t.total_history == (0.0, 100.0)


def test_new_key_counts_from_zero_and_missing_key_keeps_value():
    t = RateTracker()
    t.update({"a": (10, 10)}, 0.0)
    r = t.update({"a": (10, 10), "b": (5, 50)}, 1.0)
    assert r["b"].rate == 5.0  # appeared during the interval
    r = t.update({"b": (5, 50)}, 1.0)
    assert r["a"].packets == 10 and r["a"].rate == 0.0


def test_counter_going_backwards_is_not_a_negative_rate():
    t = RateTracker()
    t.update({"a": (100, 100)}, 0.0)
    r = t.update({"a": (40, 40)}, 1.0)
    assert r["a"].rate == 40.0


def test_reset_restarts_totals_not_rates():
    t = RateTracker()
    t.update({"a": (100, 100)}, 0.0)
    t.reset()
    r = t.update({"a": (130, 160)}, 1.0)
    assert r["a"].packets == 30 and r["a"].bytes == 60
    assert r["a"].rate == 30.0


def test_history_is_bounded():
    t = RateTracker(history=3)
    for i in range(10):
        r = t.update({"a": (i * 10, 0)}, 1.0)
    assert len(r["a"].history) == 3


def test_per_second_guards():
    assert per_second(10, 0) == 0.0
    assert per_second(-5, 1) == 0.0
    assert per_second(10, 0.5) == 20.0
