"""Recipe, architecture half: the network. Trials may rewrite this file.

The contract with train.py: `build_model(n_features, hidden)` returns a module mapping a
(batch, n_features) float tensor to (batch,) logits for "benign".
"""

from __future__ import annotations

import torch
from torch import nn


class TinyMLP(nn.Module):
    def __init__(self, n_features: int, hidden: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x).squeeze(1)


def build_model(n_features: int, hidden: int) -> nn.Module:
    return TinyMLP(n_features, hidden)
