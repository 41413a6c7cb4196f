"""Without --task, planning writes a task: the model's recipe beside code's data split and evaluator."""

from __future__ import annotations

import json

import pytest
from researcher import GENERATED_RECIPE, GENERATED_TASK, ResearcherProvider

from conftest import DIGITS
from helpers import run_cli
from nanoresearch.cli.research import given_task
from nanoresearch.errors import UserError
from nanoresearch.llm.provider import LLMRequest, LLMResponse
from nanoresearch.paper.results import Results
from nanoresearch.pipeline.coevolution.planner import StagePlan
from nanoresearch.pipeline.orchestrator import Unattended, run_pipeline
from nanoresearch.pipeline.stages.planning import Blueprint
from nanoresearch.pipeline.taskgen import TaskDraft, generate_task, write_and_check
from nanoresearch.trials.task import editable_files, load_task

PLAN = StagePlan(objectives=["test the hypothesis on a small bundled dataset"])


@pytest.mark.slow  # a whole run: sandboxed trials, MiniLM, pdflatex
def test_a_run_without_a_task_generates_one_and_runs_the_experiment_on_it(make_context) -> None:
    ctx = make_context(ResearcherProvider(), task=None)
    run_pipeline(ctx, Unattended())

    folder = ctx.workspace / "task"
    task = load_task(folder)
    assert task.name == "digits-generated" and task.score.metric == "accuracy" and task.score.direction == "maximize"
    assert editable_files(task) == ["train.py"]  # data.py and evaluate.py stay frozen
    assert "NANORESEARCH_TRIAL_DIR" in (folder / "evaluate.py").read_text()  # written by code, not the model
    assert ctx.store.get_run(ctx.run.id).options.task == str(folder)  # resume reloads the same task
    blueprint = Blueprint.model_validate_json((ctx.workspace / "blueprint.json").read_text())
    assert blueprint.task == "digits-generated" and blueprint.ablations[0].knob == "MAX_ITER"
    results = Results.model_validate_json((ctx.workspace / "results.json").read_text())
    assert results.success and results.task == "digits-generated" and results.condition("proposed").mean > 0.9
    events = [json.loads(line)["event"] for line in (ctx.workspace / "log.jsonl").read_text().splitlines()]
    assert "task_generated" in events and (ctx.workspace / "paper" / "paper.pdf").is_file()


class CrashingRecipes(ResearcherProvider):
    """Writes a recipe that always fails, and counts how often it was asked."""

    def __init__(self) -> None:
        super().__init__()
        self.drafts = 0

    def complete(self, request: LLMRequest) -> LLMResponse:
        response = super().complete(request)
        if request.json_schema and "recipe" in request.json_schema.get("properties", {}):
            self.drafts += 1
            draft = json.loads(response.text) | {"recipe": GENERATED_RECIPE + "\nraise SystemExit('diverged')\n"}
            response = response.model_copy(update={"text": json.dumps(draft)})
        return response


@pytest.mark.slow  # two sandboxed recipe runs
def test_a_recipe_that_never_works_gets_one_repair_then_asks_for_a_task(make_context) -> None:
    provider = CrashingRecipes()
    ctx = make_context(provider, task=None)
    with pytest.raises(UserError) as caught:
        generate_task(ctx, PLAN, "more iterations help")
    assert provider.drafts == 2  # the first draft and one repair
    assert "diverged" in caught.value.message and "`--task DIR`" in caught.value.hint
    assert (ctx.workspace / "task" / "train.py").is_file()  # the failed attempt is kept to read


def draft(**changes: object) -> TaskDraft:
    return TaskDraft.model_validate({**GENERATED_TASK, "dataset": "digits", "metric": "accuracy", **changes})


def test_a_recipe_that_ignores_its_knob_is_sent_back(tmp_path) -> None:
    recipe = GENERATED_RECIPE.replace('int(float(os.environ.get("MAX_ITER", "10")))', "10")
    problem = write_and_check(tmp_path / "task", draft(recipe=recipe))
    assert problem == "train.py never reads its knob MAX_ITER from the environment"


def test_a_knob_may_not_be_a_reserved_variable_and_the_recipe_may_not_load_the_data_itself(tmp_path) -> None:
    seed_knob = {"env": "SEED", "meaning": "the seed", "default": 1, "lowest": 1}
    assert "reserved" in write_and_check(tmp_path / "a", draft(knob=seed_knob))
    peeking = GENERATED_RECIPE.replace("from data import", "from sklearn.datasets import load_digits\nfrom data import")
    assert "loads the dataset itself" in write_and_check(tmp_path / "b", draft(recipe=peeking))


@pytest.mark.slow  # a sandboxed recipe run
def test_a_regression_task_is_scored_by_code_and_gated_against_the_mean(tmp_path) -> None:
    recipe = (
        "import json, os\nfrom data import heldout_inputs, train_split\nfrom sklearn.linear_model import Ridge\n"
        'ALPHA = float(os.environ.get("ALPHA", "1"))\nx, y = train_split()\n'
        "model = Ridge(alpha=ALPHA).fit(x, y)\n"
        'json.dump({"predictions": model.predict(heldout_inputs()).tolist()}, open("predictions.json", "w"))\n'
    )
    knob = {"env": "ALPHA", "meaning": "ridge penalty", "default": 1, "lowest": 0.1}
    # "accuracy" does not fit a regression dataset: code falls back to that kind's first metric
    assert write_and_check(tmp_path / "task", draft(dataset="diabetes", recipe=recipe, knob=knob)) == ""
    task = load_task(tmp_path / "task")
    assert (task.score.metric, task.score.direction) == ("r2", "maximize")
    assert [(g.metric, g.min) for g in task.legality.gates] == [("r2", 0.0)]
    assert task.knobs["ALPHA"].min == 0.1


@pytest.mark.slow  # a sandboxed recipe run
def test_predictions_of_the_wrong_length_fail_in_the_evaluator(tmp_path) -> None:
    recipe = GENERATED_RECIPE.replace("heldout_inputs() / 16.0)]", "heldout_inputs() / 16.0)][:5]")
    problem = write_and_check(tmp_path / "task", draft(recipe=recipe))
    assert problem.startswith("crash:") and "expected 450 predictions" in problem


def test_a_run_without_a_task_can_be_given_one_on_resume_but_never_a_second(make_context, capsys, monkeypatch) -> None:
    ctx = make_context(ResearcherProvider(), task=None)
    record = given_task(ctx.store, ctx.store.get_run(ctx.run.id), DIGITS)
    assert record.options.task == str(DIGITS)
    ctx.store.set_run_status(ctx.run.id, "paused")
    again = run_cli(capsys, monkeypatch, "resume", ctx.run.id, "--task", str(DIGITS), "--yes")
    assert again.code != 0 and "already has its task" in again.err and "Traceback" not in again.err
