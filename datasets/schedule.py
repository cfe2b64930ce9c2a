"""The batch schedule: which samples step ``t`` trains on.

Rule (docs/design.md §1.2): the batch of step ``t`` is a pure function of ``(dataset root, seed, t)``,
so a verifier or a referee can recompute exactly which samples a step used, without trusting the
solver and without any global RNG (contrast nanoGPT's ``torch.randint`` batches, and the data-order
attacks on Proof-of-Learning, Jia et al. 2021 §5).

Training runs in *epochs*. Epoch ``e`` visits the ``N`` samples in the order of a permutation drawn
from ``key(e) = H(DOMAIN_BATCH, root, seed, e)``: sample ``i`` gets the 64-bit score
``splitmix64(key(e) xor i)`` and the permutation sorts the scores (stable). Step ``t`` (numbered
from 1) takes positions ``[(t-1) mod S · B, …)`` of epoch ``(t-1) div S`` where ``B`` is the batch
size and ``S = N div B`` the steps per epoch (the last partial batch is dropped). Only exact integer
arithmetic is used, so every machine and library version draws the same batches.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from proofs.hashing import DOMAIN_BATCH, hash_parts
from proofs.types import Root, Step

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


class ScheduleError(ValueError):
    """A batch was asked for with arguments that define no batch."""


def splitmix64(values: np.ndarray) -> np.ndarray:
    """Vectorised SplitMix64 finaliser (Steele, Lea & Flood 2014) over uint64, wrapping."""
    with np.errstate(over="ignore"):
        z = values.astype(np.uint64) + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _MIX1
        z = (z ^ (z >> np.uint64(27))) * _MIX2
        return z ^ (z >> np.uint64(31))


def compute_epoch_key(root: Root, seed: int, epoch: int) -> int:
    """64-bit key of one epoch's permutation."""
    digest = hash_parts(DOMAIN_BATCH, bytes(root), seed.to_bytes(8, "big"), epoch.to_bytes(8, "big"))
    return int.from_bytes(digest[:8], "big")


@lru_cache(maxsize=64)
def compute_epoch_permutation(root: Root, seed: int, epoch: int, num_samples: int) -> np.ndarray:
    """The order in which epoch ``epoch`` visits the samples (read-only int64 array)."""
    key = np.uint64(compute_epoch_key(root, seed, epoch))
    scores = splitmix64(np.arange(num_samples, dtype=np.uint64) ^ key)
    order = np.argsort(scores, kind="stable").astype(np.int64)
    order.setflags(write=False)
    return order


def batch_indices(root: Root, seed: int, step: Step, num_samples: int, batch_size: int) -> np.ndarray:
    """Global sample indices of the batch of ``step`` (steps are numbered from 1)."""
    if step < 1:
        raise ScheduleError(f"step {step} has no batch: steps are numbered from 1")
    if not 1 <= batch_size <= num_samples:
        raise ScheduleError(f"batch size {batch_size} must be in 1..{num_samples} (dataset size)")
    steps_per_epoch = num_samples // batch_size
    epoch, position = divmod(step - 1, steps_per_epoch)
    order = compute_epoch_permutation(root, seed, epoch, num_samples)
    start = position * batch_size
    return order[start : start + batch_size]
