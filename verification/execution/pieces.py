"""The pieces of a training program, named in the job spec: model, optimizer, schedule, loss.

Each field holds a catalog name or a *plug-in* ``"package.module:attr"`` (the convention the
strategies use). The interfaces a plug-in implements:

``model``
    ``(model_params: dict, data_meta: dict) -> torch.nn.Module`` (floating-point parameters).
``optimizer``
    ``(parameters: list[Tensor], optimizer_params: dict) -> torch.optim.Optimizer``. Catalog:
    ``sgd``, ``sgd_momentum``, ``adam``, ``adamw`` — torch.optim's own classes with
    ``foreach=False`` and ``fused=False``, whose per-parameter loops run one elementwise kernel per
    operation (the multi-tensor and fused kernels group and fuse differently per device). The
    spec's ``lr`` is the base learning rate: the schedule sets every group's ``lr`` before each step.
``schedule``
    Catalog: ``constant``; ``cosine`` (linear warm-up over ``warmup_steps``, then a half cosine
    from ``lr`` down to ``min_lr_ratio * lr`` at step ``T``; Loshchilov & Hutter 2017, the
    nanoGPT schedule). A plug-in is ``(optimizer, schedule_params: dict) ->
    torch.optim.lr_scheduler.LRScheduler``; its learning rate at step ``t`` is what it gives after
    ``t - 1`` calls of ``step()`` (replayed, so it is a pure function of ``t``).
``loss``
    ``(model, x, y) -> scalar tensor``, the mean loss of a (micro-)batch. Catalog:
    ``cross_entropy`` (logits of any shape ``(..., classes)`` against integer targets ``(...)``)
    and ``mse``.

Plug-in modules are the job's *program*: public code that every party and the referee run, bound
into the job id by the hash of their source files (``compute_program_binding``) together with
torch's version. Solver *strategies* are different: a party's private code, imported only in that
party's own process (``verification.parties``).
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from proofs.types import describe_unknown
from verification.execution.models import MODELS, UnknownModelError
from verification.spec import is_plugin_name as is_plugin


class ProgramError(ValueError):
    """A program piece cannot be resolved or misbehaves; names the field and the value."""


def load_plugin(field_name: str, name: str) -> Callable:
    """The callable a ``"package.module:attr"`` names, or ``ProgramError`` naming the field."""
    module_name, _, attr = name.partition(":")
    try:
        target = getattr(importlib.import_module(module_name), attr)
    except Exception as exc:  # noqa: BLE001 -- whatever the plug-in's import raises, named
        raise ProgramError(f"{field_name} {name!r} cannot be imported: {type(exc).__name__}: {exc}") from None
    if not callable(target):
        raise ProgramError(f"{field_name} {name!r} is a {type(target).__name__}, not a callable")
    return target


def resolve_piece(field_name: str, name: str, catalog: dict[str, Any]) -> Any:
    if is_plugin(name):
        return load_plugin(field_name, name)
    if name not in catalog:
        raise ProgramError(f"{describe_unknown(field_name, name, catalog)}, or a plug-in 'package.module:attr'")
    return catalog[name]


# -- optimizers ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OptimizerTerms:
    """The spec's optimizer hyper-parameters (``optimizer_params`` adds the rest, e.g. ``betas``)."""

    lr: float
    momentum: float
    weight_decay: float
    params: dict[str, Any]


def make_sgd(parameters, terms: OptimizerTerms) -> torch.optim.Optimizer:
    return torch.optim.SGD(parameters, lr=terms.lr, weight_decay=terms.weight_decay, foreach=False,
                           fused=False, **terms.params)


def make_sgd_momentum(parameters, terms: OptimizerTerms) -> torch.optim.Optimizer:
    return torch.optim.SGD(parameters, lr=terms.lr, momentum=terms.momentum, weight_decay=terms.weight_decay,
                           foreach=False, fused=False, **terms.params)


def make_adam(parameters, terms: OptimizerTerms) -> torch.optim.Optimizer:
    return torch.optim.Adam(parameters, lr=terms.lr, weight_decay=terms.weight_decay, foreach=False,
                            fused=False, **terms.params)


def make_adamw(parameters, terms: OptimizerTerms) -> torch.optim.Optimizer:
    return torch.optim.AdamW(parameters, lr=terms.lr, weight_decay=terms.weight_decay, foreach=False,
                             fused=False, **terms.params)


OPTIMIZERS: dict[str, Callable[[list[torch.Tensor], OptimizerTerms], torch.optim.Optimizer]] = {
    "sgd": make_sgd, "sgd_momentum": make_sgd_momentum, "adam": make_adam, "adamw": make_adamw,
}


