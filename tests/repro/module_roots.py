"""A plain ``nn.Module`` program trained under ``reproducible()``: print its state root.

``python -m tests.repro.module_roots`` builds a model from ordinary torch layers (Linear,
LayerNorm, exact GELU, Dropout, Conv2d, MaxPool2d, Embedding, tanh, SiLU), initialises it under
``reproducible(seed)``, takes a few AdamW and SGD-momentum steps of ``torch.optim`` (foreach off)
and prints the SHA-256 of every parameter and optimizer tensor. The test runs it under different
``ATEN_CPU_CAPABILITY`` values and thread counts (torch's vectorised kernels differ per ISA) and
with ``--native`` to show that torch's own kernels do not agree.
"""

from __future__ import annotations

import contextlib
import hashlib
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

from verification.execution.repro.mode import reproducible
from verification.execution.repro.rng import StepRng


def build() -> tuple[nn.Module, nn.Module, nn.Module]:
    mlp = nn.Sequential(nn.Linear(8, 48), nn.LayerNorm(48), nn.GELU(), nn.Dropout(0.1), nn.Linear(48, 4))
    cnn = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                        nn.Linear(4 * 4 * 4, 4))
    return mlp, cnn, nn.Embedding(10, 4)


def make_data() -> tuple[torch.Tensor, ...]:
    """Inputs from integer arithmetic (torch.randn's bits depend on the ISA too)."""
    x = (torch.arange(40.0).reshape(5, 8) * 37 % 11 - 5) / 3
    img = (torch.arange(320.0).reshape(5, 1, 8, 8) * 13 % 7 - 3) / 2
    return x, torch.arange(5) % 4, img, torch.arange(15).reshape(5, 3) % 10


def compute_root(native: bool, steps: int = 3) -> str:
    mode = (lambda **kw: contextlib.nullcontext()) if native else reproducible
    torch.manual_seed(0)
    with mode(seed=1):
        mlp, cnn, emb = build()
    adamw = torch.optim.AdamW([*cnn.parameters(), *emb.parameters(), *mlp[4].parameters()], lr=1e-2, foreach=False)
    sgd = torch.optim.SGD([*mlp[0].parameters(), *mlp[1].parameters()], lr=0.1, momentum=0.9,
                          weight_decay=1e-4, foreach=False)
    x, y, img, idx = make_data()
    for step in range(steps):
        with mode(rng=StepRng(7, step)):
            h = mlp(x)
            loss = (F.cross_entropy(h, y) + F.cross_entropy(cnn(img), y) + emb(idx).pow(2).mean()
                    + F.mse_loss(h, torch.zeros(5, 4)) + torch.tanh(h).sum() * 0.01 + F.silu(h).mean())
            adamw.zero_grad()
            sgd.zero_grad()
            loss.backward()
            adamw.step()
            sgd.step()
    digest = hashlib.sha256()
    for module in (mlp, cnn, emb):
        for tensor in module.state_dict().values():
            digest.update(tensor.numpy().tobytes())
    for optimizer in (adamw, sgd):
        for state in optimizer.state.values():
            for _, tensor in sorted(state.items()):
                digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()


if __name__ == "__main__":
    torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
    print(compute_root(native="--native" in sys.argv))
