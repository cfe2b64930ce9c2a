"""torch's process-wide settings as an explicit context (``verification.execution.program``).

Building a ``Program`` changes no global setting; ``execution_settings`` (``Program.settings``)
applies a mode's settings around the work that executes and puts back, on exit, what it changed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from datasets.sources import load_source
from proofs.encoding import trace_root
from proofs.types import Root, Step
from verification.execution.program import (
    CUBLAS_WORKSPACE,
    Program,
    ProgramError,
    TorchSettings,
    compute_mode_settings,
    compute_restored,
    configure_mode,
    execution_settings,
    get_torch_settings,
    honest_step,
)
from verification.providers import TraceProvider
from verification.solver import train
from verification.spec import Mode, get_preset
from verification.verifier import check_interval

REPO = Path(__file__).resolve().parents[2]
# Settings no mode asks for: every field a context sets differs from them.
ELSEWHERE = TorchSettings(threads=2, deterministic=False, deterministic_warn_only=False, matmul_tf32=True,
                          cudnn_tf32=True, cublas_workspace=None)


@pytest.fixture
def elsewhere(monkeypatch):
    """The process at ``ELSEWHERE`` for one test, put back as it was afterwards."""
    before = get_torch_settings()
    monkeypatch.delenv(CUBLAS_WORKSPACE, raising=False)
    torch.set_num_threads(ELSEWHERE.threads)
    torch.use_deterministic_algorithms(False)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    assert get_torch_settings() == ELSEWHERE
    yield ELSEWHERE
    torch.set_num_threads(before.threads)
    torch.use_deterministic_algorithms(before.deterministic, warn_only=before.deterministic_warn_only)
    torch.backends.cuda.matmul.allow_tf32 = before.matmul_tf32
    torch.backends.cudnn.allow_tf32 = before.cudnn_tf32
    os.environ.pop(CUBLAS_WORKSPACE, None)  # monkeypatch puts back the value it removed, if any


def build(mode: str, threads: int = 1) -> Program:
    spec = dataclasses.replace(get_preset("minimal"), mode=mode, threads=threads, device="cpu")
    source = load_source(spec.dataset, **spec.dataset_params)
    return Program(spec, source.x, source.y, Root(bytes(32)), source.meta)


@pytest.mark.parametrize("mode", ["exact", "reproducible", "tolerance"])
def test_building_a_program_changes_no_torch_setting_and_no_environment_variable(elsewhere, mode):
    environ = dict(os.environ)
    build(mode)
    assert get_torch_settings() == elsewhere
    assert dict(os.environ) == environ


def test_exact_mode_pins_its_settings_inside_and_puts_every_one_back_on_exit(elsewhere):
    with execution_settings(Mode.EXACT, 1) as wanted:
        assert get_torch_settings() == wanted == TorchSettings(1, True, False, False, False, ":4096:8")
        assert os.environ[CUBLAS_WORKSPACE] == ":4096:8"
    assert get_torch_settings() == elsewhere and CUBLAS_WORKSPACE not in os.environ


def test_the_settings_are_put_back_when_the_work_raises(elsewhere):
    with pytest.raises(RuntimeError, match="the work failed"), execution_settings(Mode.EXACT, 1):
        raise RuntimeError("the work failed")
    assert get_torch_settings() == elsewhere


def test_reproducible_and_tolerance_leave_tf32_and_the_workspace_as_they_are(elsewhere):
    for mode in ("reproducible", "tolerance"):
        with execution_settings(mode, 1) as wanted:
            assert wanted == dataclasses.replace(elsewhere, threads=1)
        assert get_torch_settings() == elsewhere


def test_contexts_nest_and_each_exit_puts_back_its_own_changes(elsewhere):
    with execution_settings(Mode.EXACT, 1) as outer:
        with execution_settings(Mode.REPRODUCIBLE, 2) as inner:
            assert get_torch_settings() == inner and not inner.deterministic and inner.threads == 2
        assert get_torch_settings() == outer
    assert get_torch_settings() == elsewhere


def test_a_context_already_in_force_changes_and_puts_back_nothing(elsewhere):
    with execution_settings(Mode.EXACT, 1) as outer:
        with execution_settings(Mode.EXACT, 1):
            torch.set_num_threads(2)  # a party's own change inside: not the inner context's to undo
        assert get_torch_settings() == dataclasses.replace(outer, threads=2)
    assert get_torch_settings() == elsewhere  # the outer context set the thread count: it puts it back


def test_the_workspace_is_refused_once_cuda_is_up_and_nothing_changes(elsewhere, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)  # CUDA came up before the setting
    with pytest.raises(ProgramError, match="CUBLAS_WORKSPACE_CONFIG"), execution_settings(Mode.EXACT, 1):
        pass
    assert get_torch_settings() == elsewhere


def test_a_workspace_that_cuda_initialised_under_stays_for_the_process(elsewhere, monkeypatch):
    up = {"cuda": False}
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: up["cuda"])
    with execution_settings(Mode.EXACT, 1):
        up["cuda"] = True  # the first GPU matmul initialised CUDA: cuBLAS read the variable
    assert get_torch_settings() == dataclasses.replace(elsewhere, cublas_workspace=":4096:8")


def test_an_existing_workspace_is_kept_and_not_removed(elsewhere, monkeypatch):
    monkeypatch.setenv(CUBLAS_WORKSPACE, ":16:8")
    with execution_settings(Mode.EXACT, 1) as wanted:
        assert wanted.cublas_workspace == ":16:8"
    assert os.environ[CUBLAS_WORKSPACE] == ":16:8"


@pytest.mark.parametrize("threads", [0, -1, 1.5, True])
def test_a_thread_count_below_one_is_refused_by_name(threads):
    with pytest.raises(ProgramError, match="thread count of at least 1"):
        compute_mode_settings(Mode.EXACT, threads, ELSEWHERE)


def test_restoring_sets_back_only_what_the_context_changed():
    wanted = compute_mode_settings(Mode.REPRODUCIBLE, 1, ELSEWHERE)
    now = dataclasses.replace(wanted, cudnn_tf32=False)  # changed inside by someone else
    assert compute_restored(ELSEWHERE, wanted, now) == dataclasses.replace(ELSEWHERE, cudnn_tf32=False)


def test_configure_mode_pins_the_settings_for_the_rest_of_the_process(elsewhere):
    assert configure_mode(Mode.EXACT, 1) == get_torch_settings() == TorchSettings(1, True, False, False, False,
                                                                               ":4096:8")


PINNED_PROCESS = """
import json, sys
from datasets.sources import load_source
from proofs.types import Root, Step
from verification.execution.program import Program, configure_mode
from verification.spec import get_preset
import dataclasses
spec = dataclasses.replace(get_preset("minimal"), mode=sys.argv[1], device="cpu")
configure_mode(spec.mode, spec.threads)  # the whole process pinned before the program is built
source = load_source(spec.dataset, **spec.dataset_params)
program = Program(spec, source.x, source.y, Root(bytes(32)), source.meta)
print(json.dumps(program.run(program.init_state(), Step(6)).root().hex()))
"""


@pytest.mark.parametrize("mode", ["exact", "reproducible"])
def test_a_run_under_the_context_has_the_roots_of_a_process_pinned_for_its_whole_life(elsewhere, mode):
    """The settings the context applies are the ones a process pinned once (as building a Program
    used to pin them) runs under: the same roots, here in a process left at 2 threads."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop(CUBLAS_WORKSPACE, None)
    pinned = subprocess.run([sys.executable, "-c", PINNED_PROCESS, mode], cwd=REPO, env=env, check=True,
                            capture_output=True, text=True).stdout
    program = build(mode)
    with program.settings():
        root = program.run(program.init_state(), Step(6)).root().hex()
    assert root == json.loads(pinned)
    assert get_torch_settings() == elsewhere


