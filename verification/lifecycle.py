"""One job's lifecycle as a chain of stage functions (DESIGN.md §1).

``shard -> train -> commit -> verify -> dispute -> settle -> report``. Each stage is a plain
function of the spec and the previous stages' outputs; each Dagster asset calls exactly one of
them, and ``run_job`` chains them all for scripts, tests and benchmarks. Stage outputs are small
frozen dataclasses (roots, paths, verdicts), so they pickle cheaply between processes; the heavy
data (shards, checkpoints) stays in zarr under the artifacts directory.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from datasets.sharding import DatasetCommitment, write_shards
from datasets.sources import load_source
from proofs.bls import get_backend
from proofs.encoding import trace_root
from proofs.keys import derive_keypair
from proofs.messages import Commitment, Signed, sign_message, verify_signed
from proofs.types import PartyId, SolverId
from verification import store
from verification.dispute import DisputeGame, DisputeResult, save_transcript
from verification.execution.distributed import train_data_parallel
from verification.execution.program import load_program
from verification.paths import ArtifactPaths
from verification.providers import TraceProvider
from verification.settlement import (
    EconomicTerms,
    Ledger,
    SettlementResult,
    SolverVerdict,
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
from verification.solver import TrainingRun, train
from verification.spec import JobSpec, compute_job_id, validate_spec
from verification.strategies import resolve_challenger, resolve_strategy
from verification.verifier import (
    SpotCheck,
    check_equivocation,
    check_interval,
    check_replicate,
    check_tolerance,
    compute_check_intervals,
    find_equivocation,
    is_selected_for_check,
    not_checked,
)

T = TypeVar("T")


class LifecycleError(RuntimeError):
    """A stage cannot proceed with what the previous stages produced."""


@dataclass(frozen=True)
class Timed(Generic[T]):
    """A stage's output and its wall time (the report's ``timings_s``)."""

    value: T
    seconds: float


def timed(fn: Callable[..., T], *args: Any) -> Timed[T]:
    start = time.perf_counter()
    value = fn(*args)
    return Timed(value, time.perf_counter() - start)


def validate_job(spec: JobSpec) -> None:
    """Everything that can be rejected before any work: spec rules and every strategy."""
    validate_spec(spec)
    for solver in spec.solvers:
        resolve_strategy(solver.strategy, solver.params)
    resolve_challenger(spec)


# -- 1. dataset --------------------------------------------------------------------------------
def stage_shard(spec: JobSpec, paths: ArtifactPaths) -> DatasetCommitment:
    """Split the spec's data source into zarr shards and commit to their Merkle roots."""
    source = load_source(spec.dataset, **spec.dataset_params)
    return write_shards(source, paths.dataset(compute_job_id(spec)), spec.num_shards, spec.hash_name)


# -- 2. training -------------------------------------------------------------------------------
def stage_train(spec: JobSpec, dataset: DatasetCommitment, paths: ArtifactPaths,
                solver_ids: list[SolverId] | None = None) -> dict[SolverId, TrainingRun]:
    """Every solver trains under its strategy; checkpoints go to zarr every ``k`` steps.
    With ``spec.data_parallel`` each solver's job runs on ``micro_batches`` processes."""
    job_id = compute_job_id(spec)
    solvers = [s for s in spec.solvers if solver_ids is None or s.solver_id in solver_ids]
    if spec.data_parallel:
        return {s.solver_id: train_data_parallel(spec, dataset, s.strategy, s.params,
                                                 paths.checkpoints(job_id, s.solver_id), job_id, s.solver_id,
                                                 world_size=spec.micro_batches) for s in solvers}
    program = load_program(spec, dataset)
    return {s.solver_id: train(program, resolve_strategy(s.strategy, s.params),
                               paths.checkpoints(job_id, s.solver_id), job_id, s.solver_id) for s in solvers}


# -- 3. commitments ----------------------------------------------------------------------------
def party_keypair(spec: JobSpec, party: str) -> tuple[int, bytes]:
    """Demo keys: derived from the job seed and the party name (a real party brings its own)."""
    return derive_keypair(spec.seed.to_bytes(8, "big"), party, get_backend())


def build_commitment(spec: JobSpec, run: TrainingRun) -> Commitment:
    return Commitment(
        job_id=compute_job_id(spec), solver_id=run.solver_id,
        trace_root=trace_root(list(run.roots), spec.hash_name), final_state_root=run.final_root,
        steps=spec.steps, interval=spec.checkpoint_interval,
    )


