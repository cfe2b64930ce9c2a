"""Ordinary PyTorch programs named by the job spec: plug-ins, catalog optimizers and schedules,
bad input named before any work, and the job id binding the program's code."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from proofs.types import Step
from verification.execution.pieces import cosine_lr
from verification.lifecycle import validate_job
from verification.paths import ArtifactPaths
from verification.spec import (
    JobSpec,
    SpecError,
    compute_job_id,
    get_preset,
    hash_module_source,
    spec_from_dict,
)

PROGRAM = "tests.programs.layernorm_mlp"
BROKEN = "tests.programs.broken"


def minimal(**fields) -> JobSpec:
    return dataclasses.replace(get_preset("minimal"), **fields)


def rejected(spec: JobSpec, tmp_path, match: str) -> None:
    """Validation names the problem and nothing is written."""
    paths = ArtifactPaths(tmp_path / "artifacts")
    with pytest.raises(SpecError, match=match):
        validate_job(spec, paths)
    assert not (tmp_path / "artifacts").exists() or not any((tmp_path / "artifacts").rglob("*.zarr"))


@pytest.mark.parametrize(("fields", "match"), [
    ({"model": "tests.programs.missing:model"}, r"model 'tests\.programs\.missing:model' cannot be imported"),
    ({"model": f"{BROKEN}:not_a_module"}, r"returned a str, not a torch\.nn\.Module"),
    ({"model": f"{BROKEN}:integer_parameters"}, r"not floating point: table \(torch\.int64\)"),
    ({"model": f"{BROKEN}:raises_on_build"}, r"raised RuntimeError: out of coffee"),
    ({"loss": f"{BROKEN}:vector_loss"}, r"loss 'tests\.programs\.broken:vector_loss' must return a floating-point scalar"),
    ({"optimizer": f"{BROKEN}:list_state_optimizer"}, r"keeps state 'history' of parameter 'fc0\.bias' as a list"),
    ({"model": f"{BROKEN}:uses_cumprod", "mode": "reproducible"}, r"aten\.cumprod\.default"),
    ({"dataset": "tests.programs.layernorm_mlp:nothing"}, r"dataset 'tests\.programs\.layernorm_mlp:nothing'"),
    ({"schedule": "cosine", "schedule_params": {"warmup": 3}}, r"unknown schedule_params \['warmup'\]"),
    ({"optimizer": "adamw", "optimizer_params": {"betas": [0.9]}}, r"optimizer 'adamw'"),
])
def test_bad_program_is_named_before_any_work(tmp_path, fields, match):
    rejected(minimal(**fields), tmp_path, match)


def test_unknown_catalog_names_are_rejected_by_the_spec():
    with pytest.raises(SpecError, match=r"optimizer 'adagrad' is not one of"):
        spec_from_dict({"preset": "minimal", "optimizer": "adagrad"})
    with pytest.raises(SpecError, match=r"loss 'hinge'"):
        spec_from_dict({"preset": "minimal", "loss": "hinge"})


@pytest.mark.parametrize("optimizer", ["sgd", "sgd_momentum", "adam", "adamw"])
def test_catalog_optimizers_match_a_plain_torch_loop(optimizer, minimal_dataset):
    """The State-to-State step equals torch.optim used the ordinary way, across steps."""
    import copy

    from verification.execution.program import load_program

    spec = minimal(optimizer=optimizer, lr=0.01, weight_decay=0.01)
    program = load_program(spec, minimal_dataset[0])
    state = program.init_state()
    module = copy.deepcopy(program.module)
    module.load_state_dict(state.params())
    make = {"sgd": lambda p: torch.optim.SGD(p, lr=0.01, weight_decay=0.01),
            "sgd_momentum": lambda p: torch.optim.SGD(p, lr=0.01, momentum=spec.momentum, weight_decay=0.01),
            "adam": lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=0.01),
            "adamw": lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.01)}[optimizer]
    reference = make(module.parameters())
    for t in (1, 2, 3):
        batch = program.batch(Step(t))
        reference.zero_grad()
        torch.nn.functional.cross_entropy(module(batch.x), batch.y).backward()
        reference.step()
        state = program.step(state, batch).state
    for name, p in module.named_parameters():
        torch.testing.assert_close(state.tensors[f"param/{name}"], p.detach(), rtol=1e-5, atol=1e-6)
    if optimizer in ("adam", "adamw"):
        assert float(state.tensors["optim/fc0.weight/step"]) == 3.0
        assert "optim/fc0.weight/exp_avg_sq" in state.tensors


def test_cosine_schedule_warms_up_then_decays():
    lrs = [cosine_lr(1.0, t, 100, {"warmup_steps": 10, "min_lr_ratio": 0.1}) for t in range(1, 101)]
    assert lrs[:10] == [t / 10 for t in range(1, 11)]
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:], strict=False)) and lrs[-1] == pytest.approx(0.1)


def test_plugin_schedule_is_replayed_as_a_function_of_the_step(minimal_dataset):
    from verification.execution.program import load_program

    spec = minimal(schedule="tests.programs.schedules:halving", schedule_params={"every": 2})
    program = load_program(spec, minimal_dataset[0])
    assert [program.lr_at(t) for t in (1, 2, 3, 4, 5, 1)] == [spec.lr, spec.lr, spec.lr / 2, spec.lr / 2,
                                                            spec.lr / 4, spec.lr]


def test_job_id_binds_the_plugin_source_and_torch_release(tmp_path, monkeypatch):
    module = tmp_path / "idprobe_program.py"
    module.write_text("def model(params, meta):\n    raise NotImplementedError\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = minimal(model="idprobe_program:model")
    first = compute_job_id(spec)
    module.write_text(module.read_text() + "\n# a changed line\n")
    hash_module_source.cache_clear()
    assert compute_job_id(spec) != first
    before = compute_job_id(spec)
    monkeypatch.setattr("verification.spec.get_torch_release", lambda: "9.9.9")
    assert compute_job_id(spec) != before
    with pytest.raises(SpecError, match="cannot be found"):
        compute_job_id(minimal(model="idprobe_missing_module:model"))


def test_the_gpt_preset_is_a_transformer_with_adamw_covered_in_reproducible_mode():
    """The research-shaped preset: its one-step dry run in reproducible mode meets no uncovered
    operator (validation would name it), and its optimizer state is AdamW's."""
    from datasets.sources import load_source
    from proofs.types import Root
    from verification.execution.program import Program

    spec = get_preset("gpt")
    assert (spec.model, spec.optimizer, spec.schedule, spec.mode) == ("transformer", "adamw", "cosine", "reproducible")
    validate_job(spec)
    source = load_source(spec.dataset, **spec.dataset_params)
    program = Program(spec, source.x, source.y, Root(bytes(32)), source.meta)
    state = program.step(program.init_state(), program.batch(Step(1))).state
    assert {"optim/lm_head.weight/exp_avg", "optim/lm_head.weight/exp_avg_sq"} <= set(state.tensors)
