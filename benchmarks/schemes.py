"""Verification schemes side by side on one job: what each costs, and what each catches.

Schemes
-------
full replication
    The verifier re-trains the whole job and compares its trace root with the solver's (the
    ``replicate`` policy of :mod:`verification.verifier`; refereed delegation as in Verde, Arun et
    al. 2025). Cost: ``T`` steps plus checkpointing. Catches any divergence.
Proof-of-Learning top-Q (Jia et al., "Proof-of-Learning: Definitions and Practice", IEEE S&P 2021,
Algorithm 2)
    The verifier loads the solver's checkpoints, ranks the intervals ``[ik, (i+1)k]`` by the size of
    their parameter update ``||W_(i+1)k - W_ik||_2``, re-executes the ``Q`` largest from the
    solver's own checkpoints and accepts when each lands within distance ``delta`` of the next
    checkpoint. PoL does this per epoch; here the job is one epoch. An interval with a small update
    is never re-executed, which is what spoofing attacks exploit (Zhang et al., IEEE S&P 2022; Fang
    et al., IEEE EuroS&P 2023): a lazy solver that skips a whole interval reports a zero update
    there and is never checked.
optimistic bisection (ours)
    Honest case: with probability ``p`` the verifier re-executes ``m`` random intervals from the
    solver's checkpoints (the ``interval`` policy). On a mismatch the bisection game
    (:mod:`verification.dispute`) narrows the dispute to one step, which the referee re-executes.
zero-knowledge proof of training (a cost model built from published figures, never measured here)
    :data:`KAIZEN_VGG11`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from proofs.types import JobId, PartyId, Root, SolverId, Step
from verification.dispute import DisputeGame, DisputeResult
from verification.execution.checkpoints import read_checkpoint
from verification.execution.program import Program
from verification.execution.state import State
from verification.lifecycle import get_party_time_budget, measure_step_seconds
from verification.providers import TraceProvider
from verification.solver import TrainingRun, train
from verification.strategies import Honest, Strategy
from verification.verifier import SpotCheck, check_replicate


@dataclass(frozen=True)
class ZkProvingModel:
    """Published costs of a zero-knowledge proof of training: a model, not a measurement."""

    system: str
    citation: str
    workload: str
    prover_s_per_iteration: float
    verifier_s: float  # per proof, independent of the number of iterations
    proof_bytes: int
    note: str


# Kaizen, CCS 2024: "VGG-11 with 10 million parameters and batch size 16 ... prover runtime is
# 15 minutes per iteration ... proof size 1.63 MB ... verifier runtime 130 ms".
KAIZEN_VGG11 = ZkProvingModel(
    system="Kaizen (zkPoT)",
    citation=("K. Abbaszadeh, C. Pappas, J. Katz, D. Papadopoulos, \"Zero-Knowledge Proofs of Training "
              "for Deep Neural Networks\", ACM CCS 2024 (IACR ePrint 2024/162)"),
    workload="VGG-11, 10 million parameters, batch size 16",
    prover_s_per_iteration=15 * 60.0,
    verifier_s=0.130,
    proof_bytes=1_630_000,
    note=("published figures for a far larger model than the benchmarked job, used unscaled: no "
          "zkPoT paper reports a model of this size; one revision of the ePrint abstract reports 22 "
          "minutes per iteration, the model uses the lower CCS figure"),
)


def compute_zk_prover_seconds(model: ZkProvingModel, steps: int) -> float:
    """Prover time of a ``steps``-iteration job under the model (one proof step per iteration)."""
    return model.prover_s_per_iteration * steps


# -- full replication ----------------------------------------------------------------------------
def replicate_job(program: Program, solver_id: SolverId, claimed_trace_root: Root, replica_path: Path,
                  job_id: JobId, verifier: SolverId) -> SpotCheck:
    """The verifier re-trains the whole job (checkpoints included) and compares trace roots."""
    replica = train(program, Honest(), replica_path, job_id, verifier)
    return check_replicate(solver_id, claimed_trace_root, replica, program.spec.hashing)


# -- Proof-of-Learning top-Q ---------------------------------------------------------------------
@dataclass(frozen=True)
class PolCheck:
    intervals: tuple[int, ...]  # the Q intervals re-executed, largest updates first
    distances: tuple[float, ...]  # ||W' - W||_2 after re-executing each of them
    accepted: bool
    steps_executed: int


def compute_param_distance(a: State, b: State) -> float:
    """``||W_a - W_b||_2`` over every parameter tensor (optimizer buffers excluded, as in PoL)."""
    pa, pb = a.params(), b.params()
    if sorted(pa) != sorted(pb):
        raise ValueError(f"states have different parameters: {sorted(pa)} vs {sorted(pb)}")
    total = sum(float(torch.sum((pa[n].double() - pb[n].double()) ** 2)) for n in sorted(pa))
    return math.sqrt(total)


def select_top_q(update_norms: Sequence[float], q: int) -> tuple[int, ...]:
    """Indices of the ``q`` largest updates, largest first (ties: the earlier interval first)."""
    ranked = sorted(range(len(update_norms)), key=lambda i: (-update_norms[i], i))
    return tuple(ranked[:q])


def verify_pol_top_q(program: Program, checkpoint_path: str, num_checkpoints: int, q: int,
                     delta: float) -> PolCheck:
    """PoL's verification of one epoch: re-execute the ``q`` largest updates, accept within ``delta``."""
    k = program.spec.checkpoint_interval
    states = [read_checkpoint(checkpoint_path, i, program.device) for i in range(num_checkpoints)]
    norms = [compute_param_distance(states[i + 1], states[i]) for i in range(num_checkpoints - 1)]
    chosen = select_top_q(norms, q)
    distances = tuple(compute_param_distance(program.run(states[i], Step((i + 1) * k)), states[i + 1])
                      for i in chosen)
    return PolCheck(chosen, distances, all(d <= delta for d in distances), len(chosen) * k)


# -- optimistic bisection ------------------------------------------------------------------------
def play_dispute(program: Program, solver_run: TrainingRun, solver_strategy: Strategy,
                 challenger_run: TrainingRun, claimed_trace_root: Root, challenger: PartyId) -> DisputeResult:
    """The whole bisection game over a solver's commitment, against an honest challenger's replica."""
    spec = program.spec
    solver = TraceProvider(PartyId(solver_run.solver_id), solver_run, program, solver_strategy)
    honest = TraceProvider(challenger, challenger_run, program, Honest())
    game = DisputeGame(program, solver, honest, claimed_trace_root, spec.dissection_arity,
                       get_party_time_budget(spec, measure_step_seconds(program)))
    return game.play(spec.num_checkpoints - 1, spec.checkpoint_interval)


def get_lazy_interval_params(num_intervals: int, k: int) -> dict[str, int]:
    """``Lazy`` strategy parameters that skip all ``k`` steps of the middle interval."""
    return {"start": (num_intervals // 2) * k + 1, "length": k}