def stage_commit(spec: JobSpec, runs: dict[SolverId, TrainingRun],
                 paths: ArtifactPaths | None = None) -> dict[SolverId, Signed]:
    """Each solver signs (job id, solver id, trace root, final state root, T, k) with BLS. With
    ``paths``, every signed commitment — including any conflicting one a strategy also signs — is
    published on the job's bulletin, where verifiers look for equivocation."""
    backend = get_backend()
    signed = {}
    for solver_id, run in runs.items():
        sk, _ = party_keypair(spec, solver_id)
        commitment = build_commitment(spec, run)
        signed[solver_id] = sign_message(commitment, sk, solver_id, backend)
        published = [signed[solver_id]]
        conflicting = getattr(solver_strategy(spec, solver_id), "conflicting_commitment", None)
        if conflicting is not None:
            published.append(sign_message(conflicting(commitment), sk, solver_id, backend))
        if paths is not None:
            store.publish_commitments(paths, compute_job_id(spec), solver_id, published)
    return signed


def solver_strategy(spec: JobSpec, solver_id: SolverId):
    """The strategy the spec gives ``solver_id``."""
    for solver in spec.solvers:
        if solver.solver_id == solver_id:
            return resolve_strategy(solver.strategy, solver.params)
    raise LifecycleError(f"solver {solver_id!r} is not a solver of job {compute_job_id(spec)}")


def check_signatures(spec: JobSpec, commitments: dict[SolverId, Signed]) -> dict[SolverId, bool]:
    """Every commitment must carry a valid signature by the registered key of its solver."""
    result = {}
    for solver_id, signed in commitments.items():
        _, pk = party_keypair(spec, solver_id)
        result[solver_id] = signed.public_key == pk and verify_signed(signed)
    return result


def require_valid_commitments(spec: JobSpec, commitments: dict[SolverId, Signed]) -> None:
    """Refuse commitments that must be neither verified nor settled (``check_signatures`` only
    reports). Raises ``MalformedKeyError`` / ``MalformedSignatureError`` for bytes that are not a
    BLS key or signature, and ``LifecycleError`` naming the solver for a commitment to another
    job, solver, ``T`` or ``k`` (a replayed commitment), a key other than the solver's registered
    one, or a signature that does not verify."""
    backend, job_id = get_backend(), compute_job_id(spec)
    for solver_id, signed in commitments.items():
        message = signed.message
        if not isinstance(message, Commitment):
            raise LifecycleError(f"solver {solver_id!r} signed a {type(message).__name__}, not a Commitment")
        expected = {"job_id": job_id, "solver_id": solver_id, "steps": spec.steps,
                    "interval": spec.checkpoint_interval}
        for name, value in expected.items():
            # Rule: a commitment binds this job, this solver, T and k
            if getattr(message, name) != value:
                raise LifecycleError(f"commitment of solver {solver_id!r} has {name}="
                                     f"{getattr(message, name)!r}, the job has {value!r}")
        backend.decode_pubkey(signed.public_key)
        backend.decode_signature(signed.signature)
        _, registered = party_keypair(spec, solver_id)
        # Rule: a commitment is signed with the registered key of its solver
        if signed.public_key != registered:
            raise LifecycleError(f"commitment of solver {solver_id!r} is signed with key "
                                 f"{bytes(signed.public_key).hex()}, registered {registered.hex()}")
        # Rule: the signature verifies on the commitment's signing root
        if not verify_signed(signed, backend):
            raise LifecycleError(f"signature of solver {solver_id!r} on its commitment to job "
                                 f"{job_id} does not verify")


# -- 4. spot checks ----------------------------------------------------------------------------
@dataclass(frozen=True)
class VerifyOutput:
    checks: dict[SolverId, SpotCheck]
    replica: TrainingRun | None
    seconds: float


def _solver_provider(spec, program, run: TrainingRun) -> TraceProvider:
    return TraceProvider(PartyId(run.solver_id), run, program, solver_strategy(spec, run.solver_id))


