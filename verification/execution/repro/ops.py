"""``ReproOps``: the ops namespace of the ``reproducible`` execution mode.

Same method names and signatures as ``verification.execution.ops.NativeOps``; every method routes
to a ``torch.autograd.Function`` of ``verification.execution.repro.functions`` (or, for views and
selections, to exact torch data movement), so forward and backward give the same bits on every
device and thread count.
"""

from __future__ import annotations

import torch

from verification.execution.repro.functions import (
    Add,
    Conv2d,
    CrossEntropy,
    Embedding,
    Gelu,
    LayerNorm,
    Matmul,
    MaxPool2d,
    Relu,
    Scale,
    Softmax,
)
from verification.execution.repro.rng import apply_dropout


class ReproOps:
    """Pinpoint's fixed-result operators (exact accumulation, portable elementwise math)."""

    name = "reproducible"

    @staticmethod
    def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        rows = x.reshape(-1, x.shape[-1])  # (N, in)
        out = Matmul.apply(rows, weight.t())  # (N, out)
        if bias is not None:
            out = Add.apply(out, bias)
        return out.reshape(*x.shape[:-1], weight.shape[0])

    @staticmethod
    def matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return Matmul.apply(a, b)

    @staticmethod
    def add(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return Add.apply(a, b)

    @staticmethod
    def scale(x: torch.Tensor, c: float) -> torch.Tensor:
        return Scale.apply(x, c)

    @staticmethod
    def relu(x: torch.Tensor) -> torch.Tensor:
        return Relu.apply(x)

    @staticmethod
    def gelu(x: torch.Tensor) -> torch.Tensor:
        return Gelu.apply(x)

    @staticmethod
    def softmax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
        return Softmax.apply(x, dim)

    @staticmethod
    def cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return CrossEntropy.apply(logits, targets)

    @staticmethod
    def layer_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
        return LayerNorm.apply(x, weight, bias, eps)

    @staticmethod
    def embedding(idx: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        return Embedding.apply(idx, table)

    @staticmethod
    def conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, padding: int = 0) -> torch.Tensor:
        out = Conv2d.apply(x, weight, padding)
        if bias is not None:
            out = Add.apply(out, bias.reshape(1, -1, 1, 1))
        return out

    @staticmethod
    def max_pool2d(x: torch.Tensor, kernel: int) -> torch.Tensor:
        return MaxPool2d.apply(x, kernel)

    dropout = staticmethod(apply_dropout)
