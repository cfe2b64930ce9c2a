"""The built-in models, ordinary nn.Modules, in both execution modes: shapes, gradients against
torch, learning."""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import pytest
import torch

from proofs.types import Step
from tests.repro.roots import SETUPS, make_program, make_spec
from verification.execution.models import (
    CNN,
    GPT,
    MLP,
    CNNConfig,
    MLPConfig,
    TransformerConfig,
    UnknownModelError,
)
from verification.execution.pieces import ProgramError, build_module
from verification.execution.repro import StepRng, reproducible

LEARN_STEPS = {"mlp": 40, "mlp-adamw": 40, "cnn": 100, "transformer": 25}


def test_mlp_parameter_names_are_unchanged():
    assert sorted(n for n, _ in MLP(MLPConfig(depth=2)).named_parameters()) == [
        "fc0.bias", "fc0.weight", "fc1.bias", "fc1.weight", "fc2.bias", "fc2.weight"]


def test_models_take_their_sizes_from_the_dataset():
    cnn = build_module("cnn", {"channels": 4}, {"image_shape": [1, 8, 8], "num_classes": 10})
    assert isinstance(cnn, CNN) and cnn.config.image_shape == (1, 8, 8)
    assert cnn.fc.weight.shape == (10, 8 * 2 * 2)
    gpt = build_module("transformer", {"n_embd": 32, "n_head": 2}, {"vocab_size": 256, "block": 16})
    assert isinstance(gpt, GPT) and gpt.wpe.weight.shape == (16, 32)


def test_bad_model_parameters_are_named():
    with pytest.raises(UnknownModelError, match="'cnn'"):
        build_module("cnn", {"channels": 4}, {"image_shape": [1, 6, 6]})
    with pytest.raises(UnknownModelError, match="n_head 3"):
        build_module("transformer", {"n_embd": 32, "n_head": 3}, {})
    with pytest.raises(UnknownModelError, match="bad parameters"):
        build_module("transformer", {"width": 3}, {})
    with pytest.raises(ProgramError, match="known"):
        build_module("resnet", {}, {})


@pytest.mark.parametrize("model", sorted(SETUPS))
def test_model_gradients_match_torch(model):
    """The whole forward and backward of each model under reproducible() against torch's kernels
    (without dropout, whose masks come from different generators)."""
    spec = make_spec(model, "reproducible", threads=1)
    program = make_program(dataclasses.replace(spec, model_params={**spec.model_params, "dropout": 0.0})
                           if "dropout" in spec.model_params else spec)
    state = program.init_state()
    batch = program.batch(Step(1))
    results = []
    for gradients in (program.gradients, functools.partial(native_gradients, program)):
        grads, loss = gradients(state, batch)  # program.gradients enters reproducible() itself
        results.append((loss, grads))
    (loss_r, grads_r), (loss_n, grads_n) = results
    torch.testing.assert_close(loss_r, loss_n, rtol=1e-5, atol=1e-6)
    for name in grads_r:
        a, b = grads_r[name], grads_n[name]
        scale = float(b.abs().max())
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5 * scale, msg=lambda m, n=name: f"{n}: {m}")


def native_gradients(program, state, batch):
    params = {n: state.tensors[f"param/{n}"].detach().requires_grad_(True) for n in program.param_names}
    loss = torch.func.functional_call(program.objective, {f"model.{n}": p for n, p in params.items()},
                                      (batch.x, batch.y))
    grads = torch.autograd.grad(loss, list(params.values()))
    return dict(zip(params, grads, strict=True)), loss.detach()


@pytest.mark.parametrize("model", sorted(SETUPS))
def test_training_learns_as_in_native_mode(model):
    """From one initial state, reproducible and native training follow the same loss curve."""
    curves = {}
    start = make_program(make_spec(model, "exact", threads=1)).init_state()
    for mode in ("exact", "reproducible"):
        program = make_program(make_spec(model, mode, threads=1))
        state, losses = start, []
        for t in range(1, LEARN_STEPS[model] + 1):
            out = program.step(state, program.batch(Step(t)))
            state, losses = out.state, losses + [out.loss]
        curves[mode] = np.array(losses)
    repro, native = curves["reproducible"], curves["exact"]
    assert repro[-5:].mean() < 0.9 * repro[:5].mean()
    np.testing.assert_allclose(repro, native, rtol=2e-2)


def test_transformer_dropout_is_keyed_by_the_step_rng():
    gpt = GPT(TransformerConfig(vocab_size=16, block_size=8, n_layer=1, n_head=2, n_embd=8, dropout=0.2))
    x = torch.arange(32).reshape(4, 8) % 16
    y = torch.roll(x, -1, dims=1)

    def loss(rng: StepRng) -> torch.Tensor:
        with reproducible(rng=rng):
            return torch.nn.functional.cross_entropy(gpt(x).reshape(-1, 16), y.reshape(-1))

    a = loss(StepRng(key=99, step=3))
    assert torch.equal(a, loss(StepRng(key=99, step=3)))
    assert not torch.equal(a, loss(StepRng(key=99, step=4)))


def test_cnn_reads_flat_digits_as_images():
    with reproducible():
        logits = CNN(CNNConfig(channels=2))(torch.rand(5, 64))
    assert logits.shape == (5, 10)
