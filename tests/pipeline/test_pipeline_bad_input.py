"""Bad input ends with a clear message, a non-zero exit and nothing lost."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from researcher import ResearcherProvider

from conftest import CORPUS, DIGITS
from helpers import ScriptedProvider, run_cli
from nanoresearch.errors import UserError
from nanoresearch.pipeline.orchestrator import STAGES, Unattended, run_pipeline, run_stage


@pytest.mark.parametrize(
    ("goal", "message"),
    [("   ", "goal is empty"), ("!!!! 1234 ????", "does not read as a goal"), ("x" * 2001, "characters")],
)
def test_a_goal_that_is_not_a_goal_is_refused(capsys, monkeypatch, goal: str, message: str) -> None:
    result = run_cli(capsys, monkeypatch, "run", goal, "--task", str(DIGITS), "--yes")
    assert result.code != 0 and message in result.err and "Traceback" not in result.err


def test_a_folder_that_is_not_a_task_is_refused(capsys, monkeypatch, tmp_path: Path) -> None:
    result = run_cli(capsys, monkeypatch, "run", "improve digit accuracy", "--task", str(tmp_path), "--yes")
    assert result.code != 0 and "not a task folder" in result.err


def test_offline_without_a_corpus_is_refused(capsys, monkeypatch) -> None:
    result = run_cli(capsys, monkeypatch, "run", "improve digit accuracy", "--task", str(DIGITS), "--offline", "--yes")
    assert result.code != 0 and "--offline needs a local corpus" in result.err


def test_no_literature_found_stops_with_a_message_and_keeps_the_queries(make_context, tmp_path: Path) -> None:
    empty = tmp_path / "corpus"
    empty.mkdir()
    ctx = make_context(corpus=str(empty))
    with pytest.raises(UserError, match="no literature found"):
        run_pipeline(ctx, Unattended())
    assert ctx.store.get_run(ctx.run.id).status == "failed"
    assert json.loads((ctx.workspace / "literature" / "queries.json").read_text())[0] == ctx.run.goal


def test_a_blueprint_the_model_cannot_write_fails_clearly(make_context) -> None:
    ctx = make_context(ResearcherProvider())
    for stage in STAGES[:1]:
        run_stage(ctx, stage, Unattended())
    planner_reply = json.dumps({"objectives": ["write the blueprint"], "constraints": [], "budget_share": "100%"})
    ctx.llm._providers["local"] = ScriptedProvider(planner_reply, *(["this is not JSON"] * 10), name="local")
    with pytest.raises(UserError, match="could not produce a valid blueprint") as caught:
        run_stage(ctx, STAGES[1], Unattended())
    assert "stronger model" in caught.value.hint
    assert (ctx.workspace / "ideas.json").is_file()  # what was produced is kept


def broken_task(tmp_path: Path) -> Path:
    """The digits task with a recipe that always fails: the experiment can never succeed."""
    import shutil

    folder = tmp_path / "broken"
    shutil.copytree(DIGITS, folder)
    recipe = folder / "train.py"
    recipe.write_text(recipe.read_text().replace("def main() -> None:\n", "def main() -> None:\n    raise SystemExit('the data loader is broken')\n"))
    return folder


@pytest.mark.slow
def test_an_experiment_that_never_succeeds_gives_an_honest_negative_report(make_context, tmp_path: Path) -> None:
    ctx = make_context(ResearcherProvider(), task=broken_task(tmp_path), budget="trials=3", corpus=str(CORPUS))
    run_pipeline(ctx, Unattended())
    report = (ctx.workspace / "report.md").read_text()
    assert "Negative result" in report and "crash" in report
    results = json.loads((ctx.workspace / "results.json").read_text())
    assert results["success"] is False and all(c["mean"] is None for c in results["conditions"])
    assert not (ctx.workspace / "paper").exists()
    review = next(s for s in ctx.store.steps(ctx.run.id) if s.stage == "review" and s.step == "stage")
    assert "nothing to review" in review.payload["summary"]
