"""``make demo``'s live progress: Dagster's log lines in, one line per step event out."""

from __future__ import annotations

import io
import itertools
import threading
from pathlib import Path

from pipelines.assets.training import format_progress, watch_training
from pipelines.progress import Progress, StepEvent, format_event, parse_event, parse_progress, relay
from verification.job import resolve_job
from verification.paths import ArtifactPaths
from verification.spec import compute_job_id

RUN = "2026-11-30 01:50:47 +0000 - dagster - DEBUG - __ASSET_JOB - b7729f2c-2b86-4eec-ba64-e479089712d8 - 12533"
LOG = f"""{RUN} - dataset_shards - STEP_START - Started execution of step "dataset_shards".
{RUN} - dataset_shards - ASSET_MATERIALIZATION - Materialized value dataset_shards.
{RUN} - dataset_shards - STEP_SUCCESS - Finished execution of step "dataset_shards" in 4.01s.
a line of a party process's own output
{RUN} - commitments_signatures_valid - ASSET_CHECK_EVALUATION - Asset check 'signatures_valid' on 'commitments' passed.
{RUN} - training_runs - STEP_FAILURE - Execution of step "training_runs" failed.
"""


def test_step_events_are_parsed_and_everything_else_is_not():
    events = [parse_event(line) for line in LOG.splitlines()]
    assert events == [
        StepEvent("dataset_shards", "STEP_START", 'Started execution of step "dataset_shards".'),
        None,  # materializations are not shown: the step's end says it
        StepEvent("dataset_shards", "STEP_SUCCESS", 'Finished execution of step "dataset_shards" in 4.01s.'),
        None,
        StepEvent("commitments_signatures_valid", "ASSET_CHECK_EVALUATION",
                  "Asset check 'signatures_valid' on 'commitments' passed."),
        StepEvent("training_runs", "STEP_FAILURE", 'Execution of step "training_runs" failed.'),
    ]


def test_the_terminal_gets_one_line_per_event_and_the_log_every_line():
    log, out = io.StringIO(), io.StringIO()
    ticks = itertools.count()  # an injected clock: one second per reading
    relay(io.StringIO(LOG), log, out, clock=lambda: float(next(ticks)))
    assert log.getvalue() == LOG
    assert out.getvalue().splitlines() == [
        "[    1.0s] dataset_shards           started",
        "[    2.0s] dataset_shards           done in 4.01s",
        "[    3.0s] commitments_signatures_valid Asset check 'signatures_valid' on 'commitments' passed.",
        "[    4.0s] training_runs            FAILED (see the log)",
    ]


def test_a_success_without_a_duration_still_reads_done():
    event = StepEvent("report", "STEP_SUCCESS", "Finished execution of step.")
    assert format_event(event, 0.5) == "[    0.5s] report                   done"


PROGRESS = "2026-12-07 01:22:04 +0000 - dagster - INFO - __ASSET_JOB - 77f5806d-6b77-485e-9213-d5d65c45c140 - training_runs"


def progress_log(*counts: tuple[str, int]) -> str:
    return "".join(f"{PROGRESS} - {format_progress(solver, done, 4)}\n" for solver, done in counts)


def test_training_progress_is_parsed_from_the_lines_the_asset_logs():
    assert [parse_progress(line) for line in progress_log(("honest", 0), ("lazy", 4)).splitlines()] == \
        [Progress("honest", 0, 4), Progress("lazy", 4, 4)]
    assert parse_progress(LOG.splitlines()[0]) is None


def test_off_a_tty_each_solver_gets_a_line_when_it_starts_and_when_it_is_done():
    log, out = io.StringIO(), io.StringIO()
    lines = progress_log(("honest", 0), ("lazy", 0), ("honest", 1), ("honest", 4), ("lazy", 2), ("lazy", 4))
    relay(io.StringIO(lines + LOG.splitlines(keepends=True)[2]), log, out, clock=lambda: 0.0)
    assert [line.split()[-3:] for line in out.getvalue().splitlines()] == [
        ["honest", "0/4", "checkpoints"], ["lazy", "0/4", "checkpoints"],
        ["honest", "4/4", "checkpoints"], ["lazy", "4/4", "checkpoints"], ["done", "in", "4.01s"]]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_tty_each_solver_gets_a_bar_that_ends_full():
    out = Terminal()
    relay(io.StringIO(progress_log(("honest", 0), ("honest", 2), ("honest", 4))), io.StringIO(), out,
          clock=lambda: 0.0)
    assert "training honest" in out.getvalue() and "4/4" in out.getvalue() and "\r" in out.getvalue()


def test_watch_training_reports_each_new_count_while_the_stage_runs(tmp_path, tiny_spec):
    paths = ArtifactPaths(tmp_path)
    store = paths.checkpoints(compute_job_id(tiny_spec), "honest")
    reported, release = [], threading.Event()

    def train():
        chunks = Path(store) / "rows"
        chunks.mkdir(parents=True)
        for index in range(tiny_spec.num_checkpoints):
            (chunks / f"c.{index}.0").touch()
            release.wait(timeout=0.05)  # a moment for the watcher to look (it may miss some)
        return "the runs"

    assert watch_training(resolve_job(tiny_spec), paths, train, reported.append, poll_s=0.01) == "the runs"
    counts = [int(line.split()[2].split("/")[0]) for line in reported]
    assert counts == sorted(set(counts)) and counts[-1] == tiny_spec.num_checkpoints  # new counts only, to the end
    assert reported[-1] == format_progress("honest", tiny_spec.num_checkpoints, tiny_spec.num_checkpoints)
