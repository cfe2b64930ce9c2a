"""``reproducible()``: torch's own operators, identical across ISA and threads, accurate, refusing
what it does not cover (verification.execution.repro.mode)."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from verification.execution.repro.mode import UncoveredOperatorError, check_coverage, reproducible
from verification.execution.repro.rng import StepRng
from verification.execution.repro.special import portable_erf, portable_erfc, portable_tanh

REPO = Path(__file__).resolve().parents[2]


def module_root(capability: str, threads: int, native: bool = False) -> str:
    env = {**os.environ, "PYTHONPATH": str(REPO), "ATEN_CPU_CAPABILITY": capability, "OMP_WAIT_POLICY": "PASSIVE"}
    args = [sys.executable, "-m", "tests.repro.module_roots", str(threads)] + (["--native"] if native else [])
    done = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_plain_module_is_identical_across_isa_and_threads():
    """A LayerNorm/GELU/Dropout/Conv/Embedding program with AdamW and SGD: initialisation, dropout
    masks, forward, backward and optimizer steps give the same bits on AVX2 and on the scalar
    kernels, with 1 and 2 threads."""
    roots = {module_root(cap, threads) for cap, threads in (("default", 1), ("avx2", 1), ("avx2", 2))}
    assert len(roots) == 1


def test_native_kernels_disagree_across_isa():
    """The control: the same program on torch's own kernels differs between the two ISAs."""
    assert module_root("default", 1, native=True) != module_root("avx2", 1, native=True)


def test_uncovered_operator_is_named():
    with pytest.raises(UncoveredOperatorError, match=r"aten\.cumprod\.default"), reproducible():
        torch.cumprod(torch.ones(4), 0)


def test_coverage_check_runs_on_fake_tensors_and_names_the_operator():
    model = nn.Sequential(nn.Linear(4, 4), nn.Mish())
    x = torch.ones(2, 4)
    with pytest.raises(UncoveredOperatorError, match=r"aten\.mish"):
        check_coverage(lambda: model(x).sum().backward())
    check_coverage(lambda: nn.Linear(4, 4)(x).sum().backward())


def float64_reference(fn, *tensors):
    return fn(*(t.double() for t in tensors))


@pytest.mark.parametrize("name, fn, shapes", [
    ("mm", lambda a, b: a @ b, [(33, 70), (70, 17)]),
    ("bmm", lambda a, b: torch.bmm(a, b), [(3, 9, 40), (3, 40, 5)]),
    ("linear", lambda x, w, b: F.linear(x, w, b), [(6, 5, 24), (7, 24), (7,)]),
    ("sum", lambda x: x.sum(dim=(0, 2)), [(8, 5, 31)]),
    ("mean", lambda x: x.mean(), [(1000,)]),
    ("softmax", lambda x: F.softmax(x, -1), [(4, 50)]),
    ("log_softmax", lambda x: F.log_softmax(x, 0), [(50, 3)]),
    ("layer_norm", lambda x, w, b: F.layer_norm(x, (16,), w, b), [(3, 4, 16), (16,), (16,)]),
    ("gelu", lambda x: F.gelu(x), [(500,)]),
    ("gelu_tanh", lambda x: F.gelu(x, approximate="tanh"), [(500,)]),
    ("tanh", torch.tanh, [(500,)]),
    ("sigmoid", torch.sigmoid, [(500,)]),
    ("exp", torch.exp, [(500,)]),
    ("conv2d", lambda x, w, b: F.conv2d(x, w, b, padding=1), [(2, 3, 6, 6), (4, 3, 3, 3), (4,)]),
    ("var", lambda x: x.var(dim=1), [(5, 40)]),
    ("sdpa", lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True), [(2, 3, 7, 8)] * 3),
    ("bce_with_logits", lambda x, y: F.binary_cross_entropy_with_logits(x, y.sigmoid()), [(6, 9), (6, 9)]),
    ("softplus", F.softplus, [(500,)]),
    ("logsumexp", lambda x: torch.logsumexp(x, dim=1), [(7, 30)]),
    ("leaky_relu", F.leaky_relu, [(500,)]),
    ("rms_norm", lambda x: F.rms_norm(x, (16,)), [(5, 16)]),
])
def test_forward_is_float32_accurate(name, fn, shapes):
    """Against float64 torch: within a few float32 ulps of the result's scale."""
    gen = torch.Generator().manual_seed(len(name))
    inputs = [torch.randn(s, generator=gen) for s in shapes]
    with reproducible():
        got = fn(*inputs)
    want = float64_reference(fn, *inputs)
    assert got.dtype == torch.float32
    scale = want.abs().amax().clamp_min(1e-30).item()
    assert (got.double() - want).abs().max().item() <= 8 * 2.0 ** -24 * scale


