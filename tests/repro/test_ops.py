"""The reproducible operators: torch as the oracle (close, not equal), exactness, and an audit.

Differential tests (micrograd's habit): every operator a model uses, forward and backward, under
``reproducible()`` against torch's own kernels on the same inputs. Exactness tests: a matmul is an exact sum of integer products, which
cannot depend on the order of its terms, so permuting its inner dimension must give the same bits —
torch's float32 kernels fail that test. The audit records every aten operator of a reproducible
training step and rejects torch's own transcendental, normalisation and float32 reduction kernels.
"""

from __future__ import annotations

import contextlib
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils._python_dispatch import TorchDispatchMode

from proofs.types import Step
from tests.repro.roots import SETUPS, make_program, make_spec
from verification.execution.repro import StepRng, UncoveredOperatorError, reproducible
from verification.execution.repro.elementwise import EXP_TABLE, portable_exp, portable_log
from verification.execution.repro.products import ProductError, fixed_matmul
from verification.execution.repro.rng import RngError, dropout_scale_mask, random_words


class Ops:
    """The operators the models use, as plain torch calls (``o`` in the cases below)."""

    linear = staticmethod(F.linear)
    matmul = staticmethod(torch.matmul)
    relu = staticmethod(torch.relu)
    cross_entropy = staticmethod(F.cross_entropy)
    embedding = staticmethod(F.embedding)
    max_pool2d = staticmethod(F.max_pool2d)

    @staticmethod
    def add(a, b):
        return a + b

    @staticmethod
    def scale(x, c):
        return x * c

    @staticmethod
    def gelu(x):
        return F.gelu(x, approximate="tanh")

    @staticmethod
    def softmax(x, dim=-1):
        return F.softmax(x, dim)

    @staticmethod
    def layer_norm(x, w, b, eps=1e-5):
        return F.layer_norm(x, x.shape[-1:], w, b, eps)

    @staticmethod
    def conv2d(x, w, b, padding=0):
        return F.conv2d(x, w, b, padding=padding)


def run_both(fn, *inputs):
    """Forward and backward of ``fn(Ops, *inputs)`` in ``reproducible()`` and natively."""
    results = []
    shape = fn(Ops, *inputs).shape
    cotangent = torch.randn(shape, generator=torch.Generator().manual_seed(7))
    for context in (reproducible, contextlib.nullcontext):
        leaves = [t.clone().requires_grad_(t.is_floating_point()) for t in inputs]
        with context():
            out = fn(Ops, *leaves)
            (out * cotangent).sum().backward()
        results.append((out.detach(), [t.grad for t in leaves if t.grad is not None]))
    return results


def assert_close_to_torch(fn, *inputs, rtol=1e-5, atol=1e-6):
    (out_r, grads_r), (out_n, grads_n) = run_both(fn, *inputs)
    torch.testing.assert_close(out_r, out_n, rtol=rtol, atol=atol)
    assert len(grads_r) == len(grads_n)
    for a, b in zip(grads_r, grads_n, strict=True):
        torch.testing.assert_close(a, b, rtol=rtol, atol=atol * max(1.0, float(b.abs().max())))


