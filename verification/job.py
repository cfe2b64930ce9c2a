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
  ``verification.solver.party_keypair``; a secret key never leaves its party), and each
  verifier's *proof of possession* of its key (``proofs.keys``): the *verifier registry*
  (``get_verifier_registry``) that aggregate attestations are checked against admits a key only
  with one, so no verifier can register a rogue key built from the others' to forge an aggregate;
- its *verifier committee* (``get_committee``): the lead verifier, then the spec's attesters;
- the *economic terms* settlement applies: the one schedule, ``EconomicTerms``.

consensus-specs passes one ``BeaconState`` to every function instead of letting each re-read the
chain; the lifecycle passes one ``Job`` the same way (docs/design.md §1), and the protocol's
transitions (``verification.protocol``) read the job's keys and terms from it.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

from datasets.sharding import DatasetCommitment
from proofs.bls import get_backend
from proofs.keys import KeyRegistry
from proofs.types import JobId, PartyId, SolverId
from verification.settlement.rules import EconomicTerms
from verification.solver import party_keypair
from verification.spec import REFEREE_ID, JobSpec, SolverSpec, compute_job_id
from verification.spec import get_committee as get_spec_committee


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
    public_keys: tuple[tuple[PartyId, bytes], ...]  # every solver's, every verifier's and the referee's key
    terms: EconomicTerms
    proofs: tuple[tuple[PartyId, bytes], ...] = ()  # each verifier's proof of possession of its key


def compute_challenger(spec: JobSpec) -> SolverSpec:
    """The lead verifier as a party: its id and the strategy it challenges with."""
    return SolverSpec(SolverId(spec.verifier), spec.challenger_strategy, spec.challenger_params)


def get_challenger(job: Job, verifier: PartyId) -> SolverSpec:
    """A committee member as a dispute party: the lead verifier with the spec's challenger
    strategy (``job.challenger``), an attester honest; ``UnknownPartyError`` for anyone else."""
    require_verifier_of(job, verifier)
    return job.challenger if verifier == job.spec.verifier else SolverSpec(SolverId(verifier), "honest")


REFEREE = PartyId(REFEREE_ID)  # the party that rules on disputes and signs its rulings (the coordinator)


def resolve_job(spec: JobSpec, dataset: DatasetCommitment | None = None) -> Job:
    """The job ``spec`` describes, on ``dataset``: the one place a job's identity is derived."""
    committee = get_spec_committee(spec)
    parties = [PartyId(s.solver_id) for s in spec.solvers] + [*committee, REFEREE]
    return Job(spec, compute_job_id(spec), dataset, tuple(spec.solvers), compute_challenger(spec),
               tuple((p, party_keypair(spec, p)[1]) for p in parties), spec.economics,
               tuple((v, compute_proof_of_possession(spec, v)) for v in committee))


def compute_proof_of_possession(spec: JobSpec, party: PartyId) -> bytes:
    """``party``'s proof of possession of its demo key (``proofs.keys``), made with its secret key."""
    return get_backend().pop_prove(party_keypair(spec, party)[0])


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


def get_committee(job: Job) -> tuple[PartyId, ...]:
    """The job's verifiers in committee order: the lead verifier, then the attesters."""
    return get_spec_committee(job.spec)


def is_verifier(job: Job, party: object) -> bool:
    return party in get_committee(job)


def require_verifier_of(job: Job, party: object) -> PartyId:
    """``party`` when it is one of the job's verifiers; ``UnknownPartyError`` naming the job otherwise."""
    if not is_verifier(job, party):
        raise UnknownPartyError(f"job {job.job_id}: {party!r} is not one of its verifiers "
                                f"{list(get_committee(job))}")
    return PartyId(str(party))


def get_verifier_registry(job: Job) -> KeyRegistry:
    """The registry of the committee's keys, each registered with its proof of possession
    (``KeyRegistry.register``: a rogue key is refused). Only a verifier's key is in it, so a
    solver or the referee cannot sign an attestation. ``UnknownPartyError`` for a job that holds
    no proof for one of its verifiers."""
    return build_verifier_registry(job.job_id, get_committee(job), job.public_keys, job.proofs)


@functools.lru_cache(maxsize=64)
def build_verifier_registry(job_id: JobId, committee: tuple[PartyId, ...], keys: tuple[tuple[PartyId, bytes], ...],
                            proofs: tuple[tuple[PartyId, bytes], ...]) -> KeyRegistry:
    """``get_verifier_registry``, built once per job (a proof of possession costs two pairings)."""
    registry, by_party, by_proof = KeyRegistry(), dict(keys), dict(proofs)
    for verifier in committee:
        if verifier not in by_party or verifier not in by_proof:
            raise UnknownPartyError(f"job {job_id} registers no key with a proof of possession for "
                                    f"verifier {verifier!r}")
        # Rule: a verifier's key counts for aggregates only with its proof of possession.
        registry.register(verifier, by_party[verifier], by_proof[verifier])
    return registry
