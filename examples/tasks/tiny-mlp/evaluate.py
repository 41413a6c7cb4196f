"""Evaluator (frozen): scores the trial's predictions.json against the held-out labels.

Runs in its own folder, away from the trial's files; the trial's folder comes from
NANORESEARCH_TRIAL_DIR (the current folder when run by hand). Prints one JSON object as the last
line of stdout; any problem with the predictions is a message on stderr and exit code 1.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

# Probabilities are clipped before the log so one confident mistake costs a lot but not infinity.
EPSILON = 1e-7


def heldout_labels() -> list[int]:
    """The held-out labels of the recipe's data.py split, recomputed here: the trial's copy of
    data.py is not trusted. Same data, seed, fraction and stratification, so the same order."""
    features, labels = load_breast_cancer(return_X_y=True)
    _, _, _, y_heldout = train_test_split(features, labels, test_size=0.25, random_state=0, stratify=labels)
    return [int(label) for label in y_heldout]


def fail(message: str) -> None:
    print(f"evaluate.py: {message}", file=sys.stderr)
    sys.exit(1)


def read_probabilities(trial_dir: Path, expected: int) -> list[float]:
    path = trial_dir / "predictions.json"
    if not path.is_file():
        fail(f"{path} is missing: the recipe must write predictions.json")
    try:
        values = json.loads(path.read_text(encoding="utf-8"))["probabilities"]
    except (ValueError, KeyError, TypeError) as exc:
        fail(f'{path} is not of the form {{"probabilities": [...]}}: {exc!r}')
    if not isinstance(values, list) or len(values) != expected:
        got = len(values) if isinstance(values, list) else type(values).__name__
        fail(f"{path}: expected {expected} probabilities, one per held-out tumour, got {got}")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0.0 <= v <= 1.0 for v in values):
        fail(f"{path}: every probability must be a number between 0 and 1 (NaN is not)")
    return [float(v) for v in values]


def main() -> None:
    trial_dir = Path(os.environ.get("NANORESEARCH_TRIAL_DIR", "."))
    truth = heldout_labels()
    probabilities = read_probabilities(trial_dir, len(truth))
    correct = sum(int((p >= 0.5) == bool(y)) for p, y in zip(probabilities, truth))
    losses = []
    for p, y in zip(probabilities, truth):
        p = min(max(p, EPSILON), 1.0 - EPSILON)
        losses.append(-math.log(p if y else 1.0 - p))
    n = len(truth)
    print(json.dumps({"log_loss": sum(losses) / n, "accuracy": correct / n, "n": n}))


if __name__ == "__main__":
    main()
