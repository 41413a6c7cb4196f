"""A whole run of a real 1.5B model replayed from its recording, and its artifacts checked as research.

The recording (`recorded/digits-qwen2.5-coder-1.5b.json`) holds every LLM call of a real run with
Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF, the `local` endpoint on the llama.cpp engine) for every
research stage and the embedded SmolLM2-135M as the planner, made with `nanoresearch llm export`.
Replaying it runs everything else for real (literature, novelty, feasibility, trials in the
sandbox, statistics, figures, the paper's checks, pdflatex, memory), so the checks below are of
what the product does with a real model's answers: no model file is needed or downloaded.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import CORPUS, DIGITS
from helpers import AS_RECORDED, run_cli
from nanoresearch.config import load_settings
from nanoresearch.evaluation.quality import measure_run_quality
from nanoresearch.store import Store

pytestmark = pytest.mark.slow

RECORDED = Path(__file__).parent / "recorded" / "digits-qwen2.5-coder-1.5b.json"
RESEARCH_STAGES = ("ideation", "planning", "coding", "analysis", "writing", "review")


def test_a_recorded_run_of_a_1_5b_model_replays_and_its_artifacts_pass_the_research_checks(
        capsys, monkeypatch, home: Path) -> None:
    recording = json.loads(RECORDED.read_text())
    model = next(c["model"] for c in recording["calls"] if c["stage"] == "coding")
    assert "1.5b" in model.casefold()
    for stage in RESEARCH_STAGES:  # as the recording run's config.toml named them
        monkeypatch.setenv(f"NANORESEARCH_STAGES__{stage.upper()}__ENDPOINT", "local")
        monkeypatch.setenv(f"NANORESEARCH_STAGES__{stage.upper()}__MODEL", model)
    assert run_cli(capsys, monkeypatch, "llm", "import", str(RECORDED)).code == 0
    monkeypatch.setenv("NANORESEARCH_LLM__REPLAY", "only")
    for name, value in AS_RECORDED.items():
        monkeypatch.setenv(name, value)
    result = run_cli(capsys, monkeypatch, "run", recording["goal"], "--task", str(DIGITS), "--offline",
                     "--corpus", str(CORPUS), "--budget", recording["budget"], "--yes")
    assert result.code == 0, result.err

    settings = load_settings({"home": str(home)})
    with Store(settings.db_path) as store:
        user_id = store.ensure_user(settings.user)
        (run,) = store.list_runs(user_id)
        quality = measure_run_quality(settings, store, user_id, run)

    # Edits a 1.5B model can make: every proposal applied to the recipe and ran, but for the one code saw
    # would crash (a syntax error), repaired before it ran: no trial was spent on a crash.
    proposals = quality.proposals
    assert proposals.made >= 3 and proposals.applied == proposals.made and proposals.caught == 1
    assert proposals.ran == proposals.made - proposals.caught
    # An honest outcome: a kept improvement over the baseline, and a paper only then.
    assert quality.success and quality.improvement is not None and quality.improvement > 0 and quality.paper
    # Grounded writing: no fact off the sheet survives in the paper; every citation has its entry.
    assert quality.unsupported_facts == []
    assert quality.citations.cited > 0 and quality.citations.cited_without_entry == 0
    # Clean memory: nothing the user did not say, no dead end that was never tested.
    assert quality.memory.invented_preferences == [] and quality.memory.untested_dead_ends == []
    # A skill distilled from the kept trial on the first try, its CamelCase name spelled by code.
    (skills,) = home.glob("users/*/runs/*/skills.json")
    assert [o["decision"] for o in json.loads(skills.read_text())["outcomes"]] == ["new"]
    # The degenerate planner plans were caught and labelled, not passed off as sound.
    assert quality.degenerate_by_stage.get("planner", 0) > 0
