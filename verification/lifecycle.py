"""One job's lifecycle as a chain of stage functions (docs/design.md §1).

``shard -> train -> commit -> verify -> dispute -> settle -> report``. Each stage is a plain
function of the job (``verification.job.Job``: the spec resolved once, with its id, dataset
commitment, strategies, keys and terms) and the previous stages' outputs; each Dagster asset calls
exactly one of them, and ``run_job`` chains them all for scripts, tests and benchmarks. A stage
also takes a bare ``JobSpec`` (resolved once, on entry) for callers that hold only a spec.

What a stage decides about the protocol goes through its transitions (``verification.protocol``):
a stage rebuilds the job's ``JobState`` from its inputs with ``process_commit``,
``process_reveal``, ``process_check``, ``process_challenge``, ``process_dispute`` and
``process_settle``, so the CLI, the Dagster assets and the fleet, which all call the stages,
apply the same rules. Stage outputs are small frozen dataclasses (roots, paths, verdicts), so
they pickle cheaply between processes; the heavy data (shards, checkpoints) stays in zarr under
the artifacts directory.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import secrets
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import torch

from datasets.sharding import DatasetCommitment, write_shards
from datasets.sources import UnknownSourceError, load_source
from proofs.bls import MalformedKeyError, MalformedSignatureError
from proofs.messages import (
    AggregateAttestation,
    Commitment,
    MalformedMessageError,
    Signed,
    aggregate_attestations,
    encode_message,
    sign_message,
    signing_root,
    verify_signed,
)
from proofs.types import JobId, PartyId, Root, SolverId, Step, is_root
from verification import store
from verification.clock import SECOND, STEP, Budget, compute_budget_units, compute_reference_s
from verification.data_parallel import DataParallelError, train_data_parallel
from verification.dispute import DisputeGame, DisputeResult, save_transcript
from verification.execution.program import Program, dry_run, load_program
from verification.execution.repro.mode import UncoveredOperatorError
from verification.job import (
    REFEREE,
    Job,
    LifecycleError,
    ProtocolError,
    as_job,
    get_challenger,
    get_committee,
    get_public_key,
    get_solver,
    with_dataset,
)
from verification.parties import PartyError, RemoteProvider, run_in_party
from verification.paths import ArtifactPaths
from verification.protocol import (
    Challenge,
    CheckReport,
    DisputeOutcome,
    ForgedMessageError,
    InvalidMessageError,
    JobState,
    SettleRequest,
    compute_attestation,
    compute_genesis_state,
    compute_ruling,
    get_first_finder,
    get_open_challenges,
    process_attest,
    process_challenge,
    process_check,
    process_commit,
    process_dispute,
    process_reveal,
    process_rule,
    process_settle,
    require_valid_commitment,
)
from verification.protocol import compute_verdicts as compute_protocol_verdicts
from verification.protocol import get_revealed_ticket as get_protocol_ticket
from verification.providers import build_trace_provider
from verification.settlement import (
    Ledger,
    SettlementResult,
    SolverVerdict,
    is_job_settled,
    settle_job,
)
from verification.settlement.incentives import (
    IncentiveParams,
    SimulationResult,
    SweepGrid,
    plot_cheating_region,
    simulate,
    sweep,
)
from verification.settlement.settle import compute_job_requirements, get_shortfalls
from verification.solver import (
    DiscardedCheckpointWarning,
    TrainingRun,
    build_commitment,
    party_keypair,  # noqa: F401 -- re-exported: tests sign with the job's demo keys
    sign_commitments,
    train_solver,
)
from verification.spec import JobSpec, Mode, Policy, SolverSpec, SpecError, validate_spec
from verification.strategies import (
    StrategyError,
    compute_divergence,
    is_plugin,
    resolve_party_strategies,
    resolve_party_strategy,
)
from verification.verifier import (
    SECRET_SIZE,
    CoinCommitment,
    CoinReveal,
    SpotCheck,
    check_equivocation,
    check_interval,
    check_replicate,
    check_tolerance,
    compute_check_intervals,
    compute_coin_commitment,
    compute_selection_faults,
    find_equivocation,
    forfeited,
    inconclusive,
    is_attestable,
    is_selected_for_check,
    is_valid_coin_reveal,
    not_checked,
)

T = TypeVar("T")


@dataclass(frozen=True)
class Timed(Generic[T]):
    """A stage's output, its wall time (the report's ``timings_s``) and the job it belongs to."""

    value: T
    seconds: float
    job_id: JobId = JobId("")


def timed(fn: Callable[..., T], job: Job | JobSpec, *args: Any) -> Timed[T]:
    """``fn(job, *args)``, timed and labelled with the job's id."""
    job = as_job(job)
    start = time.perf_counter()
    value = fn(job, *args)
    return Timed(value, time.perf_counter() - start, job.job_id)


class ForeignInputError(LifecycleError):
    """A stage was handed the output of another job's stage."""


def require_job(job: Job | JobSpec, **inputs: Timed) -> None:
    """``ForeignInputError`` naming both job ids when an input belongs to another job (DESIGN
    contract "one job per run": a stage refuses it before writing anything)."""
    job_id = as_job(job).job_id
    for name, value in inputs.items():
        # Rule: every input of a stage is an output of the same job's stages.
        if value.job_id != job_id:
            raise ForeignInputError(f"input {name!r} belongs to job {value.job_id or '(unlabelled)'}, this run's "
                                    f"job is {job_id}: materialize the upstream assets for this job first")