def randn(*shape, seed=0, scale=1.0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * scale


@settings(max_examples=15, deadline=None)
@given(m=st.integers(1, 9), k=st.integers(1, 70), n=st.integers(1, 9), seed=st.integers(0, 2**16))
def test_linear_matches_torch(m, k, n, seed):
    x, w, b = randn(m, k, seed=seed), randn(n, k, seed=seed + 1, scale=0.3), randn(n, seed=seed + 2)
    (out_r, _), (out_n, _) = run_both(lambda o, x, w, b: o.linear(x, w, b), x, w, b)
    # torch's float32 kernels are the less accurate side here (tests/repro/test_accuracy.py):
    # |error| <= K 2^-24 sum_k |x_mk| |w_nk| + float32 rounding (holds where results nearly cancel).
    bound = k * 2.0**-24 * (x.abs() @ w.abs().T) + 1e-6 * out_n.abs() + 1e-7
    assert bool(((out_r - out_n).abs() <= bound).all()), float(((out_r - out_n).abs() - bound).max())
    assert_close_to_torch(lambda o, x, w, b: o.linear(x, w, b), x, w, b, rtol=1e-3, atol=1e-5)


OP_CASES = {
    "linear-3d": (lambda o, x, w, b: o.linear(x, w, b), (randn(4, 5, 16), randn(8, 16, scale=0.3), randn(8))),
    "matmul-batched": (lambda o, a, b: o.matmul(a, b), (randn(2, 3, 5, 7), randn(2, 3, 7, 4, seed=1))),
    "add-broadcast": (lambda o, a, b: o.add(a, b), (randn(3, 4, 5), randn(4, 1, seed=1))),
    "scale": (lambda o, x: o.scale(x, 1 / math.sqrt(3)), (randn(6, 7),)),
    "relu": (lambda o, x: o.relu(x), (randn(6, 7),)),
    "gelu": (lambda o, x: o.gelu(x), (randn(6, 50, scale=4),)),
    "softmax": (lambda o, x: o.softmax(x, -1), (randn(5, 3, 11, scale=5),)),
    "softmax-dim0": (lambda o, x: o.softmax(x, 0), (randn(9, 4, scale=5),)),
    "cross_entropy": (lambda o, x: o.cross_entropy(x, torch.arange(30) % 7), (randn(30, 7, scale=3),)),
    "layer_norm": (lambda o, x, w, b: o.layer_norm(x, w, b), (randn(4, 6, 32, scale=3) + 2, randn(32), randn(32))),
    "embedding": (lambda o, t: o.embedding(torch.tensor([[1, 4, 1], [0, 4, 4]]), t), (randn(6, 5),)),
    "conv2d-pad1": (lambda o, x, w, b: o.conv2d(x, w, b, 1), (randn(3, 2, 8, 8), randn(4, 2, 3, 3, scale=0.3), randn(4))),
    "conv2d-pad0": (lambda o, x, w, b: o.conv2d(x, w, b, 0), (randn(3, 2, 6, 6), randn(4, 2, 3, 3, scale=0.3), randn(4))),
    "conv2d-5x5": (lambda o, x, w: o.conv2d(x, w, None, 2), (randn(2, 3, 8, 8), randn(2, 3, 5, 5, scale=0.2))),
    "max_pool2d": (lambda o, x: o.max_pool2d(x, 2), (randn(2, 3, 8, 8),)),
}


@pytest.mark.parametrize("case", sorted(OP_CASES))
def test_op_matches_torch(case):
    fn, inputs = OP_CASES[case]
    assert_close_to_torch(fn, *inputs)


def test_max_pool_ties_go_to_the_first_element():
    x = torch.ones(1, 1, 2, 2, requires_grad=True)
    with reproducible():
        F.max_pool2d(x, 2).sum().backward()
    assert x.grad.flatten().tolist() == [1.0, 0.0, 0.0, 0.0]


def test_portable_functions_match_float64_reference():
    x = torch.cat([randn(20_000, scale=30), torch.linspace(-104, 88, 20_001)]).double()
    expected = torch.exp(x).float()
    assert torch.equal(portable_exp(x).float(), expected)  # correctly rounded on these inputs
    positive = x.abs() + 1e-30
    torch.testing.assert_close(portable_log(positive), torch.log(positive), rtol=1e-15, atol=0)
    subnormal = torch.tensor([5e-324, 1e-310, 2.2250738585072009e-308, 3e-320], dtype=torch.float64)
    torch.testing.assert_close(portable_log(subnormal), torch.log(subnormal), rtol=1e-15, atol=0)
    special = torch.tensor([0.0, -1.0, math.inf], dtype=torch.float64)
    assert portable_log(special)[0] == -math.inf and math.isnan(portable_log(special)[1])
    assert portable_log(special)[2] == math.inf
    assert portable_exp(torch.tensor([-math.inf, 1000.0], dtype=torch.float64)).float().tolist() == [0.0, math.inf]


def test_exp_table_is_two_to_the_j_over_256():
    assert len(EXP_TABLE) == 256
    for j, value in enumerate(EXP_TABLE):
        assert value == pytest.approx(2.0 ** (j / 256), rel=2**-52)


@settings(max_examples=20, deadline=None)
@given(k=st.integers(1, 600), seed=st.integers(0, 2**16))
def test_fixed_matmul_does_not_depend_on_the_layout(k, seed):
    """Transposed and strided views of the same values: the same order of operations, same bits."""
    a = randn(7, k, seed=seed) * torch.logspace(-3, 3, k)  # wide dynamic range
    b = randn(k, 5, seed=seed + 1)
    assert torch.equal(fixed_matmul(a, b), fixed_matmul(a.t().contiguous().t(), b))
    assert torch.equal(fixed_matmul(a, b), fixed_matmul(a, b.t().contiguous().t()))
    wide = randn(7, 2 * k, seed=seed + 2)
    wide[:, ::2] = a
    assert torch.equal(fixed_matmul(a, b), fixed_matmul(wide[:, ::2], b))


def test_uncovered_products_are_named():
    with pytest.raises(ProductError, match="float32"):
        fixed_matmul(torch.zeros(2, 2, dtype=torch.float64), torch.zeros(2, 2))
    with pytest.raises(ProductError, match=r"\(2, 3\) and \(2, 3\)"):
        fixed_matmul(torch.zeros(2, 3), torch.zeros(2, 3))
    with pytest.raises(UncoveredOperatorError, match="padding"), reproducible():
        F.conv2d(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 3, 3), None, padding=3)
    with pytest.raises(UncoveredOperatorError, match="stride"), reproducible():
        F.conv2d(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 3, 3), None, stride=2)


