"""Small JSON records on local disk, written atomically.

Every writer of a report, a transcript or a stage record goes through ``write_json``: the data is
written to a temp file of its own in the target's directory (``tempfile.mkstemp``, so two
processes writing the same record never share a temp file) and renamed over the target, so a
reader sees the old record or the new one, never half of one.

``write_once`` is for records that must never change once written (the verifier's coin and its
commitment): the bytes are written to a temp file and hard-linked to the target, which fails if the
target exists, so of two writers the first wins and both get its bytes back.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_json(path: Path, data: Any) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=1)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_once(path: Path, data: bytes, mode: int = 0o644) -> bytes:
    """Create ``path`` holding ``data`` unless it exists; returns what ``path`` holds (the first
    writer's bytes). Never overwrites, never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path.read_bytes()
