"""The headline ratios, each a paired, interleaved measurement (``benchmarks.paired``).

Every benchmark here times both sides of its ratios in alternation, round after round, and stores
per-ratio median/min/max with the machine's load in ``extra_info["paired"]``; the report shows
those and nothing derived from two separate benchmarks.

Groups
------
``overhead``
    What verification costs an honest solver, per model (the default job's MLP, a CNN, a small
    transformer, the ``gpt`` preset's char-level GPT; with ``PINPOINT_BENCH_FULL=1`` also the
    10.9M-parameter GPT), for a job of ``T`` steps with a checkpoint every ``k`` (``n = T/k``
    intervals). Sides of one round: ``train`` (``m`` training steps, continuing the run; ``m = k``
    except for the 10.9M GPT), ``hash`` (the checkpoint's host arrays and state root), ``store``
    (writing it to the zarr checkpoint store, waited for), ``merkle`` (the trace root over ``n + 1``
    roots) and ``sign`` (one BLS signature of the commitment, default backend). Ratios, over the
    job's training ``n·k`` steps: ``hash`` = (n+1)·hash, ``merkle``, ``sign``, ``storage`` =
    (n+1)·store, ``commit`` = hash + merkle + sign (goal ≤ 1 %), ``commit+storage`` (goal ≤ 10 %).
    Storage of a large state overlaps training in a real run (the writer's thread); here it is
    timed on its own, so the figure is what it costs, not what it hides.
``in-situ``
    ``test_paired_in_situ``: all of it, as the honest solver pays it. ``solver.train`` of the whole
    job (the writer hashing and storing each checkpoint, inline for a small state and on a thread
    beside the next steps for a large one; the store's creation and publication) plus signing the commitment, against the same ``T`` steps in a plain
    loop: ``overhead (wall)`` (how much longer the job takes; goal ≤ 10 %) and ``overhead (cpu)``
    (what it costs in CPU time over all threads).
``referee``
    ``test_paired_referee``: the referee's output ruling on one disputed matmul of a step (open,
    check against the agreed hashes, re-execute, compare) against re-executing that whole step
    (goal ≤ 0.5).
``repro-ops``
    ``test_paired_repro_step``: one step in ``reproducible`` mode against the same step in
    ``exact`` (native kernels), per model, one thread.
``commit``
    ``test_paired_state_root``: the state root against one raw SHA-256 pass over the same tensors
    (throughput = raw / root; goals ≥ 0.5 for the default MLP's state, ≥ 0.8 from 1 MB).
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Callable

import numpy as np
import pytest

from benchmarks import get_paired_rounds, is_full_study
from benchmarks.conftest import describe_program, make_bench_spec
from benchmarks.paired import Times, calibrate_repeat, measure_paired, ratio_of
from benchmarks.test_bench_gpt import gpt_spec
from proofs.encoding import state_root, trace_root
from proofs.messages import Commitment, sign_message
from proofs.types import JobId, Root, SolverId, Step
from verification.execution.checkpoints import CheckpointWriter, pack_row, write_chunk
from verification.execution.opgraph import open_operands, record_step
from verification.execution.program import configure_mode, honest_step, load_program
from verification.referee import rule_on_output
from verification.solver import build_commitment, party_keypair, train
from verification.spec import JobSpec, compute_job_id, get_preset
from verification.strategies import Honest, OpCorrupt

ROUNDS = get_paired_rounds(9 if is_full_study() else 7)  # rounds of every paired measurement
# Sides shorter than this run back to back until their round takes about this long (benchmarks.paired, *repeat*).
REPEAT_TARGET_S = 0.02
JOB_T, JOB_K = 300, 25  # the default job's T and k, for every model
MATMULS = ("aten.addmm.default", "aten.mm.default", "aten.bmm.default", "aten.convolution.default",
           "pinpoint.fixed_mm.default")  # the last: a matmul in reproducible mode


@dataclasses.dataclass(frozen=True)
class OverheadCase:
    """One row of the overhead table: the job's spec and the training steps one round times."""

    label: str
    spec: Callable[[], JobSpec]
    steps_per_round: int = JOB_K


