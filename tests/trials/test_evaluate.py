"""Evaluation: the examples' recipes and evaluators really run and score; only the frozen
evaluator's output counts; a broken or weak trial gets the right failure label."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import pytest

from nanoresearch.compute.executor import JobSpec
from nanoresearch.compute.local import LocalExecutor
from nanoresearch.compute.sandbox import sandbox_status
from nanoresearch.errors import NanoResearchError
from nanoresearch.trials.evaluate import (
    TRIAL_DIR_VARIABLE,
    Outcome,
    base_env,
    judge,
    parse_metrics,
    run_evaluator,
)
from nanoresearch.trials.task import Task, load_task

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "tasks"


def trial_copy(name: str, tmp_path: Path) -> tuple[Task, Path]:
    """A working copy as the trial loop makes it: the task folder without the evaluator and task.toml."""
    task = load_task(EXAMPLES / name)
    frozen = {*task.evaluator.files, "task.toml"}
    workdir = Path(shutil.copytree(task.folder, tmp_path / "work", ignore=lambda _, names: frozen & set(names)))
    return task, workdir


def run_recipe(task: Task, workdir: Path, **knobs: str) -> float:
    """Run the task's own command in the copy as the trial loop does, as a local job; return seconds."""
    executor = LocalExecutor()
    spec = JobSpec(name="recipe", workdir=workdir, command=task.command, env=base_env(workdir) | knobs,
                   resources=task.resources)
    started = time.monotonic()
    job = executor.submit(spec)
    status = executor.wait(job)
    assert status.exit_code == 0, f"recipe failed:\n{executor.logs(job)}"
    return time.monotonic() - started


def replace_recipe(workdir: Path, source: str) -> None:
    (workdir / "train.py").write_text(source)


@pytest.mark.parametrize(
    ("name", "knobs"),
    [
        ("digits-classifier", {}),
        ("digits-classifier", {"MAX_ITER": "3"}),  # the knob at its minimum still passes the gate
        ("tiny-mlp", {}),
    ],
)
def test_example_recipe_and_evaluator_run_for_real(name: str, knobs: dict[str, str], tmp_path: Path) -> None:
    task, workdir = trial_copy(name, tmp_path)
    assert not (workdir / "evaluate.py").exists()
    seconds = run_recipe(task, workdir, **knobs)
    outcome = run_evaluator(task, workdir)
    print(f"{name} {knobs}: recipe {seconds:.1f}s, {outcome.metrics}")
    assert outcome.failure is None, outcome.detail
    assert 0.5 < outcome.metrics["accuracy"] <= 1.0
    assert outcome.score == outcome.metrics[task.score.metric]
    assert outcome.metrics["n"] == {"digits-classifier": 360, "tiny-mlp": 143}[name]
    assert seconds < 60


def test_tiny_mlp_is_deterministic_and_passes_its_gates_at_the_minimum_knob(tmp_path: Path) -> None:
    task, first = trial_copy("tiny-mlp", tmp_path / "a")
    _, second = trial_copy("tiny-mlp", tmp_path / "b")
    for workdir in (first, second):
        run_recipe(task, workdir, EPOCHS="5.0")  # a knob value as a decimal string, as the budget may pass it
    assert (first / "predictions.json").read_bytes() == (second / "predictions.json").read_bytes()
    outcome = run_evaluator(task, first)
    assert outcome.failure is None, outcome.detail
    assert 0.5 < outcome.metrics["accuracy"] <= 1.0 and outcome.score is not None and outcome.score < 0.693


def test_recipe_cannot_report_its_own_score(tmp_path: Path) -> None:
    task, honest = trial_copy("digits-classifier", tmp_path / "honest")
    run_recipe(task, honest)
    expected = run_evaluator(task, honest)

    _, cheat = trial_copy("digits-classifier", tmp_path / "cheat")
    # The real recipe, then every way of claiming a perfect score short of changing the predictions.
    claim = json.dumps({"accuracy": 1.0, "n": 360})
    source = (cheat / "train.py").read_text() + (
        "\nimport json, pathlib\n"
        f"pathlib.Path('score.json').write_text({claim!r})\n"
        f"pathlib.Path('metrics.json').write_text({claim!r})\n"
        f"pathlib.Path('evaluate.py').write_text({f'print({claim!r})'!r})\n"
        f"print({claim!r})\n"
    )
    replace_recipe(cheat, source)
    run_recipe(task, cheat)
    assert (cheat / "evaluate.py").exists()

    outcome = run_evaluator(task, cheat)
    assert outcome.failure is None
    assert outcome.score == expected.score < 1.0
    assert outcome.metrics == expected.metrics


