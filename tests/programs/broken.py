"""Plug-in program pieces that are wrong in one way each (tests/core/test_programs.py)."""

import torch
import torch.nn as nn
import torch.nn.functional as F


def not_a_module(params, meta):
    return "a string"


class IntegerWeights(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(64, 10)
        self.table = nn.Parameter(torch.zeros(3, dtype=torch.int64), requires_grad=False)

    def forward(self, x):
        return self.fc(x)


def integer_parameters(params, meta):
    return IntegerWeights()


def vector_loss(model, x, y):
    return F.cross_entropy(model(x), y, reduction="none")


class CumulativeProductNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        return self.fc(torch.cumprod(x, dim=1))


def uses_cumprod(params, meta):
    return CumulativeProductNet()


class ListStateSGD(torch.optim.SGD):
    """Keeps a Python list in its per-parameter state: nothing a State can commit to."""

    def step(self, closure=None):
        super().step(closure)
        for group in self.param_groups:
            for p in group["params"]:
                self.state[p]["history"] = [1.0, 2.0]


def list_state_optimizer(parameters, params):
    return ListStateSGD(parameters, lr=0.1, foreach=False)


def raises_on_build(params, meta):
    raise RuntimeError("out of coffee")
