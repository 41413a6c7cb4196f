"""The whole pipeline, in process, driven by the deterministic researcher model."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from researcher import INVENTED_KEY, TYPED_NUMBER, ResearcherProvider

from nanoresearch.paper.results import Results
from nanoresearch.pipeline.orchestrator import STAGE_NAMES, Unattended, run_pipeline
from nanoresearch.pipeline.stages.ideation import Ideas
from nanoresearch.pipeline.stages.planning import Blueprint
from nanoresearch.pipeline.stages.review import ReviewForm

pytestmark = pytest.mark.slow  # about a minute: real sandboxed trials, MiniLM, pdflatex


def test_a_run_produces_every_artifact_and_keeps_its_promises(make_context) -> None:
    provider = ResearcherProvider()
    ctx = make_context(provider)
    run_pipeline(ctx, Unattended())
    folder = ctx.workspace

    assert ctx.store.get_run(ctx.run.id).status == "done"
    assert [s.stage for s in ctx.store.steps(ctx.run.id) if s.step == "stage"] == list(STAGE_NAMES)
    check_ideas(folder)
    check_blueprint(folder)
    results = check_results(folder, ctx)
    check_paper(folder, results)
    check_review(folder)
    check_plans(ctx)


def check_ideas(folder: Path) -> None:
    ideas = Ideas.model_validate_json((folder / "ideas.json").read_text())
    papers = {p["key"] for p in json.loads((folder / "literature" / "papers.json").read_text())}
    assert ideas.papers and set(ideas.papers) <= papers
    assert all(c.paper in papers for c in ideas.evidence)
    for hypothesis in ideas.hypotheses:
        assert 0.0 <= hypothesis.novelty <= 1.0
        assert hypothesis.closest is not None and hypothesis.closest.ref in papers  # names the closest prior work
        assert hypothesis.novelty == pytest.approx(1 - hypothesis.closest.similarity, abs=1e-3)
    assert "novelty" in ideas.reason and ideas.embedder == "all-MiniLM-L6-v2"


def check_blueprint(folder: Path) -> None:
    blueprint = Blueprint.model_validate_json((folder / "blueprint.json").read_text())
    assert blueprint.primary_metric.name == "accuracy" and blueprint.primary_metric.direction == "maximize"
    assert [row.kind for row in blueprint.run_matrix][:2] == ["baseline", "proposed"]
    assert blueprint.ablations and blueprint.ablations[0].knob == "MAX_ITER" and blueprint.ablations[0].value == 3
    assert blueprint.compute_estimate.trials == 8


def check_results(folder: Path, ctx) -> Results:
    results = Results.model_validate_json((folder / "results.json").read_text())
    trials = {t.id: t for t in ctx.store.trials(ctx.run.id)}
    assert results.success and results.best_trial_id is not None
    assert trials[results.best_trial_id].score == pytest.approx(0.9667, abs=1e-3)  # ten times the iterations
    baseline, proposed = results.condition("baseline"), results.condition("proposed")
    assert baseline.mean == pytest.approx(0.9472, abs=1e-3) and proposed.mean > baseline.mean
    for condition in results.conditions:  # every number is a measured trial's score
        assert condition.scores == [trials[i].score for i in condition.trial_ids]
    assert len([t for t in trials.values() if t.job_id]) <= 8  # the trial budget holds (a refused proposal starts none)
    assert {p.name for p in (folder / "figures").glob("*.png")} >= {"learning_curve.png", "comparison.png"}
    return results


def check_paper(folder: Path, results: Results) -> None:
    paper = folder / "paper"
    assert (paper / "paper.pdf").stat().st_size > 10_000
    tex = (paper / "paper.tex").read_text()
    bib = (paper / "references.bib").read_text()
    cited = {key.strip() for group in re.findall(r"\\cite[pt]?\{([^}]*)\}", tex) for key in group.split(",")}
    entries = set(re.findall(r"@\w+\{([^,]+),", bib))
    assert cited and cited <= entries  # no invented citation survives
    assert INVENTED_KEY not in tex and TYPED_NUMBER.rstrip("%") not in tex  # nor a typed number
    checks = json.loads((paper / "checks.json").read_text())  # and each removal is recorded with its reason
    typed = TYPED_NUMBER.rstrip("%")
    assert any(typed in r["sentence"] and r["check"] == "guard" for r in checks["removed"]), checks
    assert INVENTED_KEY in checks["removed_cite_keys"]
    logged = [json.loads(line) for line in (folder / "log.jsonl").read_text().splitlines()]
    assert any(e["event"] == "paper_check" and typed in e.get("sentence", "") for e in logged)
    numbers = json.loads((paper / "numbers.json").read_text())
    doc = json.loads(results.model_dump_json())
    for ref in numbers if isinstance(numbers, list) else numbers.values():
        value = doc
        for part in ref["source"].strip("/").split("/"):
            value = value[int(part)] if isinstance(value, list) else value[part]
        assert value == pytest.approx(ref["value"])


def check_review(folder: Path) -> None:
    final = ReviewForm.model_validate_json((folder / "reviews" / "review.json").read_text())
    assert 1 <= final.overall <= 10 and final.strengths and final.weaknesses
    assert (folder / "reviews" / "review-1.json").is_file() and (folder / "reviews" / "review-2.json").is_file()


def check_plans(ctx) -> None:
    plans = ctx.store.stage_plans(ctx.user_id, ctx.run.id)
    # analysis and figures run only code: no planner call (test_coevolution_overhead.py)
    assert [p.stage for p in plans] == [s for s in STAGE_NAMES if s not in ("analysis", "figures")]
    assert all(p.prompt and p.plan["objectives"] for p in plans)
    events = [json.loads(line)["event"] for line in (ctx.workspace / "log.jsonl").read_text().splitlines()]
    assert events[0] == "run_start" and events[-1] == "run_done" and events.count("stage_done") == len(STAGE_NAMES)
