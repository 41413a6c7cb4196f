"""Recipe: a tiny byte-level transformer, trained briefly. Trials may rewrite this file.

Writes logprobs.npy: one row of 256 log-probabilities per held-out byte, row i being the model's
distribution of byte i given the bytes before it (never the byte itself or any after it).
"""

from __future__ import annotations

import os

import numpy as np
import torch
from data import heldout_bytes, train_bytes
from torch import nn

# Knobs arrive as environment variables; the budget may pass a lowered value such as "120.0".
STEPS = int(float(os.environ.get("STEPS", "200")))
LR = float(os.environ.get("LR", "0.05"))
WIDTH = int(float(os.environ.get("WIDTH", "32"))) // 2 * 2  # two attention heads need an even width
CONTEXT = int(float(os.environ.get("CONTEXT", "32")))
BATCH = 16
SEED = int(os.environ.get("SEED", "0"))
START = 10  # the byte that stands before the first held-out byte ("\n")


class TinyTransformer(nn.Module):
    def __init__(self, width: int, context: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(256, width)
        self.position = nn.Embedding(context, width)
        layer = nn.TransformerEncoderLayer(width, nhead=2, dim_feedforward=4 * width, dropout=0.0, batch_first=True)
        self.blocks = nn.TransformerEncoder(layer, num_layers=1, enable_nested_tensor=False)
        self.head = nn.Linear(width, 256)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        length = x.shape[1]
        mask = nn.Transformer.generate_square_subsequent_mask(length)
        h = self.embed(x) + self.position(torch.arange(length))
        return self.head(self.blocks(h, mask=mask, is_causal=True))


def batches(data: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    starts = torch.randint(0, len(data) - CONTEXT - 1, (BATCH,), generator=generator)
    x = torch.stack([data[s : s + CONTEXT] for s in starts])
    y = torch.stack([data[s + 1 : s + CONTEXT + 1] for s in starts])
    return x, y


def heldout_logprobs(model: nn.Module, text: bytes) -> np.ndarray:
    """Row i from the bytes before i, in windows of CONTEXT bytes (no context crosses a window)."""
    inputs = torch.tensor([START, *text[:-1]], dtype=torch.long)
    rows = []
    with torch.no_grad():
        for start in range(0, len(inputs), CONTEXT):
            window = inputs[start : start + CONTEXT].unsqueeze(0)
            rows.append(torch.log_softmax(model(window)[0], dim=-1))
    return torch.cat(rows).numpy().astype(np.float32)


def main() -> None:
    # One thread and fixed seeds: the same code and knobs give the same predictions on every run.
    torch.set_num_threads(1)
    torch.manual_seed(SEED)
    data = torch.tensor(list(train_bytes()), dtype=torch.long)
    model = TinyTransformer(WIDTH, CONTEXT)
    # Plain SGD on purpose: slow to converge in so few steps, which leaves room to improve.
    optimiser = torch.optim.SGD(model.parameters(), lr=LR)
    generator = torch.Generator().manual_seed(SEED)
    for step in range(STEPS):
        x, y = batches(data, generator)
        loss = nn.functional.cross_entropy(model(x).reshape(-1, 256), y.reshape(-1))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if step % 50 == 0 or step == STEPS - 1:
            print(f"step {step + 1}/{STEPS} loss {loss.item():.3f} nats/byte")
    model.eval()
    np.save("logprobs.npy", heldout_logprobs(model, heldout_bytes()))


if __name__ == "__main__":
    main()
