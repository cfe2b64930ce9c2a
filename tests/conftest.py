"""Shared fixtures: a sharded minimal job in a temporary artifacts directory."""

from __future__ import annotations

import dataclasses

import pytest

from verification.paths import ArtifactPaths
from verification.spec import get_preset


@pytest.fixture(scope="session")
def minimal_spec():
    return get_preset("minimal")


@pytest.fixture(scope="session")
def tiny_spec():
    """Even smaller than minimal: 16 steps, checkpoint every 4, one honest solver."""
    from verification.spec import SolverSpec

    return dataclasses.replace(get_preset("minimal"), name="tiny", steps=16, checkpoint_interval=4,
                               solvers=(SolverSpec("honest", "honest"),))


@pytest.fixture(scope="session")
def minimal_dataset(minimal_spec, tmp_path_factory):
    from datasets.sharding import write_shards
    from datasets.sources import load_source

    paths = ArtifactPaths(tmp_path_factory.mktemp("artifacts"))
    source = load_source(minimal_spec.dataset, **minimal_spec.dataset_params)
    return write_shards(source, paths.root / "dataset", minimal_spec.num_shards, minimal_spec.hashing), paths


@pytest.fixture(scope="session")
def minimal_program(minimal_spec, minimal_dataset):
    from verification.execution.program import load_program

    return load_program(minimal_spec, minimal_dataset[0])
