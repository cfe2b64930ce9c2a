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
    One square float32 matmul ``n x n x n``: ``exact_matmul`` (two-slice fixed point, three float64
    GEMMs of integers) against ``torch.matmul``. Anchor: Gensyn's RepOps reports under 30% overhead on large
    matmuls and about 60% on a 1B-parameter model.
"""

from __future__ import annotations

import math

import pytest
import torch

from benchmarks import get_sizes
from benchmarks.conftest import describe_program
from proofs.types import Step
from verification.execution.repro.exact import exact_matmul

REPRO_MODELS = [("mlp", 64), ("cnn", 16), ("transformer", 32)]
THREADS = (1, 2)
MODES = {"native": "exact", "reproducible": "reproducible"}  # extra_info mode -> job spec mode
MATMUL_SIZES = get_sizes((128, 512), (1024, 2048))


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
    matmul = exact_matmul if mode == "reproducible" else torch.matmul
    benchmark.extra_info.update(op="matmul", model="matmul", width=n, mode=mode, threads=threads)
    out = benchmark(matmul, a, b)
    torch.testing.assert_close(out, a @ b, rtol=1e-4, atol=1e-4 * math.sqrt(n))
