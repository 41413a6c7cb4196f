"""The whole pipeline on the real embedded model (SmolLM2-135M), as `make demo` runs it, smaller.

Nothing is scripted: every stage plan, query, claim, hypothesis, blueprint, trial edit, section and
review comes from the 135M model through schema-guided decoding. The model is weak, so the test
checks what must hold whatever it writes: every artifact exists and is valid, the review is the
model's own form, and the planner's exact token ids are stored for the policy to train on.
"""

from __future__ import annotations

import json

import pytest

from nanoresearch.pipeline.orchestrator import STAGE_NAMES, Unattended, run_pipeline
from nanoresearch.pipeline.stages.review import ReviewForm

pytestmark = pytest.mark.slow  # about 5 minutes on 2 cores


def test_the_embedded_model_runs_a_whole_project(make_context, settings) -> None:
    settings.pipeline.hypotheses = 2
    settings.pipeline.section_max_tokens = 120
    ctx = make_context(real_model=True, budget="trials=4")
    run_pipeline(ctx, Unattended())

    assert ctx.store.get_run(ctx.run.id).status == "done"
    folder = ctx.workspace
    for artifact in ("ideas.json", "blueprint.json", "results.json", "figures/comparison.png"):
        assert (folder / artifact).is_file(), artifact
    plans = ctx.store.stage_plans(ctx.user_id, ctx.run.id)
    # no planner call where no model reads a plan: analysis, figures, and writing and review without a paper
    assert [p.stage for p in plans][:3] == list(STAGE_NAMES[:3]) and not {p.stage for p in plans} & {"analysis", "figures"}
    # the (x, y) of the policy's training triples, as exact token ids; a plan that needed a repair round
    # keeps none (its ids belong to the repair conversation), so it cannot become a training pair
    planner_calls = [c for c in ctx.store.llm_calls(ctx.user_id, ctx.run.id) if c.stage == "planner"]
    without_ids = [p for p in plans if not p.prompt_ids]
    assert len(planner_calls) - len(plans) >= len(without_ids)  # each plan without ids took an extra call
    for plan in plans:
        assert bool(plan.prompt_ids) == bool(plan.output_ids)
    assert len([t for t in ctx.store.trials(ctx.run.id) if t.job_id]) <= 4
    if not json.loads((folder / "results.json").read_text())["success"]:
        # the 135M model's edits seldom beat the baseline: an honest negative-result report, no paper
        assert "Negative result" in (folder / "report.md").read_text()
        return
    assert (folder / "paper" / "paper.pdf").is_file()
    review = ReviewForm.model_validate_json((folder / "reviews" / "review.json").read_text())
    recorded = [json.loads(c.response_text) for c in ctx.store.llm_calls(ctx.user_id, ctx.run.id) if c.stage == "review"]
    assert review.model_dump() == recorded[-1]
