"""The fixed split of scikit-learn's bundled diabetes data (442 patients, 10 features; no download).

Frozen (not editable): it fixes which 111 patients are held out and in what order. The evaluator
recomputes the same split on its own, since it cannot trust the trial's copy of this file. The
target is a measure of disease progression one year after the baseline measurements.
"""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.model_selection import train_test_split

SEED = 0
HELDOUT_FRACTION = 0.25


def _split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    features, targets = load_diabetes(return_X_y=True)
    return train_test_split(features, targets, test_size=HELDOUT_FRACTION, random_state=SEED)


def train_split() -> tuple[np.ndarray, np.ndarray]:
    """10 features per patient (already centred and scaled by scikit-learn) and the target, for training."""
    x_train, _, y_train, _ = _split()
    return x_train, y_train


def heldout_inputs() -> np.ndarray:
    """The patients to predict, in the order predictions.json must follow."""
    _, x_heldout, _, _ = _split()
    return x_heldout
