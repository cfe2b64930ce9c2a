"""Child processes for the crash tests: each does real work and is killed with SIGKILL.

``python -m tests.reliability.workers train JOB.pickle STORE PAUSE``
    trains honestly, printing ``step t`` as each step starts, and stops for good at step
    ``PAUSE`` so that the parent can kill it there.
``python -m tests.reliability.workers settle JOB.pickle LEDGER KILL_AT``
    settles a job on a file ledger and kills itself (SIGKILL: no rollback, no close) right after
    posting number ``KILL_AT`` is written inside the SQL transaction; with ``KILL_AT`` past the last
    posting it kills itself after the settlement committed.
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Announced:
    """Honest (and named so: a resumed run must be the same run), announcing each step."""

    pause: int
    name: str = "honest"

    def run_step(self, program, state):
        from verification.strategies import honest_step

        step = state.step + 1
        print(f"step {step}", flush=True)
        if step == self.pause:
            time.sleep(600)
        return honest_step(program, state)

    def divergence_step(self, spec):
        return None


def train_until_killed(job: Path, store: Path, pause: int) -> None:
    from verification.execution.program import load_program
    from verification.solver import train

    spec, dataset, job_id, solver_id = pickle.loads(job.read_bytes())
    train(load_program(spec, dataset), Announced(pause), store, job_id, solver_id)


def settle_until_killed(job: Path, ledger_path: Path, kill_at: int) -> None:
    from verification.settlement import Ledger, settle_job

    job_id, submitter, terms, verdicts, verifiers = pickle.loads(job.read_bytes())
    seen = []

    def die(transaction, posting) -> None:
        seen.append(posting)
        if len(seen) == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    ledger = Ledger(ledger_path, on_posting=die)
    settle_job(ledger, job_id, submitter, terms, verdicts, verifiers)
    print(f"settled after {len(seen)} postings", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    command, job_file, target, number = sys.argv[1:]
    worker = {"train": train_until_killed, "settle": settle_until_killed}[command]
    worker(Path(job_file), Path(target), int(number))