def validate_job(job: Job | JobSpec, paths: ArtifactPaths | None = None) -> None:
    """Everything that can be rejected before any work (nothing is sharded, trained, staked or
    written before it passes): the spec's rules, a dry build of the program (the data source
    loads, the model builds on its metadata, a batch and the shards fit the data), every strategy
    (a plug-in is resolved in a party process, never in the coordinator: ``verification.parties``)
    and, with ``paths``, every party's funds on the ledger."""
    spec = job.spec if isinstance(job, Job) else job
    validate_spec(spec)
    if paths is not None:
        check_store(paths)
    check_program(spec)
    job = as_job(job)  # its id hashes the plug-in modules, which the dry build found
    parties = [*job.solvers, job.challenger]
    for party in (p for p in parties if not is_plugin(p.strategy)):
        resolve_party_strategy(party)
    plugins = [p for p in parties if is_plugin(p.strategy)]
    if plugins:
        try:
            run_in_party("validation", resolve_party_strategies, plugins, timeout=PROBE_TIMEOUT_S)
        except PartyError as exc:
            raise StrategyError(f"job {job.job_id}: {exc.reason}") from None
    if paths is not None:
        check_funds(job, paths.ledger)


def check_store(paths: ArtifactPaths) -> None:
    """``LifecycleError`` for a store that party processes cannot reach: ``memory://`` is one
    process's memory, and every party trains and answers in its own process."""
    if paths.store.startswith("memory://"):
        raise LifecycleError(f"store {paths.store!r} lives in this process's memory; parties run in their "
                             f"own processes: use a directory, file:// or an object store (s3://…)")


