"""Crash and resume of training: a run killed at any step ends at the trace root of an
uninterrupted run; a partial store that cannot be trusted is discarded, never resumed."""

from __future__ import annotations

import dataclasses
import pickle
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import zarr
from hypothesis import given, settings
from hypothesis import strategies as st

from proofs.encoding import trace_root
from verification.execution import checkpoints
from verification.execution.checkpoints import (
    CheckpointError,
    open_partial,
    partial_path,
    read_checkpoint,
    read_roots,
)
from verification.solver import DiscardedCheckpointWarning, train
from verification.strategies import Honest, Lazy

REPO = Path(__file__).resolve().parents[2]


class Crash(Exception):
    """Stands for the process dying (in-process variants of the kill test)."""


@dataclasses.dataclass(frozen=True)
class CrashAt:
    """Runs ``inner`` and dies when asked for step ``step``; keeps ``inner``'s name."""

    inner: object
    step: int

    @property
    def name(self) -> str:
        return self.inner.name

    def run_step(self, program, state):
        if state.step + 1 == self.step:
            raise Crash(f"killed before step {self.step}")
        return self.inner.run_step(program, state)

    def divergence_step(self, spec):
        return self.inner.divergence_step(spec)


@pytest.fixture(scope="module")
def program(tiny_spec, minimal_dataset):
    from verification.execution.program import load_program

    return load_program(tiny_spec, minimal_dataset[0])


@pytest.fixture(scope="module")
def uninterrupted(program, tmp_path_factory):
    path = tmp_path_factory.mktemp("uninterrupted") / "c.zarr"
    return {name: train(program, strategy, path.with_name(f"{name}.zarr"), "job", "s")
            for name, strategy in (("honest", Honest()), ("lazy", Lazy(start=3, length=6)))}


def crash(program, strategy, path, step) -> None:
    with pytest.raises(Crash):
        train(program, CrashAt(strategy, step), path, "job", "s")


def assert_same_run(run, expected) -> None:
    assert run.roots == expected.roots
    assert trace_root(list(run.roots)) == trace_root(list(expected.roots))
    # losses compared as text: NaN (a skipped step) equals NaN, every bit counts
    assert [x.hex() for x in run.losses] == [x.hex() for x in expected.losses]
    assert read_roots(run.checkpoint_path) == list(expected.roots)
    assert not Path(partial_path(run.checkpoint_path)).exists()


def test_training_killed_by_sigkill_resumes_to_the_same_trace_root(program, tiny_spec, minimal_dataset,
                                                                    uninterrupted, tmp_path_factory):
    @settings(max_examples=2, deadline=None, database=None)
    @given(st.integers(1, tiny_spec.steps))
    def killed_at(step):
        workdir = tmp_path_factory.mktemp("killed")
        store, job = workdir / "c.zarr", workdir / "job.pickle"
        job.write_bytes(pickle.dumps((tiny_spec, minimal_dataset[0], "job", "s")))
        child = subprocess.Popen([sys.executable, "-m", "tests.reliability.workers", "train", str(job),
                                  str(store), str(step)], cwd=REPO, stdout=subprocess.PIPE, text=True)
        try:
            for line in child.stdout:
                if line.strip() == f"step {step}":
                    child.send_signal(signal.SIGKILL)
                    break
        finally:
            child.kill()
            child.wait(timeout=60)
        assert child.returncode == -signal.SIGKILL
        assert Path(partial_path(store)).exists() and not store.exists()
        resumed = train(program, Honest(), store, "job", "s")
        k = tiny_spec.checkpoint_interval
        last = (step - 1) // k * k  # the last checkpoint before the step it was killed in
        # Storage overlaps training: a kill loses at most the checkpoint still in flight.
        assert resumed.resumed_from in {last, last - k if last >= k else None}, f"killed at step {step}"
        assert_same_run(resumed, uninterrupted["honest"])

    killed_at()


