"""Live progress of a Dagster CLI run: ``dagster … 2>&1 | python -m pipelines.progress LOG``.

Every line of Dagster's output goes to ``LOG`` unchanged; the terminal gets one line per step
event — started, done with its duration, failed, and each asset check's verdict — and, while the
solvers train, a progress bar per solver (tqdm; on a terminal that is not a TTY, one line when a
solver starts and one when it is done), so that a person running ``make demo`` sees which stage and
which solver is working instead of minutes of silence. Reads stdin to its end, so the exit status
of the pipeline is Dagster's (``set -o pipefail``).
"""

from __future__ import annotations

import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from tqdm import tqdm

# "<date> <time> <tz> - dagster - <LEVEL> - <job> - <run id> - <pid> - <step> - <EVENT> - <message>"
EVENT_LINE = re.compile(r" - dagster - [A-Z]+ - [^ ]+ - [0-9a-f-]+ - \d+ - (?P<step>[^ ]+) - "
                        r"(?P<event>[A-Z_]+) - (?P<message>.*)$")
SHOWN = ("STEP_START", "STEP_SUCCESS", "STEP_FAILURE", "ASSET_CHECK_EVALUATION")
# a stage that reused a previous run of the same job says so (``pipelines.assets.training``)
NOTE_LINE = re.compile(r" - (?P<step>[A-Za-z0-9_]+) - (?P<message>reused: .*)$")
# what ``pipelines.assets.training.format_progress`` logs
PROGRESS_LINE = re.compile(r" - (?P<step>[A-Za-z0-9_]+) - progress: (?P<solver>\S+) (?P<done>\d+)/(?P<total>\d+) "
                           r"checkpoints$")


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


@dataclass(frozen=True)
class Progress:
    solver: str
    done: int
    total: int


def parse_progress(line: str) -> Progress | None:
    """A solver's training progress, if the line reports one."""
    match = PROGRESS_LINE.search(line.rstrip("\n"))
    return None if match is None else Progress(match["solver"], int(match["done"]), int(match["total"]))


class TrainingBars:
    """One bar per solver while the solvers train: tqdm bars on a TTY, else a line per solver
    when it starts and when it has stored all its checkpoints."""

    def __init__(self, out: TextIO, clock, start: float):
        self.out, self.clock, self.start = out, clock, start
        self.tty = hasattr(out, "isatty") and out.isatty()
        self.bars: dict[str, tqdm] = {}
        self.shown: dict[str, int] = {}

    def update(self, progress: Progress) -> None:
        if self.tty:
            bar = self.bars.get(progress.solver)
            if bar is None:
                bar = self.bars[progress.solver] = tqdm(
                    total=progress.total, desc=f"{'':11}training {progress.solver:<12}", unit="ckpt",
                    file=self.out, position=len(self.bars), leave=True, dynamic_ncols=True)
            bar.update(progress.done - bar.n)
            return
        first, done = progress.solver not in self.shown, progress.done == progress.total
        if (first or done) and self.shown.get(progress.solver) != progress.done:
            self.shown[progress.solver] = progress.done
            print(f"[{self.clock() - self.start:7.1f}s] {'':24} training {progress.solver:<12} "
                  f"{progress.done}/{progress.total} checkpoints", file=self.out, flush=True)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()
        self.bars.clear()


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
    bars = TrainingBars(out, clock, start)
    for line in lines:
        log.write(line)
        progress = parse_progress(line)
        if progress is not None:
            bars.update(progress)
            continue
        note = NOTE_LINE.search(line.rstrip("\n"))
        if note is not None:
            print(f"[{clock() - start:7.1f}s] {note['step']:<24} {note['message']}", file=out, flush=True)
            continue
        event = parse_event(line)
        if event is not None:
            bars.close()
            print(format_event(event, clock() - start), file=out, flush=True)
    bars.close()


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m pipelines.progress LOG  (reads Dagster's output on stdin)", file=sys.stderr)
        return 2
    with Path(argv[0]).open("w") as log:
        relay(sys.stdin, log, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
