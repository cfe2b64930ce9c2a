"""A plug-in adversary that cheats only when it predicts it will not be checked.

Written against the documented plug-in interface only. Before it trains, it predicts whether the
verifier will check it from everything public it has: the job, its own id and the seed, through the
coin Pinpoint used before the coin became the verifier's commit-reveal,
``H("spot-check", job id, solver id, seed) < p · 2^64``. Predicted unchecked, it skips the work of
every step (only the step counter moves); predicted checked, it trains honestly.

Against a public coin this cheater is never caught. Against the verifier's secret coin
(``verification.verifier``) its prediction is independent of the draw, so it is caught at the
rate ``p`` (``tests/core/test_coin.py``, ``benchmarks/test_bench_detection.py``). A job spec names
it ``strategy: "tests.game.adaptive_cheater:Adaptive"``, ``params: {solver_id: <its id>, p: <p>}``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from proofs.hashing import DOMAIN_STATE, hash_parts
from verification.execution.program import StepOutput
from verification.spec import SolverSpec, compute_job_id
from verification.strategies import honest_step


def predicts_check(spec, solver_id: str, p: float, job_id: str | None = None) -> bool:
    """The public coin: what a solver can compute about its own selection before it commits."""
    job_id = compute_job_id(spec) if job_id is None else job_id
    digest = hash_parts(DOMAIN_STATE, b"spot-check", job_id.encode(), solver_id.encode(),
                        spec.seed.to_bytes(8, "big"), hashing=spec.hashing)
    return int.from_bytes(digest[:8], "big") < int(p * 2**64)


@dataclass(frozen=True)
class Adaptive:
    solver_id: str
    p: float
    name: str = "adaptive"

    def run_step(self, program, state):
        if predicts_check(program.spec, self.solver_id, self.p):
            return honest_step(program, state)
        return StepOutput(state.with_tensors(state.tensors, state.step + 1), float("nan"))

    def divergence_step(self, spec):
        return None if predicts_check(spec, self.solver_id, self.p) else 1


def build_adaptive_job(base, p: float, count: int, first_seed: int = 0):
    """``base`` with ``count`` adaptive cheaters at spot-check probability ``p``, replicate policy,
    and the first seed from ``first_seed`` at which every cheater predicts it is not checked (so
    every one of them cheats; the prediction depends on the job id, hence the search)."""
    cheaters = tuple(SolverSpec(f"adaptive-{i}", "tests.game.adaptive_cheater:Adaptive",
                                {"solver_id": f"adaptive-{i}", "p": p}) for i in range(count))
    spec = dataclasses.replace(base, spot_check_probability=p, spot_check_policy="replicate",
                               solvers=(*base.solvers, *cheaters))
    for seed in range(first_seed, first_seed + 100_000):
        candidate = dataclasses.replace(spec, seed=seed)
        job_id = compute_job_id(candidate)
        if not any(predicts_check(candidate, c.solver_id, p, job_id) for c in cheaters):
            return candidate
    raise ValueError(f"no seed in {first_seed}..{first_seed + 100_000} makes all {count} cheaters cheat")
