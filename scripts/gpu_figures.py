"""The GPU figures of reproducible execution, as JSON (``python -m scripts.gpu_figures OUT.json``).

- ``roots``: per built-in model (``tests.repro.roots.SETUPS``), the trace's final state root in
  ``reproducible`` mode on the CPU and on CUDA, and whether they are the same bits.
- ``ratios``: one training step in ``reproducible`` mode over the same step in ``exact`` mode
  (torch's own kernels), on CUDA, median of paired rounds (``benchmarks.paired``); each side runs
  under its own mode's torch settings (``Program.settings``).
- ``overhead``: what an honest solver pays per checkpoint on the GPU: the state's host copy and
  its root, over the ``k`` steps it follows.

Without CUDA it still runs (the CPU figures, ``cuda: false``), so that it cannot rot here.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import torch

from benchmarks.paired import measure_paired, ratio_of
from proofs.encoding import state_root
from proofs.types import Step
from tests.repro.roots import SETUPS, make_program, make_spec
from verification.execution.program import Program

ROUNDS = int(os.environ.get("PINPOINT_GPU_ROUNDS", "7"))


def synchronized(fn):
    def run() -> None:
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
    return run


def compare_roots(device: str) -> dict[str, Any]:
    rows = {}
    for model, (_, steps) in SETUPS.items():
        roots = {}
        for where in ("cpu", device):
            program = make_program(make_spec(model, "reproducible", 1, where))
            with program.settings():
                start = time.perf_counter()
                roots[where] = program.run(program.init_state(), Step(steps)).root().hex()
                roots[f"{where}_seconds"] = time.perf_counter() - start
        rows[model] = {**roots, "identical": roots["cpu"] == roots[device]}
    return rows


def measure_ratio(model: str, device: str) -> dict[str, Any]:
    native = make_program(make_spec(model, "exact", 1, device))
    repro = make_program(make_spec(model, "reproducible", 1, device))
    inputs = {program: (program.init_state(), program.batch(Step(1))) for program in (native, repro)}

    def step(program: Program) -> Callable[[], Any]:
        def run() -> Any:
            with program.settings():  # each side under its own mode's settings
                return program.step(*inputs[program])
        return run

    sides = {"reproducible": synchronized(step(repro)), "native": synchronized(step(native))}
    for side in sides.values():
        side()  # warm-up: kernels compiled, caches filled
    return measure_paired(sides, {"reproducible/native": ratio_of("reproducible", "native")}, ROUNDS).to_info()


def measure_overhead(model: str, device: str) -> dict[str, Any]:
    spec = dataclasses.replace(make_spec(model, "reproducible", 1, device), checkpoint_interval=25)
    program = make_program(spec)
    run = {"state": program.init_state()}

    def train() -> None:
        with program.settings():
            run["state"] = program.run(run["state"], Step(run["state"].step + 25))

    sides = {"train": synchronized(train), "checkpoint": lambda: state_root(run["state"].to_arrays(), spec.hashing)}
    return measure_paired(sides, {"checkpoint/train": ratio_of("checkpoint", "train")}, ROUNDS).to_info()


def main(argv: list[str]) -> int:
    device = "cuda" if torch.cuda.is_available() else "cpu"
    figures = {"torch": torch.__version__, "cuda": torch.cuda.is_available(),
               "device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu",
               "roots": compare_roots(device),
               "ratios": {model: measure_ratio(model, device) for model in SETUPS},
               "overhead": {model: measure_overhead(model, device) for model in SETUPS}}
    text = json.dumps(figures, indent=2)
    if argv:
        with open(argv[0], "w") as out:
            out.write(text)
    print(text)
    return 0 if all(row["identical"] for row in figures["roots"].values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
