"""One small eval run, recorded once per test session and shared by the evaluation tests.

1 persona × 2 rounds × 2 variants (full, static) on the digits task, offline on the example corpus,
every stage answered by the researcher model (tests/pipeline/researcher.py) except the planner: a
tiny random local model with weights, so the persona's comments really train its adapter between
rounds in the full lane. The run writes each lane's recording, which `eval run --replay` answers from.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from nanoresearch.evaluation.cells import Harness, start_eval
from nanoresearch.evaluation.report import write_report
from pipeline.researcher import ResearcherProvider
from tiny_planner import write_tiny_planner

REPO = Path(__file__).resolve().parents[2]
SPEC = """
name = "recorded-small"
variants = ["full", "static"]
seeds = [0]
budget = "trials=8"  # room for the run matrix: a matrix its budget stops notes the run id in prompts
offline = true
corpus = "{corpus}"

[[personas]]
name = "ablation"
preset = "ablation-focused"

[[rounds]]
goal = "improve handwritten digit classification accuracy"
task = "{digits}"

[[rounds]]
goal = "raise the accuracy of a handwritten digit classifier with better training"
task = "{digits}"

[settings.endpoints.planner]
kind = "local"
default_model = "{tiny}"

[models.planner]
endpoint = "planner"
model = "{tiny}"

[settings.local]
engine = "transformers"

[settings.pipeline]
papers = 4
evidence_papers = 2
hypotheses = 2
seeds = 1
max_ablations = 1
review_rounds = 0

[settings.policy]
steps = 2
lr = 0.02
lora_r = 4
lora_alpha = 8
min_relevance = 0.0
replay = 0
drift_kl_max = 100.0
drift_ppl_ratio_max = 100.0
"""

_cache: dict[str, Path] = {}


def write_spec(folder: Path, tiny: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "spec.toml"
    path.write_text(SPEC.format(corpus=REPO / "examples" / "corpus", digits=REPO / "examples" / "tasks" / "digits-classifier",
                                tiny=tiny))
    return path


def recorded_eval(factory: pytest.TempPathFactory) -> Path:
    """The output folder of the recorded eval run (made on first use in the session, report included)."""
    if "out" not in _cache:
        root = factory.mktemp("eval-recorded")
        tiny = write_tiny_planner(root / "tiny-planner")
        spec = write_spec(root, tiny)
        out = root / "out"
        start_eval(spec, Harness(out=out, providers={"local": ResearcherProvider()}))
        write_report(out)
        _cache["out"] = out
    return _cache["out"]


def lane_db(out: Path, variant: str) -> sqlite3.Connection:
    """A lane's store opened with plain SQL, apart from the code under test."""
    return sqlite3.connect(out / "lanes" / "ablation" / variant / "seed-0" / "home" / "nanoresearch.db")


def lane_workspace(out: Path, variant: str, stored: str) -> Path:
    """A run's workspace as the lane's store holds it: relative to the lane's home (or absolute, as stored before)."""
    return (out / "lanes" / "ablation" / variant / "seed-0" / "home" / stored).resolve()
