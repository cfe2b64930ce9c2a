"""Programs written against the documented interface only, verified end to end.

Two user programs (``tests/programs``: a LayerNorm/GELU MLP with its own data and a label-smoothed
loss; a convolutional regressor with dropout and an MSE loss on one-hot targets over the catalog's
digits), each in ``exact`` and ``reproducible`` mode, with an honest solver, a ``bitflip`` cheater
and an ``op_corrupt`` cheater that flips a bit in the output of the step's first product. The
protocol must pay the honest solver, slash both cheaters at the step they diverged, name the
corrupted operator by its index and name, and conserve the supply.
"""

from __future__ import annotations

import pytest
from torch.utils._python_dispatch import TorchDispatchMode

from datasets.sources import load_source
from proofs.types import Root, Step
from verification.execution.opgraph import is_computation
from verification.execution.program import Program
from verification.lifecycle import run_job
from verification.paths import ArtifactPaths
from verification.spec import JobSpec, spec_from_dict

PROGRAMS = {
    "layernorm_mlp": {"dataset": "tests.programs.layernorm_mlp:data", "model": "tests.programs.layernorm_mlp:model",
                      "loss": "tests.programs.layernorm_mlp:loss", "optimizer": "adamw", "lr": 0.003,
                      "schedule": "cosine", "schedule_params": {"warmup_steps": 2}},
    "conv_regressor": {"model": "tests.programs.conv_regressor:model", "model_params": {"channels": 4},
                       "loss": "tests.programs.conv_regressor:loss", "optimizer": "adam", "lr": 0.01},
}
PRODUCTS = ("aten.mm.default", "aten.addmm.default", "aten.convolution.default", "pinpoint.fixed_mm.default",
            "pinpoint.fixed_conv2d.default")  # reproducible mode's products are operators of their own
CORRUPT_STEP, FLIP_STEP = 11, 6


class OpLog(TorchDispatchMode):
    """(name, output) of every operator, counted as the op trace and ``op_corrupt`` count them."""

    def __init__(self):
        super().__init__()
        self.ops: list[tuple[str, object]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if is_computation(func):
            self.ops.append((str(func), out))
        return out


def first_product(spec: JobSpec, step: int) -> tuple[int, str]:
    """The index and name of the step's first product: torch's natively, ``pinpoint.fixed_mm``
    in reproducible mode."""
    source = load_source(spec.dataset, **spec.dataset_params)
    program = Program(spec, source.x, source.y, Root(bytes(32)), source.meta)
    pre = program.run(program.init_state(), Step(step - 1))
    batch = program.batch(Step(step))
    with OpLog() as log:
        program.step(pre, batch)
    for index, (name, _) in enumerate(log.ops):
        if name in PRODUCTS:
            return index, name
    raise AssertionError(f"no product in step {step} of {spec.model}")


@pytest.mark.parametrize("mode", ["exact", "reproducible"])
@pytest.mark.parametrize("program", sorted(PROGRAMS))
def test_a_users_program_pays_the_honest_solver_and_pinpoints_both_cheaters(program, mode, tmp_path):
    fields = {"preset": "minimal", "name": f"{program}-{mode}", "mode": mode, "steps": 16,
              "checkpoint_interval": 4, **PROGRAMS[program]}
    op, name = first_product(spec_from_dict(fields), CORRUPT_STEP)
    first_param = "param/inp.weight" if program == "layernorm_mlp" else "param/conv.weight"
    spec = spec_from_dict({**fields, "solvers": [
        "honest",
        {"solver_id": "flipper", "strategy": "bitflip", "params": {"step": FLIP_STEP, "tensor": first_param}},
        {"solver_id": "mallet", "strategy": "op_corrupt", "params": {"step": CORRUPT_STEP, "op": op}},
    ]})
    report = run_job(spec, ArtifactPaths(tmp_path))
    solvers = {s["solver_id"]: s for s in report["solvers"]}
    assert solvers["honest"]["outcome"] == "paid"
    assert solvers["flipper"]["outcome"] == "slashed"
    assert solvers["flipper"]["dispute"]["first_divergent_step"] == FLIP_STEP
    assert solvers["mallet"]["outcome"] == "slashed"
    mallet = solvers["mallet"]["dispute"]
    assert (mallet["first_divergent_step"], mallet["operator_index"], mallet["operator"]) == (CORRUPT_STEP, op, name)
    assert report["ledger"]["supply_before"] == report["ledger"]["supply_after"]
