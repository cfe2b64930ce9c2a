"""Every catalog adversary is caught where it diverged and slashed; no honest solver ever is."""

import dataclasses

import pytest

from verification.execution.opgraph import derive_schedule
from verification.lifecycle import run_job
from verification.paths import ArtifactPaths
from verification.spec import SolverSpec, get_preset
from verification.strategies import (
    CATALOG,
    BitFlip,
    DataOrder,
    Honest,
    Interpolate,
    Lazy,
    OpCorrupt,
    Replay,
    WrongLR,
    false_challenger,
    resolve_strategy,
)

from .conftest import play

ADVERSARIES = {
    "lazy": {"start": 9, "length": 4},
    "bitflip": {"step": 13},
    "noise": {"step": 7, "sigma": 1e-7},
    "interpolate": {},
    "data_order": {"step": 11},
    "wrong_lr": {"step": 17, "lr": 0.2},
    "late": {},
    "op_corrupt": {"step": 10, "op": 7},
}


def test_the_catalog_has_at_least_ten_adversaries():
    assert set(ADVERSARIES) | {"replay", "false_challenger"} <= set(CATALOG)
    assert len(set(CATALOG) - {"honest"}) >= 10


@pytest.mark.parametrize("name", sorted(ADVERSARIES))
@pytest.mark.parametrize("arity", [2, 5, 40])
def test_each_adversary_is_pinpointed_at_its_step(game_program, game_runs, honest_run, name, arity):
    strategy = resolve_strategy(name, ADVERSARIES[name])
    run = game_runs(strategy)
    _, result = play(game_program, run, strategy, honest_run, Honest(), arity)
    assert result.winner == "challenger", result.reason
    assert result.first_divergent_step == strategy.divergence_step(game_program.spec) is not None
    assert result.operator is not None and result.referee_ops <= 1


def test_op_corrupt_is_pinpointed_at_its_operator(game_program, game_runs, honest_run):
    strategy = OpCorrupt(step=10, op=7)
    _, result = play(game_program, game_runs(strategy), strategy, honest_run, Honest(), 3)
    assert (result.first_divergent_step, result.operator_index, result.referee_ops) == (10, 7, 1)
    assert result.operator == derive_schedule(game_program, 10)[7][0]


@pytest.mark.parametrize(("strategy", "operator"), [
    (DataOrder(step=11), "aten.slice.Tensor"),  # the first operator that reads the batch
    (WrongLR(step=17, lr=0.2), "aten.add_.Tensor"),  # torch.optim.SGD: p.add_(buf, alpha=-lr)
    (BitFlip(step=13), "pinpoint.commit_state"),  # changed outside the step's operators
    (Lazy(start=9, length=4), "aten.slice.Tensor"),  # the step's first operator, never run
])
def test_the_operator_names_what_went_wrong(game_program, game_runs, honest_run, strategy, operator):
    _, result = play(game_program, game_runs(strategy), strategy, honest_run, Honest())
    assert result.operator == operator


def test_an_interpolated_trace_that_ends_at_the_honest_model_is_caught_at_step_1(game_runs, honest_run,
                                                                                 game_program):
    """Zhang et al.'s spoof: the final checkpoint is right, the trajectory is fabricated."""
    strategy = Interpolate()
    run = game_runs(strategy)
    assert run.final_root == honest_run.final_root and run.roots != honest_run.roots
    _, result = play(game_program, run, strategy, honest_run, Honest(), 4)
    assert (result.winner, result.first_divergent_step) == ("challenger", 1)
    assert result.levels["checkpoints"] == 1  # the solver reveals its checkpoints once


def test_a_replayed_cheater_is_caught_at_the_first_copied_checkpoint(game_program, game_runs, honest_run):
    source = game_runs(BitFlip(step=8))
    copier = Replay(path=source.checkpoint_path, source_divergence_step=8)
    _, result = play(game_program, game_runs(copier), copier, honest_run, Honest())
    assert result.winner == "challenger"
    assert result.first_divergent_step == copier.divergence_step(game_program.spec) == 12


def test_a_replayed_honest_trace_is_not_detectable_by_reexecution(game_runs, honest_run, game_program):
    copier = Replay(path=honest_run.checkpoint_path)
    assert game_runs(copier).roots == honest_run.roots
    assert copier.divergence_step(game_program.spec) is None


@pytest.mark.parametrize("arity", [2, 40])
def test_an_honest_solver_beats_a_false_challenger(game_program, game_runs, honest_run, arity):
    liar = false_challenger(step=15)
    _, result = play(game_program, honest_run, Honest(), game_runs(liar), liar, arity)
    assert (result.winner, result.first_divergent_step) == ("solver", 15)