@settings(max_examples=8, deadline=None)
@given(step=st.integers(1, 16), strategy=st.sampled_from(["honest", "lazy"]))
def test_a_run_interrupted_at_any_step_resumes_exactly(program, uninterrupted, tmp_path_factory, step, strategy):
    inner = {"honest": Honest(), "lazy": Lazy(start=3, length=6)}[strategy]
    path = tmp_path_factory.mktemp("crash") / "c.zarr"
    crash(program, inner, path, step)
    resumed = train(program, inner, path, "job", "s")
    assert resumed.resumed_from == (step - 1) // 4 * 4
    assert_same_run(resumed, uninterrupted[strategy])


def test_a_crash_while_a_checkpoint_is_written_resumes_from_the_one_before(
        program, uninterrupted, tmp_path, monkeypatch):
    real_write = checkpoints.write_chunk

    def torn(location, rows, index, row):
        if index == 2:  # half of checkpoint #2's object reaches the store, then the process dies
            real_write(location, rows, index, row[: len(row) // 2])
            raise Crash("killed while storing checkpoint #2")
        return real_write(location, rows, index, row)

    monkeypatch.setattr(checkpoints, "write_chunk", torn)
    with pytest.raises(Crash):
        train(program, Honest(), tmp_path / "c.zarr", "job", "s")
    monkeypatch.undo()
    assert open_partial(tmp_path / "c.zarr").written == 2
    resumed = train(program, Honest(), tmp_path / "c.zarr", "job", "s")
    assert resumed.resumed_from == 4
    assert_same_run(resumed, uninterrupted["honest"])


@pytest.mark.parametrize("damage, intact", [("flipped", 1), ("missing", 2)])
def test_a_damaged_row_ends_the_progress_at_the_row_before(program, uninterrupted, tmp_path, damage, intact):
    crash(program, Honest(), tmp_path / "c.zarr", 14)  # checkpoints #0..#3 stored
    row = Path(partial_path(tmp_path / "c.zarr")) / "rows" / f"c.{intact}.0"
    flip_byte(row) if damage == "flipped" else row.unlink()
    assert open_partial(tmp_path / "c.zarr").written == intact
    resumed = train(program, Honest(), tmp_path / "c.zarr", "job", "s")
    assert resumed.resumed_from == (intact - 1) * 4
    assert_same_run(resumed, uninterrupted["honest"])


def test_a_crash_before_the_final_rename_only_renames(program, uninterrupted, tmp_path, monkeypatch):
    def die(self):
        raise Crash("killed before the rename")

    monkeypatch.setattr(checkpoints.CheckpointWriter, "finish", die)
    with pytest.raises(Crash):
        train(program, Honest(), tmp_path / "c.zarr", "job", "s")
    monkeypatch.undo()
    resumed = train(program, Honest(), tmp_path / "c.zarr", "job", "s")
    assert resumed.resumed_from == 16 and resumed.losses == uninterrupted["honest"].losses
    assert_same_run(resumed, uninterrupted["honest"])


def flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x5A
    path.write_bytes(bytes(data))


def set_attr(store: Path, **values) -> None:
    zarr.open_group(str(store), mode="r+").attrs.update(values)


UNTRUSTED = {
    "flipped first row": (lambda p: flip_byte(p / "rows/c.0.0"), "no usable checkpoint #0"),
    "missing rows": (lambda p: [row.unlink() for row in (p / "rows").glob("c.*")], "no usable checkpoint #0"),
    "lost layout": (lambda p: set_attr(p, layout=[]), "do not hold rows of 64 bytes"),
    "unreadable metadata": (lambda p: (p / "zarr.json").write_text("{"), "cannot be opened"),
    "another run": (lambda p: set_attr(p, run={"job_id": "other"}), "belongs to another run"),
    "another checkpoint count": (lambda p: set_attr(p, num_checkpoints=9), "belongs to another run"),
}


@pytest.mark.parametrize("damage", sorted(UNTRUSTED))
def test_an_untrusted_partial_store_is_discarded_and_training_restarts(program, uninterrupted, tmp_path, damage):
    alter, problem = UNTRUSTED[damage]
    crash(program, Honest(), tmp_path / "c.zarr", 10)  # checkpoints #0..#2 stored
    alter(Path(partial_path(tmp_path / "c.zarr")))
    with pytest.warns(DiscardedCheckpointWarning, match=problem) as warned:
        restarted = train(program, Honest(), tmp_path / "c.zarr", "job", "s")
    assert "c.zarr.partial" in str(warned[0].message) and "restarts from step 0" in str(warned[0].message)
    assert restarted.resumed_from is None
    assert_same_run(restarted, uninterrupted["honest"])


def test_another_strategy_never_resumes_a_partial_store(program, uninterrupted, tmp_path):
    crash(program, Honest(), tmp_path / "c.zarr", 10)
    with pytest.warns(DiscardedCheckpointWarning, match="lazy"):
        run = train(program, Lazy(start=3, length=6), tmp_path / "c.zarr", "job", "s")
    assert_same_run(run, uninterrupted["lazy"])


def test_resume_false_restarts_silently(program, uninterrupted, tmp_path, recwarn):
    crash(program, Honest(), tmp_path / "c.zarr", 10)
    run = train(program, Honest(), tmp_path / "c.zarr", "job", "s", resume=False)
    assert run.resumed_from is None and not recwarn.list
    assert_same_run(run, uninterrupted["honest"])


def test_a_corrupted_checkpoint_of_a_finished_store_is_named(uninterrupted, tmp_path):
    import shutil

    store = tmp_path / "c.zarr"
    shutil.copytree(uninterrupted["honest"].checkpoint_path, store)
    flip_byte(store / "rows/c.3.0")
    assert read_checkpoint(store, 2).root() == uninterrupted["honest"].roots[2]
    with pytest.raises(CheckpointError, match=r"checkpoint #3 in '.*c\.zarr'"):
        read_checkpoint(store, 3)


class NeverTrains:
    """A strategy that fails the test if it is asked for a step (a reused run trains nothing)."""

    def __init__(self, inner):
        self.inner = inner

    @property
    def name(self) -> str:
        return self.inner.name

    def run_step(self, program, state):
        raise AssertionError(f"trained step {state.step + 1} of a run that is already finished")

    def divergence_step(self, spec):
        return self.inner.divergence_step(spec)


@pytest.mark.parametrize("name", ["honest", "lazy"])
def test_a_finished_run_is_reused_not_retrained(program, uninterrupted, tmp_path, name):
    expected = uninterrupted[name]
    path = tmp_path / "c.zarr"
    shutil.copytree(expected.checkpoint_path, path)
    reused = train(program, NeverTrains(Honest() if name == "honest" else Lazy(start=3, length=6)), path, "job", "s")
    assert reused.resumed_from == program.spec.steps
    assert_same_run(reused, expected)


def test_a_finished_store_of_another_run_or_corrupted_is_trained_again(program, uninterrupted, tmp_path):
    path = tmp_path / "c.zarr"
    shutil.copytree(uninterrupted["lazy"].checkpoint_path, path)  # another strategy's run
    with pytest.warns(DiscardedCheckpointWarning, match="not reused: .*another run"):
        again = train(program, Honest(), path, "job", "s")
    assert again.resumed_from is None
    assert_same_run(again, uninterrupted["honest"])
    row = path / "rows" / "c.2.0"
    data = bytearray(row.read_bytes())
    data[-1] ^= 1
    row.write_bytes(bytes(data))
    with pytest.warns(DiscardedCheckpointWarning, match=r"not reused: .*checkpoint #2.*corrupted"):
        again = train(program, Honest(), path, "job", "s")
    assert_same_run(again, uninterrupted["honest"])
