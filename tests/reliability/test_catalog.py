"""Every cataloged failure (``verification.failures.FAILURES``) fed through the pipeline: the stage
fails with the cataloged error, the message names the artifact and the value, no artifact is
written and the ledger (which already holds another settled job) is untouched."""

from __future__ import annotations

import copy
import dataclasses
import functools
import importlib
import shutil
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import zarr

from proofs.encoding import trace_root
from proofs.merkle import MerkleProof
from proofs.messages import decode_message, encode_message, sign_message
from proofs.types import PartyId, SolverId
from tests.clocks import FakeClock
from tests.game.test_transcript import rechain
from tests.settlement.support import dump
from verification import store
from verification.dispute import DisputeGame, load_transcript, save_transcript
from verification.execution.checkpoints import read_checkpoint
from verification.execution.program import load_program
from verification.failures import CRASHES, FAILURES
from verification.lifecycle import (
    VerifyOutput,
    open_spot_check_coin,
    party_keypair,
    require_valid_commitments,
    reveal_spot_check_coin,
    run_job,
    stage_commit,
    stage_settle,
    stage_shard,
    stage_train,
    stage_verify,
)
from verification.paths import ArtifactPaths
from verification.providers import ProviderError, TraceProvider
from verification.report import read_report
from verification.settlement import Ledger, SolverVerdict, settle_job
from verification.spec import SolverSpec, SpecError, compute_job_id, get_preset, load_spec
from verification.strategies import BitFlip, Honest
from verification.verifier import not_checked


@dataclass(frozen=True)
class Env:
    """One tiny job taken through shard, train and commit, next to a ledger with another job."""

    spec: Any
    paths: ArtifactPaths
    dataset: Any
    runs: dict
    commitments: dict

    def store(self, solver: str) -> Path:
        return Path(self.runs[solver].checkpoint_path)


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> Env:
    spec = dataclasses.replace(
        get_preset("minimal"), name="catalog", steps=16, checkpoint_interval=4,
        spot_check_policy="interval", intervals_per_check=4,
        solvers=(SolverSpec("honest", "honest"), SolverSpec("bitflip", "bitflip", {"step": 6})))
    paths = ArtifactPaths(tmp_path_factory.mktemp("artifacts"))
    dataset = stage_shard(spec, paths)
    runs = stage_train(spec, dataset, paths)
    with Ledger(paths.ledger) as ledger:
        settle_job(ledger, "job-earlier", spec.submitter, spec.economics,
                   [SolverVerdict("honest", "paid")], [spec.verifier])
    return Env(spec, paths, dataset, runs, stage_commit(spec, runs))


@dataclass(frozen=True)
class Case:
    """How to provoke one failure: ``damage`` (undone afterwards), then ``action``; the message
    must contain every needle."""

    action: Callable[[], Any]
    needles: tuple[str, ...]
    damage: Callable[[], Any] = nullcontext
    check: Callable[[], None] = field(default=lambda: None)


TRIGGERS: dict[str, Callable[[Env, Path], Case]] = {}


def trigger(name: str):
    def register(fn):
        TRIGGERS[name] = fn
        return fn
    return register


@contextmanager
def altered(*files: Path, change: Callable[[], None]) -> Iterator[None]:
    """Apply ``change`` (which may touch ``files``), and put every file back afterwards."""
    saved = {f: f.read_bytes() for f in files}
    try:
        change()
        yield
    finally:
        for f, data in saved.items():
            f.write_bytes(data)


def flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x5A
    path.write_bytes(bytes(data))


# -- the job spec --------------------------------------------------------------------------------
def spec_file(tmp: Path, text: str) -> Path:
    path = tmp / "job.yaml"
    path.write_text(text)
    return path


@trigger("spec-unreadable")
def _(env, tmp):
    path = spec_file(tmp, "steps: [40, \n")
    return Case(lambda: load_spec(path), (str(path), "cannot be read"))


@trigger("spec-inconsistent")
def _(env, tmp):
    path = spec_file(tmp, "preset: minimal\ncheckpoint_interval: 80\n")
    return Case(lambda: load_spec(path), (str(path), "checkpoint_interval k=80", "T=40"))


@trigger("spec-negative-amount")
def _(env, tmp):
    path = spec_file(tmp, "preset: minimal\neconomics: {solver_stake: -5}\n")
    return Case(lambda: load_spec(path), (str(path), "economics.solver_stake", "-5"))