def test_missing_predictions_is_an_evaluator_crash(tmp_path: Path) -> None:
    task, workdir = trial_copy("digits-classifier", tmp_path)
    outcome = run_evaluator(task, workdir)
    assert outcome.failure == "crash"
    assert outcome.score is None
    assert "evaluator" in outcome.detail and "predictions.json is missing" in outcome.detail


def test_wrongly_sized_predictions_is_an_evaluator_crash(tmp_path: Path) -> None:
    task, workdir = trial_copy("digits-classifier", tmp_path)
    (workdir / "predictions.json").write_text(json.dumps({"labels": [1, 2, 3]}))
    outcome = run_evaluator(task, workdir)
    assert outcome.failure == "crash"
    assert "evaluator exited with code 1" in outcome.detail and "expected 360 labels" in outcome.detail


def test_all_zeros_misses_the_gate(tmp_path: Path) -> None:
    task, workdir = trial_copy("digits-classifier", tmp_path)
    replace_recipe(workdir, "import json\njson.dump({'labels': [0] * 360}, open('predictions.json', 'w'))\n")
    run_recipe(task, workdir)
    outcome = run_evaluator(task, workdir)
    assert outcome.failure == "gate_miss"
    assert outcome.score == pytest.approx(0.1, abs=0.01)  # 36 zeros among 360 stratified digits
    assert "accuracy = 0.1, needs ≥ 0.5" in outcome.detail


def test_all_zeros_misses_both_tiny_mlp_gates(tmp_path: Path) -> None:
    task, workdir = trial_copy("tiny-mlp", tmp_path)
    replace_recipe(workdir, "import json\njson.dump({'probabilities': [0.0] * 143}, open('predictions.json', 'w'))\n")
    run_recipe(task, workdir)
    outcome = run_evaluator(task, workdir)
    assert outcome.failure == "gate_miss"
    assert "accuracy = 0.37" in outcome.detail and "log_loss" in outcome.detail and "needs ≤ 0.693" in outcome.detail


def test_symlink_out_of_the_trial_is_refused(tmp_path: Path) -> None:
    task, workdir = trial_copy("digits-classifier", tmp_path)
    (tmp_path / "elsewhere.json").write_text(json.dumps({"labels": [0] * 360}))
    (workdir / "predictions.json").symlink_to(tmp_path / "elsewhere.json")
    outcome = run_evaluator(task, workdir)
    assert outcome.failure == "illegal_edit" and "predictions.json: symlink" in outcome.detail


# ---------------------------------------------------------------- the executor and the environment


class WatchedExecutor(LocalExecutor):
    """A real local executor that also keeps the specs it was given and the evaluator folder's files."""

    def __init__(self) -> None:
        super().__init__()
        self.specs: list[JobSpec] = []
        self.files: list[str] = []

    def submit(self, spec: JobSpec) -> str:
        self.specs.append(spec)
        self.files = sorted(os.listdir(spec.workdir))
        return super().submit(spec)


