"""Evaluator (frozen): scores the trial's predictions.json against the held-out targets.

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

from sklearn.datasets import load_diabetes
from sklearn.model_selection import train_test_split


def heldout_targets() -> list[float]:
    """The held-out targets of the recipe's data.py split, recomputed here: the trial's copy of
    data.py is not trusted. Same data, seed and fraction, so the same order."""
    features, targets = load_diabetes(return_X_y=True)
    _, _, _, y_heldout = train_test_split(features, targets, test_size=0.25, random_state=0)
    return [float(target) for target in y_heldout]


def fail(message: str) -> None:
    print(f"evaluate.py: {message}", file=sys.stderr)
    sys.exit(1)


def read_values(trial_dir: Path, expected: int) -> list[float]:
    path = trial_dir / "predictions.json"
    if not path.is_file():
        fail(f"{path} is missing: the recipe must write predictions.json")
    try:
        values = json.loads(path.read_text(encoding="utf-8"))["values"]
    except (ValueError, KeyError, TypeError) as exc:
        fail(f'{path} is not of the form {{"values": [...]}}: {exc!r}')
    if not isinstance(values, list) or len(values) != expected:
        got = len(values) if isinstance(values, list) else type(values).__name__
        fail(f"{path}: expected {expected} values, one per held-out patient, got {got}")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values):
        fail(f"{path}: every value must be a finite number")
    return [float(v) for v in values]


def main() -> None:
    trial_dir = Path(os.environ.get("NANORESEARCH_TRIAL_DIR", "."))
    truth = heldout_targets()
    values = read_values(trial_dir, len(truth))
    n = len(truth)
    squared = sum((v - y) ** 2 for v, y in zip(values, truth))
    mean = sum(truth) / n
    spread = sum((y - mean) ** 2 for y in truth)
    print(json.dumps({"rmse": math.sqrt(squared / n), "r2": 1.0 - squared / spread, "n": n}))


if __name__ == "__main__":
    main()