def bench(model: str, width: int) -> Callable[[], JobSpec]:
    return lambda: make_bench_spec(model, width, steps=JOB_T, checkpoint_interval=JOB_K)


def gpt(size: str) -> Callable[[], JobSpec]:
    return lambda: dataclasses.replace(gpt_spec(size=size), steps=JOB_T, checkpoint_interval=JOB_K)


CASES = [OverheadCase("mlp-64 (default job)", lambda: get_preset("default")),
         OverheadCase("cnn-16", bench("cnn", 16)),
         OverheadCase("transformer-32", bench("transformer", 32)),
         OverheadCase("gpt-small (gpt preset)", gpt("small"))]
if is_full_study():
    CASES.append(OverheadCase("gpt-10.9M", gpt("full"), steps_per_round=2))


@pytest.fixture(scope="module")
def programs(bench_dataset):
    """``get(spec) -> Program`` on the committed data, its mode pinned, one program per spec."""
    cache = {}

    def get(spec: JobSpec):
        key = compute_job_id(spec)
        if key not in cache:
            cache[key] = load_program(spec, bench_dataset(spec))
        configure_mode(spec.mode, spec.threads)
        return cache[key]

    return get


def compute_job_ratios(n: int, k: int, m: int) -> dict[str, Callable[[Times], float]]:
    """The overhead ratios of a job of ``n`` intervals of ``k`` steps, from a round whose
    ``train`` side ran ``m`` steps (the job trains ``n·k`` steps and stores ``n + 1`` checkpoints)."""
    def training(t: Times) -> float:
        return t["train"] / m * k * n

    parts = {"hash": lambda t: (n + 1) * t["hash"], "merkle": lambda t: t["merkle"],
             "sign": lambda t: t["sign"], "storage": lambda t: (n + 1) * t["store"]}
    ratios = {name: (lambda t, part=part: part(t) / training(t)) for name, part in parts.items()}
    ratios["commit"] = lambda t: sum(ratios[p](t) for p in ("hash", "merkle", "sign"))
    ratios["commit+storage"] = lambda t: ratios["commit"](t) + ratios["storage"](t)
    return ratios


@pytest.mark.benchmark(group="overhead")
@pytest.mark.parametrize("case", CASES, ids=[c.label.split()[0] for c in CASES])
def test_paired_overhead(benchmark, programs, tmp_path, case):
    spec = case.spec()
    program = programs(spec)
    n, k, hashing = spec.steps // spec.checkpoint_interval, spec.checkpoint_interval, spec.hashing
    run = {"state": program.init_state()}
    run["arrays"] = run["state"].to_arrays()
    run["root"] = state_root(run["arrays"], hashing)
    writer = CheckpointWriter(tmp_path / "c.zarr", run["arrays"], k, ROUNDS + 1, hashing)
    sk, _ = party_keypair(spec, "honest")
    roots = [Root(hashlib.sha256(i.to_bytes(8, "big")).digest()) for i in range(n + 1)]
    written = iter(range(1, writer.rows_metadata.shape[0]))

    def train() -> None:
        run["state"] = program.run(run["state"], Step(run["state"].step + case.steps_per_round))

    def hash_() -> None:
        run["arrays"] = run["state"].to_arrays()
        run["root"] = state_root(run["arrays"], hashing)

    def store() -> None:  # packing and storing only: the writer's hashing is the ``hash`` side
        write_chunk(writer.tmp, writer.rows_metadata, next(written), pack_row(writer.layout, run["arrays"], run["root"],
                                                                     (0.0,) * k))

    def sign() -> None:
        commitment = Commitment(JobId("bench"), SolverId("honest"), trace_root(roots, hashing),
                                roots[-1], Step(spec.steps), Step(k), program.environment())
        sign_message(commitment, sk, SolverId("honest"))

    sides = {"train": train, "hash": hash_, "store": store, "merkle": lambda: trace_root(roots, hashing),
             "sign": sign}
    result = benchmark.pedantic(measure_paired, (sides, compute_job_ratios(n, k, case.steps_per_round), ROUNDS),
                                {"threads": spec.threads}, rounds=1, iterations=1)
    writer.close()
    benchmark.extra_info.update(describe_program(program), case=case.label, T=spec.steps, k=k,
                                steps_per_round=case.steps_per_round, paired=result.to_info())
    assert all(v > 0 for v in result.ratios["commit"])


