"""Memory holds only what happened: preferences in the user's own words, dead ends only for tested ideas."""

from __future__ import annotations

import json

from helpers import ScriptedProvider
from nanoresearch.knowledge.memory import Memory
from nanoresearch.paper.results import Results, TrialPoint, write_results
from nanoresearch.pipeline.coevolution.reflect import hypothesis_outcome, hypothesis_verdict, reflect, reflect_run

DRAFTED = json.dumps({"records": [
    {"type": "preference", "text": "they want to add to the budget and refine the process"},
    {"type": "lesson", "text": "The solver stopped before converging at ten iterations on digits"},
]})


def test_a_model_drafted_preference_is_dropped_and_the_users_comment_is_kept_verbatim(make_context) -> None:
    ctx = make_context(ScriptedProvider(DRAFTED))
    ctx.store.add_feedback(ctx.user_id, ctx.run.id, "planning", "comment", "always include an ablation of each component")
    reflect(ctx, "planning")
    reflect_run(ctx)
    records = {r.type: r for r in Memory(ctx.store, ctx.user_id).list()}
    assert set(records) == {"lesson", "preference"}
    assert records["preference"].text == "always include an ablation of each component"
    assert records["preference"].evidence[0].run_id == ctx.run.id and "feedback" in records["preference"].tags
    assert "refine the process" not in " ".join(r.text for r in records.values())
    log = [json.loads(line) for line in (ctx.workspace / "log.jsonl").read_text().splitlines()]
    assert any(e["event"] == "memory_dropped" and e["type"] == "preference" for e in log)


def point(id: int, proposer: str, score: float | None, failure: str | None = None, kept: bool = False) -> TrialPoint:
    return TrialPoint(id=id, proposer=proposer, hypothesis="h", score=score, failure=failure, kept=kept)


def results(success: bool, *trials: TrialPoint) -> Results:
    return Results(run_id="r", task="digits", metric="accuracy", direction="maximize", success=success,
                   evaluated=any(t.score is not None and t.failure is None for t in trials), best_trial_id=1,
                   trials=list(trials))


def test_the_verdict_separates_borne_out_failed_and_untested() -> None:
    assert hypothesis_verdict(results(True, point(1, "baseline", 0.9), point(2, "coder", 0.95, kept=True)))[0] == "borne_out"
    assert hypothesis_verdict(results(False, point(1, "baseline", 0.9), point(2, "coder", 0.85)))[0] == "failed"
    crashed = results(False, point(1, "baseline", 0.9), point(2, "coder", None, "crash"), point(3, "coder", 0.5, "gate_miss"))
    assert hypothesis_verdict(crashed)[0] == "untested"
    assert hypothesis_verdict(results(False, point(1, "baseline", 0.9)))[0] == "untested"


def test_an_untested_hypothesis_is_no_dead_end(make_context) -> None:
    ctx = make_context(ScriptedProvider())
    write_results(results(False, point(1, "baseline", 0.9), point(2, "coder", None, "crash")), ctx.path("results.json"))
    ctx.write_json("blueprint.json", {"hypothesis": "increase the number of training samples", "task": "digits",
                                      "proposed_method": "more data"})
    assert hypothesis_outcome(ctx) is None
    assert not ctx.store.visible_memories(ctx.user_id, types=["failed_hypothesis"])
    log = [json.loads(line) for line in (ctx.workspace / "log.jsonl").read_text().splitlines()]
    assert any(e["event"] == "hypothesis_untested" for e in log)