@trigger("spec-unknown-field")
def _(env, tmp):
    path = spec_file(tmp, "preset: minimal\neconomics: {stake: 5}\n")
    return Case(lambda: load_spec(path), (str(path), "'stake'", "solver_stake"))


@trigger("unknown-strategy")
def _(env, tmp):
    spec = dataclasses.replace(env.spec, solvers=(SolverSpec("honest", "honest"), SolverSpec("odd", "nope")))
    return Case(lambda: run_job(spec, env.paths), ("'nope'", "honest"))


# -- data and checkpoints ------------------------------------------------------------------------
def shard_chunk(env: Env, shard: int, array: str) -> Path:
    return Path(env.dataset.shards[shard].path) / array / "c" / "0" / "0"


@trigger("dataset-chunk-corrupted")
def _(env, tmp):
    chunk = shard_chunk(env, 1, "x")
    return Case(lambda: stage_train(env.spec, env.dataset, env.paths),
                ("shard 1", env.dataset.shards[1].path),
                lambda: altered(chunk, change=lambda: flip_byte(chunk)))


@trigger("dataset-chunk-missing")
def _(env, tmp):
    chunk = Path(env.dataset.shards[0].path) / "y" / "c" / "0"
    return Case(lambda: stage_train(env.spec, env.dataset, env.paths),
                ("shard 0", env.dataset.shards[0].path, "committed"),
                lambda: altered(chunk, change=chunk.unlink))


@trigger("checkpoint-chunk-corrupted")
def _(env, tmp):
    chunk = env.store("honest") / "rows" / "c.1.0"
    return Case(lambda: read_checkpoint(env.store("honest"), 1), ("checkpoint #1", str(env.store("honest"))),
                lambda: altered(chunk, change=lambda: flip_byte(chunk)))


@trigger("checkpoint-chunk-missing")
def _(env, tmp):
    chunk = env.store("honest") / "rows" / "c.2.0"
    return Case(lambda: read_checkpoint(env.store("honest"), 2),
                ("checkpoint #2", str(env.store("honest")), env.runs["honest"].roots[2].hex()),
                lambda: altered(chunk, change=chunk.unlink))


@trigger("trace-truncated")
def _(env, tmp):
    store = env.store("honest")

    def truncate() -> None:
        group = zarr.open_group(str(store), mode="r+")
        group.attrs["roots"] = group.attrs["roots"][:2]

    return Case(lambda: read_checkpoint(store, 2), (str(store), "holds 2 of 5 checkpoints", "#2"),
                lambda: altered(store / "zarr.json", change=truncate))


@trigger("partial-store-untrusted")
def _(env, tmp):
    store = env.store("honest")
    partial = store.with_name(store.name + ".partial")

    def leave_corrupted_partial() -> None:
        shutil.copytree(store, partial)
        flip_byte(partial / "rows" / "c.0.0")

    def check() -> None:
        assert not partial.exists()
        assert Path(env.runs["honest"].checkpoint_path).exists()

    return Case(lambda: stage_train(env.spec, env.dataset, env.paths, ["honest"]),
                (str(partial), "checkpoint #0", "restarts from step 0"),
                lambda: altered(change=leave_corrupted_partial), check)


# -- commitments, signatures, proofs -------------------------------------------------------------
def honest_commitment(env: Env):
    return env.commitments[SolverId("honest")]


def require(env: Env, signed) -> Callable[[], None]:
    return lambda: require_valid_commitments(env.spec, {SolverId("honest"): signed})


@trigger("root-wrong-length")
def _(env, tmp):
    run = env.runs["honest"]
    short = dataclasses.replace(run, roots=(*run.roots[:-1], run.roots[-1][:31]))
    return Case(lambda: stage_commit(env.spec, {SolverId("honest"): short}),
                ("final_state_root", "32-byte", repr(run.roots[-1][:31])))


@trigger("message-malformed")
def _(env, tmp):
    data = encode_message(dataclasses.replace(honest_commitment(env).message, environment=""))[:-7]
    return Case(lambda: decode_message(data), (data.hex(), "needed 8 more bytes"))


