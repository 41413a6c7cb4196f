"""The degenerate-output gates, on what the embedded model actually wrote in `make demo` (issue 15):
a hypothesis titled "1. 1. 2. 3. 4. 5. …" with statement "True", evidence "Claim 1", a review with
strengths ["strengths"] and weaknesses ["weaknesses"], and planner text that repeats the schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import CORPUS, GOAL
from helpers import ScriptedProvider
from nanoresearch.config import Settings
from nanoresearch.doctor import REAL_WORK, model_check, model_notes, run_start_lines
from nanoresearch.literature import search_literature
from nanoresearch.pipeline.coevolution.planner import StagePlan
from nanoresearch.pipeline.gates import degenerate_reason, find_degenerate, read_degenerate
from nanoresearch.pipeline.stages.ideation import Ideas, run_ideation
from nanoresearch.pipeline.stages.review import ReviewForm, review_findings
from nanoresearch.pipeline.stages.writing import PaperState

PLAN = StagePlan(objectives=["find a testable hypothesis for the digits recipe"])
DEMO_TITLE = "1. 1. 2. 3. 4. 5. 6. 7. 8. 9. 10. 11. 12. 13. 14. 15. 16. 17. 18. 19. 20. 21. 22. 23. 24. "
SCHEMA_ECHO = "maxItems: 8, maxLength: 2, type: array{string}, title: 'Budget Share', constraints: {type:'array'}"


@pytest.mark.parametrize(("value", "names"), [
    (DEMO_TITLE, ()),                      # the selected hypothesis's title
    ("True", ()), ("true", ()),            # its statement and rationale
    ("Claim 1", {"claim"}),                # the evidence
    ("strengths", {"strengths"}), ("weaknesses", {"weaknesses"}),  # the review
    ("Draft", ()), ("none", ()),           # the blueprint's title and baselines
    (SCHEMA_ECHO, ()), ("type", ()),       # the planner's constraints; a query of the live run
    ("2. 1. 3. 4. 5. 6. 7. 8. 9.", ()),
    ("Improve handwritten digit classification accuracy.", ()),  # the goal, copied back
])
def test_each_degenerate_output_of_the_demo_is_caught(value: str, names: set[str]) -> None:
    assert degenerate_reason(value, GOAL, names) is not None


@pytest.mark.parametrize("value", [
    "More solver iterations let logistic regression converge and classify digits better",
    "The experiments section reports one dataset and three seeds",
    "Gradient-based learning recognises handwritten digits well",
    "LeNet-5",
])
def test_real_content_passes_the_gate(value: str) -> None:
    assert degenerate_reason(value, GOAL, {"claim", "strengths", "statement", "title"}) is None


def test_enum_fields_are_not_free_text() -> None:
    found = find_degenerate({"claims": [{"paper": "none", "claim": "Claim 1"}]}, GOAL, {"claim"}, skip={"paper"})
    assert [f.field for f in found] == ["claims[0].claim"]


def demo_hypotheses() -> str:
    """The demo's hypothesis pool, with the files and knobs the schema now asks for."""
    return json.dumps({"hypotheses": [
        {"title": DEMO_TITLE, "statement": "True", "rationale": "true", "change": "True", "files": ["train.py"], "knobs": []},
        {"title": "2" + DEMO_TITLE[1:], "statement": "True", "rationale": "true", "change": "True", "files": ["train.py"],
         "knobs": []},
    ]})


