"""Start a long-running command (``dagster dev``, the webserver) with default signal handling.

A shell that starts a job with ``&`` makes it ignore SIGINT, and ``dagster dev`` then leaves its
children behind. This launcher restores SIGINT/SIGTERM to their defaults and ``exec``s the
command in its own process group, so whoever started it can stop it — and only it — by PID.
Usage: ``python -m pipelines.launch CMD [ARGS...]``.
"""

from __future__ import annotations

import os
import signal
import sys


def main(argv: list[str]) -> None:
    if not argv:
        raise SystemExit("usage: python -m pipelines.launch CMD [ARGS...]")
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main(sys.argv[1:])
