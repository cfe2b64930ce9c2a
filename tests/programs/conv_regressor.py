"""A second researcher's program, written against the documented interface only: a small
convolutional network with dropout trained by mean-squared error on a one-hot target, over the
catalog's ``digits`` images. Plain PyTorch, no Pinpoint imports."""

import torch
import torch.nn as nn
import torch.nn.functional as F


class ConvRegressor(nn.Module):
    def __init__(self, shape: list[int], channels: int, classes: int):
        super().__init__()
        self.shape = shape
        self.conv = nn.Conv2d(shape[0], channels, kernel_size=3, padding=1)
        self.drop = nn.Dropout(0.1)
        self.head = nn.Linear(channels * shape[1] * shape[2], classes)

    def forward(self, x):
        h = F.silu(self.conv(x.reshape(-1, *self.shape)))
        return self.head(self.drop(h).flatten(1))


def model(params: dict, meta: dict) -> nn.Module:
    return ConvRegressor(meta["image_shape"], params.get("channels", 4), meta["num_classes"])


def loss(model: nn.Module, x, y):
    target = F.one_hot(y, model.head.out_features).to(torch.float32)
    return F.mse_loss(model(x), target)
