"""The built-in models: ordinary ``torch.nn.Module``s, built by the same door as a user's.

A *model builder* is a callable ``(model_params: dict, data_meta: dict) -> nn.Module``; a job spec
names one from ``MODELS`` or as a plug-in ``"package.module:attr"`` (``verification.execution.pieces``).
Input and output sizes default to the dataset's ``meta``. Modules are plain torch: the execution
mode is not the model's business (``reproducible`` mode intercepts torch's operators below autograd,
``verification.execution.repro.mode``), and the module's tensors are loaded from the training
``State`` for every step, so the step stays a pure map ``State -> State``.

Models: ``mlp`` (digits or synthetic vectors), ``cnn`` (digits as 1x8x8 images) and
``transformer`` (a character-level GPT after Karpathy's nanoGPT, on the ``text`` source).
Initialisation is torch's own (``nn.Linear``/``nn.Conv2d`` defaults, nanoGPT's normal init): its
random draws come from the job seed, and in ``reproducible`` mode from a portable generator.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from proofs.types import describe_unknown


class UnknownModelError(ValueError):
    """A job spec names a model that does not exist or has bad parameters."""


@dataclass(frozen=True)
class MLPConfig:
    input_dim: int = 64
    hidden: int = 64
    num_classes: int = 10
    depth: int = 1  # number of hidden layers


class MLP(nn.Module):
    """x (B, input_dim) -> [linear -> relu] * depth -> linear -> logits (B, num_classes)."""

    def __init__(self, config: MLPConfig):
        super().__init__()
        self.config = config
        dims = [config.input_dim] + [config.hidden] * config.depth + [config.num_classes]
        self.names = [f"fc{i}" for i in range(len(dims) - 1)]
        for name, fan_in, fan_out in zip(self.names, dims, dims[1:], strict=False):
            self.add_module(name, nn.Linear(fan_in, fan_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x  # (B, input_dim)
        for i, name in enumerate(self.names):
            h = getattr(self, name)(h)  # (B, fan_out)
            if i < len(self.names) - 1:
                h = F.relu(h)
        return h  # (B, num_classes)


@dataclass(frozen=True)
class CNNConfig:
    image_shape: tuple[int, int, int] = (1, 8, 8)  # (C, H, W); H and W multiples of 4
    channels: int = 8  # conv1 has `channels` filters, conv2 twice as many
    kernel: int = 3  # odd: padding kernel // 2 keeps the size
    num_classes: int = 10


class CNN(nn.Module):
    """x (B, C*H*W) -> [conv -> relu -> maxpool 2] * 2 -> linear -> logits (B, num_classes)."""

    def __init__(self, config: CNNConfig):
        super().__init__()
        c, h, w = config.image_shape
        if h % 4 or w % 4 or config.kernel % 2 == 0 or config.channels < 1:
            raise UnknownModelError(f"model 'cnn': needs H, W multiples of 4 and an odd kernel, got "
                                    f"image_shape {config.image_shape}, kernel {config.kernel}, "
                                    f"channels {config.channels}")
        self.config = config
        k, ch = config.kernel, config.channels
        self.conv1 = nn.Conv2d(c, ch, k, padding=k // 2)
        self.conv2 = nn.Conv2d(ch, 2 * ch, k, padding=k // 2)
        self.fc = nn.Linear(2 * ch * (h // 4) * (w // 4), config.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.reshape(x.shape[0], *self.config.image_shape)  # (B, C, H, W)
        h = F.max_pool2d(F.relu(self.conv1(h)), 2)  # (B, ch, H/2, W/2)
        h = F.max_pool2d(F.relu(self.conv2(h)), 2)  # (B, 2ch, H/4, W/4)
        return self.fc(h.reshape(h.shape[0], -1))  # (B, num_classes)


@dataclass(frozen=True)
class TransformerConfig:
    vocab_size: int = 256
    block_size: int = 32  # T: the longest sequence
    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 64  # C; a multiple of n_head
    dropout: float = 0.0


class CausalSelfAttention(nn.Module):
    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.n_head = config.n_head
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd)
        self.attn_dropout = nn.Dropout(config.dropout)
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.c_attn(x).split(c, dim=2)  # (B, T, C) each
        q, k, v = (z.reshape(b, t, self.n_head, c // self.n_head).transpose(1, 2) for z in (q, k, v))  # (B, nh, T, hs)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(c // self.n_head))  # (B, nh, T, T)
        causal = torch.ones(t, t, dtype=torch.bool, device=x.device).tril()
        att = self.attn_dropout(F.softmax(att.masked_fill(~causal, float("-inf")), dim=-1))
        y = (att @ v).transpose(1, 2).reshape(b, t, c)  # (B, T, C)
        return self.resid_dropout(self.c_proj(y))


class Block(nn.Module):
    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd)
        self.mlp = nn.ModuleDict({"c_fc": nn.Linear(config.n_embd, 4 * config.n_embd),
                                  "c_proj": nn.Linear(4 * config.n_embd, config.n_embd)})
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        h = F.gelu(self.mlp["c_fc"](self.ln_2(x)), approximate="tanh")  # (B, T, 4C)
        return x + self.dropout(self.mlp["c_proj"](h))


class GPT(nn.Module):
    """A character-level GPT (nanoGPT's architecture: pre-LayerNorm blocks of causal self-attention
    and a GELU MLP, learned position embeddings, untied output head).

    x (B, T) token ids -> logits (B, T, vocab); the catalog loss ``cross_entropy`` flattens them
    against y (B, T), the next tokens.
    """

    def __init__(self, config: TransformerConfig):
        super().__init__()
        if config.n_embd % config.n_head or not 0.0 <= config.dropout < 1.0:
            raise UnknownModelError(f"model 'transformer': n_embd {config.n_embd} must be a multiple of "
                                    f"n_head {config.n_head} and dropout {config.dropout} in [0, 1)")
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.block_size, config.n_embd)
        self.drop = nn.Dropout(config.dropout)
        self.h = nn.ModuleList([Block(config) for _ in range(config.n_layer)])
        self.ln_f = nn.LayerNorm(config.n_embd)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.apply(self.init_weights)
        for name, p in self.named_parameters():  # GPT-2's scaled init of the residual projections
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def init_weights(module: nn.Module) -> None:
        """nanoGPT's init: N(0, 0.02) weights, zero biases (LayerNorm keeps unit gains)."""
        if isinstance(module, nn.Linear | nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        b, t = idx.shape
        positions = torch.arange(t, device=idx.device)
        x = self.drop(self.wte(idx) + self.wpe(positions))  # (B, T, C)
        for block in self.h:
            x = block(x)
        return self.lm_head(self.ln_f(x))  # (B, T, vocab)


def build_mlp(params: dict[str, Any], data_meta: dict[str, Any]) -> nn.Module:
    defaults = {"input_dim": data_meta.get("input_dim", 64), "num_classes": data_meta.get("num_classes", 10)}
    return MLP(MLPConfig(**{**defaults, **params}))


def build_cnn(params: dict[str, Any], data_meta: dict[str, Any]) -> nn.Module:
    defaults = {"image_shape": tuple(data_meta.get("image_shape", (1, 8, 8))),
                "num_classes": data_meta.get("num_classes", 10)}
    given = {k: tuple(v) if k == "image_shape" else v for k, v in params.items()}
    return CNN(CNNConfig(**{**defaults, **given}))


def build_transformer(params: dict[str, Any], data_meta: dict[str, Any]) -> nn.Module:
    defaults = {"vocab_size": data_meta.get("vocab_size", 256), "block_size": data_meta.get("block", 32)}
    return GPT(TransformerConfig(**{**defaults, **params}))


MODELS: dict[str, Callable[[dict[str, Any], dict[str, Any]], nn.Module]] = {
    "mlp": build_mlp, "cnn": build_cnn, "transformer": build_transformer,
}


def get_model_builder(name: str) -> Callable[[dict[str, Any], dict[str, Any]], nn.Module]:
    if name not in MODELS:
        raise UnknownModelError(describe_unknown("model", name, MODELS))
    return MODELS[name]
