"""Operator namespaces: the arithmetic a model is written against.

A model calls ``ops.linear``, ``ops.relu``, ``ops.cross_entropy`` … on an *ops namespace*
instead of calling torch directly, so the same model file runs in every execution mode
(DESIGN.md §3): ``native`` dispatches to torch's own kernels (fast; bit-exact only on identical
hardware, software and thread count), while the ``reproducible`` namespace uses Pinpoint's
fixed-order operators. ``get_ops(mode)`` picks one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


class NativeOps:
    """torch's own kernels."""

    name = "native"

    @staticmethod
    def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        return F.linear(x, weight, bias)

    @staticmethod
    def relu(x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x)

    @staticmethod
    def cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, targets)


def get_ops(mode: str):
    """The ops namespace of an execution mode (``exact`` and ``tolerance`` use native kernels)."""
    if mode == "reproducible":
        from verification.execution.repro import ReproOps

        return ReproOps
    return NativeOps
