"""One resolved job: what every stage of a job shares, computed once, where the job is created.

A *job spec* (``verification.spec``) says what to train and under which rules. A *job* is that spec
resolved:

- its *job id*, content-addressed from the spec (``verification.spec``): derived here, once, and
  nowhere else in the lifecycle;
- the *dataset commitment* its program trains on (``None`` only while the job opens, before its
  shards are committed);
- each party's *strategy* as named in the spec (catalog name or ``"package.module:attr"`` with
  its parameters): every solver's, and the verifier's challenger strategy. Plug-ins are named
  here and imported only in their party's process (``verification.parties``);
- each party's registered BLS *public key* (demo keys derived from the job seed:
  ``verification.solver.party_keypair``; a secret key never leaves its party);
- the *economic terms* settlement applies: the one schedule, ``EconomicTerms``.

consensus-specs passes one ``BeaconState`` to every function instead of letting each re-read the
chain; the lifecycle passes one ``Job`` the same way (docs/design.md §1), and the protocol's
transitions (``verification.protocol``) read the job's keys and terms from it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from datasets.sharding import DatasetCommitment
from proofs.types import JobId, PartyId, SolverId
from verification.settlement.rules import EconomicTerms
from verification.solver import party_keypair
from verification.spec import REFEREE_ID, JobSpec, SolverSpec, compute_job_id


class LifecycleError(RuntimeError):
    """A stage cannot proceed with what the previous stages produced."""


class ProtocolError(LifecycleError):
    """An invalid protocol message (``verification.protocol``): it is refused, the state unchanged."""


class UnknownPartyError(ProtocolError):
    """A message names a party that is not one of the job's."""


@dataclass(frozen=True)
class Job:
    """A job spec resolved once: id, dataset commitment, strategies, keys and terms."""

    spec: JobSpec
    job_id: JobId
    dataset: DatasetCommitment | None
    solvers: tuple[SolverSpec, ...]  # each solver's strategy name and parameters, in the spec's order
    challenger: SolverSpec  # the verifier as a party: its id and the strategy it challenges with
    public_keys: tuple[tuple[PartyId, bytes], ...]  # every solver's and the verifier's registered key
    terms: EconomicTerms


def compute_challenger(spec: JobSpec) -> SolverSpec:
    """The verifier as a party: its id and the strategy it challenges with."""
    return SolverSpec(SolverId(spec.verifier), spec.challenger_strategy, spec.challenger_params)


REFEREE = PartyId(REFEREE_ID)  # the party that rules on disputes and signs its rulings (the coordinator)


def resolve_job(spec: JobSpec, dataset: DatasetCommitment | None = None) -> Job:
    """The job ``spec`` describes, on ``dataset``: the one place a job's identity is derived."""
    parties = [PartyId(s.solver_id) for s in spec.solvers] + [spec.verifier, REFEREE]
    return Job(spec, compute_job_id(spec), dataset, tuple(spec.solvers), compute_challenger(spec),
               tuple((p, party_keypair(spec, p)[1]) for p in parties), spec.economics)


def as_job(job: Job | JobSpec) -> Job:
    """``job`` itself, or the job a bare spec describes (for callers that hold only a spec)."""
    return job if isinstance(job, Job) else resolve_job(job)


def with_dataset(job: Job, dataset: DatasetCommitment) -> Job:
    """The job once its dataset is committed (the same id: the spec names the data source)."""
    return job if job.dataset == dataset else dataclasses.replace(job, dataset=dataset)


def get_solver_ids(job: Job) -> tuple[SolverId, ...]:
    return tuple(s.solver_id for s in job.solvers)


def is_solver(job: Job, party: str) -> bool:
    return party in get_solver_ids(job)


def get_solver(job: Job, solver_id: SolverId) -> SolverSpec:
    """``UnknownPartyError`` naming the job for a solver that is not one of its own."""
    for solver in job.solvers:
        if solver.solver_id == solver_id:
            return solver
    raise UnknownPartyError(f"job {job.job_id} has no solver {solver_id!r} (solvers: {list(get_solver_ids(job))})")


def get_public_key(job: Job, party: str) -> bytes:
    """The registered public key of ``party``; ``UnknownPartyError`` for a party of another job."""
    for owner, key in job.public_keys:
        if owner == party:
            return key
    raise UnknownPartyError(f"job {job.job_id} registers no key for party {party!r}")