@trigger("proof-malformed")
def _(env, tmp):
    short = "ab" * 31
    return Case(lambda: MerkleProof.from_dict({"index": 0, "size": 5, "path": [short]}), (short, "32 bytes"))


@trigger("public-key-malformed")
def _(env, tmp):
    bad = b"\xa0" + bytes(47)
    signed = dataclasses.replace(honest_commitment(env), public_key=bad)
    return Case(require(env, signed), ("public key", bad.hex()))


@trigger("signature-malformed")
def _(env, tmp):
    bad = bytes(96)
    signed = dataclasses.replace(honest_commitment(env), signature=bad)
    return Case(require(env, signed), ("signature", bad.hex()))


@trigger("key-not-registered")
def _(env, tmp):
    sk, pk = party_keypair(env.spec, "bitflip")
    signed = sign_message(honest_commitment(env).message, sk, PartyId("honest"))
    return Case(require(env, signed), ("'honest'", pk.hex(), "registered"))


@trigger("signature-invalid")
def _(env, tmp):
    signed = honest_commitment(env)
    forged = dataclasses.replace(signed.message, trace_root=env.commitments["bitflip"].message.trace_root)
    return Case(require(env, dataclasses.replace(signed, message=forged)),
                ("'honest'", compute_job_id(env.spec), "does not verify"))


@trigger("commitment-replayed")
def _(env, tmp):
    signed = honest_commitment(env)
    other = dataclasses.replace(signed.message, job_id="job-000000000000")
    sk, _ = party_keypair(env.spec, "honest")
    return Case(require(env, sign_message(other, sk, PartyId("honest"))),
                ("'honest'", "job_id='job-000000000000'", compute_job_id(env.spec)))


# -- the dispute game ----------------------------------------------------------------------------
class Tampered(TraceProvider):
    def checkpoint_root(self, index):
        root, proof = super().checkpoint_root(index)
        path = (bytes([proof.path[0][0] ^ 1]) + proof.path[0][1:], *proof.path[1:])
        return root, dataclasses.replace(proof, path=path)


class Silent(TraceProvider):
    def commit_steps(self, start, end):
        raise ProviderError(f"{self.party}: checkpoint disk unplugged")


SLOW_CLOCK = FakeClock()


class Slow(TraceProvider):
    """Each answer takes 0.05 s on the game's (fake) clock: only the slow party's clock moves."""

    def checkpoint_root(self, index):
        SLOW_CLOCK.advance(0.05)
        return super().checkpoint_root(index)


def play(env: Env, solver_cls, solver: str, challenger_cls, budget_s: float = 60.0):
    program = load_program(env.spec, env.dataset)
    strategies = {"honest": Honest(), "bitflip": BitFlip(step=6)}
    run = env.runs[solver]
    game = DisputeGame(program, solver_cls(PartyId(solver), run, program, strategies[solver]),
                       challenger_cls(PartyId("verifier"), env.runs["honest"], program, Honest()),
                       trace_root(list(run.roots)), 2, budget_s, clock=SLOW_CLOCK)
    result = game.play(env.spec.num_checkpoints - 1, env.spec.checkpoint_interval)
    return game.transcript(result), result


@trigger("proof-tampered")
def _(env, tmp):
    return Case(lambda: play(env, Tampered, "bitflip", TraceProvider),
                ("solver forfeits", "invalid trace proof for checkpoint #"))


@trigger("party-silent")
def _(env, tmp):
    return Case(lambda: play(env, Silent, "bitflip", TraceProvider),
                ("solver forfeits", "bitflip: checkpoint disk unplugged"))


@trigger("party-timeout")
def _(env, tmp):
    return Case(lambda: play(env, TraceProvider, "honest", Slow, budget_s=0.01),
                ("challenger forfeits", "time budget"))


class HungSolver(TraceProvider):
    """Stops answering at level 2 until ``release`` is set (when the case is undone); sets
    ``finished`` when the abandoned call has ended."""

    def __init__(self, release: threading.Event, finished: threading.Event, *args):
        super().__init__(*args)
        self.release, self.finished = release, finished

    def commit_steps(self, start, end):
        try:
            self.release.wait()
            return super().commit_steps(start, end)
        finally:
            self.finished.set()


@contextmanager
def released(release: threading.Event, finished: threading.Event) -> Iterator[None]:
    """Release the hung party afterwards and wait for its abandoned call to end, so that it does
    not run beside the next case's game (in this process; a real party is its own process)."""
    try:
        yield
    finally:
        release.set()
        assert finished.wait(timeout=300), "the released party's call did not end"


