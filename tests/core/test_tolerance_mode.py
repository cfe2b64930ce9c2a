"""Execution mode ``tolerance``: Proof-of-Learning's distance check in the verifier, and the
interpolation spoof it lets through where exact roots do not."""

import pytest

from proofs.encoding import trace_root
from proofs.types import SolverId
from verification.solver import train
from verification.spec import SpecError, spec_from_dict
from verification.strategies import Honest, Interpolate
from verification.verifier import check_interval, check_tolerance


@pytest.fixture(scope="module")
def runs(minimal_program, tmp_path_factory):
    d = tmp_path_factory.mktemp("tolerance")
    return {name: (train(minimal_program, s, d / f"{name}.zarr", "job", SolverId(name)), s)
            for name, s in {"honest": Honest(), "spoof": Interpolate()}.items()}


def check(kind, program, runs, name, intervals, rho=0.5):
    run, _ = runs[name]
    root = trace_root(list(run.roots))
    if kind == "tolerance":
        return check_tolerance(program, run.solver_id, run.roots, root, run.checkpoint_path, intervals, rho)
    return check_interval(program, run.solver_id, run.roots, root, run.checkpoint_path, intervals)


def test_honest_work_passes_both_checks(minimal_program, runs):
    every = tuple(range(minimal_program.spec.num_checkpoints - 1))
    assert not check("tolerance", minimal_program, runs, "honest", every, rho=0.1).mismatch
    assert not check("exact", minimal_program, runs, "honest", every).mismatch


def test_the_interpolation_spoof_passes_tolerance_where_exact_roots_catch_it(minimal_program, runs):
    late = (2, 3)  # the fabricated path is straight where honest training has slowed down
    assert not check("tolerance", minimal_program, runs, "spoof", late).mismatch  # false accept
    assert check("exact", minimal_program, runs, "spoof", late).mismatch


def test_the_spoof_is_not_invisible_to_tolerance_early_on(minimal_program, runs):
    assert check("tolerance", minimal_program, runs, "spoof", (0,)).mismatch


def test_rho_must_be_positive():
    with pytest.raises(SpecError, match="tolerance_rho"):
        spec_from_dict({"mode": "tolerance", "tolerance_rho": 0.0})
