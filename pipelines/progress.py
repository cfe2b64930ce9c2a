"""Live progress of a Dagster CLI run: ``dagster … 2>&1 | python -m pipelines.progress LOG``.

Every line of Dagster's output goes to ``LOG`` unchanged; the terminal gets one line per step
event — started, done with its duration, failed, and each asset check's verdict — so that a person
running ``make demo`` sees which stage is working instead of minutes of silence. Reads stdin to
its end, so the exit status of the pipeline is Dagster's (``set -o pipefail``).
"""

from __future__ import annotations

import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

# "<date> <time> <tz> - dagster - <LEVEL> - <job> - <run id> - <pid> - <step> - <EVENT> - <message>"
EVENT_LINE = re.compile(r" - dagster - [A-Z]+ - [^ ]+ - [0-9a-f-]+ - \d+ - (?P<step>[^ ]+) - "
                        r"(?P<event>[A-Z_]+) - (?P<message>.*)$")
SHOWN = ("STEP_START", "STEP_SUCCESS", "STEP_FAILURE", "ASSET_CHECK_EVALUATION")


@dataclass(frozen=True)
class StepEvent:
    step: str
    event: str
    message: str


def parse_event(line: str) -> StepEvent | None:
    """The step event a Dagster log line reports, if it is one worth showing."""
    match = EVENT_LINE.search(line.rstrip("\n"))
    if match is None or match["event"] not in SHOWN:
        return None
    return StepEvent(match["step"], match["event"], match["message"])


def format_event(event: StepEvent, elapsed: float) -> str:
    """One terminal line: ``[  12.3s] training_runs            done in 8.68s``."""
    if event.event == "STEP_START":
        what = "started"
    elif event.event == "STEP_SUCCESS":
        found = re.search(r" in ([0-9.]+m?s)\.?$", event.message)
        what = f"done in {found[1]}" if found else "done"
    elif event.event == "STEP_FAILURE":
        what = "FAILED (see the log)"
    else:
        what = event.message
    return f"[{elapsed:7.1f}s] {event.step:<24} {what}"


def relay(lines: TextIO, log: TextIO, out: TextIO, clock=time.monotonic) -> None:
    """Copy ``lines`` to ``log`` and a progress line per step event to ``out``."""
    start = clock()
    for line in lines:
        log.write(line)
        event = parse_event(line)
        if event is not None:
            print(format_event(event, clock() - start), file=out, flush=True)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m pipelines.progress LOG  (reads Dagster's output on stdin)", file=sys.stderr)
        return 2
    with Path(argv[0]).open("w") as log:
        relay(sys.stdin, log, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
