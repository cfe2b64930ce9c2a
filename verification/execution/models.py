"""Models, written as pure functions of a parameter dict (readable, nanoGPT-style).

A model has a config dataclass, ``param_shapes()``, ``init_params(generator)`` and
``loss(params, x, y, ops)``. Parameters live in the training ``State``, never inside a module, so
the step function is a pure map ``State -> State`` that anyone can replay.

Initialisation draws from a CPU ``torch.Generator`` (Mersenne Twister, identical on every
platform) seeded from the job seed, then moves tensors to the device: the same bits everywhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

import torch


class UnknownModelError(ValueError):
    """A job spec names a model that does not exist or has bad parameters."""


class Model(Protocol):
    def param_shapes(self) -> dict[str, tuple[int, ...]]: ...
    def init_params(self, generator: torch.Generator) -> dict[str, torch.Tensor]: ...
    def loss(self, params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor, ops: Any) -> torch.Tensor: ...


def uniform_init(shape: tuple[int, ...], fan_in: int, generator: torch.Generator) -> torch.Tensor:
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)), torch.nn.Linear's default bound."""
    bound = 1.0 / math.sqrt(fan_in)
    return torch.empty(shape, dtype=torch.float32).uniform_(-bound, bound, generator=generator)


@dataclass(frozen=True)
class MLPConfig:
    input_dim: int = 64
    hidden: int = 64
    num_classes: int = 10
    depth: int = 1  # number of hidden layers


class MLP:
    """x (B, input_dim) -> [linear -> relu] * depth -> linear -> logits (B, num_classes)."""

    def __init__(self, config: MLPConfig):
        self.config = config
        dims = [config.input_dim] + [config.hidden] * config.depth + [config.num_classes]
        self.layers = [(f"fc{i}", dims[i], dims[i + 1]) for i in range(len(dims) - 1)]

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        shapes = {}
        for name, fan_in, fan_out in self.layers:
            shapes[f"{name}.weight"] = (fan_out, fan_in)
            shapes[f"{name}.bias"] = (fan_out,)
        return shapes

    def init_params(self, generator: torch.Generator) -> dict[str, torch.Tensor]:
        params = {}
        for name, fan_in, fan_out in self.layers:
            params[f"{name}.weight"] = uniform_init((fan_out, fan_in), fan_in, generator)
            params[f"{name}.bias"] = uniform_init((fan_out,), fan_in, generator)
        return params

    def logits(self, params: dict[str, torch.Tensor], x: torch.Tensor, ops: Any) -> torch.Tensor:
        h = x  # (B, input_dim)
        for i, (name, _, _) in enumerate(self.layers):
            h = ops.linear(h, params[f"{name}.weight"], params[f"{name}.bias"])  # (B, fan_out)
            if i < len(self.layers) - 1:
                h = ops.relu(h)
        return h  # (B, num_classes)

    def loss(self, params, x, y, ops) -> torch.Tensor:
        return ops.cross_entropy(self.logits(params, x, ops), y)


def build_model(name: str, params: dict[str, Any], data_meta: dict[str, Any]) -> Model:
    """Instantiate a model by name; input and output sizes default to the dataset's."""
    if name == "mlp":
        defaults = {"input_dim": data_meta.get("input_dim", 64),
                    "num_classes": data_meta.get("num_classes", 10)}
        try:
            return MLP(MLPConfig(**{**defaults, **params}))
        except TypeError as exc:
            raise UnknownModelError(f"model 'mlp': bad parameters {params}: {exc}") from exc
    raise UnknownModelError(f"unknown model {name!r}; known: ['mlp']")
