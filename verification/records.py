"""Small JSON records on local disk, written atomically.

Every writer of a report, a transcript or a stage record goes through ``write_json``: the data is
written to a temp file of its own in the target's directory (``tempfile.mkstemp``, so two
processes writing the same record never share a temp file) and renamed over the target, so a
reader sees the old record or the new one, never half of one.
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
