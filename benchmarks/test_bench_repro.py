"""What reproducibility costs: torch's operators under ``reproducible()`` against torch's kernels.

Group ``repro-ops``. Every benchmark comes in a pair that differs only in ``extra_info["mode"]``
(``reproducible`` / ``native``), so ``benchmarks.report`` states each overhead as the ratio of two
medians of the same run:

``step``
    One ``Program.step`` (forward, backward, torch.optim update) per model and thread count, under
    ``reproducible()`` (job mode ``reproducible``: every aten operator intercepted and made
    device-independent) against job mode ``exact`` (torch's kernels with deterministic algorithms,
    the native mode that can still commit to roots).
``matmul``
    One square float32 matmul ``n x n x n``: ``fixed_matmul`` (one fixed order of fused
    multiply-adds, ``repro.products``) against ``torch.matmul``. Anchor: Gensyn's RepOps reports under 30% overhead on large
    matmuls and about 60% on a 1B-parameter model.
``paired matmul``
    The same as an interleaved, paired measurement (``benchmarks.paired``) at one thread, 1024**3
    included (the issue's goal is stated for it): ``reproducible/native``, and
    ``torch-path/reproducible`` at 128**3 only, what the C++ kernel (``repro.fused``) saves
    against the pure-torch fallback (the same bits: one float64-emulated fma per term, a vector
    operation each, for GPUs and failed builds).
"""

from __future__ import annotations

import math
import os

import pytest
import torch

from benchmarks import get_paired_rounds, get_sizes
from benchmarks.conftest import describe_program
from benchmarks.paired import measure_paired, ratio_of
from proofs.types import Step
from verification.execution.repro import fused
from verification.execution.repro.products import fixed_matmul

REPRO_MODELS = [("mlp", 64), ("cnn", 16), ("transformer", 32)]
THREADS = (1, 2)
TORCH_PATH_MAX = 128  # the largest paired matmul timed on the pure-torch fallback too
MODES = {"native": "exact", "reproducible": "reproducible"}  # extra_info mode -> job spec mode
MATMUL_SIZES = get_sizes((128, 512), (1024, 2048))
PAIRED_MATMUL_SIZES = get_sizes((512, 1024), (2048,))


@pytest.mark.benchmark(group="repro-ops")
@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("model, width", REPRO_MODELS)
def test_repro_step(benchmark, bench_program, model, width, threads, mode):
    program = bench_program(model, width, mode=MODES[mode], threads=threads)
    state, batch = program.init_state(), program.batch(Step(1))
    benchmark.extra_info.update(describe_program(program), mode=mode, op="step")
    out = benchmark(program.step, state, batch)
    assert out.state.step == 1 and math.isfinite(out.loss)


@pytest.fixture
def pinned_threads():
    """``set(n)`` pins torch's thread count for one benchmark and restores it afterwards."""
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


@pytest.mark.benchmark(group="repro-ops")
@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("n", MATMUL_SIZES)
def test_repro_matmul(benchmark, pinned_threads, n, threads, mode):
    pinned_threads(threads)
    generator = torch.Generator().manual_seed(n)
    a, b = torch.randn(n, n, generator=generator), torch.randn(n, n, generator=generator)
    matmul = fixed_matmul if mode == "reproducible" else torch.matmul
    benchmark.extra_info.update(op="matmul", model="matmul", width=n, mode=mode, threads=threads)
    out = benchmark(matmul, a, b)
    torch.testing.assert_close(out, a @ b, rtol=1e-4, atol=1e-4 * math.sqrt(n))


def torch_path_matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``fixed_matmul`` on the pure-torch fallback (what runs without the fused kernels)."""
    before = os.environ.get(fused.ENV_SWITCH)
    os.environ[fused.ENV_SWITCH] = "0"
    try:
        return fixed_matmul(a, b)
    finally:
        if before is None:
            del os.environ[fused.ENV_SWITCH]
        else:
            os.environ[fused.ENV_SWITCH] = before


@pytest.mark.benchmark(group="repro-ops")
@pytest.mark.parametrize("n", PAIRED_MATMUL_SIZES)
def test_paired_repro_matmul(benchmark, pinned_threads, n):
    pinned_threads(1)
    generator = torch.Generator().manual_seed(n)
    a, b = torch.randn(n, n, generator=generator), torch.randn(n, n, generator=generator)
    sides = {"reproducible": lambda: fixed_matmul(a, b), "native": lambda: torch.matmul(a, b)}
    ratios = {"reproducible/native": ratio_of("reproducible", "native")}
    if n <= TORCH_PATH_MAX:  # the fallback is a vector operation per term: too slow to time above
        assert torch.equal(fixed_matmul(a, b), torch_path_matmul(a, b))
        sides["torch-path"] = lambda: torch_path_matmul(a, b)
        ratios["torch-path/reproducible"] = ratio_of("torch-path", "reproducible")
    result = benchmark.pedantic(measure_paired, (sides, ratios, get_paired_rounds(5)), rounds=1, iterations=1)
    benchmark.extra_info.update(op="matmul", model="matmul", width=n, mode="paired", threads=1,
                                fused=fused.get_kernels() is not None, paired=result.to_info())
