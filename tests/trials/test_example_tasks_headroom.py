"""The example tasks with headroom: their starting recipes run and score far from the best-known
score their README documents, and their evaluators are frozen and cannot be gamed."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from nanoresearch.compute.executor import JobSpec
from nanoresearch.compute.local import LocalExecutor
from nanoresearch.trials.evaluate import base_env, run_evaluator
from nanoresearch.trials.legality import check_edit
from nanoresearch.trials.task import Task, load_task

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "tasks"
HEADROOM_TASKS = ("tiny-lm", "diabetes-regression")


def working_copy(name: str, folder: Path) -> tuple[Task, Path]:
    """The task folder without its evaluator and task.toml, as the trial loop materialises it."""
    task = load_task(EXAMPLES / name)
    frozen = {*task.evaluator.files, "task.toml"}
    return task, Path(shutil.copytree(task.folder, folder, ignore=lambda _, names: frozen & set(names)))


def run_recipe(task: Task, workdir: Path, **env: str) -> None:
    executor = LocalExecutor()
    job = executor.submit(JobSpec(name="recipe", workdir=workdir, command=task.command,
                                  env=base_env(workdir) | env, resources=task.resources))
    status = executor.wait(job)
    assert status.exit_code == 0, f"recipe failed:\n{executor.logs(job)}"


def documented(task: Task, label: str) -> float:
    """The score the task's README states after a bold label such as "Best known:"."""
    found = re.search(rf"\*\*{label}\*\*[^*]*\*\*([\d.]+)\*\*", (task.folder / "README.md").read_text(encoding="utf-8"))
    assert found, f"{task.name}/README.md states no **{label}** score in bold"
    return float(found.group(1))


@pytest.mark.parametrize("name", HEADROOM_TASKS)
def test_the_starting_recipe_runs_and_scores_far_from_the_best_known(name: str, tmp_path: Path) -> None:
    task, workdir = working_copy(name, tmp_path / "work")
    run_recipe(task, workdir, SEED="0")
    outcome = run_evaluator(task, workdir)
    assert outcome.failure is None and outcome.score is not None, outcome.detail
    best = documented(task, "Best known:")
    # the README's numbers are the measured ones, and the gap is at least a fifth of the starting score
    assert (outcome.score - best) / outcome.score > 0.2
    assert re.search(rf"\*\*{outcome.score:.2f}\*\*|\*\*{outcome.score:.3g}\*\*",
                     (task.folder / "README.md").read_text(encoding="utf-8")), f"README does not state {outcome.score:.3g}"


@pytest.mark.parametrize("name", HEADROOM_TASKS)
def test_the_evaluator_and_the_data_are_frozen(name: str, tmp_path: Path) -> None:
    task = load_task(EXAMPLES / name)
    assert task.evaluator.files == ["evaluate.py"] and task.legality.editable == ["train.py"]
    _, workdir = working_copy(name, tmp_path / "work")
    for frozen in ("evaluate.py", "data.py", "task.toml"):
        (workdir / frozen).write_text("print('{\"score\": 0}')\n")
        assert check_edit(task, [frozen], workdir), f"an edit to {frozen} was not refused"


def test_tiny_lm_rows_are_renormalised_so_scale_cannot_buy_a_better_score(tmp_path: Path) -> None:
    task, workdir = working_copy("tiny-lm", tmp_path / "work")
    for rows in (np.zeros((6144, 256)), np.full((6144, 256), 50.0, dtype=np.float32)):
        np.save(workdir / "logprobs.npy", rows)
        outcome = run_evaluator(task, workdir)
        # a uniform guess, whatever the scale: 8 bits per byte, which is no better than the gate allows
        assert outcome.score == pytest.approx(8.0) and outcome.failure in (None, "gate_miss")
    np.save(workdir / "logprobs.npy", np.zeros((100, 256)))
    outcome = run_evaluator(task, workdir)
    assert outcome.failure == "crash" and "shape (6144, 256)" in outcome.detail


def test_diabetes_predictions_are_scored_against_the_evaluators_own_split(tmp_path: Path) -> None:
    task, workdir = working_copy("diabetes-regression", tmp_path / "work")
    run_recipe(task, workdir)
    honest = run_evaluator(task, workdir)
    # a recipe that rewrites its copy of data.py cannot move the held-out targets the evaluator uses
    (workdir / "data.py").write_text("raise SystemExit('not used by the evaluator')\n")
    assert run_evaluator(task, workdir).metrics == honest.metrics


def test_random_search_draws_run_on_tiny_lm(tmp_path: Path) -> None:
    """An odd width from the search range would break two attention heads; the recipe rounds it."""
    task, workdir = working_copy("tiny-lm", tmp_path / "work")
    run_recipe(task, workdir, WIDTH="17", CONTEXT="23", STEPS="50", LR="0.01")
    outcome = run_evaluator(task, workdir)
    assert outcome.failure is None, outcome.detail


@pytest.mark.parametrize("name", sorted(path.name for path in EXAMPLES.iterdir() if (path / "task.toml").is_file()))
def test_every_example_task_declares_what_random_search_draws_and_a_seed(name: str) -> None:
    task = load_task(EXAMPLES / name)
    assert task.search and task.seed_env
    recipe = "\n".join((task.folder / f).read_text(encoding="utf-8") for f in task.legality.editable
                       if (task.folder / f).is_file())
    assert all(f'"{variable}"' in recipe for variable in task.search), "the recipe must read every [search] variable"