def find_matmul(program, pre) -> int:
    """The index of the first matmul-like operator of the step after ``pre`` (what a dispute over a
    corrupted layer rules on)."""
    records = record_step(program, Honest(), pre, program.spec.hashing).records
    return next(r.index for r in records if r.op in MATMULS)


@pytest.mark.benchmark(group="referee")
@pytest.mark.parametrize("case", CASES[:4], ids=[c.label.split()[0] for c in CASES[:4]])
def test_paired_referee(benchmark, programs, case):
    spec = case.spec()
    program, hashing = programs(spec), spec.hashing
    pre = program.run(program.init_state(), Step(3))
    strategy = OpCorrupt(step=4, op=find_matmul(program, pre))
    theirs = record_step(program, strategy, pre, hashing)
    index = strategy.op
    record, operands = theirs.records[index], open_operands(theirs, pre, index)
    agreed, pre_root = theirs.genesis if index == 0 else theirs.digests[index - 1], pre.root(hashing)
    sides = {"ruling": lambda: rule_on_output(program, Step(4), pre_root, agreed, record, operands),
             "step": lambda: honest_step(program, pre)}
    repeat = calibrate_repeat(sides, REPEAT_TARGET_S)
    result = benchmark.pedantic(measure_paired, (sides, {"ruling/step": ratio_of("ruling", "step")}, ROUNDS),
                                {"repeat": repeat}, rounds=1, iterations=1)
    assert rule_on_output(program, Step(4), pre_root, agreed, record, operands).winner == "challenger"
    benchmark.extra_info.update(describe_program(program), case=case.label, part="paired",
                                operator=record.op, paired=result.to_info())


@pytest.mark.benchmark(group="repro-ops")
@pytest.mark.parametrize("case", CASES[:3], ids=[c.label.split()[0] for c in CASES[:3]])
def test_paired_repro_step(benchmark, programs, case):
    native_spec = dataclasses.replace(case.spec(), mode="exact")
    repro_spec = dataclasses.replace(native_spec, name=f"{native_spec.name}-repro", mode="reproducible")
    native, repro = programs(native_spec), programs(repro_spec)
    state, batch = native.init_state(), native.batch(Step(1))

    def step(program, spec) -> None:
        configure_mode(spec.mode, spec.threads)
        program.step(state, batch)

    sides = {"reproducible": lambda: step(repro, repro_spec), "native": lambda: step(native, native_spec)}
    repeat = calibrate_repeat(sides, REPEAT_TARGET_S)
    result = benchmark.pedantic(measure_paired,
                                (sides, {"reproducible/native": ratio_of("reproducible", "native")}, ROUNDS),
                                {"repeat": repeat}, rounds=1, iterations=1)
    benchmark.extra_info.update(describe_program(native), case=case.label, mode="paired", op="step",
                                paired=result.to_info())