def test_the_evaluator_is_a_job_in_a_fresh_folder_with_a_clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-must-not-leak")
    task, workdir = trial_copy("digits-classifier", tmp_path)
    run_recipe(task, workdir)
    executor = WatchedExecutor()

    outcome = run_evaluator(task, workdir, executor)
    assert outcome.failure is None and outcome.score == outcome.metrics["accuracy"] > 0.5
    [spec] = executor.specs
    assert spec.command == "python evaluate.py" and spec.resources.time_s == task.evaluator.time_s
    assert executor.files == ["evaluate.py"]
    assert spec.workdir != workdir and not spec.workdir.exists()  # a scratch folder, removed afterwards
    assert spec.readonly == [workdir.resolve()]  # the trial is read, never written
    assert spec.env[TRIAL_DIR_VARIABLE] == str(workdir.resolve())
    assert set(spec.env) == {"PATH", "HOME", "LANG", "PYTHONUNBUFFERED", TRIAL_DIR_VARIABLE}
    assert spec.env["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)


@pytest.mark.skipif(not sandbox_status().sandboxed, reason="needs a working bubblewrap")
def test_the_evaluator_reads_the_trial_but_cannot_change_it(tmp_path: Path) -> None:
    task, workdir = trial_copy("digits-classifier", tmp_path)
    run_recipe(task, workdir)
    before = (workdir / "predictions.json").read_bytes()
    tampering = Path(shutil.copytree(task.folder, tmp_path / "tampering"))
    with open(tampering / "evaluate.py", "a") as evaluator:  # scores, then tries to rewrite the predictions
        evaluator.write(
            "\nimport os, pathlib\n"
            "try:\n    pathlib.Path(os.environ['NANORESEARCH_TRIAL_DIR'], 'predictions.json').write_text('{}')\n"
            "except OSError as exc:\n    print('refused:', exc)\n"
        )
    outcome = run_evaluator(load_task(tampering), workdir)
    assert outcome.failure is None, outcome.detail
    assert (workdir / "predictions.json").read_bytes() == before


def test_evaluator_timeout(tmp_path: Path) -> None:
    folder = tmp_path / "task"
    folder.mkdir()
    (folder / "task.toml").write_text(
        'name = "slow"\ncommand = "true"\n[score]\nmetric = "m"\n'
        '[evaluator]\ncommand = "python slow.py"\nfiles = ["slow.py"]\ntime_s = 1\n'
        '[legality]\neditable = ["train.py"]\n'
    )
    (folder / "slow.py").write_text("import subprocess\nsubprocess.run(['sleep', '30'])\n")  # a child holding the pipes
    (folder / "train.py").write_text("")
    task = load_task(folder)
    started = time.monotonic()
    outcome = run_evaluator(task, tmp_path)
    assert outcome.failure == "timeout" and "evaluator timed out after 1s" in outcome.detail
    assert time.monotonic() - started < 10


def test_parse_metrics_takes_the_last_json_object_line() -> None:
    assert parse_metrics('{"a": 1}\nnot json {\n{"a": 2, "flag": true, "name": "x", "bad": NaN}\n[1, 2]\n') == {
        "a": 2.0
    }
    assert parse_metrics("no metrics here\n") is None


def test_judge_labels(tmp_path: Path) -> None:
    task = load_task(EXAMPLES / "digits-classifier")
    assert judge(task, 0, "hello\n", "").failure == "crash"
    assert "evaluator printed no JSON" in judge(task, 0, "hello\n", "").detail
    missing = judge(task, 0, '{"precision": 0.9}\n', "")
    assert missing.failure == "crash" and "'accuracy'" in missing.detail and "precision" in missing.detail
    crashed = judge(task, 2, "", "Traceback ...\nValueError: boom\n")
    assert crashed.failure == "crash" and "evaluator exited with code 2" in crashed.detail and "boom" in crashed.detail
    assert judge(task, 124, "", "").failure == "timeout"
    assert judge(task, 0, '{"accuracy": 0.9}\n', "") == Outcome(metrics={"accuracy": 0.9}, score=0.9)


class RefusingExecutor(LocalExecutor):
    """A local executor whose sandbox refuses to start, as bubblewrap does where user namespaces are off."""

    def submit(self, spec: JobSpec) -> str:
        raise NanoResearchError(f"could not start job {spec.name!r}: bwrap: setting up uid map: Permission denied")


def test_an_evaluator_that_cannot_start_is_an_infra_failure(tmp_path: Path) -> None:
    task, workdir = trial_copy("digits-classifier", tmp_path)
    outcome = run_evaluator(task, workdir, RefusingExecutor())
    assert outcome.failure == "infra" and "bwrap" in outcome.detail
