"""Parties cannot break the game: the six ways found around the protocol, each now closed.

1. a cheater that raises (or exits, or hangs, or answers garbage) in the dispute forfeits and the
   job settles; 2. a plug-in that patches the verifier patches only its own process; 3. a solver id
   cannot write into another job; 4. exact mode never slashes an honest solver for its environment;
   5. two processes can verify one job at once; 6. bad input is refused before any work.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import verification.dispute
import verification.referee
from datasets.storage import exists
from proofs.types import SolverId
from verification.execution.program import Program
from verification.lifecycle import (
    InsufficientFundsError,
    run_job,
    stage_commit,
    stage_shard,
    stage_train,
    validate_job,
)
from verification.paths import ArtifactPaths, UnsafePathError
from verification.report import render_table
from verification.settlement import Ledger
from verification.spec import (
    JobSpec,
    SolverSpec,
    SpecError,
    get_preset,
    parse_spec_text,
    spec_from_dict,
)
from verification.strategies import StrategyError

pytestmark = pytest.mark.slow

ADVERSARIES = "tests.security.adversaries"
RULE_ON_OUTPUT, COMPUTE_NARROWED, UPDATE = (verification.referee.rule_on_output,
                                            verification.dispute.compute_narrowed, Program.update)


def small_spec(solvers: list[SolverSpec], **fields) -> JobSpec:
    """The minimal preset cut to T = 16, k = 4 (four checkpoint intervals, four steps each)."""
    return dataclasses.replace(get_preset("minimal"), name="security", steps=16, checkpoint_interval=4,
                               solvers=(SolverSpec(SolverId("honest")), *solvers), **fields)


def plugin(solver_id: str, attr: str, **params) -> SolverSpec:
    return SolverSpec(SolverId(solver_id), f"{ADVERSARIES}:{attr}", params)


def outcomes(report: dict) -> dict[str, str]:
    return {s["solver_id"]: s["outcome"] for s in report["solvers"]}


def solver_entry(report: dict, solver_id: str) -> dict:
    return next(s for s in report["solvers"] if s["solver_id"] == solver_id)


# -- 1. every failure in the game is a forfeit --------------------------------------------------
@pytest.fixture(scope="module")
def misbehaving_job(tmp_path_factory):
    """One job, one honest solver and one cheater per way of misbehaving in the dispute (raise,
    exit the process, hang, return garbage) and per way of failing its own training."""
    tmp = tmp_path_factory.mktemp("misbehaving")
    markers = {how: str(tmp / f"{how}.trained") for how in ("raise", "exit", "hang", "garbage")}
    solvers = [plugin(f"dispute-{how}", "MisbehavesInDispute", marker=marker, how=how, step=6)
               for how, marker in markers.items()]
    solvers += [plugin(f"train-{how}", "MisbehavesInTraining", how=how, step=3) for how in ("raise", "exit", "hang")]
    solvers += [SolverSpec(SolverId("patcher"), "tests.security.patching:DoubleLrAndPatch", {"step": 13}),
                SolverSpec(SolverId("forger"), "tests.security.forger:ForgesItsSignature"),
                plugin("nonsense", "DeclaresNonsense"), plugin("two-threads", "HonestOnTwoThreads")]
    # Generous budgets (an honest party needs well under a second of them here); the hung
    # parties are what takes them in full.
    spec = small_spec(solvers, party_time_budget_s=15.0, solver_deadline_s=20.0)
    paths = ArtifactPaths(tmp / "artifacts")
    return spec, paths, run_job(spec, paths)


def test_every_misbehaving_party_loses_and_the_job_settles(misbehaving_job):
    spec, paths, report = misbehaving_job
    honest = {"honest": "paid", "two-threads": "unverified"}
    assert outcomes(report) == {**honest, **{s.solver_id: "slashed" for s in spec.solvers if s.solver_id not in honest}}
    assert report["ledger"]["supply_before"] == report["ledger"]["supply_after"]
    assert paths.report(report["job_id"]).exists()


@pytest.mark.parametrize("how, reason", [
    ("raise", "RuntimeError: I will not recompute anything"),
    ("exit", "its process exited with code 3"),
    ("hang", "no answer to"),
    ("garbage", "AttributeError"),
])
def test_a_cheater_that_misbehaves_in_the_dispute_forfeits_at_the_step_it_corrupted(misbehaving_job, how, reason):
    _, _, report = misbehaving_job
    dispute = solver_entry(report, f"dispute-{how}")["dispute"]
    assert dispute["winner"] == "challenger"
    transcript = json.loads(Path(dispute["transcript"]).read_text())
    last = transcript["moves"][-1]
    assert (last["kind"], last["party"]) == ("forfeit", "solver")
    assert reason in last["payload"]["reason"], last["payload"]["reason"]


@pytest.mark.parametrize("how, reason", [
    ("raise", "RuntimeError: I will not recompute anything"),
    ("exit", "its process exited with code 3"),
    ("hang", "no answer to result() within 20.00s"),
])
def test_a_solver_that_fails_its_own_training_forfeits_with_the_reason_named(misbehaving_job, how, reason):
    _, _, report = misbehaving_job
    entry = solver_entry(report, f"train-{how}")
    assert entry["outcome"] == "slashed" and entry["trace_root"] == "" and entry["dispute"] is None
    assert entry["strategy"] == f"{ADVERSARIES}:MisbehavesInTraining"
    assert entry["forfeit"].startswith(f"training under strategy '{ADVERSARIES}:MisbehavesInTraining' failed")
    assert reason in entry["forfeit"], entry["forfeit"]


def test_the_summary_names_forfeits_and_never_prints_none(misbehaving_job):
    table = render_table(misbehaving_job[2])
    assert "None" not in table and "forfeit" in table


# -- 2. a plug-in cannot reach another party's objects ------------------------------------------
def test_a_plugin_that_patches_the_verifier_patches_only_its_own_process(misbehaving_job):
    _, _, report = misbehaving_job
    dispute = solver_entry(report, "patcher")["dispute"]
    assert (dispute["winner"], dispute["first_divergent_step"]) == ("challenger", 13)
    assert dispute["operator"] is not None
    # The coordinator never imported the plug-in: its referee, game and program are untouched.
    assert "tests.security.patching" not in sys.modules and "tests.security.forger" not in sys.modules
    assert verification.referee.rule_on_output is RULE_ON_OUTPUT
    assert verification.dispute.compute_narrowed is COMPUTE_NARROWED and Program.update is UPDATE


# -- 3. identifiers are safe --------------------------------------------------------------------
@pytest.mark.parametrize("solver_id", ["../../job-0123456789ab/solvers/honest", "a:b", "..", "a/b", "", "x" * 65,
                                       "-lead", "a|b"])
def test_an_unsafe_solver_id_is_refused_before_anything_is_written(tmp_path, solver_id):
    data = {"preset": "minimal", "solvers": [{"solver_id": "honest"}, {"solver_id": solver_id}]}
    with pytest.raises(SpecError, match="unsafe names"):
        spec_from_dict(data)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("field", ["name", "submitter", "verifier"])
def test_every_name_in_a_spec_is_a_safe_identifier(field):
    with pytest.raises(SpecError, match=f"{field}='../x'"):
        spec_from_dict({"preset": "minimal", field: "../x"})


def test_paths_are_built_only_from_safe_names(tmp_path):
    paths = ArtifactPaths(tmp_path)
    for build in (lambda: paths.checkpoints("job-1", "../other"), lambda: paths.transcript("job-1", "a/b"),
                  lambda: paths.job(".."), lambda: paths.replica("job-1", "../x")):
        with pytest.raises(UnsafePathError):
            build()


# -- 4. exact mode never slashes an honest solver for its environment ---------------------------
def test_an_honest_solver_on_other_threads_is_not_slashed_in_exact_mode(misbehaving_job):
    entry = solver_entry(misbehaving_job[2], "two-threads")
    assert entry["outcome"] == "unverified" and entry["dispute"] is None
    assert "threads=2" in entry["environment"]
    assert "reproducible mode" in entry["spot_check"]["inconclusive"]


def test_in_reproducible_mode_the_same_solver_is_checked_and_paid(tmp_path):
    spec = small_spec([plugin("two-threads", "HonestOnTwoThreads")], mode="reproducible")
    report = run_job(spec, ArtifactPaths(tmp_path))
    entry = solver_entry(report, "two-threads")
    assert entry["spot_check"]["checked"] and not entry["spot_check"]["mismatch"]
    assert entry["outcome"] == "paid"


# -- 5. two processes verifying one job ---------------------------------------------------------
CONCLUDE = """
import sys
from pathlib import Path
from verification.lifecycle import conclude_from_store
from verification.paths import ArtifactPaths
from verification.store import load_spec_of
paths = ArtifactPaths(Path(sys.argv[1]))
report = conclude_from_store(load_spec_of(paths, sys.argv[2]), paths)
print({s["solver_id"]: s["outcome"] for s in report["solvers"]})
"""


def test_two_processes_verifying_one_job_both_finish_and_settle_it_once(tmp_path):
    from verification import store

    spec = small_spec([SolverSpec(SolverId("bitflip"), "bitflip", {"step": 6})])
    paths = ArtifactPaths(tmp_path)
    job_id = store.save_spec(paths, spec)
    dataset = stage_shard(spec, paths)
    runs = stage_train(spec, dataset, paths)
    for run in runs.values():
        store.save_run(paths, run)
    for signed in stage_commit(spec, runs, paths).values():
        store.save_commitment(paths, signed)
    env = {**os.environ, "PYTHONPATH": str(Path.cwd())}
    verifiers = [subprocess.Popen([sys.executable, "-c", CONCLUDE, str(tmp_path), job_id], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [v.communicate(timeout=600) for v in verifiers]
    for verifier, (out, err) in zip(verifiers, results, strict=True):
        assert verifier.returncode == 0, err[-2000:]
        assert out.strip().splitlines()[-1] == "{'honest': 'paid', 'bitflip': 'slashed'}"
    ledger = Ledger(paths.ledger)
    try:
        settles = [tx for tx in ledger.history(job_id) if tx.kind == "settle"]
        assert len(settles) == 1
    finally:
        ledger.close()


# -- 6. validation before any work --------------------------------------------------------------
@pytest.mark.parametrize("fields, message", [
    ({"model": "mlpp"}, "unknown model 'mlpp'"),
    ({"model_params": {"width": 4}}, "model 'mlp' with model_params"),
    ({"batch_size": 5000}, "batch_size=5000 exceeds the 1797 samples"),
    ({"dataset": "digitz"}, "unknown data source 'digitz'"),
    ({"solvers": ({"solver_id": "s", "strategy": "no.such.module:X"},)}, "cannot be imported"),
    ({"solvers": ({"solver_id": "s", "strategy": "lazy", "params": {"begin": 3}},)}, "bad parameters"),
])
def test_a_program_that_cannot_be_built_is_refused_before_anything_is_written(tmp_path, fields, message):
    paths = ArtifactPaths(tmp_path / "artifacts")
    data = {"preset": "minimal", **{k: list(v) if isinstance(v, tuple) else v for k, v in fields.items()}}
    with pytest.raises((SpecError, StrategyError), match=message):
        validate_job(spec_from_dict(data), paths)
    assert not (tmp_path / "artifacts").exists()


@pytest.mark.parametrize("text, message", [
    ('{"seed": -1}', "seed must be in 0..2\\*\\*63-1, got -1"),
    (f'{{"seed": {2**64}}}', "seed must be in 0..2\\*\\*63-1"),
    ('{"party_time_budget_s": .inf}', "party_time_budget_s=inf"),
    ('{"lr": .nan}', "lr=nan"),
    ('{"seed": 1, "seed": 2}', "key\\(s\\) \\['seed'\\] given more than once"),
    ('{"economics": {"solver_stake": 1, "solver_stake": 2}}', "given more than once"),
])
def test_out_of_range_and_duplicate_fields_are_refused_naming_the_field(text, message):
    with pytest.raises(SpecError, match=message):
        spec_from_dict(parse_spec_text(text))


def test_stakes_larger_than_the_balances_are_refused_before_any_work(tmp_path):
    spec = dataclasses.replace(get_preset("minimal"),
                               economics=dataclasses.replace(get_preset("minimal").economics, solver_stake=200_000))
    paths = ArtifactPaths(tmp_path / "artifacts")
    with pytest.raises(InsufficientFundsError, match="honest needs 200000, holds 100000"):
        run_job(spec, paths)
    assert not exists(str(tmp_path / "artifacts" / "runs"))


def test_a_forged_signature_or_a_malformed_run_is_a_forfeit(misbehaving_job):
    _, _, report = misbehaving_job
    assert solver_entry(report, "forger")["forfeit"] == "no valid signed commitment to its run"
    assert "declared divergence step 'soon'" in solver_entry(report, "nonsense")["forfeit"]


def test_the_solver_deadline_is_the_spec_s_or_derived_from_a_measured_step(minimal_program):
    from verification.lifecycle import DEADLINE_FLOOR_S, get_solver_deadline

    assert get_solver_deadline(dataclasses.replace(minimal_program.spec, solver_deadline_s=7.5), minimal_program) == 7.5
    assert get_solver_deadline(minimal_program.spec, minimal_program) > DEADLINE_FLOOR_S


def test_answers_decode_on_many_threads_at_once():
    """torch's weights-only allowlist is process-wide: concurrent decodes must not clear each
    other's (solvers' runs are decoded side by side)."""
    from concurrent.futures import ThreadPoolExecutor

    from proofs.merkle import MerkleProof
    from verification.parties import decode_answer, encode_answer

    answer = encode_answer("ok", (b"\x01" * 32, MerkleProof(1, 4, (b"a" * 32,))))
    with ThreadPoolExecutor(max_workers=8) as pool:
        decoded = list(pool.map(lambda _: decode_answer("p", answer), range(400)))
    assert all(d == ("ok", (b"\x01" * 32, MerkleProof(1, 4, (b"a" * 32,)))) for d in decoded)


def test_an_operator_record_decodes_with_its_input_kinds():
    """A party's op record reaches the coordinator with its input kinds as ``InputKind`` members
    (allowed by ``ANSWER_CLASSES``), and encodes to the bytes of the plain names."""
    from verification.execution.opgraph import InputKind, InputRef, OpRecord, encode_record
    from verification.parties import decode_answer, encode_answer

    record = OpRecord(3, "aten.add.Tensor", "{}", (InputRef(InputKind.STATE, "w"), InputRef(InputKind.OP, "", 1, 0)),
                      ("00" * 32,))
    status, decoded = decode_answer("solver", encode_answer("ok", record))
    assert status == "ok" and decoded == record and type(decoded.inputs[0].kind) is InputKind
    plain = OpRecord(3, "aten.add.Tensor", "{}", (InputRef("state", "w"), InputRef("op", "", 1, 0)), ("00" * 32,))
    assert encode_record(decoded) == encode_record(plain)