def synthetic_state(total_bytes: int) -> dict[str, np.ndarray]:
    """A model-like state: four float32 matrices, a bias and a step counter, ``total_bytes`` in all."""
    rng = np.random.default_rng(0)
    rows = max(1, total_bytes // (4 * 4 * 1024))
    state = {f"layer{i}.weight": rng.standard_normal((rows, 1024), np.float32) for i in range(4)}
    state.update({"layer0.bias": np.zeros(1024, np.float32), "step": np.int64(1)})
    return state


def raw_sha256(state: dict[str, np.ndarray]) -> list[bytes]:
    """One raw SHA-256 pass over every tensor's bytes: the floor for any commitment."""
    return [hashlib.sha256(memoryview(np.ascontiguousarray(a).reshape(-1).view(np.uint8))).digest()
            for a in state.values()]


STATE_SIZES = ["mlp-64 (default job)", 1, 16] + ([64] if is_full_study() else [])


@pytest.mark.benchmark(group="commit")
@pytest.mark.parametrize("size", STATE_SIZES, ids=[str(s).split()[0] for s in STATE_SIZES])
def test_paired_state_root(benchmark, programs, size):
    if isinstance(size, str):
        program = programs(get_preset("default"))
        state = program.run(program.init_state(), Step(1)).to_arrays()
    else:
        state = synthetic_state(size * 2**20)
    repeat = max(1, 2**22 // sum(a.nbytes for a in state.values()))  # each side ≥ ~4 MB hashed

    sides = {"state_root": lambda: [state_root(state) for _ in range(repeat)],
             "raw": lambda: [raw_sha256(state) for _ in range(repeat)]}
    result = benchmark.pedantic(measure_paired, (sides, {"raw/state_root": ratio_of("raw", "state_root")},
                                                 ROUNDS * 3), rounds=1, iterations=1)
    benchmark.extra_info.update(case=str(size) if isinstance(size, str) else f"{size} MB",
                                bytes=int(sum(a.nbytes for a in state.values())), tensors=len(state),
                                method="paired", paired=result.to_info())


def plain_training(program, steps: int) -> list[float]:
    """The same training with no verification at all: ``steps`` honest steps and their losses."""
    state, losses = program.init_state(), []
    while state.step < steps:
        out = Honest().run_step(program, state)
        state = out.state
        losses.append(out.loss)
    return losses


@pytest.mark.benchmark(group="in-situ")
@pytest.mark.parametrize("case", CASES[:3], ids=[c.label.split()[0] for c in CASES[:3]])
def test_paired_in_situ(benchmark, programs, tmp_path, case):
    """All of it, as an honest solver pays it: ``solver.train`` of the whole job (checkpoints
    hashed and stored by the writer, the trace root) and the
    signature of the commitment, against the same ``T`` steps in a plain loop. Ratios
    ``overhead (wall)`` (elapsed time: how much longer the job takes) and ``overhead (cpu)`` (the
    process's CPU time over all its threads: what the work costs), each ``job / plain - 1``, each
    its own paired measurement."""
    spec = case.spec()
    program, solver = programs(spec), SolverId("honest")
    sk, _ = party_keypair(spec, solver)
    job_id, runs, last = compute_job_id(spec), iter(range(10**6)), {}

    def job() -> None:
        last["job"] = train(program, Honest(), tmp_path / f"run-{next(runs)}.zarr", job_id, solver, resume=False)
        sign_message(build_commitment(spec, job_id, last["job"]), sk, solver)

    def plain() -> None:
        last["plain"] = plain_training(program, spec.steps)

    sides = {"job": job, "plain": plain}
    overhead = {"overhead": lambda t: t["job"] / t["plain"] - 1.0}
    wall = measure_paired(sides, overhead, ROUNDS, threads=spec.threads)
    cpu = benchmark.pedantic(measure_paired, (sides, overhead, ROUNDS),
                             {"threads": spec.threads, "clock": time.process_time}, rounds=1, iterations=1)
    paired, wall_info = cpu.to_info(), wall.to_info()
    paired["ratios"] = {"overhead (cpu)": paired["ratios"]["overhead"],
                        "overhead (wall)": wall_info["ratios"]["overhead"]}
    benchmark.extra_info.update(describe_program(program), case=case.label, T=spec.steps, k=spec.checkpoint_interval,
                                paired=paired, paired_wall=wall_info)
    assert list(last["job"].losses) == last["plain"]  # both sides trained the same job
