"""Co-evolution that pays for itself: no planner call for a stage no model reads a plan for, and the
model's memory notes written once per run rather than after every stage (issue 15, item 8)."""

from __future__ import annotations

import json

import pytest
from researcher import ResearcherProvider

from helpers import run_cli
from nanoresearch.paper.results import Results, TrialPoint, write_results
from nanoresearch.pipeline.coevolution.planner import plan_stage, unplanned_reason
from nanoresearch.pipeline.orchestrator import Unattended, run_pipeline
from nanoresearch.policy.prompt import SYSTEM

REFLECTION = "memory records worth keeping"


def planner_calls(provider: ResearcherProvider) -> list:
    return [r for r in provider.requests if r.messages[0].content.startswith(SYSTEM)]


def reflection_calls(provider: ResearcherProvider) -> list:
    return [r for r in provider.requests if REFLECTION in r.messages[-1].content]


@pytest.mark.slow  # a whole run: real sandboxed trials, MiniLM, pdflatex
def test_code_only_stages_get_no_planner_call_and_the_run_reflects_once(make_context) -> None:
    provider = ResearcherProvider()
    ctx = make_context(provider)
    run_pipeline(ctx, Unattended())

    assert ctx.store.get_run(ctx.run.id).status == "done"
    planned = [p.stage for p in ctx.store.stage_plans(ctx.user_id, ctx.run.id)]
    assert planned == ["ideation", "planning", "experiment", "writing", "review"]  # the researcher's run has a paper
    assert len(planner_calls(provider)) == len(planned)
    assert not (ctx.workspace / "plans" / "analysis.json").exists()
    # One reflection for the run; it was one after each of the seven stages.
    assert len(reflection_calls(provider)) == 1
    log = [json.loads(line) for line in (ctx.workspace / "log.jsonl").read_text().splitlines()]
    assert {e["stage"] for e in log if e["event"] == "stage_unplanned"} == {"analysis", "figures"}
    assert [e["stage"] for e in log if e["event"] == "memories_written"][-1] == "run"


def test_without_an_improvement_writing_and_review_are_not_planned(make_context) -> None:
    provider = ResearcherProvider()
    ctx = make_context(provider)
    baseline = TrialPoint(id=1, proposer="baseline", hypothesis="h", score=0.9)
    write_results(Results(run_id=ctx.run.id, task="digits", metric="accuracy", direction="maximize", success=False,
                          evaluated=True, best_trial_id=1, trials=[baseline]), ctx.workspace / "results.json")

    assert "negative-result report" in unplanned_reason(ctx, "writing")
    assert unplanned_reason(ctx, "review") == "there is no paper to review"
    assert unplanned_reason(ctx, "experiment") == ""
    planned = plan_stage(ctx, "writing", "write the paper")
    assert planned.plan_id is None and planned.unplanned and not planner_calls(provider)
    assert ctx.store.stage_plans(ctx.user_id, ctx.run.id) == []


def test_feedback_on_a_stage_that_had_no_planner_call_is_kept_without_a_plan(make_context, capsys, monkeypatch) -> None:
    ctx = make_context(ResearcherProvider())
    ctx.mark("analysis", "stage", {"summary": "baseline 0.95", "plan_id": None})
    result = run_cli(capsys, monkeypatch, "feedback", ctx.run.id, "report the median too", "--stage", "analysis")
    assert result.code == 0, result.err
    (stored,) = ctx.store.feedback(ctx.user_id, ctx.run.id)
    assert stored.stage == "analysis" and stored.plan_id is None
    early = run_cli(capsys, monkeypatch, "feedback", ctx.run.id, "more seeds", "--stage", "figures")
    assert early.code == 1 and "no figures stage yet" in early.err  # a stage that has not run is still refused
