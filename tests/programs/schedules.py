"""A plug-in learning-rate schedule: halve the rate every ``every`` steps."""

import torch


def halving(optimizer, params):
    return torch.optim.lr_scheduler.StepLR(optimizer, step_size=params.get("every", 10), gamma=0.5)
