"""The supported models in both execution modes: shapes, gradients against torch, learning."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from proofs.types import Step
from tests.repro.roots import SETUPS, make_program, make_spec
from verification.execution.models import (
    CNN,
    MLP,
    CNNConfig,
    MLPConfig,
    TinyTransformer,
    TransformerConfig,
    UnknownModelError,
    build_model,
)
from verification.execution.ops import NativeOps
from verification.execution.repro import ReproOps, StepRng

LEARN_STEPS = {"mlp": 40, "cnn": 100, "transformer": 25}


def test_mlp_parameter_names_are_unchanged():
    assert sorted(MLP(MLPConfig(depth=2)).param_shapes()) == [
        "fc0.bias", "fc0.weight", "fc1.bias", "fc1.weight", "fc2.bias", "fc2.weight"]


def test_models_take_their_sizes_from_the_dataset():
    cnn = build_model("cnn", {"channels": 4}, {"image_shape": [1, 8, 8], "num_classes": 10})
    assert isinstance(cnn, CNN) and cnn.config.image_shape == (1, 8, 8)
    assert cnn.param_shapes()["fc.weight"] == (10, 8 * 2 * 2)
    gpt = build_model("transformer", {"n_embd": 32, "n_head": 2}, {"vocab_size": 256, "block": 16})
    assert isinstance(gpt, TinyTransformer) and gpt.param_shapes()["wpe.weight"] == (16, 32)


def test_bad_model_parameters_are_named():
    with pytest.raises(UnknownModelError, match="'cnn'"):
        build_model("cnn", {"channels": 4}, {"image_shape": [1, 6, 6]})
    with pytest.raises(UnknownModelError, match="n_head 3"):
        build_model("transformer", {"n_embd": 32, "n_head": 3}, {})
    with pytest.raises(UnknownModelError, match="bad parameters"):
        build_model("transformer", {"width": 3}, {})
    with pytest.raises(UnknownModelError, match="known"):
        build_model("resnet", {}, {})


@pytest.mark.parametrize("model", sorted(SETUPS))
def test_model_gradients_match_torch(model):
    """The whole forward and backward of each model on ReproOps against NativeOps."""
    program = make_program(make_spec(model, "reproducible", threads=1))
    params = program.init_state().params()
    batch = program.batch(Step(1))
    results = []
    for ops in (ReproOps, NativeOps):
        leaves = {n: p.clone().requires_grad_(True) for n, p in params.items()}
        loss = program.model.loss(leaves, batch.x, batch.y, ops)
        grads = torch.autograd.grad(loss, list(leaves.values()))
        results.append((loss.detach(), grads))
    (loss_r, grads_r), (loss_n, grads_n) = results
    torch.testing.assert_close(loss_r, loss_n, rtol=1e-5, atol=1e-6)
    for name, a, b in zip(params, grads_r, grads_n, strict=True):
        scale = float(b.abs().max())
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5 * scale, msg=lambda m, n=name: f"{n}: {m}")


@pytest.mark.parametrize("model", sorted(SETUPS))
def test_training_learns_as_in_native_mode(model):
    curves = {}
    for mode in ("exact", "reproducible"):
        program = make_program(make_spec(model, mode, threads=1))
        state, losses = program.init_state(), []
        for t in range(1, LEARN_STEPS[model] + 1):
            out = program.step(state, program.batch(Step(t)))
            state, losses = out.state, losses + [out.loss]
        curves[mode] = np.array(losses)
    repro, native = curves["reproducible"], curves["exact"]
    assert repro[-5:].mean() < 0.9 * repro[:5].mean()
    np.testing.assert_allclose(repro, native, rtol=2e-2)


def test_transformer_dropout_is_keyed_by_the_step_rng():
    gpt = TinyTransformer(TransformerConfig(vocab_size=16, block_size=8, n_layer=1, n_head=2, n_embd=8, dropout=0.2))
    params = gpt.init_params(torch.Generator().manual_seed(0))
    x = torch.randint(0, 16, (4, 8), generator=torch.Generator().manual_seed(1))
    y = torch.roll(x, -1, dims=1)
    with pytest.raises(UnknownModelError, match="needs the step's RNG"):
        gpt.loss(params, x, y, ReproOps)
    rng = StepRng(key=99, step=3)
    a = gpt.loss(params, x, y, ReproOps, rng)
    assert torch.equal(a, gpt.loss(params, x, y, ReproOps, rng))
    assert not torch.equal(a, gpt.loss(params, x, y, ReproOps, StepRng(key=99, step=4)))
    torch.testing.assert_close(a, gpt.loss(params, x, y, NativeOps, rng), rtol=1e-5, atol=1e-6)  # same mask


def test_cnn_reads_flat_digits_as_images():
    cnn = CNN(CNNConfig(channels=2))
    params = cnn.init_params(torch.Generator().manual_seed(0))
    logits = cnn.logits(params, torch.rand(5, 64), ReproOps)
    assert logits.shape == (5, 10)