def test_dropout_mask_is_a_pure_function_of_its_key():
    rng = StepRng(key=12345, step=7)
    shape = torch.Size([64, 128])
    mask = dropout_scale_mask(shape, 0.25, rng.draw_key(3), torch.device("cpu"))
    assert torch.equal(mask, dropout_scale_mask(shape, 0.25, rng.draw_key(3), torch.device("cpu")))
    assert not torch.equal(mask, dropout_scale_mask(shape, 0.25, rng.draw_key(4), torch.device("cpu")))
    assert not torch.equal(mask, dropout_scale_mask(shape, 0.25, StepRng(12345, 8).draw_key(3), torch.device("cpu")))
    assert mask.unique().tolist() == [0.0, pytest.approx(1 / 0.75)]
    assert abs(float((mask == 0).float().mean()) - 0.25) < 0.01


def test_random_words_are_uniform_32_bit():
    words = random_words(1 << 16, (1, 2), torch.device("cpu"))
    assert int(words.min()) >= 0 and int(words.max()) < 2**32
    counts = torch.bincount((words >> 28).long(), minlength=16).float()  # top 4 bits
    assert float(((counts - 4096) ** 2 / 4096).sum()) < 45  # chi-square, 15 d.o.f., p ~ 1e-4
    with pytest.raises(RngError, match="1.5"):
        dropout_scale_mask(torch.Size([2]), 1.5, (0, 0), torch.device("cpu"))


# torch kernels that a reproducible step must never run (device-specific math or float reductions)
FORBIDDEN = {"exp", "log", "tanh", "erf", "sigmoid", "gelu", "_softmax", "_log_softmax", "native_layer_norm",
             "convolution", "addmm", "nll_loss_forward", "embedding_dense_backward",
             "addcmul", "lerp", "rsqrt", "index_add", "scatter_add", "col2im", "mean", "var_mean"}
# max_pool2d_with_indices stays: a max is exact, and CPU and CUDA keep the first maximum of a window.
REDUCTIONS = {"mm", "bmm", "matmul", "sum"}


class AtenAudit(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.seen: list[tuple[str, tuple[torch.dtype, ...]]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        dtypes = tuple(a.dtype for a in args if isinstance(a, torch.Tensor))
        self.seen.append((func._schema.name.split("::")[-1], dtypes))
        return func(*args, **(kwargs or {}))


def audit_step(model: str, mode: str) -> list[tuple[str, tuple[torch.dtype, ...]]]:
    program = make_program(make_spec(model, mode, threads=1))
    state = program.init_state()
    with AtenAudit() as audit:
        program.step(state, program.batch(Step(1)))
    return [(name.rstrip("_"), dtypes) for name, dtypes in audit.seen]


@pytest.mark.parametrize("model", sorted(SETUPS))
def test_reproducible_step_runs_no_torch_math_kernels(model):
    seen = audit_step(model, "reproducible")
    assert not {name for name, _ in seen} & FORBIDDEN
    assert not [(n, d) for n, d in seen if n in REDUCTIONS and torch.float32 in d]
    assert any(n == "fixed_mm" for n, _ in seen)  # the audit does see the fixed-order products


@pytest.mark.parametrize("model", sorted(SETUPS))
def test_native_step_is_flagged_by_the_audit(model):
    """The audit can fail: a native step runs torch's own math and float32 reductions."""
    seen = audit_step(model, "exact")
    assert {name for name, _ in seen} & FORBIDDEN
    assert [(n, d) for n, d in seen if n in REDUCTIONS and torch.float32 in d]
