"""Train the supported models for a few steps at one thread count; print their state roots as JSON.

``torch.set_num_threads`` is process-wide and intra-op thread pools are sticky, so the thread-count
tests run this module in a fresh interpreter per thread count:
``python -m tests.repro.roots THREADS`` prints ``{"<model>/<mode>": "<root hex>", ...}``.
The data comes straight from the sources (no sharding): the dataset root only seeds batch
selection, so a fixed stand-in root gives every process the same batches.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from typing import Any

from datasets.sources import load_source
from proofs.types import Root, Step
from verification.execution.program import Program
from verification.spec import JobSpec, get_preset

# model -> (spec fields, steps): tiny configurations, many steps
SETUPS: dict[str, tuple[dict[str, Any], int]] = {
    "mlp": ({"model": "mlp", "model_params": {"hidden": 48}, "dataset": "digits"}, 40),
    "mlp-adamw": ({"model": "mlp", "model_params": {"hidden": 48, "depth": 2}, "dataset": "digits",
                   "optimizer": "adamw", "lr": 0.01, "weight_decay": 0.01, "schedule": "cosine",
                   "schedule_params": {"warmup_steps": 5}}, 20),
    "cnn": ({"model": "cnn", "model_params": {"channels": 4}, "dataset": "digits"}, 20),
    "transformer": ({"model": "transformer", "dataset": "text", "optimizer": "adamw", "lr": 0.003,
                     "model_params": {"n_layer": 1, "n_head": 2, "n_embd": 32, "dropout": 0.1},
                     "dataset_params": {"block": 16, "max_bytes": 32_768}, "batch_size": 16}, 12),
}
MODES = ("exact", "reproducible")


def make_spec(model: str, mode: str, threads: int, device: str = "cpu") -> JobSpec:
    fields, _ = SETUPS[model]
    return dataclasses.replace(get_preset("minimal"), mode=mode, threads=threads, device=device, **fields)


def make_program(spec: JobSpec) -> Program:
    source = load_source(spec.dataset, **spec.dataset_params)
    return Program(spec, source.x, source.y, Root(bytes(32)), source.meta)


def compute_root(model: str, mode: str, threads: int, device: str = "cpu") -> str:
    program = make_program(make_spec(model, mode, threads, device))
    with program.settings():  # its mode's settings on ``threads`` threads, put back afterwards
        return program.run(program.init_state(), Step(SETUPS[model][1])).root().hex()


def main(threads: int) -> dict[str, str]:
    return {f"{model}/{mode}": compute_root(model, mode, threads) for model in SETUPS for mode in MODES}


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]))))
