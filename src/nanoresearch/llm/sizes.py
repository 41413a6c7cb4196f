"""How big a model is, as far as its name says: what a run may expect of it.

Below `SMALL_MODEL_B` billion parameters a model demonstrates the mechanics and no more; the
trial loop also holds such a model's edits to the recipe's own lines (see trials/proposals.py).
"""

from __future__ import annotations

import os
import re

SMALL_MODEL_B = 1.0


def model_size_b(model: str) -> float | None:
    """Billions of parameters, read from the model's name (Qwen2.5-Coder-1.5B, SmolLM2-135M), if it says."""
    found = re.search(r"(\d+(?:\.\d+)?)\s*([bm])(?![a-z])", os.path.basename(model).casefold())
    if found is None:
        return None
    number = float(found.group(1))
    return number if found.group(2) == "b" else number / 1000


def is_small_model(model: str) -> bool:
    size = model_size_b(model)
    return size is not None and size < SMALL_MODEL_B
