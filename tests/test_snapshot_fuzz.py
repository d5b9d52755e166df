"""Property-based fuzzing of the snapshot loader (hypothesis).

Whatever a file holds (arbitrary JSON, a valid snapshot with one part replaced,
deleted or retyped, arbitrary bytes, a valid file with bytes flipped), loading it
has exactly two outcomes: a Snapshot that every batch sink renders, that writes
back out and loads again; or a one-line DroptopError. Derandomized and without
an example database, so CI sees the same examples every run.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from droptop import render, snapshot_file, units
from droptop.errors import DroptopError
from droptop.frontends.tui import columns
from droptop.frontends.tui import format as fmt
from droptop.model import Snapshot
from tests.test_sanitize import HOSTILE, base_snapshot, dangerous

FUZZ = settings(
    max_examples=250,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

_DIR = tempfile.TemporaryDirectory(prefix="dtfuzz")
_PATH = Path(_DIR.name) / "fuzz.json"

BASE = json.loads(snapshot_file.to_json(base_snapshot(), full=True))

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 1, 2**64 - 1, 2**64, -1, 10**400]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e300, -0.0, 5e-324, 1.7e308]),
    st.text(max_size=80),
    st.sampled_from(HOSTILE),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=20,
)


def check_outcome(data: bytes) -> Snapshot | None:
    """Load `data` from a file: a usable Snapshot, or a one-line DroptopError."""
    _PATH.write_bytes(data)
    try:
        snap = snapshot_file.load_snapshot(_PATH)
    except DroptopError as e:
        message = str(e)
        assert "\n" not in message and message.startswith(str(_PATH))
        assert not dangerous(message)
        return None
    for out in (render.to_text(snap), render.to_text(snap, width=10_000), render.to_csv(snap)):
        assert not dangerous(out)
        out.encode("utf-8")
    shown_in_tui(snap)
    written = snapshot_file.to_json(snap, full=True)
    _PATH.write_text(written, encoding="utf-8")
    again = snapshot_file.load_snapshot(_PATH)  # what droptop writes, it reads
    assert [r.key for r in again.rows] == [r.key for r in snap.rows]
    assert all(math.isfinite(h) for h in again.total_history)
    return snap


def shown_in_tui(snap: Snapshot) -> None:
    """What the TUI computes from a snapshot without an app: cells, spark lines, clocks."""
    for row in snap.rows:
        for spec in columns.COLUMNS:
            for new in (True, False):
                assert not dangerous(columns.cell(spec, row, snap, 30, new=new).plain)
        units.date_clock(row.first_seen)
    fmt.spark(snap.total_history, 30)
    units.date_clock(snap.time)
    units.clock(snap.time)


def _dump(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode("utf-8", "surrogatepass")


@FUZZ
@given(json_values)
def test_arbitrary_json(value):
    check_outcome(_dump(value))


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every place in a JSON value: dict keys and list indexes, depth first."""
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


PATHS = sorted(
    {p for p in _paths(BASE) if p and all(s in (0, 1) or isinstance(s, str) for s in p)}, key=str
)
"""One place per field (the first two rows, the first stack, frame, location...)."""

EDGES = st.sampled_from(
    [
        float("nan"),
        float("inf"),
        float("-inf"),
        1e300,
        -1,
        -0.5,
        2**64,
        10**400,
        None,
        True,
        "",
        "x" * 100_000,
        [],
        {},
        [[[[[]]]]],
        *HOSTILE,
    ]
)
"""The values most likely to break something, drawn as often as everything else."""


def _set(doc: Any, path: tuple, value: Any, delete: bool) -> Any:
    doc = json.loads(json.dumps(doc))
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return doc


@settings(FUZZ, max_examples=600)
@given(
    st.lists(
        st.tuples(st.sampled_from(PATHS), st.one_of(EDGES, json_values), st.booleans()),
        min_size=1,
        max_size=3,
    )
)
def test_valid_snapshot_with_parts_replaced_or_deleted(changes):
    doc = BASE
    for path, value, delete in changes:
        try:
            doc = _set(doc, path, value, delete)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change removed or retyped the parent
    check_outcome(_dump(doc))


@FUZZ
@given(st.binary(max_size=2000))
def test_arbitrary_bytes(data):
    check_outcome(data)


VALID = snapshot_file.to_json(base_snapshot(), full=True).encode()


@FUZZ
@given(
    st.lists(
        st.tuples(st.integers(min_value=0, max_value=len(VALID) - 1), st.binary(max_size=4)),
        min_size=1,
        max_size=8,
    )
)
def test_valid_file_with_bytes_replaced(edits):
    data = bytearray(VALID)
    for offset, new in edits:
        data[offset : offset + len(new)] = new
    check_outcome(bytes(data))


def test_the_valid_base_loads():
    """The mutations start from a file that loads: otherwise they test only errors."""
    assert check_outcome(VALID) is not None
