"""A process killed (SIGKILL) while it settles a job leaves the ledger file untouched; killed after
the commit, fully applied. Either way a re-run settles the job exactly once.

The in-process crash variants (an exception at every posting) are in ``tests/settlement``; this
test kills a real process, which gets no chance to roll back or close the database."""

from __future__ import annotations

import pickle
import signal
import subprocess
import sys
from pathlib import Path

from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.settlement.support import dump
from verification.settlement import Ledger, SolverVerdict, settle_job
from verification.spec import get_preset

REPO = Path(__file__).resolve().parents[2]
SPEC = get_preset("minimal")
JOB = ("job-crash", SPEC.submitter, SPEC.economics,
       (SolverVerdict("honest", "paid"), SolverVerdict("lazy", "slashed", challenger=SPEC.verifier),
        SolverVerdict("bitflip", "paid", challenger=SPEC.verifier, false_challenge=True),
        SolverVerdict("idle", "unverified")),
       (SPEC.verifier,))


def settle(ledger: Ledger, job=JOB):
    job_id, submitter, terms, verdicts, verifiers = job
    return settle_job(ledger, job_id, submitter, terms, verdicts, verifiers)


def prepare(ledger: Ledger) -> Ledger:
    """A ledger that already holds another settled job (some parties are funded already)."""
    settle(ledger, ("job-earlier", *JOB[1:3], (SolverVerdict("honest", "paid"),), JOB[4]))
    return ledger


def count_postings() -> int:
    """Postings of the job on a prepared ledger (the parties funded before post no genesis)."""
    seen = []
    with prepare(Ledger(":memory:", on_posting=lambda tx, posting: seen.append(posting))) as ledger:
        seen.clear()
        settle(ledger)
    return len(seen)


POSTINGS = count_postings()


@settings(max_examples=4, deadline=None, database=None)
@example(kill_at=1)
@example(kill_at=POSTINGS)  # the last posting: still inside the transaction
@example(kill_at=POSTINGS + 1)  # after the commit
@given(kill_at=st.integers(1, POSTINGS + 1))
def test_settlement_killed_at_any_posting_is_all_or_nothing_and_a_rerun_settles_once(tmp_path_factory, kill_at):
    workdir = tmp_path_factory.mktemp("ledger")
    killed, clean, job = workdir / "killed.sqlite", workdir / "clean.sqlite", workdir / "job.pickle"
    job.write_bytes(pickle.dumps(JOB))
    with prepare(Ledger(killed)) as ledger:
        before = dump(ledger)
    with prepare(Ledger(clean)) as ledger:
        expected = settle(ledger)
        applied = dump(ledger)

    child = subprocess.run([sys.executable, "-m", "tests.reliability.workers", "settle", str(job),
                            str(killed), str(kill_at)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    committed = kill_at > POSTINGS
    assert ("settled after" in child.stdout) == committed

    with Ledger(killed) as ledger:
        # Rule checked: a settlement is written entirely or not at all
        assert dump(ledger) == (applied if committed else before), f"killed at posting {kill_at}"
        rerun = settle(ledger)
        assert rerun.already_settled == committed
        assert dump(ledger) == applied
        assert ledger.supply() == ledger.minted()
    assert rerun.transfers == expected.transfers and rerun.balances == expected.balances
