"""The fixed split of scikit-learn's bundled breast-cancer data (569 tumours, no download).

Frozen (not editable): it fixes which 143 tumours are held out and in what order. The
evaluator recomputes the same split on its own, since it cannot trust the trial's copy of this file.
Label 1 is benign, 0 malignant.
"""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

SEED = 0
HELDOUT_FRACTION = 0.25


def _split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    features, labels = load_breast_cancer(return_X_y=True)
    return train_test_split(features, labels, test_size=HELDOUT_FRACTION, random_state=SEED, stratify=labels)


def train_split() -> tuple[np.ndarray, np.ndarray]:
    """30 raw (unscaled) features per tumour and its label, for training."""
    x_train, _, y_train, _ = _split()
    return x_train, y_train


def heldout_inputs() -> np.ndarray:
    """The tumours to predict, in the order predictions.json must follow."""
    _, x_heldout, _, _ = _split()
    return x_heldout
