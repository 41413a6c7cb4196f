"""The fixed split of scikit-learn's bundled digits data (1797 images, no download).

Frozen (not editable): it fixes which 360 images are held out and in what order. The
evaluator recomputes the same split on its own, since it cannot trust the trial's copy of this file.
"""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

SEED = 0
HELDOUT_FRACTION = 0.2


def _split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    images, labels = load_digits(return_X_y=True)
    return train_test_split(images, labels, test_size=HELDOUT_FRACTION, random_state=SEED, stratify=labels)


def train_split() -> tuple[np.ndarray, np.ndarray]:
    """Pixel values (0..16, 64 per image) and digit labels the recipe may train on."""
    x_train, _, y_train, _ = _split()
    return x_train, y_train


def heldout_inputs() -> np.ndarray:
    """The images to predict, in the order predictions.json must follow."""
    _, x_heldout, _, _ = _split()
    return x_heldout