def stage_verify(spec: JobSpec, dataset: DatasetCommitment, runs: dict[SolverId, TrainingRun],
                 commitments: dict[SolverId, Signed], paths: ArtifactPaths) -> VerifyOutput:
    """The verifier checks each solver with probability ``p`` under the spec's policy."""
    start = time.perf_counter()
    # Rule: nothing is verified (nor, downstream, settled) on a commitment that fails its checks
    require_valid_commitments(spec, commitments)
    job_id, hash_name = compute_job_id(spec), spec.hash_name
    program = load_program(spec, dataset)
    # Equivocation evidence on the bulletin needs no coin and no re-execution: anyone can present it.
    published = store.read_bulletin(paths, job_id)
    evidence = {sid: find_equivocation(commitments[sid], published, party_keypair(spec, sid)[1]) for sid in runs}
    selected = [sid for sid in runs if evidence[sid] is None and is_selected_for_check(
        job_id, sid, spec.seed, spec.spot_check_probability, hash_name)]
    # The verifier's replica and its accusations follow its strategy: honest, or a false challenger.
    challenger = resolve_challenger(spec)
    accused = challenger.divergence_step(spec)
    replica = None
    if selected and spec.spot_check_policy == "replicate" and spec.mode != "tolerance":
        replica = train(program, challenger, paths.replica(job_id), job_id, SolverId(spec.verifier))
    checks = {}
    for sid, run in runs.items():
        claimed = commitments[sid].message.trace_root
        if evidence[sid] is not None:
            checks[sid] = check_equivocation(sid, spec.spot_check_policy, evidence[sid])
        elif sid not in selected:
            checks[sid] = not_checked(sid, spec.spot_check_policy)
        elif spec.mode == "tolerance" and accused is None:  # PoL: distances, not roots
            every = tuple(range(spec.num_checkpoints - 1))
            intervals = every if spec.spot_check_policy == "replicate" else compute_check_intervals(
                job_id, sid, spec.seed, spec.num_checkpoints - 1, spec.intervals_per_check, hash_name)
            checks[sid] = check_tolerance(program, sid, _solver_provider(spec, program, run), claimed,
                                          run.checkpoint_path, intervals, spec.tolerance_rho)
        elif replica is not None:
            checks[sid] = check_replicate(sid, claimed, replica, hash_name)
        elif accused is not None:  # a false challenger accuses the interval of its own wrong step
            interval = (accused - 1) // spec.checkpoint_interval
            checks[sid] = SpotCheck(sid, True, "interval", (interval,), True, interval, 0, 0.0)
        else:
            intervals = compute_check_intervals(job_id, sid, spec.seed, spec.num_checkpoints - 1,
                                                spec.intervals_per_check, hash_name)
            checks[sid] = check_interval(program, sid, _solver_provider(spec, program, run), claimed,
                                         run.checkpoint_path, intervals)
    return VerifyOutput(checks, replica, time.perf_counter() - start)


# -- 5. disputes -------------------------------------------------------------------------------
def stage_dispute(spec: JobSpec, dataset: DatasetCommitment, runs: dict[SolverId, TrainingRun],
                  commitments: dict[SolverId, Signed], verified: VerifyOutput,
                  paths: ArtifactPaths) -> dict[SolverId, DisputeResult]:
    """A challenge-and-bisection game for every mismatch found by a spot check."""
    job_id = compute_job_id(spec)
    program = load_program(spec, dataset)
    strategy = resolve_challenger(spec)
    results = {}
    for sid, check in verified.checks.items():
        if not check.mismatch:
            continue
        run = runs[sid]
        if verified.replica is not None:
            challenger = TraceProvider(PartyId(spec.verifier), verified.replica, program, strategy)
        else:  # interval policy: the challenger replays from the solver's own checkpoints
            challenger = TraceProvider(PartyId(spec.verifier), run, program, strategy)
        game = DisputeGame(program, _solver_provider(spec, program, run), challenger,
                           commitments[sid].message.trace_root, spec.dissection_arity,
                           spec.party_time_budget_s)
        interval = None if verified.replica is not None else check.disputed_interval
        result = game.play(spec.num_checkpoints - 1, spec.checkpoint_interval, interval)
        path = save_transcript(paths.transcript(job_id, sid), game.transcript(result))
        results[sid] = DisputeResult(**{**result.__dict__, "transcript": path})
    return results


# -- 6. settlement -----------------------------------------------------------------------------
def compute_verdicts(spec: JobSpec, checks: dict[SolverId, SpotCheck],
                     disputes: dict[SolverId, DisputeResult]) -> list[SolverVerdict]:
    """Map verification results to settlement verdicts."""
    verdicts = []
    for solver in spec.solvers:
        sid, check = solver.solver_id, checks[solver.solver_id]
        dispute = disputes.get(sid)
        if check.equivocation is not None:
            verdicts.append(SolverVerdict(sid, "slashed", challenger=spec.verifier, equivocation=True))
        elif not check.checked:
            verdicts.append(SolverVerdict(sid, "unverified"))
        elif dispute is None:
            verdicts.append(SolverVerdict(sid, "paid"))
        elif dispute.winner == "challenger":
            verdicts.append(SolverVerdict(sid, "slashed", challenger=spec.verifier))
        else:
            verdicts.append(SolverVerdict(sid, "paid", challenger=spec.verifier, false_challenge=True))
    return verdicts


