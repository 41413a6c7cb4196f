"""Recipe, optimisation half: scaling, optimiser and training loop. Trials may rewrite this file.

Writes predictions.json = {"probabilities": [...]}, P(benign) per held-out tumour, in
heldout_inputs() order.
"""

from __future__ import annotations

import json
import os

import numpy as np
import torch
from data import heldout_inputs, train_split
from model import build_model
from torch.nn.functional import binary_cross_entropy_with_logits

# Knobs arrive as environment variables; the budget may pass a lowered value such as "7.0".
EPOCHS = int(float(os.environ.get("EPOCHS", "20")))
HIDDEN = int(float(os.environ.get("HIDDEN", "8")))
BATCH = 32
SEED = int(os.environ.get("SEED", "0"))


def standardise(train: np.ndarray, other: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale with training statistics only, so nothing about the held-out split leaks in."""
    mean, std = train.mean(axis=0), train.std(axis=0) + 1e-8
    return (
        torch.tensor((train - mean) / std, dtype=torch.float32),
        torch.tensor((other - mean) / std, dtype=torch.float32),
    )


def main() -> None:
    # One thread and fixed seeds: the same code and knobs give the same predictions on every run.
    # (torch.use_deterministic_algorithms is not needed on CPU and would cost seconds of imports.)
    torch.set_num_threads(1)
    torch.manual_seed(SEED)
    x_train_raw, y_train_raw = train_split()
    x_train, x_heldout = standardise(x_train_raw, heldout_inputs())
    y_train = torch.tensor(y_train_raw, dtype=torch.float32)

    model = build_model(x_train.shape[1], HIDDEN)
    # Plain SGD with a small step on purpose: it is slow to converge, which leaves room to improve.
    optimiser = torch.optim.SGD(model.parameters(), lr=0.01)
    order = torch.Generator().manual_seed(SEED)
    for epoch in range(EPOCHS):
        permutation = torch.randperm(len(x_train), generator=order)
        for start in range(0, len(x_train), BATCH):
            batch = permutation[start : start + BATCH]
            loss = binary_cross_entropy_with_logits(model(x_train[batch]), y_train[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        print(f"epoch {epoch + 1}/{EPOCHS} last batch loss {loss.item():.4f}")

    model.eval()
    with torch.no_grad():
        probabilities = torch.sigmoid(model(x_heldout))
    with open("predictions.json", "w", encoding="utf-8") as out:
        json.dump({"probabilities": [float(p) for p in probabilities]}, out)


if __name__ == "__main__":
    main()
