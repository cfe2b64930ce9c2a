"""CPU vs CUDA: reproducible mode gives the same bits on both (skipped without a GPU)."""

from __future__ import annotations

import pytest
import torch

from tests.repro.roots import SETUPS, compute_root
from tests.repro.test_ops import OP_CASES, Ops
from verification.execution.repro import reproducible

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


@pytest.mark.parametrize("case", sorted(OP_CASES))
def test_op_is_bit_identical_on_cpu_and_cuda(case):
    fn, inputs = OP_CASES[case]
    results = []
    for device in ("cpu", "cuda"):
        leaves = [t.detach().clone().to(device).requires_grad_(t.is_floating_point()) for t in inputs]
        with reproducible():
            out = fn(Ops, *leaves)
            out.backward(torch.linspace(-1, 1, out.numel()).reshape(out.shape).to(device))
        results.append([out.detach().cpu()] + [t.grad.cpu() for t in leaves if t.grad is not None])
    for a, b in zip(*results, strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("model", sorted(SETUPS))
def test_training_roots_are_identical_on_cpu_and_cuda(model):
    assert compute_root(model, "reproducible", 1, "cpu") == compute_root(model, "reproducible", 1, "cuda")