# -- through the whole lifecycle: slashing and bonds ----------------------------------------------
@pytest.fixture(scope="module")
def catalog_report(game_spec, game_runs, tmp_path_factory):
    source = game_runs(BitFlip(step=8))
    solvers = (SolverSpec("honest", "honest"),
               *(SolverSpec(name, name, params) for name, params in ADVERSARIES.items()),
               SolverSpec("replay", "replay", {"path": source.checkpoint_path, "source_divergence_step": 8}))
    # No forced errors: the replay's path (a temporary directory) is in the job id, so the draw
    # would differ run to run, and a solver drawn for one is paid, not slashed (Truebit §4.4;
    # forced errors have their own tests in tests/core/test_forced_error.py).
    terms = dataclasses.replace(game_spec.economics, forced_error_rate_bps=0)
    spec = dataclasses.replace(game_spec, solvers=solvers, economics=terms)
    return run_job(spec, ArtifactPaths(tmp_path_factory.mktemp("catalog-job")))


def test_every_catalog_adversary_is_slashed_and_the_honest_solver_paid(catalog_report):
    by_id = {s["solver_id"]: s for s in catalog_report["solvers"]}
    assert by_id.pop("honest")["outcome"] == "paid"
    for sid, solver in by_id.items():
        assert solver["outcome"] == "slashed", sid
        assert solver["dispute"]["first_divergent_step"] == solver["injected_divergence_step"], sid
        assert solver["dispute"]["operator"] is not None, sid
    assert by_id["op_corrupt"]["dispute"]["operator_index"] == 7
    ledger = catalog_report["ledger"]
    assert ledger["supply_before"] == ledger["supply_after"]


@pytest.fixture(scope="module")
def challenged_honest(game_spec, tmp_path_factory):
    """The same one-solver job checked by an honest verifier and by a false challenger."""
    spec = dataclasses.replace(game_spec, solvers=(SolverSpec("honest", "honest"),))
    liar = dataclasses.replace(spec, challenger_strategy="false_challenger", challenger_params={"step": 15})
    return [run_job(s, ArtifactPaths(tmp_path_factory.mktemp("bond"))) for s in (spec, liar)]


def test_a_false_challenger_loses_its_bond_and_the_honest_solver_is_paid(challenged_honest, game_spec):
    fair, false = challenged_honest
    solver = false["solvers"][0]
    assert solver["outcome"] == "paid" and solver["dispute"]["winner"] == "solver"
    assert solver["dispute"]["first_divergent_step"] == 15
    verifier = game_spec.verifier
    assert false["ledger"]["balances"][verifier] == \
        fair["ledger"]["balances"][verifier] - game_spec.economics.challenger_bond
    assert false["ledger"]["balances"]["honest"] > fair["ledger"]["balances"]["honest"]


def test_a_false_challenger_under_the_interval_policy_also_loses(game_spec, tmp_path):
    spec = dataclasses.replace(game_spec, solvers=(SolverSpec("honest", "honest"),), spot_check_policy="interval",
                               challenger_strategy="false_challenger", challenger_params={"step": 9})
    solver = run_job(spec, ArtifactPaths(tmp_path))["solvers"][0]
    assert solver["outcome"] == "paid" and solver["dispute"]["winner"] == "solver"
    assert solver["dispute"]["first_divergent_step"] == 9


# -- the plug-in contract (docs/design.md §4) ----------------------------------------------------------
PLUGIN = "tests.game.plugin_example:FlipOnce"


def test_the_plugin_example_is_a_strategy_the_game_catches(game_program, game_runs, honest_run):
    strategy = resolve_strategy(PLUGIN, {"step": 13})
    _, result = play(game_program, game_runs(strategy), strategy, honest_run, Honest(), 4)
    assert (result.winner, result.first_divergent_step) == ("challenger", 13)


def test_the_plugin_example_runs_through_a_whole_job(tmp_path):
    spec = dataclasses.replace(get_preset("minimal"), solvers=(
        SolverSpec("honest", "honest"), SolverSpec("mallory", PLUGIN, {"step": 13})))
    report = run_job(spec, ArtifactPaths(tmp_path))
    mallory = next(s for s in report["solvers"] if s["solver_id"] == "mallory")
    assert mallory["strategy"] == PLUGIN and mallory["injected_divergence_step"] == 13
    assert mallory["outcome"] == "slashed" and mallory["dispute"]["first_divergent_step"] == 13
