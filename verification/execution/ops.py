"""Operator namespaces: the arithmetic a model is written against.

A model calls ``ops.linear``, ``ops.relu``, ``ops.cross_entropy`` … on an *ops namespace*
instead of calling torch directly, so the same model file runs in every execution mode
(docs/design.md §3): ``native`` dispatches to torch's own kernels (fast; bit-exact only on identical
hardware, software and thread count), while the ``reproducible`` namespace
(``verification.execution.repro.ReproOps``) uses Pinpoint's exact-accumulation operators and
gives the same bits on every device. Both namespaces have the same methods and signatures;
``get_ops(mode)`` picks one.

Randomness is not an arithmetic choice: ``dropout`` is the same counter-based mask in both
namespaces (``verification.execution.repro.rng``), so a model draws the same bits in every mode.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from verification.execution.repro import ReproOps
from verification.execution.repro.rng import apply_dropout


class NativeOps:
    """torch's own kernels."""

    name = "native"

    @staticmethod
    def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        return F.linear(x, weight, bias)

    @staticmethod
    def matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.matmul(a, b)

    @staticmethod
    def add(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a + b

    @staticmethod
    def scale(x: torch.Tensor, c: float) -> torch.Tensor:
        return x * c

    @staticmethod
    def relu(x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x)

    @staticmethod
    def gelu(x: torch.Tensor) -> torch.Tensor:
        return F.gelu(x, approximate="tanh")

    @staticmethod
    def softmax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
        return F.softmax(x, dim=dim)

    @staticmethod
    def cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, targets)

    @staticmethod
    def layer_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
        return F.layer_norm(x, x.shape[-1:], weight, bias, eps)

    @staticmethod
    def embedding(idx: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        return F.embedding(idx, table)

    @staticmethod
    def conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, padding: int = 0) -> torch.Tensor:
        return F.conv2d(x, weight, bias, padding=padding)

    @staticmethod
    def max_pool2d(x: torch.Tensor, kernel: int) -> torch.Tensor:
        return F.max_pool2d(x, kernel)

    dropout = staticmethod(apply_dropout)


def get_ops(mode: str):
    """The ops namespace of an execution mode (``exact`` and ``tolerance`` use native kernels)."""
    return ReproOps if mode == "reproducible" else NativeOps