def zero_state(name: str, param: torch.Tensor) -> dict[str, torch.Tensor]:
    """A catalog optimizer's per-parameter state before its first step, as torch.optim would
    create it lazily (Adam: ``step`` 0 and zero moments; SGD with momentum: a zero buffer, whose
    first update ``0 * mu + g`` is ``g``, torch's first-step ``clone(g)``)."""
    if name == "sgd_momentum":
        return {"momentum_buffer": torch.zeros_like(param)}
    if name in ("adam", "adamw"):
        return {"step": torch.tensor(0.0), "exp_avg": torch.zeros_like(param),
                "exp_avg_sq": torch.zeros_like(param)}
    return {}


# -- schedules -------------------------------------------------------------------------------------
def constant_lr(lr: float, step: int, steps: int, params: dict[str, Any]) -> float:
    if params:
        raise ProgramError(f"schedule 'constant' takes no schedule_params, got {params}")
    return lr


def cosine_lr(lr: float, step: int, steps: int, params: dict[str, Any]) -> float:
    unknown = sorted(set(params) - {"warmup_steps", "min_lr_ratio"})
    if unknown:
        raise ProgramError(f"schedule 'cosine': unknown schedule_params {unknown}; known: ['min_lr_ratio', 'warmup_steps']")
    warmup, floor = int(params.get("warmup_steps", 0)), float(params.get("min_lr_ratio", 0.1))
    if step <= warmup:
        return lr * step / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return lr * (floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0))))


SCHEDULES: dict[str, Callable[[float, int, int, dict[str, Any]], float]] = {
    "constant": constant_lr, "cosine": cosine_lr,
}


class ReplayedSchedule:
    """A plug-in ``LRScheduler`` as a function of the step: replayed on a scratch optimizer."""

    def __init__(self, name: str, factory: Callable, lr: float, params: dict[str, Any]):
        self.name, self.factory, self.lr, self.params = name, factory, lr, params
        self.scheduler, self.position = None, 0

    def __call__(self, step: int) -> float:
        if self.scheduler is None or step < self.position:
            optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=self.lr)
            self.scheduler = self.factory(optimizer, dict(self.params))
            if not isinstance(self.scheduler, torch.optim.lr_scheduler.LRScheduler):
                raise ProgramError(f"schedule {self.name!r} returned a {type(self.scheduler).__name__}, "
                                   "not a torch.optim.lr_scheduler.LRScheduler")
            self.position = 1
        while self.position < step:
            self.scheduler.optimizer.step()
            self.scheduler.step()
            self.position += 1
        return float(self.scheduler.get_last_lr()[0])


def make_schedule(name: str, lr: float, steps: int, params: dict[str, Any]) -> Callable[[int], float]:
    """The learning rate of step ``t`` (1-based) as a pure function of ``t``."""
    piece = resolve_piece("schedule", name, SCHEDULES)
    if is_plugin(name):
        return ReplayedSchedule(name, piece, lr, params)
    piece(lr, 1, steps, params)  # validates the parameters now, not at step 1
    return lambda step: piece(lr, step, steps, params)


# -- losses ----------------------------------------------------------------------------------------
def cross_entropy_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    logits = model(x)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


def mse_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    out = model(x)
    return F.mse_loss(out, y.to(out.dtype).reshape(out.shape))


LOSSES: dict[str, Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "cross_entropy": cross_entropy_loss, "mse": mse_loss,
}


class Objective(nn.Module):
    """``loss(model, x, y)`` as a module, so ``torch.func.functional_call`` can run it on the
    tensors of a State (the model's parameters are ``model.<name>``)."""

    def __init__(self, model: nn.Module, loss: Callable, name: str):
        super().__init__()
        self.model, self.loss, self.name = model, loss, name

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        value = self.loss(self.model, x, y)
        if not isinstance(value, torch.Tensor) or value.dim() != 0 or not value.is_floating_point():
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise ProgramError(f"loss {self.name!r} must return a floating-point scalar tensor, got {shape}")
        return value


# -- models ----------------------------------------------------------------------------------------
def build_module(name: str, model_params: dict[str, Any], data_meta: dict[str, Any]) -> nn.Module:
    """The model a spec names, checked: an ``nn.Module`` whose parameters are all floating point."""
    builder = resolve_piece("model", name, MODELS)
    try:
        module = builder(dict(model_params), dict(data_meta))
    except (UnknownModelError, ProgramError):
        raise
    except TypeError as exc:
        raise UnknownModelError(f"model {name!r}: bad parameters {model_params}: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 -- a plug-in's own failure, named with the plug-in
        raise ProgramError(f"model {name!r} with model_params {model_params} raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(module, nn.Module):
        raise ProgramError(f"model {name!r} returned a {type(module).__name__}, not a torch.nn.Module")
    bad = [f"{n} ({p.dtype})" for n, p in module.named_parameters() if not p.is_floating_point()]
    if bad:
        raise ProgramError(f"model {name!r} has parameters that are not floating point: {', '.join(bad)}")
    if not list(module.parameters()):
        raise ProgramError(f"model {name!r} has no parameters to train")
    return module
