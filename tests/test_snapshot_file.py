"""Loading snapshot files: every format droptop wrote still loads, every bad file is one line.

A snapshot file is untrusted input (it may come from another machine, or from
someone who wants droptop to crash or hang): reads are bounded, the JSON is
checked field by field, and the only failure is a DroptopError that says what is
wrong and where.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from droptop import render, snapshot_file
from droptop.errors import DroptopError
from droptop.snapshot_file import load_snapshot, snapshot_from_dict
from tests.factories import row, snapshot
from tests.test_sanitize import base_snapshot, model_strings

DROPTOP = Path(sys.executable).with_name("droptop")


def full_dict() -> dict[str, Any]:
    return json.loads(snapshot_file.to_json(base_snapshot(), full=True))


def write(tmp_path: Path, content: str | bytes, name: str = "x.json") -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return path


def error_of(path: Path) -> str:
    with pytest.raises(DroptopError) as info:
        load_snapshot(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(path))
    assert info.value.exit_code == 1
    return message


def mutated(**changes: Any) -> str:
    """A full snapshot as JSON text with top-level fields replaced (raw JSON allowed)."""
    d = full_dict()
    raw = {}
    for k, v in changes.items():
        if isinstance(v, RawJSON):
            raw[k] = v.text
            d[k] = f"@@{k}@@"
        else:
            d[k] = v
    text = json.dumps(d)
    for k, t in raw.items():
        text = text.replace(json.dumps(f"@@{k}@@"), t)
    return text


class RawJSON:
    def __init__(self, text: str) -> None:
        self.text = text


def mutated_row(field: str, raw_json: str) -> str:
    d = full_dict()
    d["rows"][1][field] = "@@x@@"
    return json.dumps(d).replace('"@@x@@"', raw_json)


# --- what droptop writes keeps loading --------------------------------------------------


def test_full_snapshot_round_trips_exactly(tmp_path):
    snap = base_snapshot()
    back = load_snapshot(write(tmp_path, snapshot_file.to_json(snap, full=True) + "\n"))
    assert [r.key for r in back.rows] == [r.key for r in snap.rows]
    assert back.notes == snap.notes and back.interfaces == snap.interfaces
    assert back.total_history == snap.total_history and back.poll == snap.poll
    assert [r.stacks for r in back.rows] == [r.stacks for r in snap.rows]
    assert back.source == "replay" and back.names_source == "snapshot"


def test_batch_json_lines_load_the_last_line(tmp_path):
    """`droptop -b --format json > f`: one object per line; the newest is the last."""
    first = snapshot(row(packets=1))
    last = snapshot(row(packets=5), row(comm="b"), time=1_700_000_009.0)
    text = render.render(first, "json") + render.render(last, "json")
    back = load_snapshot(write(tmp_path, text))
    assert [r.packets for r in back.rows] == [5, 10] and back.time == 1_700_000_009.0
    assert back.rows[0].history == () and back.reason_table == ()


def test_pretty_printed_and_bom_files_load(tmp_path):
    d = full_dict()
    assert load_snapshot(write(tmp_path, json.dumps(d, indent=2))).rows
    assert load_snapshot(write(tmp_path, b"\xef\xbb\xbf" + json.dumps(d).encode())).rows


def test_minimal_old_snapshot_loads():
    snap = snapshot_from_dict({"time": 1.0, "rows": []})
    assert snap.rows == () and snap.total_packets == 0


def test_lone_surrogate_in_a_comm_loads(tmp_path):
    text = mutated_row("comm", '"a\\ud800"')
    snap = load_snapshot(write(tmp_path, text))
    assert snap.rows[1].key.comm == "a\ud800"


def test_strings_at_the_limits_load(tmp_path):
    d = full_dict()
    d["rows"][0]["comm"] = "c" * snapshot_file.MAX_LEN["comm"]
    d["rows"][0]["stacks"][0]["frames"] = ["f" * snapshot_file.MAX_LEN["frame"]] * 127
    snap = load_snapshot(write(tmp_path, json.dumps(d)))
    assert len(snap.rows[0].key.comm) == snapshot_file.MAX_LEN["comm"]


# --- bad values: one line that says what and where --------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (mutated(time=RawJSON("NaN")), "time: expected a time in seconds since the epoch, got NaN"),
        (mutated(time=RawJSON("Infinity")), "time: expected a time"),
        (mutated(time=RawJSON("-Infinity")), "got -Infinity"),
        (mutated(time=RawJSON("1e300")), "time: expected a time"),
        (mutated(time=RawJSON("1e400")), "time: expected a time"),
        (mutated(time=-1), "time: expected a time"),
        (mutated(time="now"), "time: expected a time in seconds since the epoch, got 'now'"),
        (mutated(interval=RawJSON("NaN")), "interval: expected a finite non-negative number"),
        (mutated(total_rate=-1.5), "total_rate: expected a finite non-negative number, got -1.5"),
        (mutated(total_history=RawJSON("[1, Infinity]")), "total_history[1]: expected a finite"),
        (mutated(total_history=RawJSON("[1, 1e999]")), "total_history[1]: expected a finite"),
        (mutated(total_history=5), "total_history: expected a list, got 5"),
        (mutated(total_packets=RawJSON("1" + "0" * 400)), "total_packets: expected a non-neg"),
        (mutated(overflow=2**64), "overflow: expected a non-negative integer, got 1844674"),
        (mutated(map_used=True), "map_used: expected a non-negative integer, got true"),
        (mutated(poll=1.5), "poll: expected a non-negative integer, got 1.5"),
        (mutated(bpf_ns_per_drop="fast"), "bpf_ns_per_drop: expected null or a finite non-neg"),
        (mutated(stacks_enabled="yes"), "stacks_enabled: expected true or false, got 'yes'"),
        (mutated(rows=None), "rows: expected a list, got null"),
        (mutated(rows=RawJSON("[1]")), "rows[0]: expected an object, got 1"),
        (mutated(hostname=["x"]), "hostname: expected a string, got a list"),
        (mutated(kernel="k" * 100_000), "kernel: longer than 256 characters (100000)"),
        (mutated(notes="one"), "notes: expected a list, got 'one'"),
        (mutated(notes=[1]), "notes[0]: expected a string, got 1"),
        (mutated(reason_table=[{"raw": -1, "name": "x"}]), "reason_table[0].raw: expected a non"),
        (mutated(reason_table=[{"raw": 1}]), "reason_table[0].name: missing"),
        (mutated(interfaces=[{"name": 3}]), "interfaces[0].name: expected a string, got 3"),
        (mutated(interfaces=[{"name": "e", "rx_drop_rate": "x"}]), "interfaces[0].rx_drop_rate"),
        (mutated(droptop_snapshot=99), "written by a newer droptop (format 99"),
        (
            mutated_row("packets", "Infinity"),
            "rows[1].packets: expected a non-negative integer, got Infinity",
        ),
        (
            mutated_row("packets", "1" + "0" * 400),
            "rows[1].packets: expected a non-negative integer, got 1000000000",
        ),
        (mutated_row("packets", "-3"), "rows[1].packets: expected a non-negative integer, got -3"),
        (mutated_row("bytes", '"12"'), "rows[1].bytes: expected a non-negative integer, got '12'"),
        (
            mutated_row("rate", "NaN"),
            "rows[1].rate: expected a finite non-negative number, got NaN",
        ),
        (mutated_row("raw", "null"), "rows[1].raw: expected a non-negative integer, got null"),
        (
            mutated_row("comm", '"' + "x" * 10_000_000 + '"'),
            "rows[1].comm: longer than 64 characters (10000000)",
        ),
        (mutated_row("comm", "7"), "rows[1].comm: expected a string, got 7"),
        (mutated_row("ifname", '"' + "x" * 65 + '"'), "rows[1].ifname: longer than 64"),
        (mutated_row("reason", '"' + "R" * 129 + '"'), "rows[1].reason: longer than 128"),
        (mutated_row("kernel_context", '"no"'), "rows[1].kernel_context: expected true or false"),
        (mutated_row("first_seen", "1e300"), "rows[1].first_seen: expected a time"),
        (mutated_row("history", "[0, NaN]"), "rows[1].history[1]: expected a finite"),
        (
            mutated_row("history", "[" + ",".join(["1"] * 4000) + "]"),
            "rows[1].history: more than 3600 entries (4000)",
        ),
        (
            mutated_row("locations", '[{"symbol": 1, "packets": 1}]'),
            "rows[1].locations[0].symbol: expected a string, got 1",
        ),
        (
            mutated_row("stacks", '[{"count": 1, "frames": "f"}]'),
            "rows[1].stacks[0].frames: expected a list",
        ),
        (
            mutated_row("stacks", '[{"count": 1, "frames": [["deep"]]}]'),
            "rows[1].stacks[0].frames[0]: expected a string, got a list",
        ),
        (
            mutated_row("stacks", '[{"count": Infinity, "frames": []}]'),
            "rows[1].stacks[0].count: expected a non-negative integer, got Infinity",
        ),
        (
            mutated_row("stacks", '[{"count": 1, "frames": [' + ",".join(['"f"'] * 300) + "]}]"),
            "rows[1].stacks[0].frames: more than 256 entries (300)",
        ),
    ],
)
def test_bad_values_are_one_line_naming_the_field(tmp_path, text, expected):
    message = error_of(write(tmp_path, text))
    assert expected in message, message


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "empty"),
        (b"  \n\n", "empty"),
        (b"[1, 2]", "expected a JSON object"),
        (b"null", "expected a JSON object"),
        (b"42", "expected a JSON object"),
        (b'"text"', "expected a JSON object"),
        (b"{not json", "invalid JSON"),
        (b'{"time": 1, "rows": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}", "nested too deeply"),
        (b'{"time": 1, "rows": []}\n{"time": 2, "rows": []}\n[1]', "expected a JSON object"),
        (b'{"time": 1, "rows": [], "hostname": "\xff\xfe"}', "not UTF-8 text (byte 0xff at offset"),
        (json.dumps({"time": 1, "rows": []}).encode("utf-16"), "UTF-16"),
        (json.dumps({"time": 1, "rows": []}).encode("utf-16-le"), "UTF-16"),
        (b"\x00" * 100, "binary data (a NUL byte at offset 0)"),
        (b'{"time": ' + b"9" * 5000 + b', "rows": []}', "number"),
        (b"\x1b]2;PWNED\x07", "not a droptop snapshot"),
    ],
)
def test_bad_files_are_one_line(tmp_path, content, expected):
    message = error_of(write(tmp_path, content))
    assert expected in message, message
    assert "\x1b" not in message and "\x07" not in message


def test_the_file_name_in_a_message_is_escaped(tmp_path):
    path = write(tmp_path, b"[]", name="\x1b]2;PWNED\x07.json")
    with pytest.raises(DroptopError) as info:
        load_snapshot(path)
    assert "\x1b" not in str(info.value) and "\\x1b]2;PWNED" in str(info.value)


def test_hostile_values_in_messages_are_escaped_and_short(tmp_path):
    message = error_of(write(tmp_path, mutated(time="\x1b]2;PWNED\x07" + "x" * 10_000)))
    assert "\x1b" not in message and "\\x1b]2;PWNED" in message and len(message) < 300


def test_counts_of_rows_are_limited(tmp_path, monkeypatch):
    monkeypatch.setattr(snapshot_file, "MAX_ROWS", 2)
    assert "rows: more than 2 entries (5)" in error_of(write(tmp_path, mutated()))


def test_snapshot_from_dict_raises_only_droptop_errors():
    for bad in (None, [], 3, "x", {"rows": []}, {"time": 1}, {"time": 1, "rows": {}}):
        with pytest.raises(DroptopError):
            snapshot_from_dict(bad)  # type: ignore[arg-type]


# --- bounded reads ---------------------------------------------------------------------


def test_cap_is_enough_for_a_10k_row_snapshot_with_stacks():
    """The measured size of what droptop writes, against the cap (see MAX_SNAPSHOT_BYTES)."""
    base = base_snapshot().rows[0]
    frames = tuple(f"__netif_receive_skb_core.constprop.{i}+0x{i:x}" for i in range(40))

    from droptop.model import StackSample

    rows = [
        base._replace(
            key=base.key._replace(comm=f"comm-{i:010d}", ifindex=i),
            rates=tuple(12345.678 + i for i in range(60)),
            rates_end=60,
            stacks=(StackSample(frames, 3),) * 2,
        )
        for i in range(10_240)
    ]
    size = len(snapshot_file.to_json(snapshot(*rows), full=True))
    assert size * 4 < snapshot_file.MAX_SNAPSHOT_BYTES, size


def test_regular_file_over_the_cap_is_refused_without_reading(tmp_path):
    path = tmp_path / "big.json"
    with open(path, "wb") as f:
        f.truncate(snapshot_file.MAX_SNAPSHOT_BYTES + 1)  # sparse: nothing to read
    start = time.monotonic()
    message = error_of(path)
    assert "larger than" in message and time.monotonic() - start < 0.1


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_endless_devices_end_at_once(device):
    start = time.monotonic()
    with pytest.raises(DroptopError) as info:
        load_snapshot(device)
    assert time.monotonic() - start < 0.5
    assert str(info.value).startswith(device) and "\n" not in str(info.value)


def test_directory_is_one_line(tmp_path):
    assert "is a directory" in error_of(tmp_path)
    with pytest.raises(DroptopError, match="cannot read"):
        load_snapshot(tmp_path / "missing.json")


def _feed_fifo(path: Path, head: bytes, body: bytes, stop: threading.Event) -> None:
    try:
        with open(path, "wb") as f:
            f.write(head)
            while not stop.is_set():
                f.write(body)
    except (BrokenPipeError, OSError):
        pass


def test_fifo_that_never_ends_stops_at_the_cap(tmp_path, monkeypatch):
    monkeypatch.setattr(snapshot_file, "MAX_SNAPSHOT_BYTES", 4 << 20)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    stop = threading.Event()
    writer = threading.Thread(target=_feed_fifo, args=(fifo, b"{", b" " * 65536, stop))
    writer.start()
    try:
        message = error_of(fifo)
    finally:
        stop.set()
        writer.join(5)
    assert "more than 4.0 MiB" in message


def test_snapshot_through_a_pipe_loads(tmp_path):
    """`--replay <(zcat x.json.gz)`: not a regular file, still read (with the cap)."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    text = snapshot_file.to_json(base_snapshot(), full=True).encode()

    def feed() -> None:
        with open(fifo, "wb") as f:
            for i in range(0, len(text), 100):
                f.write(text[i : i + 100])
                f.flush()

    writer = threading.Thread(target=feed)
    writer.start()
    snap = load_snapshot(fifo)
    writer.join(5)
    assert model_strings(snap) == model_strings(load_snapshot(write(tmp_path, text)))


