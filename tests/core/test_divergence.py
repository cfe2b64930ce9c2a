"""Distance of each solver's parameters to the honest trace, per checkpoint (``verification.divergence``)."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from verification.divergence import (
    DivergenceError,
    ParameterDistances,
    compute_parameter_distance,
    compute_parameter_distances,
    get_reference_solver,
    render_divergence_markdown,
)
from verification.execution.state import State
from verification.plots import divergence_png
from verification.solver import train
from verification.spec import get_preset
from verification.strategies import resolve_strategy

K = 6


@pytest.fixture(scope="module")
def runs(minimal_dataset, tmp_path_factory):
    from verification.execution.program import load_program

    spec = dataclasses.replace(get_preset("minimal"), name="divergence", model_params={"hidden": 4},
                               batch_size=8, steps=24, checkpoint_interval=K)
    program = load_program(spec, minimal_dataset[0])
    root = tmp_path_factory.mktemp("divergence")
    solvers = {"lazy": ("lazy", {"start": 9, "length": 4}), "honest": ("honest", {}),
               "bitflip": ("bitflip", {"step": 14}), "honest2": ("honest", {})}
    return {sid: train(program, resolve_strategy(name, params), root / f"{sid}.zarr", "job", sid)
            for sid, (name, params) in solvers.items()}


def test_the_reference_is_the_first_honest_solver_with_a_trace(runs):
    assert get_reference_solver(runs) == "honest"
    failed = {**runs, "honest": dataclasses.replace(runs["honest"], roots=(), failure="timed out")}
    assert get_reference_solver(failed) == "honest2"
    assert get_reference_solver({"lazy": runs["lazy"]}) is None


def test_each_cheater_leaves_the_honest_trace_at_the_checkpoint_after_its_injected_step(runs):
    distances = compute_parameter_distances(runs, "honest")
    assert sorted(distances) == ["bitflip", "honest2", "lazy"]
    assert distances["honest2"].distances == (0.0,) * 5 and distances["honest2"].first_divergent_step is None
    for sid in ("lazy", "bitflip"):
        d = distances[sid]
        assert d.steps == (0, 6, 12, 18, 24)
        injected = runs[sid].injected_divergence_step
        assert d.first_divergent_step == math.ceil(injected / K) * K
        before = [v for s, v in zip(d.steps, d.distances, strict=True) if s < d.first_divergent_step]
        assert before == [0.0] * len(before) and all(v > 0 for v in d.distances[len(before):])
        assert d.divergent_steps == (d.first_divergent_step - K + 1, d.first_divergent_step)
    table = render_divergence_markdown(distances, "honest")
    assert "| lazy | 7–12 |" in table and "| bitflip | 13–18 |" in table
    assert "| honest2 | never (identical) | 0 |" in table


def test_the_distance_is_the_l2_norm_over_all_parameters():
    a = State(0, {"param/w": torch.zeros(2), "param/b": torch.zeros(1), "buffer/n": torch.ones(1)}, 0)
    b = State(0, {"param/w": torch.tensor([3.0, 0.0]), "param/b": torch.tensor([4.0]), "buffer/n": torch.zeros(1)}, 0)
    assert compute_parameter_distance(a, b) == 5.0  # buffers are not parameters
    other = State(0, {"param/w": torch.zeros(3), "param/b": torch.zeros(1)}, 0)
    with pytest.raises(DivergenceError, match=r"states at step 0 hold other parameters"):
        compute_parameter_distance(other, a)


def test_a_corrupted_checkpoint_is_named_with_its_solver(runs, tmp_path):
    import shutil

    import zarr

    copy = tmp_path / "lazy.zarr"
    shutil.copytree(runs["lazy"].checkpoint_path, copy)
    rows = zarr.open_group(copy, mode="r+")["rows"]
    row = rows[2]
    row[-1] ^= 1
    rows[2] = row
    broken = {**runs, "lazy": dataclasses.replace(runs["lazy"], checkpoint_path=str(copy))}
    with pytest.raises(DivergenceError, match=r"solver 'lazy': checkpoint #2 .* corrupted"):
        compute_parameter_distances(broken, "honest")
    with pytest.raises(DivergenceError, match=r"reference solver 'nobody' has no trace"):
        compute_parameter_distances(runs, "nobody")


@pytest.mark.parametrize("distances", [
    {"lazy": ParameterDistances("lazy", (0, 6, 12), (0.0, 0.5, 2.0))},
    {"twin": ParameterDistances("twin", (0, 6, 12), (0.0, 0.0, 0.0))},  # nothing to draw on a log scale
])
def test_the_divergence_figure_draws(distances):
    assert divergence_png(distances, "honest").startswith(b"\x89PNG")
