"""How bad a drop rate is, as a word and a mark as well as a colour.

Computed once here so the table, the header and the help screen agree, and so a
terminal without colour (NO_COLOR) still shows which rows are urgent. Thresholds
are per row, in packets per second; the help screen prints them.
"""

from __future__ import annotations

from enum import IntEnum


class Level(IntEnum):
    OK = 0
    WARNING = 1
    CRITICAL = 2


WARNING_RATE = 100.0
"""Packets/s at which a row (or the total) is marked as a warning."""
CRITICAL_RATE = 1000.0
"""Packets/s at which a row (or the total) is marked critical."""
MAP_WARNING = 0.9
"""Fraction of the kernel key map in use at which the header warns."""

MARK = {Level.OK: "", Level.WARNING: "!", Level.CRITICAL: "!!"}
"""Shown before the rate; ASCII so every terminal and font draws it one cell wide."""
WORD = {Level.OK: "ok", Level.WARNING: "warning", Level.CRITICAL: "critical"}
STYLE = {Level.OK: "", Level.WARNING: "bold yellow", Level.CRITICAL: "bold red"}
"""Rich styles for a colour terminal."""
MONO_STYLE = {Level.OK: "", Level.WARNING: "bold", Level.CRITICAL: "bold reverse"}
"""Styles under NO_COLOR: Textual would turn red into a dim grey, so use weight instead."""


def style(level: Level, *, color: bool = True) -> str:
    return (STYLE if color else MONO_STYLE)[level]


def rate_level(rate: float) -> Level:
    if rate >= CRITICAL_RATE:
        return Level.CRITICAL
    if rate >= WARNING_RATE:
        return Level.WARNING
    return Level.OK


def map_level(used: int, capacity: int, overflow: int) -> Level:
    """Overflow means drops went unattributed: critical. A nearly full map: warning."""
    if overflow:
        return Level.CRITICAL
    if capacity and used / capacity >= MAP_WARNING:
        return Level.WARNING
    return Level.OK


def legend() -> str:
    """One line for the help screen."""
    return (
        f"{MARK[Level.CRITICAL]} critical: >= {CRITICAL_RATE:g} drops/s   "
        f"{MARK[Level.WARNING]} warning: >= {WARNING_RATE:g} drops/s   "
        "(per row; the header applies the same thresholds to the total)"
    )
