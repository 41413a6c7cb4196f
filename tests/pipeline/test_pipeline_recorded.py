"""A whole run replayed from a recording of the embedded SmolLM2 (`llm.replay = "only"`).

The recording (`recorded/digits-smollm2.json`, made with `nanoresearch llm export`) holds every
LLM call of a real run of `make demo`. Replaying it runs everything else for real (literature,
novelty, trials in the sandbox, statistics, figures, pdflatex): a prompt that changed by one
character would miss the recording and fail the run, so this also pins that prompts are
deterministic and machine-independent.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import CORPUS, DIGITS
from helpers import AS_RECORDED, run_cli

pytestmark = pytest.mark.slow

RECORDED = Path(__file__).parent / "recorded" / "digits-smollm2.json"


def test_the_recorded_demo_run_replays_to_a_paper_and_review(capsys, monkeypatch, home: Path) -> None:
    recording = json.loads(RECORDED.read_text())
    imported = run_cli(capsys, monkeypatch, "llm", "import", str(RECORDED))
    assert imported.code == 0, imported.err
    monkeypatch.setenv("NANORESEARCH_LLM__REPLAY", "only")
    for name, value in AS_RECORDED.items():
        monkeypatch.setenv(name, value)
    result = run_cli(capsys, monkeypatch, "run", recording["goal"], "--task", str(DIGITS), "--offline",
                     "--corpus", str(CORPUS), "--budget", recording["budget"], "--yes")
    assert result.code == 0, result.err

    (folder,) = (home / "users" / "alice" / "runs").iterdir()
    for artifact in ("ideas.json", "blueprint.json", "matrix.json", "results.json", "figures/learning_curve.png"):
        assert (folder / artifact).is_file(), artifact
    results = json.loads((folder / "results.json").read_text())
    if not results["success"]:  # the 135M model's edits rarely beat the baseline: an honest negative result
        assert "Negative result" in (folder / "report.md").read_text()
        assert not (folder / "paper" / "paper.tex").exists()
        return
    for artifact in ("paper/paper.tex", "paper/references.bib", "paper/paper.pdf", "reviews/review.json"):
        assert (folder / artifact).is_file(), artifact
    review = json.loads((folder / "reviews" / "review.json").read_text())
    recorded_reviews = [json.loads(c["response_text"]) for c in recording["calls"] if c["stage"] == "review"]
    assert review == recorded_reviews[-1]  # the model's own final review, not a default