@pytest.mark.parametrize("loss_name", ["cross_entropy", "mse"])
def test_backward_matches_float64(loss_name):
    gen = torch.Generator().manual_seed(3)
    model = nn.Sequential(nn.Linear(12, 20), nn.LayerNorm(20), nn.GELU(), nn.Linear(20, 5))
    x, y = torch.randn(9, 12, generator=gen), torch.arange(9) % 5
    loss_fn = (lambda out: F.cross_entropy(out, y)) if loss_name == "cross_entropy" else \
        (lambda out: F.mse_loss(out, torch.zeros_like(out)))
    reference = [p.detach().double() for p in model.parameters()]
    with reproducible():
        loss_fn(model(x)).backward()
    got = [p.grad for p in model.parameters()]
    double = nn.Sequential(nn.Linear(12, 20), nn.LayerNorm(20), nn.GELU(), nn.Linear(20, 5)).double()
    with torch.no_grad():
        for p, r in zip(double.parameters(), reference, strict=True):
            p.copy_(r)
    loss_fn(double(x.double())).backward()
    for g, p in zip(got, double.parameters(), strict=True):
        assert torch.allclose(g.double(), p.grad, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw"])
def test_torch_optim_step_matches_native_closely(optimizer):
    """torch.optim's own update, split into one rounding per operation: within an ulp or two of
    torch's kernels."""
    def step(use_mode: bool) -> list[torch.Tensor]:
        torch.manual_seed(0)
        model = nn.Linear(6, 3)
        make = {"sgd": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=1e-3, foreach=False),
                "adam": lambda p: torch.optim.Adam(p, lr=1e-2, weight_decay=1e-3, foreach=False),
                "adamw": lambda p: torch.optim.AdamW(p, lr=1e-2, foreach=False)}[optimizer]
        opt = make(model.parameters())
        for _ in range(3):
            opt.zero_grad()
            model(torch.ones(2, 6)).pow(2).sum().backward()
            if use_mode:
                with reproducible():
                    opt.step()
            else:
                opt.step()
        return [p.detach().clone() for p in model.parameters()]

    for got, want in zip(step(True), step(False), strict=True):
        assert torch.allclose(got, want, rtol=1e-6, atol=1e-6)  # cancellation near 0


def test_dropout_masks_follow_the_step_rng():
    x = torch.ones(1000)

    def mask(key: int, step: int) -> torch.Tensor:
        with reproducible(rng=StepRng(key, step)):
            return F.dropout(x, 0.25, training=True)

    assert torch.equal(mask(1, 2), mask(1, 2))
    assert not torch.equal(mask(1, 2), mask(1, 3))
    kept = (mask(1, 2) > 0).float().mean().item()
    assert 0.7 < kept < 0.8 and set(mask(1, 2).unique().tolist()) <= {0.0, torch.tensor(1 / 0.75).item()}


def test_initialisation_is_portable_and_distributed_as_asked():
    with reproducible(seed=5):
        uniform = torch.empty(20_000).uniform_(-2.0, 3.0)
        normal = torch.empty(20_000).normal_(1.0, 0.5)
    with reproducible(seed=5):
        again = torch.empty(20_000).uniform_(-2.0, 3.0)
    assert torch.equal(uniform, again)
    assert uniform.min() >= -2.0 and uniform.max() < 3.0 and abs(uniform.mean().item() - 0.5) < 0.05
    assert abs(normal.mean().item() - 1.0) < 0.02 and abs(normal.std().item() - 0.5) < 0.02