def economic_terms(spec: JobSpec) -> EconomicTerms:
    e = spec.economics
    return EconomicTerms(
        payment_per_solver=e.payment_per_solver, solver_stake=e.solver_stake,
        challenger_bond=e.challenger_bond, verifier_fee=e.verifier_fee,
        slash_reward_bps=e.slash_reward_bps, initial_balance=e.initial_balance,
    )


def stage_settle(spec: JobSpec, checks: dict[SolverId, SpotCheck], disputes: dict[SolverId, DisputeResult],
                 ledger_path: Path) -> SettlementResult:
    """Apply the verdicts to the SQLite ledger, once (idempotent per job id)."""
    ledger = Ledger(ledger_path)
    try:
        return settle_job(ledger, compute_job_id(spec), spec.submitter, economic_terms(spec),
                          compute_verdicts(spec, checks, disputes), verifiers=[spec.verifier])
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
    return IncentiveParams(terms=economic_terms(spec), check_probability=spec.spot_check_probability,
                           compute_cost=spec.economics.compute_cost,
                           verifier_cost=spec.economics.verifier_cost)


def stage_incentives(spec: JobSpec, out_dir: Path, n_jobs: int = 20_000) -> IncentiveStudy:
    """Monte Carlo of the job's incentives at its own p, and the map of where cheating pays."""
    params = incentive_params(spec)
    p_values = [i / 100 for i in range(30)] + [i / 10 for i in range(3, 11)]  # fine where the boundary lives
    grid = sweep(params, p_values, [i / 20 for i in range(1, 21)], n_jobs=n_jobs, seed=spec.seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    plot = plot_cheating_region(grid, out_dir / "cheating_region.png")
    return IncentiveStudy(simulate(params, n_jobs, spec.seed), grid, str(plot))


# -- whole job ---------------------------------------------------------------------------------
def run_job(spec: JobSpec, paths: ArtifactPaths) -> dict[str, Any]:
    """Every stage in order, in this process; returns the report (also written to ``report.json``)."""
    validate_job(spec)
    dataset = timed(stage_shard, spec, paths)
    runs = timed(stage_train, spec, dataset.value, paths)
    commitments = timed(stage_commit, spec, runs.value, paths)
    timings = {"shard": dataset.seconds, "train": runs.seconds, "commit": commitments.seconds}
    return conclude(spec, paths, dataset.value, runs.value, commitments.value, timings)


def conclude(spec: JobSpec, paths: ArtifactPaths, dataset: DatasetCommitment,
             runs: dict[SolverId, TrainingRun], commitments: dict[SolverId, Signed],
             timings: dict[str, float]) -> dict[str, Any]:
    """Verify, dispute, settle and report a job whose solvers have trained and committed."""
    from verification.report import build_report, write_report

    verified = timed(stage_verify, spec, dataset, runs, commitments, paths)
    disputes = timed(stage_dispute, spec, dataset, runs, commitments, verified.value, paths)
    settled = timed(stage_settle, spec, verified.value.checks, disputes.value, paths.ledger)
    timings = {**timings, "verify": verified.seconds, "dispute": disputes.seconds, "settle": settled.seconds}
    report = build_report(spec, dataset, runs, commitments, check_signatures(spec, commitments),
                          verified.value.checks, disputes.value, settled.value, timings)
    write_report(paths.report(compute_job_id(spec)), report)
    return report


def conclude_from_store(spec: JobSpec, paths: ArtifactPaths) -> dict[str, Any]:
    """``conclude`` for a job whose earlier stages ran elsewhere and left their records on disk."""
    job_id = compute_job_id(spec)
    dataset = store.load_dataset_commitment(paths, job_id)
    runs = {s.solver_id: store.load_run(paths, job_id, s.solver_id) for s in spec.solvers}
    commitments = {s.solver_id: store.load_commitment(paths, job_id, s.solver_id) for s in spec.solvers}
    timings = {"train": sum(r.seconds for r in runs.values())}
    return conclude(spec, paths, dataset, runs, commitments, timings)
