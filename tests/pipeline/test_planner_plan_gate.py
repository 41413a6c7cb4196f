"""The planner's plans go through the degenerate-output gates after the call (issue 15): the embedded
135M planner's real plans from the recorded demo are labelled with why, in the run log, degenerate.json
and the terminal, while what reaches the stages (`StagePlan.text()`) stays as the planner wrote it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import GOAL
from helpers import ScriptedProvider
from nanoresearch.cli.watch import event_lines
from nanoresearch.pipeline.coevolution.planner import StagePlan, plan_findings, plan_stage
from nanoresearch.pipeline.gates import read_degenerate

RECORDING = Path(__file__).parent / "recorded" / "digits-smollm2.json"
STAGE_LINE = re.compile(r"^Stage: (\w+): (.*)$", re.MULTILINE)
GOAL_COPY = "a copy of the research goal, not an answer to it"
NOTHING_OWN = "names nothing to do beyond the goal and the stage's description"


def demo_planner_calls() -> dict[str, tuple[str, StagePlan, dict]]:
    """stage -> (its description, the plan SmolLM2-135M wrote for it, the schema it was sent) in the demo."""
    calls = {}
    for call in json.loads(RECORDING.read_text(encoding="utf-8"))["calls"]:
        if call["stage"] == "planner":
            stage, description = STAGE_LINE.search(call["request"]["messages"][-1]["content"]).groups()
            plan = StagePlan.model_validate(json.loads(call["response_text"]))
            calls[stage] = (description, plan, call["request"]["json_schema"])
    return calls


DEMO = demo_planner_calls()


def reasons(stage: str, plan: StagePlan | None = None) -> dict[str, str]:
    description, demo_plan, schema = DEMO[stage]
    return {f.field: f.reason for f in plan_findings(plan or demo_plan, GOAL, stage, description, schema)}


def test_the_demo_plans_are_caught_each_with_its_reason() -> None:
    assert DEMO["ideation"][1].objectives == [GOAL, "add to budget", "refine the process"]
    assert reasons("ideation") == {
        "objectives[0]": GOAL_COPY,
        "objectives[1]": NOTHING_OWN + " (its only own word: 'add')",  # "budget" is a heading of the prompt
        "objectives[2]": NOTHING_OWN,
        "constraints[0]": NOTHING_OWN + " (its only own word: '20')",  # "more than 20%"
        "constraints[1]": NOTHING_OWN + " (its only own word: '15')",  # "less than 15%"
    }
    # "Improved digit classification accuracy" and the like restate the goal with a vague verb; the dataset's
    # name ("Optical recognition of hand written digits") says something of its own and passes.
    assert reasons("planning") == {"objectives[0]": NOTHING_OWN, "constraints[0]": NOTHING_OWN}
    assert reasons("experiment") == {"objectives[0]": NOTHING_OWN, "objectives[1]": NOTHING_OWN,
                                     "constraints[0]": NOTHING_OWN}


@pytest.mark.parametrize(("line", "reason"), [
    ("1. 2023-08-24", "a list of numbers, not sentences"),  # what the lead's run printed as an ideation plan
    ("search the literature, extract evidence, propose hypotheses and score their novelty", NOTHING_OWN),
    ("Objectives", "echoes the field name 'Objectives' instead of filling it"),
])
def test_numbers_a_copy_of_the_stage_and_schema_echoes_are_caught(line: str, reason: str) -> None:
    assert reasons("ideation", StagePlan(objectives=[line])) == {"objectives[0]": reason}


@pytest.mark.parametrize(("stage", "plan"), [
    ("ideation", StagePlan(objectives=["find a testable hypothesis for the digits recipe",
                                       "look for work on solver convergence of logistic regression"],
                           constraints=["only train.py and MAX_ITER may change"])),
    ("planning", StagePlan(objectives=["compare against the logistic regression baseline",
                                       "ablate the iteration limit"], constraints=["use 5 seeds"])),
    ("experiment", StagePlan(objectives=["raise MAX_ITER so the solver converges", "try max_iter=200"],
                             constraints=["at most 5 trials"])),
])
def test_sensible_plans_are_not_flagged(stage: str, plan: StagePlan) -> None:
    assert reasons(stage, plan) == {}


def test_plan_stage_labels_the_demo_plan_and_sends_it_on_unchanged(make_context) -> None:
    description, demo_plan, _ = DEMO["ideation"]
    reply = demo_plan.model_dump_json(exclude={"procedures"})
    provider = ScriptedProvider(reply)
    ctx = make_context(provider)
    planned = plan_stage(ctx, "ideation", description)

    assert len(provider.history) == 1  # labelled, never asked again
    assert planned.plan.text() == demo_plan.text()  # what the stages' prompts get is the planner's own plan
    assert planned.lines()[:2] == [f"plan (degenerate: {GOAL_COPY}): {GOAL}",
                                   f"plan (degenerate: {NOTHING_OWN} (its only own word: 'add')): add to budget"]
    assert planned.lines()[-1] == f"plan constraint (degenerate: {NOTHING_OWN} (its only own word: '15')): less than 15%"
    recorded = read_degenerate(ctx.workspace)
    assert [(d.stage, d.field, d.value, d.outcome) for d in recorded][:2] == [
        ("planner", "ideation.objectives[0]", GOAL, "labelled"),
        ("planner", "ideation.objectives[1]", "add to budget", "labelled")]
    assert len(recorded) == 5
    log = [json.loads(line) for line in (ctx.workspace / "log.jsonl").read_text().splitlines()]
    (event,) = [e for e in log if e["event"] == "stage_plan"]
    assert event["degenerate"] == reasons("ideation")
    assert sum(e["event"] == "degenerate_output" for e in log) == 5
    assert event_lines(event) == [f"  {line}" for line in planned.lines()]  # `watch` shows what the run showed
