"""Evaluator (frozen): bits per byte of the trial's predictions on the held-out text.

Runs in its own folder, away from the trial's files; the trial's folder comes from
NANORESEARCH_TRIAL_DIR (the current folder when run by hand). It reads logprobs.npy, one row of 256
log-probabilities per held-out byte (the distribution of byte i given the bytes before it), and
scores the log-probability each row gives the byte that really came. Rows are renormalised here,
so a recipe cannot gain by handing out more than a probability of one. Prints one JSON object as
the last line of stdout; any problem with the predictions is a message on stderr and exit code 1.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import sys
from pathlib import Path

import numpy as np

HELDOUT_MODULE = "calendar"
HELDOUT_BYTES = 6144


def heldout_bytes() -> bytes:
    """The held-out text, recomputed here: the trial's copy of data.py is not trusted."""
    spec = importlib.util.find_spec(HELDOUT_MODULE)
    if spec is None or spec.origin is None:
        fail(f"the standard library module {HELDOUT_MODULE} has no source file here")
    return Path(spec.origin).read_bytes()[:HELDOUT_BYTES]


def fail(message: str) -> None:
    print(f"evaluate.py: {message}", file=sys.stderr)
    sys.exit(1)


def read_logprobs(trial_dir: Path, expected: int) -> np.ndarray:
    path = trial_dir / "logprobs.npy"
    if not path.is_file():
        fail(f"{path} is missing: the recipe must write logprobs.npy")
    try:
        rows = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        fail(f"{path} is not a NumPy array file: {exc}")
    if rows.shape != (expected, 256) or not np.issubdtype(rows.dtype, np.floating):
        fail(f"{path}: expected a float array of shape ({expected}, 256), got {rows.dtype} {rows.shape}")
    rows = rows.astype(np.float64)
    if not np.isfinite(rows).all():
        fail(f"{path}: every log-probability must be finite (use a large negative number for 'never')")
    return rows


def main() -> None:
    trial_dir = Path(os.environ.get("NANORESEARCH_TRIAL_DIR", "."))
    truth = np.frombuffer(heldout_bytes(), dtype=np.uint8)
    rows = read_logprobs(trial_dir, len(truth))
    top = rows.max(axis=1, keepdims=True)
    normaliser = top[:, 0] + np.log(np.exp(rows - top).sum(axis=1))
    nats = normaliser - rows[np.arange(len(truth)), truth]
    print(json.dumps({"bits_per_byte": float(nats.mean() / math.log(2)),
                      "top1_accuracy": float((rows.argmax(axis=1) == truth).mean()), "n": len(truth)}))


if __name__ == "__main__":
    main()
