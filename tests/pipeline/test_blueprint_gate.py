"""The blueprint gate. The issue's blueprint passed validation with title "Draft", baselines ["none"],
method "neural network" for a logistic-regression recipe, and an ablation whose description does
not match its knob; now each is repaired once, then replaced by what code knows or dropped."""

from __future__ import annotations

import json

from conftest import DIGITS
from helpers import ScriptedProvider
from nanoresearch.pipeline.coevolution.planner import StagePlan
from nanoresearch.pipeline.gates import read_degenerate
from nanoresearch.pipeline.stages.planning import (
    Draft,
    data_findings,
    draft_blueprint,
    draft_findings,
    method_contradiction,
)
from nanoresearch.trials.task import load_task

TASK = load_task(DIGITS)
PLAN = StagePlan(objectives=["plan the test of the hypothesis"])
STATEMENT = "Raising max_iter lets logistic regression converge and classify digits better"
ABOUT = f"Let the solver converge. {STATEMENT}. set max_iter=MAX_ITER * 10"
FEEDBACK = "The user's feedback on this project was constructive and encouraging."


def draft(**changes: object) -> dict:
    good = {
        "title": "More solver iterations for logistic regression on digits", "datasets": ["UCI handwritten digits"],
        "baselines": ["logistic regression with max_iter=10"],
        "proposed_method": "logistic regression given ten times the solver iterations",
        "primary_metric": {"name": "accuracy", "direction": "maximize"}, "secondary_metrics": [],
        "ablations": [{"name": "fewer iterations", "description": "max_iter lowered to 3", "knob": "MAX_ITER", "value": 3}],
        "seeds": 3,
    }
    return {**good, **changes}


DEMO = draft(title="Draft", baselines=["none"], proposed_method="neural network",
             ablations=[{"name": "precision", "description": FEEDBACK, "knob": "MAX_ITER", "value": 3}])


def test_the_issue_blueprint_is_caught_field_by_field() -> None:
    found = {f.field: f for f in draft_findings(TASK, Draft.model_validate(DEMO), ABOUT, "improve digits", {"title"})}
    assert set(found) == {"title", "baselines[0]", "proposed_method", "ablations[0].description"}
    assert "logistic regression" in found["proposed_method"].reason
    assert "MAX_ITER" in found["ablations[0].description"].reason
    assert draft_findings(TASK, Draft.model_validate(draft()), ABOUT, "improve digits", {"title"}) == []


def test_a_method_may_name_a_model_the_hypothesis_proposes() -> None:
    assert method_contradiction(TASK, "a small CNN on the digit images", "Use a convolutional network instead") is None
    assert method_contradiction(TASK, "a small CNN on the digit images", ABOUT) is not None
    assert method_contradiction(TASK, "logistic regression with standardised inputs", ABOUT) is None


def test_a_degenerate_blueprint_is_repaired_once_then_replaced_by_what_code_knows(make_context) -> None:
    ctx = make_context(ScriptedProvider(name="local"))
    provider = ScriptedProvider(json.dumps(DEMO), json.dumps(DEMO), name="local")
    ctx.llm._providers["local"] = provider
    result, notes = draft_blueprint(ctx, PLAN, STATEMENT, ABOUT)

    assert len(provider.history) == 2 and "placeholder" in provider.history[1].messages[-1].content
    assert result.title == "Let the solver converge"
    assert result.baselines == ["the task's recipe as given (digits-classifier)"]
    assert "logistic regression" in result.proposed_method and "neural" not in result.proposed_method
    assert result.ablations == []
    assert any("ablations[0].description" in n and "dropped" in n for n in notes)
    outcomes = {d.field: d.outcome for d in read_degenerate(ctx.workspace) if d.stage == "planning"}
    assert outcomes == {"title": "replaced by code", "baselines[0]": "replaced by code"}


def test_a_good_blueprint_is_asked_for_once(make_context) -> None:
    ctx = make_context(ScriptedProvider(name="local"))
    provider = ScriptedProvider(json.dumps(draft()), name="local")
    ctx.llm._providers["local"] = provider
    result, notes = draft_blueprint(ctx, PLAN, STATEMENT, ABOUT)
    assert len(provider.history) == 1 and notes == [] and result.ablations[0].knob == "MAX_ITER"
    assert read_degenerate(ctx.workspace) == []


def test_the_wrong_dataset_and_a_dataset_as_baseline_are_settled_by_code_without_another_call(make_context) -> None:
    # Qwen2.5-Coder-1.5B's blueprint for the digits task: MNIST (the task is scikit-learn's 8x8 UCI
    # digits), and the task's dataset given as the baseline.
    qwen = draft(datasets=["MNIST"], baselines=["scikit-learn's bundled UCI digits"])
    ctx = make_context(ScriptedProvider(name="local"))
    provider = ScriptedProvider(json.dumps(qwen), name="local")
    ctx.llm._providers["local"] = provider
    result, notes = draft_blueprint(ctx, PLAN, STATEMENT, ABOUT)

    assert len(provider.history) == 1  # checked after the model, so the recorded calls stay as they were
    assert result.datasets == ["the data of task digits-classifier, with the evaluator's fixed split"]
    assert result.baselines == ["the task's recipe as given (digits-classifier)"]
    assert any("MNIST" in n and "not the task's data" in n and "replaced by what code knows" in n for n in notes)
    assert any("UCI digits" in n and "not a method" in n for n in notes)
    assert read_degenerate(ctx.workspace) == []  # wrong content, not degenerate output: the notes say it


def test_the_tasks_own_data_and_a_real_baseline_pass() -> None:
    good = Draft.model_validate(draft(datasets=["UCI handwritten digits (8x8)", "load_digits"],
                                      baselines=["logistic regression with max_iter=10", "the recipe as given"]))
    assert data_findings(TASK, good) == []