class SettingsSpy:
    """Honest steps that note the settings each one ran under."""

    name = "settings-spy"

    def __init__(self) -> None:
        self.seen: list[TorchSettings] = []

    def run_step(self, program, state):
        self.seen.append(get_torch_settings())
        return honest_step(program, state)

    def divergence_step(self, spec):
        return None


def test_training_a_checking_and_answering_enter_the_programs_settings(elsewhere, minimal_program, tmp_path):
    """The callers that execute enter the context themselves: a solver's ``train``, a verifier's
    check, a provider's answer; the process is left as it was after each."""
    wanted = compute_mode_settings(minimal_program.spec.mode, minimal_program.spec.threads, elsewhere)
    spy = SettingsSpy()
    run = train(minimal_program, spy, tmp_path / "run.zarr", "job", "spy", resume=False)
    assert set(spy.seen) == {wanted} and get_torch_settings() == elsewhere
    assert "threads=1" in run.environment  # the environment it records is the one it ran in
    spy.seen.clear()
    assert not check_interval(minimal_program, "spy", run.roots, trace_root(list(run.roots)), run.checkpoint_path,
                              (0,)).mismatch
    assert get_torch_settings() == elsewhere
    provider = TraceProvider("spy", run, minimal_program, spy)
    provider.commit_steps(Step(0), Step(minimal_program.spec.checkpoint_interval))
    assert set(spy.seen) == {wanted} and get_torch_settings() == elsewhere
