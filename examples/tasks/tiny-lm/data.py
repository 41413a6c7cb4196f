"""The text of the task: source files of Python's own standard library, so nothing is downloaded.

Frozen (not editable): it fixes what is trained on and what is held out. The evaluator recomputes
the held-out bytes on its own, since it cannot trust the trial's copy of this file. The numbers in
README.md are for Python 3.11, whose files these are; another Python version has other files.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

# about 360 kB of Python source
TRAIN_MODULES = ("argparse", "textwrap", "shlex", "string", "difflib", "pprint", "dataclasses", "fractions", "heapq")
HELDOUT_MODULE = "calendar"  # a different file: nothing of the held-out text is in the training text
HELDOUT_BYTES = 6144


def module_bytes(name: str) -> bytes:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise SystemExit(f"data.py: the standard library module {name} has no source file here")
    return Path(spec.origin).read_bytes()


def train_bytes() -> bytes:
    """The training text: the concatenated sources of TRAIN_MODULES."""
    return b"".join(module_bytes(name) for name in TRAIN_MODULES)


def heldout_bytes() -> bytes:
    """The bytes to predict: the first HELDOUT_BYTES of calendar.py, in order."""
    return module_bytes(HELDOUT_MODULE)[:HELDOUT_BYTES]
