"""Models, written as pure functions of a parameter dict (readable, nanoGPT-style).

A model has a config dataclass, ``param_shapes()``, ``init_params(generator)`` and
``loss(params, x, y, ops, rng=None)``. Parameters live in the training ``State``, never inside a
module, so the step function is a pure map ``State -> State`` that anyone can replay. All
arithmetic goes through the ``ops`` namespace (``verification.execution.ops``), so each model runs
natively or on the reproducible operators; randomness (dropout) comes only from ``rng``, the
step's counter-based RNG (``verification.execution.repro.rng.StepRng``).

Models: ``mlp`` (digits or synthetic vectors), ``cnn`` (digits as 1x8x8 images) and
``transformer`` (a tiny character-level GPT on the ``text`` source, after Karpathy's nanoGPT).

Initialisation draws from a CPU ``torch.Generator`` (Mersenne Twister, identical on every
platform) seeded from the job seed, then moves tensors to the device: the same bits everywhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from proofs.types import describe_unknown
from verification.execution.repro.rng import StepRng


class UnknownModelError(ValueError):
    """A job spec names a model that does not exist or has bad parameters."""


class Model(Protocol):
    def param_shapes(self) -> dict[str, tuple[int, ...]]: ...
    def init_params(self, generator: torch.Generator) -> dict[str, torch.Tensor]: ...
    def loss(self, params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor, ops: Any,
             rng: StepRng | None = None) -> torch.Tensor: ...


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

    def loss(self, params, x, y, ops, rng: StepRng | None = None) -> torch.Tensor:
        return ops.cross_entropy(self.logits(params, x, ops), y)


@dataclass(frozen=True)
class CNNConfig:
    image_shape: tuple[int, int, int] = (1, 8, 8)  # (C, H, W); H and W multiples of 4
    channels: int = 8  # conv1 has `channels` filters, conv2 twice as many
    kernel: int = 3  # odd: padding kernel // 2 keeps the size
    num_classes: int = 10


class CNN:
    """x (B, C*H*W) -> [conv -> relu -> maxpool 2] * 2 -> linear -> logits (B, num_classes)."""

    def __init__(self, config: CNNConfig):
        c, h, w = config.image_shape
        if h % 4 or w % 4 or config.kernel % 2 == 0 or config.channels < 1:
            raise UnknownModelError(f"model 'cnn': needs H, W multiples of 4 and an odd kernel, got "
                                    f"image_shape {config.image_shape}, kernel {config.kernel}, "
                                    f"channels {config.channels}")
        self.config = config
        k, ch = config.kernel, config.channels
        self.convs = [("conv1", c, ch), ("conv2", ch, 2 * ch)]
        self.flat = 2 * ch * (h // 4) * (w // 4)
        self.shapes = {"conv1.weight": (ch, c, k, k), "conv1.bias": (ch,),
                       "conv2.weight": (2 * ch, ch, k, k), "conv2.bias": (2 * ch,),
                       "fc.weight": (config.num_classes, self.flat), "fc.bias": (config.num_classes,)}

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        return dict(self.shapes)

    def init_params(self, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """torch's Conv2d/Linear default: U(+-1/sqrt(fan_in)) for weights and biases."""
        k = self.config.kernel
        fan_in = {"conv1": self.convs[0][1] * k * k, "conv2": self.convs[1][1] * k * k, "fc": self.flat}
        return {name: uniform_init(shape, fan_in[name.split(".")[0]], generator)
                for name, shape in self.shapes.items()}

    def logits(self, params: dict[str, torch.Tensor], x: torch.Tensor, ops: Any) -> torch.Tensor:
        h = x.reshape(x.shape[0], *self.config.image_shape)  # (B, C, H, W)
        for name, _, _ in self.convs:
            h = ops.conv2d(h, params[f"{name}.weight"], params[f"{name}.bias"], self.config.kernel // 2)
            h = ops.max_pool2d(ops.relu(h), 2)  # (B, ch, H/2, W/2), then (B, 2ch, H/4, W/4)
        h = h.reshape(h.shape[0], -1)  # (B, flat)
        return ops.linear(h, params["fc.weight"], params["fc.bias"])  # (B, num_classes)

    def loss(self, params, x, y, ops, rng: StepRng | None = None) -> torch.Tensor:
        return ops.cross_entropy(self.logits(params, x, ops), y)


@dataclass(frozen=True)
class TransformerConfig:
    vocab_size: int = 256
    block_size: int = 32  # T: the longest sequence
    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 64  # C; a multiple of n_head
    dropout: float = 0.0


class TinyTransformer:
    """A character-level GPT (nanoGPT's architecture: pre-LayerNorm blocks of causal self-attention
    and a GELU MLP, learned position embeddings, untied output head).

    x (B, T) token ids -> logits (B, T, vocab); the loss is cross-entropy over all B*T positions
    against y (B, T), the next tokens.
    """

    def __init__(self, config: TransformerConfig):
        if config.n_embd % config.n_head or not 0.0 <= config.dropout < 1.0:
            raise UnknownModelError(f"model 'transformer': n_embd {config.n_embd} must be a multiple of "
                                    f"n_head {config.n_head} and dropout {config.dropout} in [0, 1)")
        self.config = config

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        v, t, c = self.config.vocab_size, self.config.block_size, self.config.n_embd
        shapes: dict[str, tuple[int, ...]] = {"wte.weight": (v, c), "wpe.weight": (t, c)}
        for i in range(self.config.n_layer):
            shapes.update({
                f"h.{i}.ln_1.weight": (c,), f"h.{i}.ln_1.bias": (c,),
                f"h.{i}.attn.c_attn.weight": (3 * c, c), f"h.{i}.attn.c_attn.bias": (3 * c,),
                f"h.{i}.attn.c_proj.weight": (c, c), f"h.{i}.attn.c_proj.bias": (c,),
                f"h.{i}.ln_2.weight": (c,), f"h.{i}.ln_2.bias": (c,),
                f"h.{i}.mlp.c_fc.weight": (4 * c, c), f"h.{i}.mlp.c_fc.bias": (4 * c,),
                f"h.{i}.mlp.c_proj.weight": (c, 4 * c), f"h.{i}.mlp.c_proj.bias": (c,),
            })
        shapes.update({"ln_f.weight": (c,), "ln_f.bias": (c,), "lm_head.weight": (v, c)})
        return shapes

    def init_params(self, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """nanoGPT's init: N(0, 0.02) weights, N(0, 0.02/sqrt(2 n_layer)) residual projections,
        zero biases, unit LayerNorm gains."""
        params = {}
        for name, shape in self.param_shapes().items():
            if ".ln_" in name or name.startswith("ln_f"):
                params[name] = torch.ones(shape) if name.endswith("weight") else torch.zeros(shape)
            elif name.endswith("bias"):
                params[name] = torch.zeros(shape)
            else:
                std = 0.02 / math.sqrt(2 * self.config.n_layer) if name.endswith("c_proj.weight") else 0.02
                params[name] = torch.empty(shape).normal_(0.0, std, generator=generator)
        return params

    def dropout(self, h: torch.Tensor, ops: Any, rng: StepRng | None, call: int) -> torch.Tensor:
        """Dropout site ``call`` (numbered in forward order), a no-op when ``dropout == 0``."""
        if self.config.dropout == 0.0:
            return h
        if rng is None:
            raise UnknownModelError(f"model 'transformer': dropout {self.config.dropout} needs the "
                                    "step's RNG (loss(..., rng=StepRng(state.rng, step)))")
        return ops.dropout(h, self.config.dropout, rng, call)

    def attention(self, params: dict[str, torch.Tensor], prefix: str, a: torch.Tensor, ops: Any,
                  rng: StepRng | None, call: int) -> torch.Tensor:
        b, t, c = a.shape
        nh = self.config.n_head
        qkv = ops.linear(a, params[f"{prefix}.c_attn.weight"], params[f"{prefix}.c_attn.bias"])  # (B, T, 3C)
        q, k, v = (z.reshape(b, t, nh, c // nh).transpose(1, 2) for z in qkv.split(c, dim=2))  # (B, nh, T, hs)
        att = ops.scale(ops.matmul(q, k.transpose(-2, -1)), 1.0 / math.sqrt(c // nh))  # (B, nh, T, T)
        causal = torch.ones(t, t, dtype=torch.bool, device=a.device).tril()
        att = ops.softmax(att.masked_fill(~causal, float("-inf")), -1)
        att = self.dropout(att, ops, rng, call)
        y = ops.matmul(att, v).transpose(1, 2).reshape(b, t, c)  # (B, T, C)
        y = ops.linear(y, params[f"{prefix}.c_proj.weight"], params[f"{prefix}.c_proj.bias"])
        return self.dropout(y, ops, rng, call + 1)

    def mlp(self, params: dict[str, torch.Tensor], prefix: str, m: torch.Tensor, ops: Any,
            rng: StepRng | None, call: int) -> torch.Tensor:
        h = ops.gelu(ops.linear(m, params[f"{prefix}.c_fc.weight"], params[f"{prefix}.c_fc.bias"]))  # (B, T, 4C)
        h = ops.linear(h, params[f"{prefix}.c_proj.weight"], params[f"{prefix}.c_proj.bias"])  # (B, T, C)
        return self.dropout(h, ops, rng, call)

    def logits(self, params: dict[str, torch.Tensor], x: torch.Tensor, ops: Any,
               rng: StepRng | None = None) -> torch.Tensor:
        b, t = x.shape
        positions = torch.arange(t, device=x.device).expand(b, t)
        h = ops.embedding(x, params["wte.weight"]) + ops.embedding(positions, params["wpe.weight"])  # (B, T, C)
        h = self.dropout(h, ops, rng, 0)
        for i in range(self.config.n_layer):
            a = ops.layer_norm(h, params[f"h.{i}.ln_1.weight"], params[f"h.{i}.ln_1.bias"])
            h = h + self.attention(params, f"h.{i}.attn", a, ops, rng, 1 + 3 * i)
            m = ops.layer_norm(h, params[f"h.{i}.ln_2.weight"], params[f"h.{i}.ln_2.bias"])
            h = h + self.mlp(params, f"h.{i}.mlp", m, ops, rng, 3 + 3 * i)
        h = ops.layer_norm(h, params["ln_f.weight"], params["ln_f.bias"])
        return ops.linear(h, params["lm_head.weight"], None)  # (B, T, vocab)

    def loss(self, params, x, y, ops, rng: StepRng | None = None) -> torch.Tensor:
        logits = self.logits(params, x, ops, rng)
        return ops.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))  # over B*T


def build_mlp(params: dict[str, Any], data_meta: dict[str, Any]) -> Model:
    defaults = {"input_dim": data_meta.get("input_dim", 64), "num_classes": data_meta.get("num_classes", 10)}
    return MLP(MLPConfig(**{**defaults, **params}))


def build_cnn(params: dict[str, Any], data_meta: dict[str, Any]) -> Model:
    defaults = {"image_shape": tuple(data_meta.get("image_shape", (1, 8, 8))),
                "num_classes": data_meta.get("num_classes", 10)}
    given = {k: tuple(v) if k == "image_shape" else v for k, v in params.items()}
    return CNN(CNNConfig(**{**defaults, **given}))


def build_transformer(params: dict[str, Any], data_meta: dict[str, Any]) -> Model:
    defaults = {"vocab_size": data_meta.get("vocab_size", 256), "block_size": data_meta.get("block", 32)}
    return TinyTransformer(TransformerConfig(**{**defaults, **params}))


MODELS = {"mlp": build_mlp, "cnn": build_cnn, "transformer": build_transformer}


def build_model(name: str, params: dict[str, Any], data_meta: dict[str, Any]) -> Model:
    """Instantiate a model by name; input and output sizes default to the dataset's."""
    if name not in MODELS:
        raise UnknownModelError(describe_unknown("model", name, MODELS))
    try:
        return MODELS[name](params, data_meta)
    except TypeError as exc:
        raise UnknownModelError(f"model {name!r}: bad parameters {params}: {exc}") from exc