# --- the command line, end to end -------------------------------------------------------


def run_cli(*args: str | Path, timeout: float = 20) -> subprocess.CompletedProcess:
    return subprocess.run(
        [DROPTOP, *map(str, args)], capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.parametrize(
    "content",
    [
        b'{"time": NaN, "rows": []}',
        b'{"time": 1, "rows": [], "total_history": [Infinity]}',
        b"[]",
        b"null",
        b'{"time": 1, "rows": ' + b"[" * 100_000 + b"}",
        b"\xff\xfe{\x00",
        b'{"time": 1, "rows": [{"comm": "\\ud800"}]}',
        b'{"time": 1, "rows": [{"raw": 1, "reason": "r", "subsys": "s", "comm": "'
        + b"x" * 10_000_000
        + b'", "packets": 1, "bytes": 1}]}',
    ],
    ids=["nan", "inf-history", "list", "null", "deep", "utf16", "surrogate-no-fields", "10MB-comm"],
)
def test_cli_bad_file_is_one_line_exit_1(tmp_path, content):
    path = write(tmp_path, content)
    start = time.monotonic()
    p = run_cli("--replay", path, "-b")
    assert p.returncode == 1, p.stderr
    assert "Traceback" not in p.stderr and p.stdout == ""
    assert p.stderr.count("\n") == 1 and p.stderr.startswith(f"droptop: {path}"), p.stderr
    assert time.monotonic() - start < 5


@pytest.mark.parametrize("target", ["/dev/zero", "/dev/urandom", "dir", "fifo"])
def test_cli_endless_or_odd_inputs_end_within_a_second(tmp_path, target):
    stop = threading.Event()
    writer = None
    if target == "dir":
        target = str(tmp_path)
    elif target == "fifo":
        fifo = tmp_path / "fifo"
        os.mkfifo(fifo)
        writer = threading.Thread(target=_feed_fifo, args=(fifo, b"", b"\n" * 65536, stop))
        writer.start()
        target = str(fifo)
    try:
        start = time.monotonic()
        p = run_cli("--replay", target, "-b")
        elapsed = time.monotonic() - start
    finally:
        stop.set()
        if writer is not None:
            writer.join(5)
    assert p.returncode == 1 and "Traceback" not in p.stderr, p.stderr
    assert p.stderr.count("\n") == 1
    # The interpreter's start-up included: 1.63 s once in a fresh clone's first run
    # (no bytecode caches yet); an input read without end would never finish.
    assert elapsed < 3.0


def test_cli_sigterm_while_reading_a_slow_pipe(tmp_path):
    """A reader stuck on a pipe still ends on SIGTERM (143), without a traceback."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    proc = subprocess.Popen(
        [DROPTOP, "--replay", str(fifo), "-b"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    with open(fifo, "wb") as f:
        f.write(b'{"time": 1,')
        f.flush()
        time.sleep(0.5)  # droptop is now blocked reading the rest
        proc.terminate()
        _, err = proc.communicate(timeout=5)
    assert proc.returncode == 143 and "Traceback" not in err, err
