"""A counter-based RNG in exact integer arithmetic: the same dropout mask on every device.

Terms
-----
step RNG
    ``StepRng(key, step)``: the State's RNG key and the number of the step being computed. The
    randomness of step ``t`` is a pure function of it, so a step replays from the State alone
    (``verification.execution.state``).
draw
    One call site of randomness inside a step, numbered by the model (``call``): the ``i``-th
    element of draw ``(key, step, call)`` is ``mix32(mix32(i ^ k0) ^ k1)`` where ``(k0, k1)`` are
    the first 8 bytes of a domain-separated hash of ``(key, step, call)`` — a keyed counter-based
    generator in the sense of Salmon et al., "Parallel random numbers: as easy as 1, 2, 3" (SC 2011).
mix32
    Chris Wellons' ``lowbias32`` integer hash (a bijection of 32-bit words). Every product is
    split so that no intermediate exceeds 2**49, hence int64 tensor arithmetic is exact on CPU and
    CUDA alike (no reliance on overflow wrapping). Statistical quality is that of a good 32-bit
    hash — enough for dropout masks, not for cryptography.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from proofs.hashing import DOMAIN_STATE, hash_parts

WORD = 0xFFFFFFFF
MAX_DRAW = 1 << 32  # elements per draw: the counter is one 32-bit word


class RngError(ValueError):
    """A draw that the counter-based RNG cannot serve (names the value)."""


@dataclass(frozen=True)
class StepRng:
    key: int
    step: int

    def draw_key(self, call: int) -> tuple[int, int]:
        """The two 32-bit key words of draw ``call`` of this step."""
        digest = hash_parts(DOMAIN_STATE, b"dropout", self.key.to_bytes(8, "big"),
                            self.step.to_bytes(8, "big"), call.to_bytes(8, "big"))
        return int.from_bytes(digest[:4], "big"), int.from_bytes(digest[4:8], "big")


def compute_mul32(x: torch.Tensor, c: int) -> torch.Tensor:
    """``(x * c) mod 2**32`` for int64 ``x`` in ``[0, 2**32)``, every intermediate below 2**49."""
    low = x * (c & 0xFFFF)
    high = ((x * (c >> 16)) & 0xFFFF) << 16
    return (low + high) & WORD


def mix32(x: torch.Tensor) -> torch.Tensor:
    """Wellons' lowbias32: ``x ^= x >> 16; x *= 0x7feb352d; x ^= x >> 15; x *= 0x846ca68b; x ^= x >> 16``."""
    x = x ^ (x >> 16)
    x = compute_mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = compute_mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


def random_words(numel: int, key: tuple[int, int], device: torch.device) -> torch.Tensor:
    """``numel`` uniform 32-bit words (int64) of one draw."""
    if numel > MAX_DRAW:
        raise RngError(f"a draw holds at most 2**32 elements, asked for {numel}")
    counter = torch.arange(numel, dtype=torch.int64, device=device)
    return mix32(mix32(counter ^ key[0]) ^ key[1])


def dropout_scale_mask(shape: torch.Size, p: float, key: tuple[int, int],
                       device: torch.device) -> torch.Tensor:
    """float32 mask: ``1 / (1 - p)`` where kept (probability ``1 - p``, integer threshold), else 0."""
    if not 0.0 <= p < 1.0:
        raise RngError(f"dropout probability must be in [0, 1), got {p}")
    threshold = round(p * MAX_DRAW)
    keep = random_words(shape.numel(), key, device) >= threshold
    return torch.where(keep, 1.0 / (1.0 - p), 0.0).to(torch.float32).reshape(shape)


def apply_dropout(x: torch.Tensor, p: float, rng: StepRng, call: int) -> torch.Tensor:
    """Inverted dropout with the mask of draw ``call``: ``x * mask`` (its gradient is ``g * mask``,
    one exact-per-element multiply, so torch's own backward is already reproducible)."""
    if p == 0.0:
        return x
    return x * dropout_scale_mask(x.shape, p, rng.draw_key(call), x.device)
