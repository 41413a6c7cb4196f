"""Evaluator (frozen): scores the trial's predictions.json against the held-out labels.

Runs in its own folder, away from the trial's files; the trial's folder comes from
NANORESEARCH_TRIAL_DIR (the current folder when run by hand). Prints one JSON object as the last
line of stdout; any problem with the predictions is a message on stderr and exit code 1.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split


def heldout_labels() -> list[int]:
    """The held-out labels of the recipe's data.py split, recomputed here: the trial's copy of
    data.py is not trusted. Same data, seed, fraction and stratification, so the same order."""
    features, labels = load_digits(return_X_y=True)
    _, _, _, y_heldout = train_test_split(features, labels, test_size=0.2, random_state=0, stratify=labels)
    return [int(label) for label in y_heldout]


def fail(message: str) -> None:
    print(f"evaluate.py: {message}", file=sys.stderr)
    sys.exit(1)


def read_labels(trial_dir: Path, expected: int) -> list[int]:
    path = trial_dir / "predictions.json"
    if not path.is_file():
        fail(f"{path} is missing: the recipe must write predictions.json")
    try:
        labels = json.loads(path.read_text(encoding="utf-8"))["labels"]
    except (ValueError, KeyError, TypeError) as exc:
        fail(f'{path} is not of the form {{"labels": [...]}}: {exc!r}')
    if not isinstance(labels, list) or len(labels) != expected:
        got = len(labels) if isinstance(labels, list) else type(labels).__name__
        fail(f"{path}: expected {expected} labels, one per held-out image, got {got}")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and float(v).is_integer() for v in labels):
        fail(f"{path}: every label must be an integer digit")
    return [int(v) for v in labels]


def main() -> None:
    trial_dir = Path(os.environ.get("NANORESEARCH_TRIAL_DIR", "."))
    truth = heldout_labels()
    labels = read_labels(trial_dir, len(truth))
    correct = sum(int(guess == answer) for guess, answer in zip(labels, truth))
    print(json.dumps({"accuracy": correct / len(truth), "n": len(truth)}))


if __name__ == "__main__":
    main()
