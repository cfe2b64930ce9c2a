"""A researcher's own training program, as the README shows it: plain PyTorch, no Pinpoint imports.

A job spec names these callables as plug-ins ``"tests.programs.layernorm_mlp:<name>"``:
``model(model_params, data_meta) -> nn.Module``, ``loss(model, x, y) -> scalar`` and
``data(dataset_params) -> (x, y, meta)``.
"""

import numpy as np
import torch.nn as nn
import torch.nn.functional as F


class Net(nn.Module):
    def __init__(self, d_in: int, width: int, classes: int):
        super().__init__()
        self.inp = nn.Linear(d_in, width)
        self.norm = nn.LayerNorm(width)
        self.out = nn.Linear(width, classes)

    def forward(self, x):
        return self.out(F.gelu(self.norm(self.inp(x))))


def model(params: dict, meta: dict) -> nn.Module:
    return Net(meta["input_dim"], params.get("width", 32), meta["num_classes"])


def loss(model: nn.Module, x, y):
    return F.cross_entropy(model(x), y, label_smoothing=0.1)


def data(params: dict):
    rng = np.random.default_rng(params.get("seed", 0))
    x = rng.normal(size=(params.get("n", 512), 16)).astype(np.float32)
    y = (x[:, :4].sum(axis=1) > 0).astype(np.int64) + 2 * (x[:, 4] > 0).astype(np.int64)
    return x, y, {"input_dim": 16, "num_classes": 4}