def test_division_by_a_scalar_is_a_true_division():
    """CUDA divides by a host scalar through its reciprocal; the mode always divides."""
    x = torch.tensor([1.0, 3.0, 10.0, 7.0])
    with reproducible():
        got = x / 3.0
    assert torch.equal(got, torch.tensor([1.0 / 3.0, 1.0, 10.0 / 3.0, 7.0 / 3.0], dtype=torch.float32))


def test_special_functions_are_accurate():
    z = torch.linspace(-6, 6, 2001, dtype=torch.float64)
    erfc = torch.tensor([math.erfc(v) for v in z.tolist()], dtype=torch.float64)
    erf = torch.tensor([math.erf(v) for v in z.tolist()], dtype=torch.float64)
    tanh = torch.tensor([math.tanh(v) for v in z.tolist()], dtype=torch.float64)
    assert ((portable_erfc(z) - erfc).abs() / erfc).max() < 1e-12
    assert (portable_erf(z) - erf).abs().max() < 1e-14
    assert ((portable_tanh(z) - tanh).abs() / tanh.abs().clamp_min(1e-300)).max() < 1e-12


@pytest.mark.parametrize("name, fn", [
    ("sdpa", lambda x: F.scaled_dot_product_attention(x, x, x, is_causal=True).sum()),
    ("bce_with_logits", lambda x: F.binary_cross_entropy_with_logits(x, torch.full_like(x, 0.3))),
    ("softplus", lambda x: F.softplus(x).sum()),
    ("logsumexp", lambda x: torch.logsumexp(x, dim=-1).sum()),
    ("cumsum", lambda x: (torch.cumsum(x, dim=-1) ** 2).sum()),
    ("elu", lambda x: (F.elu(x * 3.0, alpha=0.7) ** 2).sum()),
    ("selu", lambda x: (F.selu(x * 3.0) ** 2).sum()),
    ("celu", lambda x: (F.celu(x * 3.0, alpha=1.5) ** 2).sum()),
    ("elu_inplace", lambda x: (F.elu(x * 3.0, inplace=True) ** 2).sum()),
    ("cross_entropy_per_pixel", lambda x: F.cross_entropy(x, torch.tensor([[[0, 1, 1, 0]] * 5, [[1, 0, -100, 1]] * 5]))),
    ("per_pixel_unreduced", lambda x: (F.cross_entropy(x, torch.ones(2, 5, 4, dtype=torch.int64), reduction="none") ** 2).sum()),
])
def test_more_operators_have_float64_accurate_gradients(name, fn):
    x = torch.randn(2, 2, 5, 4, generator=torch.Generator().manual_seed(9))
    got = x.clone().requires_grad_(True)
    with reproducible():
        fn(got).backward()
    want = x.double().requires_grad_(True)
    fn(want).backward()
    assert torch.allclose(got.grad.double(), want.grad, rtol=1e-5, atol=1e-6)


def test_one_hot_targets_run_but_scattering_values_is_refused():
    """``F.one_hot`` (aminmax, then scattering the value 1) is exact; scattering a tensor of
    values is not (which duplicate lands last is the kernel's choice)."""
    y = torch.tensor([2, 0, 1, 2])
    with reproducible():
        assert torch.equal(F.one_hot(y, 3), torch.eye(3, dtype=torch.int64)[y])
        with pytest.raises(UncoveredOperatorError, match=r"aten\.scatter\.src"):
            torch.zeros(3).scatter(0, torch.tensor([0, 0]), torch.tensor([1.0, 2.0]))


def test_portable_expm1_has_no_cancellation_near_zero():
    from verification.execution.repro.elementwise import portable_expm1

    values = [0.0, -0.0, 1e-300, -1e-30, 1e-8, -3e-4, 1e-3, 0.01, -0.5, 2.0, -30.0, 80.0]
    got = portable_expm1(torch.tensor(values, dtype=torch.float64)).tolist()
    for v, g in zip(values, got, strict=True):
        want = math.expm1(v)
        assert g == want or abs(g - want) <= 1e-9 * abs(want), (v, g, want)