@trigger("party-hung")
def _(env, tmp):
    release, finished = threading.Event(), threading.Event()
    return Case(lambda: play(env, functools.partial(HungSolver, release, finished), "bitflip", TraceProvider,
                             budget_s=0.5),
                ("solver forfeits", "no answer to commit_steps(4, 8)", "0.50s time budget"),
                lambda: released(release, finished))


# -- a saved dispute transcript ------------------------------------------------------------------
PLAYED: dict[str, tuple[dict, str]] = {}


def anchored_transcript(env: Env) -> tuple[dict, str]:
    """A copy of one game's transcript (bitflip against the honest replica, played once) and the
    head its report anchors."""
    key = str(env.paths.root)
    if key not in PLAYED:
        transcript, result = play(env, TraceProvider, "bitflip", TraceProvider)
        PLAYED[key] = transcript, result.to_report()["transcript_head"]
    transcript, head = PLAYED[key]
    return copy.deepcopy(transcript), head


def load_tampered(env: Env, tmp: Path, tamper: Callable[[dict], dict], *needles: str) -> Case:
    """``tamper`` applied to a saved transcript, loaded against the report's head."""
    transcript, head = anchored_transcript(env)
    path = save_transcript(tmp / "transcript.json", tamper(transcript))
    return Case(lambda: load_transcript(path, head), (path, *needles))


def swap_moves(transcript: dict, a: int, b: int) -> dict:
    moves = transcript["moves"]
    moves[a], moves[b] = moves[b], moves[a]
    return transcript


def alter_move(transcript: dict, index: int) -> dict:
    transcript["moves"][index]["payload"]["root"] = "00" * 32
    return transcript


@trigger("transcript-move-replayed")
def _(env, tmp):
    def replay(transcript: dict) -> dict:
        transcript["moves"].append(copy.deepcopy(transcript["moves"][2]))
        return transcript

    return load_tampered(env, tmp, replay, "replays move #2")


@trigger("transcript-move-reordered")
def _(env, tmp):
    return load_tampered(env, tmp, lambda t: swap_moves(t, 3, 4), "move at position 3 is out of order")


@trigger("transcript-move-altered")
def _(env, tmp):
    move_id = anchored_transcript(env)[0]["moves"][1]["move_id"]
    return load_tampered(env, tmp, lambda t: alter_move(t, 1), "move #1", "was altered", move_id)


@trigger("transcript-head-mismatch")
def _(env, tmp):
    head = anchored_transcript(env)[1]
    return load_tampered(env, tmp, lambda t: rechain(alter_move(t, 1)), f"anchored head is {head!r}",
                         "the chain was rebuilt")


# -- settlement and the report -------------------------------------------------------------------
def unchecked(env: Env, spec=None, paths=None) -> VerifyOutput:
    """A verification that checked nobody, with the verifier's coin for ``spec`` under ``paths``
    (opened if new)."""
    spec, paths = spec or env.spec, paths or env.paths
    open_spot_check_coin(spec, paths)
    checks = {s.solver_id: not_checked(s.solver_id, spec.spot_check_policy) for s in spec.solvers}
    return VerifyOutput(checks, None, 0.0, reveal_spot_check_coin(spec, paths)[1])


@trigger("coin-secret-replaced")
def _(env, tmp):
    path = store.coin_secret_path(env.paths, compute_job_id(env.spec), env.spec.verifier)
    original = path.read_bytes()

    @contextmanager
    def redrawn():
        path.write_bytes(bytes(len(original)))
        try:
            yield
        finally:
            path.write_bytes(original)

    return Case(lambda: stage_verify(env.spec, env.dataset, env.runs, env.commitments, env.paths),
                (compute_job_id(env.spec), str(path), "does not open"), damage=redrawn)


@trigger("check-not-selected")
def _(env, tmp):
    spec = dataclasses.replace(env.spec, spot_check_probability=0.0)  # the coin selects nobody
    verified = unchecked(env, spec)
    checks = {**verified.checks, "bitflip": dataclasses.replace(verified.checks["bitflip"], checked=True)}
    forged = dataclasses.replace(verified, checks=checks)
    return Case(lambda: stage_settle(spec, env.runs, forged, env.commitments, {}, env.paths),
                (compute_job_id(spec), "'bitflip'", "coin did not select"))


