"""Feedback at stage ends: stored with the stage's planner call; a redirect re-plans the stage."""

from __future__ import annotations

import pytest
from researcher import ResearcherProvider

from helpers import run_cli
from nanoresearch.paper import compile as compile_module
from nanoresearch.pipeline.orchestrator import STAGE_NAMES, Answer, run_pipeline

pytestmark = pytest.mark.slow


class ScriptedGate:
    def __init__(self, answers: dict[str, list[Answer]]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def ask(self, stage: str, summary: str) -> Answer | None:
        self.asked.append(stage)
        queue = self.answers.get(stage, [])
        return queue.pop(0) if queue else Answer(action="approve")


def test_feedback_is_stored_with_the_plan_and_a_redirect_replans(make_context, monkeypatch) -> None:
    monkeypatch.setattr(compile_module.shutil, "which", lambda name: None)  # no TeX on this machine
    provider = ResearcherProvider()
    ctx = make_context(provider)
    gate = ScriptedGate({
        "ideation": [Answer(action="comment", text="prefer simple linear models")],
        "planning": [Answer(action="redirect", text="always include an ablation of each component")],
    })
    run_pipeline(ctx, gate)

    assert gate.asked == ["ideation", "planning", "planning", *STAGE_NAMES[2:]]
    feedback = ctx.store.feedback(ctx.user_id, ctx.run.id)
    plans = {p.id: p for p in ctx.store.stage_plans(ctx.user_id, ctx.run.id)}
    comment = next(f for f in feedback if f.action == "comment")
    assert comment.stage == "ideation" and plans[comment.plan_id].stage == "ideation"
    redirect = next(f for f in feedback if f.action == "redirect")
    assert redirect.plan_id not in plans  # that plan was replaced by the re-planned stage
    planning = next(p for p in plans.values() if p.stage == "planning")
    prompt = planning.prompt[-1]["content"]
    assert "always include an ablation of each component" in prompt and "prefer simple linear models" in prompt
    # missing pdflatex: a clear note, the .tex kept, the run still finishes
    summary = next(s for s in ctx.store.steps(ctx.run.id) if s.stage == "writing" and s.step == "stage").payload["summary"]
    assert "pdflatex not found" in summary
    assert (ctx.workspace / "paper" / "paper.tex").is_file() and not (ctx.workspace / "paper" / "paper.pdf").exists()


def test_feedback_after_the_fact_names_the_stage_plan(make_context, capsys, monkeypatch) -> None:
    from nanoresearch.pipeline.orchestrator import STAGES, Unattended, run_stage

    ctx = make_context(ResearcherProvider())
    run_stage(ctx, STAGES[0], Unattended())
    result = run_cli(capsys, monkeypatch, "feedback", ctx.run.id, "look at more recent papers", "--stage", "ideation")
    assert result.code == 0, result.err
    (stored,) = ctx.store.feedback(ctx.user_id, ctx.run.id)
    assert stored.text == "look at more recent papers" and stored.plan_id is not None
    bad = run_cli(capsys, monkeypatch, "feedback", ctx.run.id, "x", "--stage", "cooking")
    assert bad.code != 0 and "unknown stage" in bad.err
    early = run_cli(capsys, monkeypatch, "feedback", ctx.run.id, "more seeds", "--stage", "experiment")
    assert early.code != 0 and "no experiment stage yet" in early.err