def check_program(spec: JobSpec) -> None:
    """A dry build of the job's program: ``SpecError`` naming the field and the value."""
    try:
        source = load_source(spec.dataset, **spec.dataset_params)
    except (UnknownSourceError, TypeError, ValueError, OSError) as exc:
        raise SpecError(f"dataset {spec.dataset!r} with dataset_params {spec.dataset_params}: {exc}") from None
    # Rule: a batch, and every shard, holds at least one sample of the data.
    if spec.batch_size > source.num_samples:
        raise SpecError(f"batch_size={spec.batch_size} exceeds the {source.num_samples} samples of "
                        f"dataset {spec.dataset!r}")
    if spec.num_shards > source.num_samples:
        raise SpecError(f"num_shards={spec.num_shards} exceeds the {source.num_samples} samples of "
                        f"dataset {spec.dataset!r}")
    try:
        program = Program(spec, source.x, source.y, Root(bytes(32)), source.meta, torch.device("cpu"))
    except (TypeError, ValueError, KeyError) as exc:
        raise SpecError(f"model {spec.model!r} with model_params {spec.model_params} cannot be built "
                        f"on dataset {spec.dataset!r}: {exc}") from None
    try:
        with program.settings():
            dry_run(program)
    except UncoveredOperatorError as exc:
        raise SpecError(f"mode 'reproducible': model {spec.model!r} with loss {spec.loss!r} and optimizer "
                        f"{spec.optimizer!r}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 -- the program's own failure, named before any work
        raise SpecError(f"job program (model {spec.model!r}, loss {spec.loss!r}, optimizer {spec.optimizer!r}, "
                        f"schedule {spec.schedule!r}) fails a dry run of one step on dataset {spec.dataset!r}: "
                        f"{type(exc).__name__}: {exc}") from None


def check_funds(job: Job, ledger_path: Path) -> None:
    """``InsufficientFundsError`` naming every party that cannot cover its part of the job (a
    settled job is not checked again: re-running it moves nothing)."""
    job_id, terms = job.job_id, job.terms
    needs = compute_job_requirements(job.spec.submitter, terms, [s.solver_id for s in job.solvers],
                                     list(get_committee(job)))
    ledger = Ledger(ledger_path) if ledger_path.exists() else None
    try:
        if ledger is not None and is_job_settled(ledger, job_id):
            return
        shortfalls = get_shortfalls(ledger, needs, terms)
    finally:
        if ledger is not None:
            ledger.close()
    if shortfalls:
        raise InsufficientFundsError(f"job {job_id} cannot be staked: {'; '.join(shortfalls)} "
                                     f"(ledger {str(ledger_path)!r})")


class InsufficientFundsError(LifecycleError):
    """A party cannot cover its payment, stake or bond: found before any work."""


PROBE_TIMEOUT_S = 120.0  # importing plug-in modules and building their strategies, nothing more


# -- 1. the job opens: dataset and the verifiers' coins -----------------------------------------
def stage_shard(job: Job | JobSpec, paths: ArtifactPaths) -> DatasetCommitment:
    """The job opens: the spec's data source is split into zarr shards committed by their Merkle
    roots, and every verifier commits to its spot-check coin (``open_spot_check_coin``)."""
    job = as_job(job)
    spec = job.spec
    source = load_source(spec.dataset, **spec.dataset_params)
    dataset = write_shards(source, paths.dataset(job.job_id), spec.num_shards, spec.hashing)
    open_spot_check_coin(job, paths)
    return dataset


def open_spot_check_coin(job: Job | JobSpec, paths: ArtifactPaths) -> tuple[CoinCommitment, ...]:
    """Every verifier of the committee draws its coin's secret and publishes its commitment,
    before any solver trains (``verification.verifier``); the commitments, in committee order.
    Both are write-once: opening the job again keeps the first coins, so nobody can redraw one
    after seeing the solvers' commitments."""
    job = as_job(job)
    job_id, coins = job.job_id, []
    for verifier in get_committee(job):
        secret = store.save_coin_secret(paths, job_id, verifier, secrets.token_bytes(SECRET_SIZE))
        commitment = compute_coin_commitment(job_id, verifier, secret, job.spec.hashing)
        coins.append(store.save_coin_commitment(paths, CoinCommitment(job_id, verifier, commitment)))
    return tuple(coins)


def reveal_spot_check_coin(job: Job | JobSpec, paths: ArtifactPaths,
                           verifier: PartyId | None = None) -> tuple[CoinCommitment, CoinReveal]:
    """``verifier``'s (default: the lead verifier's) published coin commitment and its reveal;
    ``LifecycleError`` when the stored secret does not open the commitment (the secret was
    replaced after the job opened)."""
    job = as_job(job)
    job_id, spec = job.job_id, job.spec
    verifier = PartyId(spec.verifier) if verifier is None else verifier
    try:
        published = store.load_coin_commitment(paths, job_id, verifier)
        reveal = CoinReveal(job_id, verifier, store.load_coin_secret(paths, job_id, verifier))
    except store.StoreError as exc:
        raise LifecycleError(f"job {job_id} has no spot-check coin of verifier {verifier!r}: {exc}; materialize "
                             f"the dataset stage (the job's opening) first") from None
    if not is_valid_coin_reveal(published, reveal, spec.hashing):
        raise LifecycleError(f"the secret of verifier {verifier!r} for job {job_id} does not open its published coin "
                             f"commitment {published.commitment.hex()} "
                             f"({store.coin_secret_path(paths, job_id, verifier)})")
    return published, reveal


def load_coin_commitments(job: Job, paths: ArtifactPaths) -> list[CoinCommitment]:
    """Every verifier's published coin commitment, in committee order (``StoreError`` for a
    verifier that never published one)."""
    return [store.load_coin_commitment(paths, job.job_id, v) for v in get_committee(job)]


# -- 2. training -------------------------------------------------------------------------------
def stage_train(spec: Job | JobSpec, dataset: DatasetCommitment, paths: ArtifactPaths,
                solver_ids: list[SolverId] | None = None) -> dict[SolverId, TrainingRun]:
    """Every solver trains under its strategy in its own process; checkpoints go to zarr every
    ``k`` steps. With ``spec.data_parallel`` each solver's job runs on ``micro_batches`` processes.
    A solver that fails (raises, exits, runs past ``solver_deadline_s``, returns something that is
    not its run) delivers a failed run: it forfeits its stake at settlement."""
    job = with_dataset(as_job(spec), dataset)
    solvers = [s for s in job.solvers if solver_ids is None or s.solver_id in solver_ids]
    if job.spec.data_parallel:
        return {s.solver_id: train_data_parallel_party(job, dataset, paths.checkpoints(job.job_id, s.solver_id), s)
                for s in solvers}
    # Rule: the committed data is the job's, not a solver's: it is checked here (loading the
    # program reads and verifies every shard), before anyone trains.
    deadline = get_solver_deadline(job.spec, load_program(job.spec, dataset))
    # Solvers are independent parties: their processes train side by side, one per core.
    with ThreadPoolExecutor(max_workers=max(1, min(len(solvers), os.cpu_count() or 1))) as pool:
        runs = pool.map(lambda s: train_party(job, dataset, paths.checkpoints(job.job_id, s.solver_id), s, deadline),
                        solvers)
        return {s.solver_id: run for s, run in zip(solvers, runs, strict=True)}


SIGNING_DEADLINE_S = 120.0  # one signature (and, for an equivocating strategy, a second)
DEADLINE_FLOOR_S = 120.0  # process start, imports, loading the data, writing checkpoints
DEADLINE_SLACK = 20.0  # times the coordinator's own step cost: slower hardware, a loaded machine


def get_solver_deadline(spec: JobSpec, program: Program) -> float:
    """Seconds a solver has to train (and, again, to sign): ``spec.solver_deadline_s`` when set,
    else ``DEADLINE_FLOOR_S + DEADLINE_SLACK · T · (one honest step, measured here)``, so that an
    honest solver on slower hardware finishes well within it and a hung one is cut off in
    minutes rather than hours (Truebit's timeouts are likewise set per task)."""
    if spec.solver_deadline_s > 0:
        return spec.solver_deadline_s
    return DEADLINE_FLOOR_S + DEADLINE_SLACK * spec.steps * measure_step_seconds(program)


BUDGET_FLOOR_S = 60.0  # a party's process start, imports, program build and the game's messages
RECORDING_STEPS = 10  # recording one step's operators and re-running it to open operands, in steps


def get_party_time_budget(spec: JobSpec, step_seconds: float) -> float:
    """Seconds on each dispute party's chess clock: ``spec.party_time_budget_s`` when set, else
    ``BUDGET_FLOOR_S + DEADLINE_SLACK · (k + RECORDING_STEPS) · (one honest step)``. A party replays
    at most one interval of ``k`` steps and records one step, so an honest party on hardware up to
    ``DEADLINE_SLACK`` times slower than the coordinator's never runs out (a fixed 60 s did, at 1M
    parameters in reproducible mode); a hung one is cut off in minutes. Arbitrum's chess clock
    likewise gives each side a budget sized to the work its moves need. These are seconds at the
    measured speed; the game counts the same budget in steps (``get_party_budget``)."""
    return get_party_budget(spec, step_seconds).seconds


def get_party_budget(spec: JobSpec, step_seconds: float) -> Budget:
    """Each dispute party's chess-clock budget (``verification.clock``): ``spec.party_time_budget_s``
    fixed seconds when set, else ``get_party_time_budget`` counted in honest steps of the job,
    ``step_seconds`` (one honest step, measured here) being the first measurement of its reference:
    ``BUDGET_FLOOR_S / step + DEADLINE_SLACK · (k + RECORDING_STEPS)`` steps. The game times the
    reference again (``measure_step_seconds``) before it declares a party out of time, so a
    machine that becomes slower after this measurement does not make an honest party forfeit."""
    # Rule: a declared budget is fixed wall seconds; a derived one counts honest steps.
    if spec.party_time_budget_s > 0:
        return Budget.of_seconds(spec.party_time_budget_s)
    return Budget(compute_budget_units(BUDGET_FLOOR_S, DEADLINE_SLACK, spec.checkpoint_interval + RECORDING_STEPS,
                                       step_seconds), STEP, compute_reference_s(step_seconds))


def measure_step_seconds(program: Program) -> float:
    """Wall time of the job's first honest step, from ``S_0``, under the program's settings."""
    state = program.init_state()
    with program.settings():
        start = time.perf_counter()
        program.step(state, program.batch(Step(1)))
        return time.perf_counter() - start


def train_party(job: Job, dataset: DatasetCommitment, path: str, solver: SolverSpec,
                deadline_s: float) -> TrainingRun:
    """One party's training in its own process; a failure becomes a failed run naming why."""
    try:
        run = run_in_party(solver.solver_id, train_solver, job.spec, job.job_id, dataset, path, solver,
                           timeout=deadline_s)
    except PartyError as exc:
        return compute_failed_run(job, solver, path, f"training under strategy {solver.strategy!r} "
                                                     f"failed: {exc.reason}")
    return accept_run(job, solver, path, run)


def train_data_parallel_party(job: Job, dataset: DatasetCommitment, path: str, solver: SolverSpec) -> TrainingRun:
    """One solver on ``micro_batches`` worker processes (they import its strategy, never this
    process); a worker that fails makes the solver's run a failed one."""
    try:
        run = train_data_parallel(job.spec, dataset, solver.strategy, solver.params, path, job.job_id,
                                  solver.solver_id, world_size=job.spec.micro_batches)
    except (DataParallelError, PartyError) as exc:
        return compute_failed_run(job, solver, path, f"data-parallel training failed: {exc}")
    return accept_run(job, solver, path, run)


def accept_run(job: Job, solver: SolverSpec, path: str, run: object) -> TrainingRun:
    """The run a party returned, or a failed run naming what is wrong with it; the warnings the
    party raised while training are raised here again."""
    fault = compute_run_fault(job, solver.solver_id, run)
    if fault is not None:
        return compute_failed_run(job, solver, path, fault)
    for notice in run.notices:
        warnings.warn(f"solver {solver.solver_id!r}: {notice}", DiscardedCheckpointWarning, stacklevel=3)
    return run


def compute_run_fault(job: Job, solver_id: SolverId, run: object) -> str | None:
    """What is wrong with the run a party returned for ``solver_id`` (``None``: nothing)."""
    spec = job.spec
    if not isinstance(run, TrainingRun):
        return f"training returned a {type(run).__name__}, not a TrainingRun"
    # Rule: a run is of this job and this solver, with a root for each of the C checkpoints.
    if (run.job_id, run.solver_id, run.interval) != (job.job_id, solver_id, spec.checkpoint_interval):
        return f"training returned the run of {(run.job_id, run.solver_id, run.interval)}"
    if len(run.roots) != spec.num_checkpoints or not all(is_root(r) for r in run.roots):
        return f"training returned {len(run.roots)} roots, the job has {spec.num_checkpoints} checkpoints"
    declared = run.injected_divergence_step
    if declared is not None and type(declared) is not int:
        return f"its strategy declared divergence step {declared!r}, not an integer or None"
    return None


def compute_failed_run(job: Job, solver: SolverSpec, path: str, reason: str) -> TrainingRun:
    return TrainingRun(job.job_id, solver.solver_id, solver.strategy, str(path),
                       job.spec.checkpoint_interval, (), (), None, "", 0.0, failure=reason)


# -- 3. commitments ----------------------------------------------------------------------------
def stage_commit(job: Job | JobSpec, runs: dict[SolverId, TrainingRun],
                 paths: ArtifactPaths | None = None) -> dict[SolverId, Signed]:
    """Each solver signs (job id, solver id, trace root, final state root, T, k, environment)
    with BLS, in its own process, and its commitment joins the job through ``process_commit``.
    With ``paths``, every signed commitment — including any conflicting one a strategy also
    signs — is published on the job's bulletin, where verifiers look for equivocation. A solver
    whose run failed, or that fails to sign its own run, has no commitment (it forfeits)."""
    job = as_job(job)
    # Rule: solvers commit after every verifier committed to its coin, so none can predict one.
    coins = [reveal_spot_check_coin(job, paths, v)[0] for v in get_committee(job)] if paths is not None else []
    state = compute_genesis_state(job, coins)
    for solver in job.solvers:
        run = runs.get(solver.solver_id)
        if run is None or run.failure is not None:
            continue
        expected = build_commitment(job.spec, job.job_id, run)
        encode_message(expected)  # a run that cannot make a well-formed commitment is refused here
        try:
            published = run_in_party(solver.solver_id, sign_commitments, job.spec, job.job_id, run, solver,
                                     timeout=job.spec.solver_deadline_s or SIGNING_DEADLINE_S)
        except PartyError:
            continue
        accepted = process_publication(job, state, published, expected)
        if accepted is None:
            continue
        state = accepted
        if paths is not None:
            store.publish_commitments(paths, job.job_id, solver.solver_id, published)
    return dict(state.commitments)


def process_publication(job: Job, state: JobState, published: object, expected: Commitment) -> JobState | None:
    """``state`` with a party's answer to signing, when it is a list of signed commitments whose
    first is ``expected`` and ``process_commit`` accepts it; ``None`` otherwise. Never raises."""
    if not isinstance(published, list) or not published or not all(isinstance(s, Signed) for s in published):
        return None
    # Rule: a solver's first published commitment is its own run's.
    if published[0].message != expected:
        return None
    try:
        return process_commit(job, state, published[0])
    except (ProtocolError, MalformedKeyError, MalformedSignatureError, MalformedMessageError, TypeError):
        return None


def get_forfeit(runs: dict[SolverId, TrainingRun], commitments: dict[SolverId, Signed],
                solver_id: SolverId) -> str | None:
    """Why ``solver_id`` delivered nothing to verify (``None`` when it trained and committed)."""
    run = runs.get(solver_id)
    if run is None:
        return "no training run"
    if run.failure is not None:
        return run.failure
    return None if solver_id in commitments else "no valid signed commitment to its run"


def check_signatures(job: Job | JobSpec, commitments: dict[SolverId, Signed]) -> dict[SolverId, bool]:
    """Every commitment must carry a valid signature by the registered key of its solver."""
    job = as_job(job)
    return {solver_id: signed.public_key == get_public_key(job, solver_id) and verify_signed(signed)
            for solver_id, signed in commitments.items()}


def require_valid_commitments(job: Job | JobSpec, commitments: dict[SolverId, Signed]) -> None:
    """Refuse commitments that must be neither verified nor settled (``check_signatures`` only
    reports): each is filed under its own solver and passes ``require_valid_commitment``
    (``verification.protocol``): ``MalformedKeyError`` / ``MalformedSignatureError`` for bytes that
    are not a BLS key or signature, a ``ProtocolError`` (a ``LifecycleError``) naming the solver for
    a commitment to another job, ``T`` or ``k`` (a replayed commitment), a key other than the
    solver's registered one, or a signature that does not verify."""
    job = as_job(job)
    for solver_id, signed in commitments.items():
        require_own_solver(job, solver_id, signed)
        require_valid_commitment(job, signed)


def require_own_solver(job: Job, solver_id: SolverId, signed: object) -> None:
    """``InvalidMessageError`` for a commitment filed under a solver it does not bind."""
    claimed = getattr(getattr(signed, "message", None), "solver_id", solver_id)
    # Rule: a commitment binds its own solver
    if claimed != solver_id:
        raise InvalidMessageError(f"job {job.job_id}: commitment of solver {solver_id!r} has "
                                  f"solver_id={claimed!r}, the job has {solver_id!r}")


def is_accepted_commitment(job: Job, solver_id: SolverId, signed: Signed) -> bool:
    """Whether ``require_valid_commitments`` accepts ``signed`` as ``solver_id``'s. Never raises."""
    try:
        require_valid_commitments(job, {solver_id: signed})
    except (ProtocolError, MalformedKeyError, MalformedSignatureError, MalformedMessageError, TypeError):
        return False
    return True


def compute_committed_state(job: Job, coins: list[CoinCommitment], commitments: dict[SolverId, Signed]) -> JobState:
    """The job's state once its solvers committed: ``commitments`` (each filed under its own
    solver) through ``process_commit``, which raises what ``require_valid_commitments`` raises."""
    state = compute_genesis_state(job, coins)
    for solver_id, signed in commitments.items():
        require_own_solver(job, solver_id, signed)
        state = process_commit(job, state, signed)
    return state


def process_coin_reveal(job: Job, state: JobState, verifier: PartyId, reveal: CoinReveal | None) -> JobState:
    """``process_reveal``; a verification that revealed no coin is refused like a false reveal."""
    if reveal is None:
        faults = compute_selection_faults(state.coins[verifier], None, {}, {}, job.spec.spot_check_probability,
                                          job.spec.hashing)
        raise ForgedMessageError(f"job {job.job_id}: verifier {verifier!r}: {'; '.join(faults)}")
    return process_reveal(job, state, reveal)


def compute_checked_state(job: Job, state: JobState, checks: dict[PartyId, dict[SolverId, SpotCheck]],
                          attestations: tuple[AggregateAttestation, ...]) -> JobState:
    """``state`` (the coins revealed) after every verifier's checks, the committee's aggregate
    attestations, and one challenge of each solver some verifier found a mismatch in, by the
    first verifier in committee order that found it."""
    for verifier in get_committee(job):
        for check in checks.get(verifier, {}).values():
            state = process_check(job, state, CheckReport(job.job_id, verifier, check))
    for aggregate in attestations:
        state = process_attest(job, state, aggregate)
    for solver in job.solvers:
        challenger = get_first_finder(job, state.checks, solver.solver_id)
        if challenger is not None:
            check = state.checks[challenger][solver.solver_id]
            state = process_challenge(job, state, Challenge(job.job_id, challenger, solver.solver_id,
                                                            check.disputed_interval))
    return state


def get_checked_state(job: Job, paths: ArtifactPaths, commitments: dict[SolverId, Signed],
                      verified: VerifyOutput) -> JobState:
    """The job's state after its spot checks, rebuilt through the transitions from a stage's
    inputs. Rule: a later stage counts only the commitments the job accepts (a solver with none
    delivered nothing), audits every verifier's checks against the coin that verifier committed
    to, and verifies every aggregate attestation (``process_attest``)."""
    accepted = {sid: s for sid, s in commitments.items() if is_accepted_commitment(job, sid, s)}
    state = compute_committed_state(job, load_coin_commitments(job, paths), accepted)
    reveals = get_committee_reveals(job, verified)
    for verifier in get_committee(job):
        state = process_coin_reveal(job, state, verifier, reveals.get(verifier))
    return compute_checked_state(job, state, get_committee_checks(job, verified), verified.attestations)


# -- 4. spot checks ----------------------------------------------------------------------------
@dataclass(frozen=True)
class AttesterChecks:
    """What one attester (a committee member after the lead) verified: its revealed coin and its
    check of every solver."""

    verifier: PartyId
    coin: CoinReveal | None
    checks: dict[SolverId, SpotCheck]


@dataclass(frozen=True)
class VerifyOutput:
    """The committee's verification: the lead verifier's checks, replica and revealed coin (which
    settlement audits), every attester's, and the aggregate attestations of their verdicts."""

    checks: dict[SolverId, SpotCheck]  # the lead verifier's
    replica: TrainingRun | None  # the lead verifier's (replicate policy)
    seconds: float
    coin: CoinReveal | None = None  # the lead verifier's revealed coin
    attesters: tuple[AttesterChecks, ...] = ()
    attestations: tuple[AggregateAttestation, ...] = ()


def get_committee_checks(job: Job, verified: VerifyOutput) -> dict[PartyId, dict[SolverId, SpotCheck]]:
    """Every verifier's checks, by verifier (the lead's first), by solver."""
    return {PartyId(job.spec.verifier): verified.checks, **{a.verifier: a.checks for a in verified.attesters}}


def get_committee_reveals(job: Job, verified: VerifyOutput) -> dict[PartyId, CoinReveal | None]:
    """Every verifier's revealed coin, by verifier."""
    return {PartyId(job.spec.verifier): verified.coin, **{a.verifier: a.coin for a in verified.attesters}}


def get_mismatched_solvers(job: Job, verified: VerifyOutput) -> set[SolverId]:
    """The solvers some verifier's check found a mismatch in: each has one dispute."""
    return {sid for checks in get_committee_checks(job, verified).values()
            for sid, check in checks.items() if check.mismatch}


def attest_checks(job: Job, checks: dict[PartyId, dict[SolverId, SpotCheck]],
                  commitments: dict[SolverId, Signed]) -> tuple[AggregateAttestation, ...]:
    """Each verifier signs an ``Attestation`` of each conclusive check it made (``is_attestable``),
    with its key, as the referee signs its rulings (``sign_ruling``); the attestations with the same
    signed content (one solver, its trace root, one verdict) are aggregated into one BLS signature
    (``aggregate_attestations``: consensus-specs' aggregate attestations), in the job's solver
    order, matching verdicts before mismatches."""
    groups: dict[tuple[int, bool, bytes], list[Signed]] = {}
    order = {s.solver_id: i for i, s in enumerate(job.solvers)}
    for verifier in get_committee(job):
        sk = party_keypair(job.spec, verifier)[0]
        for sid, check in checks.get(verifier, {}).items():
            if not is_attestable(check) or sid not in commitments:
                continue
            signed = sign_message(compute_attestation(job, verifier, check, commitments[sid].message.trace_root),
                                  sk, verifier)
            key = (order[sid], check.mismatch, bytes(signing_root(signed.message)))
            groups.setdefault(key, []).append(signed)
    return tuple(aggregate_attestations(groups[key]) for key in sorted(groups))


def get_declared_divergence(job: Job) -> Step | None:
    """The step the verifier's own strategy diverges at (a false challenger's accusation), asked
    of the verifier's party process when that strategy is a plug-in."""
    challenger = job.challenger
    if challenger.strategy == "honest":
        return None
    if not is_plugin(challenger.strategy):
        return compute_divergence(job.spec, challenger)
    try:
        return run_in_party(job.spec.verifier, compute_divergence, job.spec, challenger, timeout=PROBE_TIMEOUT_S)
    except PartyError:
        return None  # a verifier that cannot say what it accuses accuses nothing


def train_replica(job: Job, dataset: DatasetCommitment, paths: ArtifactPaths, program: Program) -> TrainingRun | None:
    """The verifier re-executes the whole job in its own process, into a replica store of its
    own: two verifications of one job never share a store. ``None`` if the verifier fails."""
    location = paths.replica(job.job_id, f"{os.getpid()}-{secrets.token_hex(4)}")
    run = train_party(job, dataset, location, job.challenger, get_solver_deadline(job.spec, program))
    return None if run.failure is not None else run


def is_environment_bound(spec: JobSpec) -> bool:
    """Whether a trace's bits depend on its execution environment: ``exact`` mode (docs/design.md §3)."""
    return spec.mode == Mode.EXACT


def stage_verify(job: Job | JobSpec, dataset: DatasetCommitment, runs: dict[SolverId, TrainingRun],
                 commitments: dict[SolverId, Signed], paths: ArtifactPaths) -> VerifyOutput:
    """Every verifier of the committee reveals its coin (``process_reveal``) and checks each
    solver its own coin selects (probability ``p``): the lead verifier under the spec's policy and
    its challenger strategy, each attester honestly by the interval policy (a few intervals from
    the solver's own checkpoints: no replica). Each signs its conclusive verdicts, which aggregate
    into one signature per verdict (``attest_checks``; kept in the job's records). The checks, the
    aggregates and a challenge of each mismatch go through ``process_check``, ``process_attest``
    and ``process_challenge``."""
    start = time.perf_counter()
    job = with_dataset(as_job(job), dataset)
    spec, job_id = job.spec, job.job_id
    # Rule: nothing is verified (nor, downstream, settled) on a commitment that fails its checks
    require_valid_commitments(job, commitments)
    coins = {v: reveal_spot_check_coin(job, paths, v) for v in get_committee(job)}
    state = compute_committed_state(job, [published for published, _ in coins.values()], commitments)
    for _, reveal in coins.values():
        state = process_reveal(job, state, reveal)
    program = load_program(spec, dataset)
    forfeits = {s.solver_id: get_forfeit(runs, commitments, s.solver_id) for s in job.solvers}
    # Equivocation evidence on the bulletin needs no coin and no re-execution: anyone can present it.
    published = store.read_bulletin(paths, job_id)
    evidence = {sid: find_equivocation(commitments[sid], published, get_public_key(job, sid))
                for sid, reason in forfeits.items() if reason is None}
    lead = PartyId(spec.verifier)
    # The lead verifier's replica and its accusations follow its strategy: honest, or a false challenger.
    checks, replica = check_solvers(job, dataset, paths, program, runs, commitments, forfeits, evidence,
                                    coins[lead][1], spec.spot_check_policy, get_declared_divergence(job))
    attesters = []
    for verifier in get_committee(job)[1:]:
        coin = coins[verifier][1]
        attester_checks, _ = check_solvers(job, dataset, paths, program, runs, commitments, forfeits, evidence,
                                           coin, Policy.INTERVAL, None)
        attesters.append(AttesterChecks(verifier, coin, attester_checks))
    verified = VerifyOutput(checks, replica, 0.0, coins[lead][1], tuple(attesters))
    attestations = attest_checks(job, get_committee_checks(job, verified), commitments)
    store.save_attestations(paths, job_id, attestations)
    # Rule: the committee's checks and attestations pass the audit settlement will make.
    compute_checked_state(job, state, get_committee_checks(job, verified), attestations)
    return dataclasses.replace(verified, seconds=time.perf_counter() - start, attestations=attestations)


def check_solvers(job: Job, dataset: DatasetCommitment, paths: ArtifactPaths, program: Program,
                  runs: dict[SolverId, TrainingRun], commitments: dict[SolverId, Signed],
                  forfeits: dict[SolverId, str | None], evidence: dict[SolverId, object], coin: CoinReveal,
                  policy: Policy, accused: Step | None) -> tuple[dict[SolverId, SpotCheck], TrainingRun | None]:
    """One verifier's check of every solver, with its revealed ``coin`` and ``policy`` (``accused``:
    the step a false challenger accuses), and its replica when it replicated the job."""
    spec, hashing = job.spec, job.spec.hashing
    selected = [sid for sid, reason in forfeits.items() if reason is None and evidence[sid] is None
                and is_selected_for_check(coin, sid, commitments[sid].signature, spec.spot_check_probability, hashing)]
    replica = None
    if selected and policy == Policy.REPLICATE and spec.mode != Mode.TOLERANCE:
        replica = train_replica(job, dataset, paths, program)
    with program.settings():  # the environment the verifier's own checks run in
        environment = replica.environment if replica is not None else program.environment()
    checks = {}
    for solver in job.solvers:
        sid = solver.solver_id
        if forfeits[sid] is not None:
            checks[sid] = forfeited(sid, policy, forfeits[sid])
            continue
        run, claimed = runs[sid], commitments[sid].message
        if evidence[sid] is not None:
            checks[sid] = check_equivocation(sid, policy, evidence[sid])
        elif sid not in selected or (replica is None and policy == Policy.REPLICATE and spec.mode != Mode.TOLERANCE):
            checks[sid] = not_checked(sid, policy)
        elif is_environment_bound(spec) and claimed.environment != environment:
            # Rule: in exact mode a verifier judges only a trace made in its own environment.
            checks[sid] = inconclusive(sid, policy, claimed.environment, environment)
        elif spec.mode == Mode.TOLERANCE and accused is None:  # PoL: distances, not roots
            every = tuple(range(spec.num_checkpoints - 1))
            intervals = every if policy == Policy.REPLICATE else compute_check_intervals(
                coin, sid, commitments[sid].signature, spec.num_checkpoints - 1, spec.intervals_per_check, hashing)
            checks[sid] = check_tolerance(program, sid, run.roots, claimed.trace_root, run.checkpoint_path,
                                          intervals, spec.tolerance_rho)
        elif replica is not None:
            checks[sid] = check_replicate(sid, claimed.trace_root, replica, hashing)
        elif accused is not None:  # a false challenger accuses the interval of its own wrong step
            interval = (accused - 1) // spec.checkpoint_interval
            checks[sid] = SpotCheck(sid, True, Policy.INTERVAL, (interval,), True, interval, 0, 0.0)
        else:
            intervals = compute_check_intervals(coin, sid, commitments[sid].signature, spec.num_checkpoints - 1,
                                                spec.intervals_per_check, hashing)
            checks[sid] = check_interval(program, sid, run.roots, claimed.trace_root, run.checkpoint_path,
                                         intervals)
    return checks, replica


# -- 5. disputes -------------------------------------------------------------------------------
def stage_dispute(job: Job | JobSpec, dataset: DatasetCommitment, runs: dict[SolverId, TrainingRun],
                  commitments: dict[SolverId, Signed], verified: VerifyOutput,
                  paths: ArtifactPaths) -> dict[SolverId, DisputeResult]:
    """A challenge-and-bisection game for every open challenge (one per mismatch a spot check
    found), each closed through ``process_dispute``. The solver and the challenger each answer
    from their own process; the referee is this process, with a program it built itself."""
    job = with_dataset(as_job(job), dataset)
    state = get_checked_state(job, paths, commitments, verified)
    program = load_program(job.spec, dataset)
    budget = None
    for sid in get_open_challenges(state):
        budget = budget or get_party_budget(job.spec, measure_step_seconds(program))
        result = play_dispute(job, dataset, runs[sid], state.commitments[sid], verified, state.challenges[sid],
                              program, budget, paths)
        result = dataclasses.replace(result, ruling=sign_ruling(job, result))
        state = process_dispute(job, state, DisputeOutcome(job.job_id, sid, result))
        state = process_rule(job, state, result.ruling)
    return dict(state.disputes)


def sign_ruling(job: Job, result: DisputeResult) -> Signed:
    """The referee's ruling on a finished game (``compute_ruling``), signed with its key."""
    sk, _ = party_keypair(job.spec, REFEREE)
    return sign_message(compute_ruling(job.job_id, result), sk, REFEREE)


def play_dispute(job: Job, dataset: DatasetCommitment, run: TrainingRun, signed: Signed, verified: VerifyOutput,
                 challenge: Challenge, program: Program, budget: Budget, paths: ArtifactPaths) -> DisputeResult:
    """One solver's game against the verifier that challenged it (``challenge.challenger``, the
    lead verifier or an attester: ``get_challenger``); its transcript is saved beside the job's
    records. A budget in steps is re-measured on one honest step of ``program``
    (``measure_step_seconds``)."""
    sid, spec, challenger = run.solver_id, job.spec, challenge.challenger
    # The lead verifier's replica, when it replicated; an interval check's challenger replays
    # from the solver's own checkpoints.
    replica = verified.replica if challenger == spec.verifier else None
    challenger_run = replica if replica is not None else run
    providers = (RemoteProvider(sid, build_trace_provider, spec, dataset, run, get_solver(job, sid)),
                 RemoteProvider(challenger, build_trace_provider, spec, dataset, challenger_run,
                                get_challenger(job, challenger)))
    try:
        reference = None if budget.unit == SECOND else functools.partial(measure_step_seconds, program)
        game = DisputeGame(program, *providers, signed.message.trace_root, spec.dissection_arity, budget,
                           reference=reference)
        interval = None if replica is not None else challenge.disputed_interval
        result = game.play(spec.num_checkpoints - 1, spec.checkpoint_interval, interval)
    finally:
        for provider in providers:
            provider.close()
    path = save_transcript(paths.transcript(job.job_id, sid), game.transcript(result))
    return DisputeResult(**{**result.__dict__, "transcript": path})


# -- 6. settlement -----------------------------------------------------------------------------
def get_revealed_ticket(job: Job | JobSpec, run: TrainingRun | None) -> bytes | None:
    """The forced-error ticket a solver revealed with its run, if it is a valid one that draws a
    forced error (``verification.protocol.get_revealed_ticket``); ``None`` otherwise."""
    return None if run is None else get_protocol_ticket(as_job(job), run.solver_id, run.forced_error_ticket)


def get_tickets(job: Job | JobSpec, runs: dict[SolverId, TrainingRun]) -> tuple[tuple[SolverId, str], ...]:
    """The forced-error tickets the solvers reveal with their runs (hex), the ones the protocol
    accepts: a forged or undrawn ticket claims nothing, and is not sent (``process_settle``
    would refuse the request that carried it)."""
    return tuple((sid, run.forced_error_ticket) for sid, run in runs.items()
                 if get_revealed_ticket(job, run) is not None)


def compute_verdicts(job: Job | JobSpec, runs: dict[SolverId, TrainingRun], verified: VerifyOutput,
                     disputes: dict[SolverId, DisputeResult]) -> list[SolverVerdict]:
    """Map the committee's verification to settlement verdicts (the report's outcomes are these
    too): ``verification.protocol.compute_verdicts``, with the tickets the runs reveal."""
    job = as_job(job)
    tickets = {sid: ticket for sid, run in runs.items() if (ticket := get_revealed_ticket(job, run)) is not None}
    return compute_protocol_verdicts(job, get_committee_checks(job, verified), disputes, tickets)


def stage_settle(job: Job | JobSpec, runs: dict[SolverId, TrainingRun], verified: VerifyOutput,
                 commitments: dict[SolverId, Signed], disputes: dict[SolverId, DisputeResult],
                 paths: ArtifactPaths) -> SettlementResult:
    """Rebuild the job's state from the stages' outputs (each verifier's checks audited against
    its coin, every aggregate attestation verified), fix its verdicts with ``process_settle``, then
    apply them to the SQLite ledger, once (idempotent per job id): every committee member is a
    designated verifier paid its fee."""
    job = as_job(job)
    # Rule: settlement accepts checks only from a coin the verifier committed to before the solvers.
    state = get_checked_state(job, paths, commitments, verified)
    for sid, result in disputes.items():
        state = process_dispute(job, state, DisputeOutcome(job.job_id, sid, result))
        state = process_rule(job, state, result.ruling)  # Rule: a dispute counts only with the referee's signed ruling
    state = process_settle(job, state, SettleRequest(job.job_id, get_tickets(job, runs)))
    ledger = Ledger(paths.ledger)
    try:
        return settle_job(ledger, job.job_id, job.spec.submitter, job.terms, list(state.verdicts),
                          verifiers=list(get_committee(job)))
    finally:
        ledger.close()


# -- incentives --------------------------------------------------------------------------------
@dataclass(frozen=True)
class IncentiveStudy:
    simulation: SimulationResult
    grid: SweepGrid
    plot: str


def incentive_params(spec: JobSpec) -> IncentiveParams:
    """The job's economics as seen by a would-be cheater skipping half the work."""
    return IncentiveParams(terms=spec.economics, check_probability=spec.spot_check_probability,
                           compute_cost=spec.compute_cost, verifier_cost=spec.verifier_cost)


def stage_incentives(spec: JobSpec, out_dir: Path, n_jobs: int = 20_000) -> IncentiveStudy:
    """Monte Carlo of the job's incentives at its own p, and the map of where cheating pays."""
    params = incentive_params(spec)
    p_values = [i / 100 for i in range(30)] + [i / 10 for i in range(3, 11)]  # fine where the boundary lives
    grid = sweep(params, p_values, [i / 20 for i in range(1, 21)], n_jobs=n_jobs, seed=spec.seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    plot = plot_cheating_region(grid, out_dir / "cheating_region.png")
    return IncentiveStudy(simulate(params, n_jobs, spec.seed), grid, str(plot))


# -- whole job ---------------------------------------------------------------------------------
def run_job(spec: Job | JobSpec, paths: ArtifactPaths) -> dict[str, Any]:
    """Every stage in order, in this process; returns the report (also written to ``report.json``).
    The job is resolved here, once, and passed to every stage."""
    validate_job(spec, paths)
    job = as_job(spec)
    dataset = timed(stage_shard, job, paths)
    job = with_dataset(job, dataset.value)
    runs = timed(stage_train, job, dataset.value, paths)
    commitments = timed(stage_commit, job, runs.value, paths)
    timings = {"shard": dataset.seconds, "train": runs.seconds, "commit": commitments.seconds}
    return conclude(job, paths, dataset.value, runs.value, commitments.value, timings)


def conclude(job: Job | JobSpec, paths: ArtifactPaths, dataset: DatasetCommitment,
             runs: dict[SolverId, TrainingRun], commitments: dict[SolverId, Signed],
             timings: dict[str, float]) -> dict[str, Any]:
    """Verify, dispute, settle and report a job whose solvers have trained and committed."""
    from verification.report import build_report, write_report

    job = with_dataset(as_job(job), dataset)
    verified = timed(stage_verify, job, dataset, runs, commitments, paths)
    disputes = timed(stage_dispute, job, dataset, runs, commitments, verified.value, paths)
    settled = timed(stage_settle, job, runs, verified.value, commitments, disputes.value, paths)
    timings = {**timings, "verify": verified.seconds, "dispute": disputes.seconds, "settle": settled.seconds}
    verdicts = compute_verdicts(job, runs, verified.value, disputes.value)
    report = build_report(job, runs, commitments, check_signatures(job, commitments),
                          verified.value, disputes.value, verdicts, settled.value, timings)
    write_report(paths.report(job.job_id), report)
    return report


def conclude_from_store(spec: Job | JobSpec, paths: ArtifactPaths) -> dict[str, Any]:
    """``conclude`` for a job whose earlier stages ran elsewhere and left their records on disk."""
    job = as_job(spec)
    dataset = store.load_dataset_commitment(paths, job.job_id)
    runs = {s.solver_id: store.load_run(paths, job.job_id, s.solver_id) for s in job.solvers}
    commitments = {sid: store.load_commitment(paths, job.job_id, sid) for sid, run in runs.items()
                   if run.failure is None}
    timings = {"train": sum(r.seconds for r in runs.values())}
    return conclude(job, paths, dataset, runs, commitments, timings)