@pytest.mark.slow  # MiniLM
def test_the_demo_ideation_is_repaired_once_then_labelled_and_never_selected(make_context) -> None:
    ctx = make_context(ScriptedProvider(name="local"))
    papers = search_literature([GOAL], offline=True, corpus=CORPUS, cache_dir=ctx.settings.cache_dir, limit=8)
    claim_1 = json.dumps({"claims": [{"paper": papers[0].key, "claim": "Claim 1", "quote": "Claim 1"}]})
    provider = ScriptedProvider(json.dumps({"queries": [GOAL]}), claim_1, claim_1, demo_hypotheses(), demo_hypotheses(),
                                name="local")
    ctx.llm._providers["local"] = provider
    run_ideation(ctx, PLAN)

    ideas = Ideas.model_validate_json((ctx.workspace / "ideas.json").read_text())
    # the repair round told the model what was wrong, once per answer
    repairs = [r.messages[-1].content for r in provider.history if "previous answer had these problems" in r.messages[-1].content]
    assert len(repairs) == 2 and "a list of numbers" in repairs[1] and "placeholder" in repairs[1]
    assert not provider.queue  # no third attempt: the repair is bounded
    # nothing degenerate is kept as evidence or selected as the hypothesis
    assert ideas.evidence == [] and len(ideas.evidence_dropped) == 1
    model_made = [h for h in ideas.hypotheses if h.source == "model"]
    assert len(model_made) == 2 and all(h.degenerate for h in model_made)
    chosen = ideas.hypotheses[ideas.selected]
    assert chosen.source == "code" and "train.py" in chosen.statement and "no hypothesis of the model" in ideas.reason
    # and the run says so: degenerate.json and the log
    outputs = read_degenerate(ctx.workspace)
    assert {d.value for d in outputs} >= {"Claim 1", DEMO_TITLE, "True"}
    assert {d.outcome for d in outputs if d.stage == "ideation"} == {"dropped", "labelled"}
    events = [json.loads(line) for line in (ctx.workspace / "log.jsonl").read_text().splitlines()]
    assert sum(e["event"] == "degenerate_output" for e in events) == len(outputs)


def test_an_empty_review_is_caught_and_a_review_of_the_paper_passes() -> None:
    state = PaperState(title="More iterations for digits", sections={
        "method": "We raise the solver's iteration limit.", "experiments": "Accuracy rises from 0.93 to 0.96."})
    demo = ReviewForm(summary="summary", strengths=["strengths"], weaknesses=["weaknesses"], soundness=1,
                      presentation=1, contribution=1, overall=1, confidence=1)
    names = set(ReviewForm.model_fields)
    reasons = {f.field: f.reason for f in review_findings(demo.model_dump(), state, names)}
    assert set(reasons) == {"summary", "strengths[0]", "weaknesses[0]", "weaknesses"}
    assert "names no section" in reasons["weaknesses"]

    real = demo.model_copy(update={
        "summary": "The paper tests whether more solver iterations help logistic regression on digits.",
        "strengths": ["A clear, single change to the recipe"],
        "weaknesses": ["Only one dataset is used in the experiments"]})
    assert review_findings(real.model_dump(), state, names) == []
    quoted = real.model_copy(update={"weaknesses": ["It says accuracy rises from 0.93 to 0.96 without an interval"]})
    assert review_findings(quoted.model_dump(), state, names) == []  # quotes the paper instead of naming a section


def test_doctor_and_the_run_start_say_the_embedded_model_only_demonstrates(settings: Settings) -> None:
    (note,) = model_notes(settings)
    assert note.demo_only and len(note.stages) == 7 and "demonstrates the mechanics" in note.good_for
    check = model_check(note)
    assert not check.ok and not check.required and check.hint == REAL_WORK
    for way in ("OPENAI_API_KEY", "[local] model", "llama.cpp"):
        assert way in REAL_WORK
    assert any("this run demonstrates the mechanics" in line for line in run_start_lines(settings))


def test_a_real_model_is_not_called_a_demonstration(settings: Settings, tmp_path: Path) -> None:
    gguf = tmp_path / "Qwen2.5-Coder-1.5B-Instruct-Q4_K_M.gguf"
    stages = {role: {"endpoint": "local", "model": str(gguf)} for role in ("ideation", "planning", "coding", "analysis",
                                                                          "writing", "review")}
    stages["planner"] = {"endpoint": "local", "model": "smollm2-135m"}
    real = settings.model_copy(update={"stages": settings.stages.model_validate(stages)})
    notes = {n.model: n for n in model_notes(real)}
    assert not notes[str(gguf)].demo_only and "1.5B" in notes[str(gguf)].good_for
    assert notes["smollm2-135m"].demo_only and notes["smollm2-135m"].stages == ["planner"]
