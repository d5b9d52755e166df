"""Files written whole or not at all: a temp file beside the target, then a rename.

Snapshots, `-o` output and pcapng captures all go through here, so a reader (a
script tailing the snapshot directory, tcpdump) never sees half a file, and a
failure is one line that names the file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from droptop.errors import DroptopError
from droptop.sanitize import printable


def write_atomic(path: str | os.PathLike, data: str | bytes) -> Path:
    """Write `data` (text as UTF-8) to `path` atomically; DroptopError on failure."""
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=directory)
    except OSError as e:
        raise DroptopError(f"cannot write {printable(str(target))}: {e.strerror or e}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise DroptopError(f"cannot write {printable(str(target))}: {e.strerror or e}") from None
    return target
