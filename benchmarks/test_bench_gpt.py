"""A workload that looks like research: a char-level GPT on the Python standard library's sources.

Group ``gpt``. With ``PINPOINT_BENCH_FULL=1`` the model is nanoGPT's shakespeare-char shape — 6
layers, 6 heads, 384 wide, block 128: 10.9M parameters — trained with AdamW and a cosine schedule
on the text of the running Python's standard library (``dataset: text``); by default the ``gpt``
preset's 2-layer, 64-wide one, so that ``make test`` runs every code path in seconds. Figures, in ``extra_info``:

``step``
    one training step per mode (``native``: job mode ``exact``; ``reproducible``): steps/s is
    ``1 / median``.
``dispute``
    one operator-level dispute against an ``op_corrupt`` cheater in ``reproducible`` mode, played in
    a process of its own (``benchmarks.gpt_dispute``): wall seconds, referee seconds, both against
    one step, and the peak resident memory of the process that holds both parties and the referee,
    per model size (small; in a full study also 0.8M and 10.9M parameters).
``job``
    the whole lifecycle (``run_job``) with an honest solver and a ``bitflip`` cheater: checkpoint
    bytes on disk, stage timings, the honest-case overhead (commitment time / training time, both
    parties' stages as the lifecycle times them), the cheater's outcome and dispute.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import get_sizes, is_full_study
from proofs.types import Root, Step
from verification.execution.program import Program, configure_mode
from verification.lifecycle import run_job
from verification.paths import ArtifactPaths
from verification.spec import JobSpec, get_preset, spec_to_dict

REPO = Path(__file__).resolve().parents[1]
FULL = {"n_layer": 6, "n_head": 6, "n_embd": 384}  # 10.9M parameters at vocabulary 256, block 128
MID = {"n_layer": 4, "n_head": 4, "n_embd": 128}  # 0.8M
SMALL = {"n_layer": 2, "n_head": 2, "n_embd": 64}
SIZES = get_sizes(("small",), ("mid", "full"))
SHAPES = {"small": SMALL, "mid": MID, "full": FULL}


def gpt_spec(mode: str = "reproducible", size: str | None = None) -> JobSpec:
    """The ``gpt`` preset (at ``small`` exactly that job) at ``size``, in ``mode``."""
    size = size or ("full" if is_full_study() else "small")
    preset = get_preset("gpt")
    if size == "small" and mode == preset.mode:
        return preset
    return dataclasses.replace(
        preset, name=f"gpt-{size}", dataset_params={**preset.dataset_params, "block": 32 if size == "small" else 128},
        model_params=dict(SHAPES[size]), mode=mode)


def count_params(program: Program) -> int:
    return sum(t.numel() for n, t in program.init_state().tensors.items() if n.startswith("param/"))


@pytest.mark.benchmark(group="gpt")
@pytest.mark.parametrize("mode", ["native", "reproducible"])
def test_gpt_step(benchmark, mode):
    from datasets.sources import load_source

    spec = gpt_spec("exact" if mode == "native" else "reproducible")
    source = load_source(spec.dataset, **spec.dataset_params)
    program = Program(spec, source.x, source.y, Root(bytes(32)), source.meta)
    configure_mode(spec.mode, spec.threads)  # as the benchmark session pins every program's (conftest)
    state, batch = program.init_state(), program.batch(Step(1))
    benchmark.extra_info.update(model="gpt", params=count_params(program), mode=mode, op="step", threads=1,
                                tokens=spec.batch_size * spec.dataset_params["block"])
    out = benchmark.pedantic(program.step, (state, batch), rounds=3 if is_full_study() else 1, iterations=1)
    assert math.isfinite(out.loss)


@pytest.mark.benchmark(group="gpt")
@pytest.mark.parametrize("size", SIZES)
def test_gpt_dispute(benchmark, tmp_path, size):
    spec_path, out_path = tmp_path / "spec.json", tmp_path / "out.json"
    spec_path.write_text(json.dumps(spec_to_dict(gpt_spec(size=size))))
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    def run() -> dict:
        done = subprocess.run([sys.executable, "-m", "benchmarks.gpt_dispute", str(spec_path), str(out_path)],
                              cwd=REPO, env=env, capture_output=True, text=True, timeout=3600)
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(out_path.read_text())

    figures = benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update(model="gpt", size=size, mode="reproducible", op="dispute", **figures,
                                dispute_per_step=figures["dispute_s"] / figures["step_s"],
                                referee_per_step=figures["referee_s"] / figures["step_s"])
    assert (figures["winner"], figures["first_divergent_step"]) == ("challenger", 7)
    assert figures["operator_index"] == figures["injected_operator_index"]
    assert figures["reason"].startswith("referee ruling"), figures["reason"]  # the referee ran one operator


@pytest.mark.benchmark(group="gpt")
def test_gpt_job(benchmark, tmp_path):
    spec = gpt_spec()
    report = benchmark.pedantic(run_job, (spec, ArtifactPaths(tmp_path)), rounds=1, iterations=1)
    solvers = {s["solver_id"]: s for s in report["solvers"]}
    stored = sum(f.stat().st_size for f in (tmp_path / "runs").rglob("*") if f.is_file() and ".zarr" in str(f))
    benchmark.extra_info.update(model="gpt", mode="reproducible", op="job", checkpoint_bytes_all_parties=stored,
                                timings_s=report["timings_s"], cheater=solvers["bitflip"]["outcome"],
                                # what committing (hashing, Merkle trees, signing) adds to training:
                                # the honest solver's overhead when nobody cheats
                                commit_per_train=report["timings_s"]["commit"] / report["timings_s"]["train"])
    assert solvers["honest"]["outcome"] == "paid" and solvers["bitflip"]["outcome"] == "slashed"
    assert solvers["bitflip"]["dispute"]["first_divergent_step"] == spec.solvers[1].params["step"]
    assert report["ledger"]["supply_before"] == report["ledger"]["supply_after"]