@trigger("insufficient-funds")
def _(env, tmp):
    spec = dataclasses.replace(env.spec, economics=dataclasses.replace(env.spec.economics, solver_stake=10**9))
    verified = unchecked(env, spec)  # the job opened (its coin), as before any settlement
    return Case(lambda: stage_settle(spec, env.runs, verified, env.commitments, {}, env.paths),
                ("party:bitflip", "holds 100000", "must pay out 1000000000"))


@trigger("ledger-schema")
def _(env, tmp):
    paths = ArtifactPaths(tmp)
    path = paths.ledger
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version=7")
        conn.execute("CREATE TABLE notes(x)")
        conn.execute("INSERT INTO notes VALUES ('keep me')")
    conn.close()

    def check() -> None:
        with sqlite3.connect(path) as after:
            assert after.execute("PRAGMA user_version").fetchone() == (7,)
            assert after.execute("SELECT name FROM sqlite_master").fetchall() == [("notes",)]
            assert after.execute("SELECT x FROM notes").fetchall() == [("keep me",)]
        after.close()

    verified = unchecked(env, paths=paths)
    return Case(lambda: stage_settle(env.spec, env.runs, verified, env.commitments, {}, paths),
                (str(path), "schema version 7"), check=check)


@trigger("report-unreadable")
def _(env, tmp):
    path = tmp / "report.json"
    path.write_text('{"schema": "pinpoint.report/1", "job_id": "job-')
    return Case(lambda: read_report(path), (str(path), "cannot be read"))


# -- the harness ---------------------------------------------------------------------------------
def resolve(dotted: str) -> Any:
    """The object a dotted name designates: the longest importable module, then attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            found = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for name in parts[cut:]:
            found = getattr(found, name)
        return found
    raise LookupError(dotted)


def ledger_rows(path: Path):
    if not path.exists():
        return None
    with Ledger(path) as ledger:
        return dump(ledger)


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``root`` but the ledger's, with its size and modification time."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file() and not p.name.startswith("ledger.sqlite")}


def test_the_catalog_is_complete_and_names_real_code():
    assert len({m.name for m in FAILURES}) == len(FAILURES)
    assert set(TRIGGERS) == {m.name for m in FAILURES}
    for mode in FAILURES:
        expected = Warning if mode.reported_as == "warns" else Exception
        assert issubclass(resolve(mode.error), expected), mode.name
        assert mode.reported_as in ("raises", "forfeit", "warns")
        assert callable(resolve(mode.detected_in)), mode.name
    for crash in CRASHES:
        assert all(callable(resolve(name)) for name in crash.handled_in.split(", ")), crash.crash


@pytest.mark.parametrize("mode", FAILURES, ids=lambda m: m.name)
def test_each_failure_is_detected_named_and_writes_nothing(env, mode, tmp_path):
    case = TRIGGERS[mode.name](env, tmp_path)
    error = resolve(mode.error)
    ledger_before = ledger_rows(env.paths.ledger)
    with case.damage():
        files_before = snapshot(env.paths.root)
        if mode.reported_as == "raises":
            with pytest.raises(error) as raised:
                case.action()
            message = str(raised.value)
            assert snapshot(env.paths.root) == files_before
        elif mode.reported_as == "forfeit":
            transcript, result = case.action()
            message = result.reason
            assert message.startswith("forfeit: ") and transcript["moves"][-1]["kind"] == "forfeit"
            assert snapshot(env.paths.root) == files_before
        else:
            with pytest.warns(error) as warned:
                case.action()
            message = str(warned[0].message)
    for needle in case.needles:
        assert needle in message, f"{mode.name}: {needle!r} not in {message!r}"
    case.check()
    # Rule checked: no bad input reaches the ledger
    assert ledger_rows(env.paths.ledger) == ledger_before


def test_run_job_refuses_a_spec_that_breaks_the_rules(env, tmp_path):
    spec = dataclasses.replace(env.spec, checkpoint_interval=env.spec.steps * 2)
    paths = ArtifactPaths(tmp_path)
    with pytest.raises(SpecError, match="checkpoint_interval"):
        run_job(spec, paths)
    assert not paths.ledger.exists()
