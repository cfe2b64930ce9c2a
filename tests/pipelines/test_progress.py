"""``make demo``'s live progress: Dagster's log lines in, one line per step event out."""

from __future__ import annotations

import io
import itertools

from pipelines.progress import StepEvent, format_event, parse_event, relay

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
