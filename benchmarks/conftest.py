"""Shared fixtures of the benchmark suites: committed datasets and training programs by model size.

Terms
-----
bench spec
    The ``minimal`` preset (``verification.spec``) with the model, its width and any other
    :class:`~verification.spec.JobSpec` field replaced: ``make_bench_spec("mlp", 512, steps=1000)``.
width
    The one size knob of a model family (``MODEL_SETUPS``): the hidden width of the MLP, the number
    of filters of the CNN's first convolution, the embedding width of the tiny transformer. The
    default preset's MLP has width ``DEFAULT_WIDTH``.

Fixtures (session-scoped, cached by their arguments, so every suite pays for setup once):
``bench_dataset(spec)`` shards and commits the spec's source; ``bench_program(model, width,
**fields)`` builds the program of a bench spec; ``bench_run(program, solver)`` trains one solver's
whole job with checkpoints. Every benchmark of a program records ``describe_program(program)``
in its ``extra_info`` (``model``, ``width``, ``params``, ``state_bytes``, ``mode``, ``threads`` …).
``bench_program`` pins the program's execution mode and thread count again each time it hands a
program out, because ``torch.set_num_threads`` is process-wide and another suite may change it.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Any

import pytest

from benchmarks import QUICK_ENV_VAR, SMOKE_ENV_VAR
from datasets.sharding import DatasetCommitment, write_shards
from datasets.sources import load_source
from proofs.messages import Signed, sign_message
from proofs.types import PartyId
from verification.execution.models import UnknownModelError
from verification.execution.pieces import ProgramError, build_module
from verification.execution.program import Program, configure_mode, load_program
from verification.solver import TrainingRun, build_commitment, party_keypair, train
from verification.spec import JobSpec, SolverSpec, compute_job_id, get_preset
from verification.strategies import resolve_strategy
from verification.verifier import SECRET_SIZE, CoinReveal


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--group", action="append", default=[], metavar="NAME",
                     help="run only the benchmarks of group NAME (repeatable), e.g. commit, spot-check, repro-ops")
    parser.addoption("--quick", action="store_true",
                     help="the quick profile (for CI): every benchmark at its smallest size, timed "
                          f"(the sizes of {SMOKE_ENV_VAR}=1)")


QUICK_TIMING = {"benchmark_max_time": 0.1, "benchmark_min_rounds": 3}  # calibrate briefly


def pytest_configure(config: pytest.Config) -> None:
    """``--quick`` selects the smallest sizes before any suite computes its sizes at import, and
    brief calibration (pytest-benchmark's own options, read after this hook)."""
    if config.getoption("--quick", default=False):
        os.environ.update({SMOKE_ENV_VAR: "1", QUICK_ENV_VAR: "1"})
        for name, value in QUICK_TIMING.items():
            setattr(config.option, name, value)


def get_group(item: pytest.Item) -> str | None:
    """The group a benchmark declares with ``@pytest.mark.benchmark(group=...)``."""
    marker = item.get_closest_marker("benchmark")
    return None if marker is None else marker.kwargs.get("group")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``--group NAME``: keep the benchmarks of the named groups; an unknown name is an error that
    lists the groups there are (``-k`` matches test names, not groups)."""
    wanted = config.getoption("--group")
    if not wanted:
        return
    known = sorted({g for g in map(get_group, items) if g})
    unknown = sorted(set(wanted) - set(known))
    if unknown:
        raise pytest.UsageError(f"--group {unknown}: no such benchmark group; the groups are {known}")
    keep = [item for item in items if get_group(item) in wanted]
    config.hook.pytest_deselected(items=[item for item in items if get_group(item) not in wanted])
    items[:] = keep


@pytest.fixture(autouse=True)
def record_load(request: pytest.FixtureRequest):
    """Every benchmark records the 1-minute load before and after it and the machine's cores, so
    that the report can label a multi-threaded timing the machine could not make
    (``benchmarks.paired``, *measurable*)."""
    if "benchmark" not in request.fixturenames:
        yield
        return
    benchmark, before = request.getfixturevalue("benchmark"), os.getloadavg()[0]
    yield
    benchmark.extra_info.update(load=[before, os.getloadavg()[0]], cores=os.cpu_count())


DEFAULT_MODEL = "mlp"
DEFAULT_WIDTH = 64  # the hidden width of the default preset's MLP


@dataclass(frozen=True)
class ModelSetup:
    """How a model family is sized and which data source it trains on."""

    width_param: str
    dataset: str
    dataset_params: dict[str, Any] = field(default_factory=dict)


MODEL_SETUPS: dict[str, ModelSetup] = {
    "mlp": ModelSetup(width_param="hidden", dataset="digits"),
    "cnn": ModelSetup(width_param="channels", dataset="digits"),
    # 64 KiB of byte-level text: enough windows of 32 tokens for any batch, cheap to shard.
    "transformer": ModelSetup(width_param="n_embd", dataset="text",
                              dataset_params={"block": 32, "max_bytes": 65_536}),
}


def make_bench_spec(model: str = DEFAULT_MODEL, width: int = DEFAULT_WIDTH, **fields: Any) -> JobSpec:
    """The ``minimal`` preset with ``model`` at ``width`` and ``fields`` replaced."""
    if model not in MODEL_SETUPS:
        raise UnknownModelError(f"benchmarks have no setup for model {model!r}; known: {sorted(MODEL_SETUPS)}")
    setup = MODEL_SETUPS[model]
    base = dataclasses.replace(get_preset("minimal"), name=f"bench-{model}-{width}", model=model,
                               model_params={setup.width_param: width}, dataset=setup.dataset,
                               dataset_params=dict(setup.dataset_params))
    return dataclasses.replace(base, **fields)


def require_model(spec: JobSpec, dataset: DatasetCommitment) -> None:
    """Skip the calling benchmark, with the reason, when the core cannot build ``spec.model``."""
    try:
        build_module(spec.model, spec.model_params, dataset.meta)
    except (UnknownModelError, ProgramError) as exc:
        pytest.skip(f"model {spec.model!r} is not available: {exc}")


@pytest.fixture(scope="session")
def bench_dataset(tmp_path_factory):
    """``get(spec) -> DatasetCommitment``: the spec's source sharded once into zarr and committed."""
    cache: dict[str, DatasetCommitment] = {}

    def get(spec: JobSpec) -> DatasetCommitment:
        key = json.dumps([spec.dataset, spec.dataset_params, spec.num_shards, spec.hash_name], sort_keys=True)
        if key not in cache:
            source = load_source(spec.dataset, **spec.dataset_params)
            out_dir = tmp_path_factory.mktemp(f"dataset-{spec.dataset}")
            cache[key] = write_shards(source, out_dir, spec.num_shards, spec.hashing)
        return cache[key]

    return get


@pytest.fixture(scope="session")
def bench_program(bench_dataset):
    """``get(model, width, **fields) -> Program`` on the committed data, mode and threads pinned.

    Skips the calling benchmark when the model does not exist in ``verification.execution.models``.
    """
    cache: dict[str, Program] = {}  # by job id (a spec holds dicts, so it is not hashable)

    def get(model: str = DEFAULT_MODEL, width: int = DEFAULT_WIDTH, **fields: Any) -> Program:
        try:
            spec = make_bench_spec(model, width, **fields)
        except UnknownModelError as exc:
            pytest.skip(str(exc))
        dataset = bench_dataset(spec)
        key = compute_job_id(spec)
        if key not in cache:
            require_model(spec, dataset)
            cache[key] = load_program(spec, dataset)
        configure_mode(spec.mode, spec.threads)
        return cache[key]

    return get


def get_width(spec: JobSpec) -> int:
    """The width of the spec's model (``MODEL_SETUPS``)."""
    return int(spec.model_params[MODEL_SETUPS[spec.model].width_param])


def describe_program(program: Program) -> dict[str, Any]:
    """The ``extra_info`` every benchmark of a program carries: what was run, how big, where."""
    spec = program.spec
    arrays = program.init_state().to_arrays()
    return {
        "model": spec.model,
        "width": get_width(spec),
        "params": int(sum(a.size for name, a in arrays.items() if name.startswith("param/"))),
        "state_bytes": int(sum(a.nbytes for a in arrays.values())),
        "batch_size": spec.batch_size,
        "mode": spec.mode,
        "threads": spec.threads,
        "device": str(program.device),
        "hash_name": spec.hash_name,
    }


def bench_coin(spec: JobSpec) -> CoinReveal:
    """A fixed verifier coin for the job: benchmarks sample intervals as a verifier does, repeatably."""
    return CoinReveal(compute_job_id(spec), PartyId(spec.verifier), bytes(SECRET_SIZE))


def sign_run(spec: JobSpec, run: TrainingRun) -> Signed:
    """The solver's signed commitment to ``run`` (the coin's other input)."""
    sk, _ = party_keypair(spec, run.solver_id)
    return sign_message(build_commitment(spec, run.job_id, run), sk, run.solver_id)


@pytest.fixture(scope="session")
def bench_run(tmp_path_factory):
    """``get(program, solver) -> TrainingRun``: the solver's whole job, trained once with checkpoints."""
    cache: dict[str, TrainingRun] = {}

    def get(program: Program, solver: SolverSpec) -> TrainingRun:
        job_id = compute_job_id(program.spec)
        key = json.dumps([job_id, solver.solver_id, solver.strategy, solver.params], sort_keys=True)
        if key not in cache:
            strategy = resolve_strategy(solver.strategy, solver.params)
            path = tmp_path_factory.mktemp(f"run-{solver.solver_id}") / "checkpoints.zarr"
            cache[key] = train(program, strategy, path, job_id, solver.solver_id)
        return cache[key]

    return get
