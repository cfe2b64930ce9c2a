"""One dispute over a char-level GPT, in a process of its own, for ``benchmarks/test_bench_gpt.py``.

``python -m benchmarks.gpt_dispute SPEC.json OUT.json`` trains an honest run and an ``op_corrupt``
run of the spec (in this process, before measuring), then forgets them and plays the dispute in a
fresh child process whose peak resident memory (``ru_maxrss``) is the dispute's: both parties'
providers and the referee, one process. It writes wall seconds, the referee's seconds, one
step's seconds and the peak RSS to ``OUT.json``.
"""

from __future__ import annotations

import json
import multiprocessing
import resource
import sys
import time
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from datasets.sharding import write_shards
from datasets.sources import load_source
from proofs.encoding import trace_root
from proofs.types import Step
from verification import dispute
from verification.execution.opgraph import is_computation
from verification.execution.program import configure_mode, load_program
from verification.providers import TraceProvider
from verification.solver import train
from verification.spec import spec_from_dict
from verification.strategies import Honest, OpCorrupt


class Float32Outputs(TorchDispatchMode):
    """Indices (counted as the op trace counts them) of the operators with a float32 output."""

    def __init__(self):
        super().__init__()
        self.seen, self.found = 0, []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if is_computation(func):
            leaves = tree_flatten(out)[0]
            if leaves and isinstance(leaves[0], torch.Tensor) and leaves[0].dtype == torch.float32:
                self.found.append(self.seen)
            self.seen += 1
        return out


def pick_corruptible(program, step: Step, after: int) -> int:
    """The first operator at index >= ``after`` of step ``step`` whose corruption changes the state."""
    pre = program.run(program.init_state(), Step(step - 1))
    honest = program.step(pre, program.batch(step)).state.root()
    with Float32Outputs() as probe:
        program.step(pre, program.batch(step))
    for op in (i for i in probe.found if i >= after):
        if OpCorrupt(step=step, op=op).run_step(program, pre).state.root() != honest:
            return op
    raise RuntimeError(f"no corruptible operator after #{after} in step {step}")


def prepare(spec, work: Path) -> dict:
    source = load_source(spec.dataset, **spec.dataset_params)
    dataset = write_shards(source, work / "dataset", spec.num_shards, spec.hashing)
    program = load_program(spec, dataset)
    cheater = OpCorrupt(step=spec.steps - 1, op=pick_corruptible(program, Step(spec.steps - 1), 40))
    runs = {name: train(program, strategy, work / f"{name}.zarr", "bench", name)
            for name, strategy in (("honest", Honest()), ("cheater", cheater))}
    start = time.perf_counter()
    program.step(program.init_state(), program.batch(Step(1)))
    return {"dataset": dataset, "runs": runs, "step_s": time.perf_counter() - start, "cheater": cheater}


def play(spec, prepared: dict, out: Path) -> None:
    """The dispute alone (run in a fresh process: its peak RSS is the dispute's)."""
    program = load_program(spec, prepared["dataset"])
    referee_s = [0.0]
    original = dispute.rule_on_output

    def timed_rule(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            referee_s[0] += time.perf_counter() - start

    dispute.rule_on_output = timed_rule
    honest, cheater = prepared["runs"]["honest"], prepared["runs"]["cheater"]
    start = time.perf_counter()
    game = dispute.DisputeGame(program, TraceProvider("solver", cheater, program, prepared["cheater"]),
                               TraceProvider("challenger", honest, program, Honest()),
                               trace_root(list(cheater.roots)), spec.dissection_arity, 3600.0)
    result = game.play(spec.num_checkpoints - 1, spec.checkpoint_interval)
    out.write_text(json.dumps({
        "dispute_s": time.perf_counter() - start, "referee_s": referee_s[0], "step_s": prepared["step_s"],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "winner": result.winner, "reason": result.reason, "first_divergent_step": result.first_divergent_step,
        "operator": result.operator, "operator_index": result.operator_index,
        "injected_operator_index": prepared["cheater"].op,
        "params": sum(t.numel() for n, t in program.init_state().tensors.items() if n.startswith("param/")),
    }))


def main(spec_path: str, out_path: str) -> None:
    spec = spec_from_dict(json.loads(Path(spec_path).read_text()))
    work = Path(out_path).parent
    configure_mode(spec.mode, spec.threads)  # this process runs the one job: pinned for its life
    prepared = prepare(spec, work)
    child = multiprocessing.get_context("spawn").Process(target=play, args=(spec, prepared, Path(out_path)))
    child.start()
    child.join()
    if child.exitcode != 0:
        raise SystemExit(f"dispute process exited with {child.exitcode}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
