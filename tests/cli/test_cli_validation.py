"""Every flag and value of `run`, `resume` and `trials run` is checked before any work: a bad one is
one message naming the problem and the fix, and no run is created and no model is called."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import run_cli
from nanoresearch.runs import new_run
from nanoresearch.store import Store
from nanoresearch.store.models import RunOptions

ROOT = Path(__file__).parents[2]
DIGITS = str(ROOT / "examples" / "tasks" / "digits-classifier")
GOAL = "improve digit classification accuracy"


def assert_no_work_done(db: Path, runs_before: int = 0) -> None:
    """Nothing happened: no new run, and not one model call recorded."""
    with Store(db) as store:
        user_id = store.ensure_user("alice")
        assert len(store.list_runs(user_id)) == runs_before
        assert store.llm_calls(user_id) == []


@pytest.mark.parametrize("args", [
    ("run", GOAL, "--executor", "kube", "--yes"),
    ("trials", "run", "--task", DIGITS, "--executor", "kube"),
])
def test_an_unknown_executor_is_refused_at_once_naming_the_known_ones(capsys, monkeypatch, settings, args) -> None:
    result = run_cli(capsys, monkeypatch, *args)
    assert result.code == 2, result.err
    assert "error: unknown executor 'kube'" in result.err
    assert "known executors: local, ray, slurm" in result.err and "Traceback" not in result.err
    assert_no_work_done(settings.db_path)


@pytest.mark.parametrize("value", ["-1", "0"])
@pytest.mark.parametrize("command", [("run", GOAL, "--yes"), ("trials", "run", "--task", DIGITS)])
def test_a_trial_budget_out_of_range_names_the_unit_and_the_range(capsys, monkeypatch, settings, command, value) -> None:
    result = run_cli(capsys, monkeypatch, *command, "--budget", f"trials={value}")
    assert result.code == 1
    assert f"error: budget trials={value} is not allowed: trials must be a whole number of 1 or more" in result.err
    assert "pydantic" not in result.err and "http" not in result.err and "not a number" not in result.err
    assert_no_work_done(settings.db_path)


@pytest.mark.parametrize(("budget", "message"), [
    ("usd=0", "usd must be a number above 0"),
    ("wall=-5m", "budget wall=-300s is not allowed: wall must be a number above 0"),
    ("tokens=lots", "budget value 'lots' is not a number (in tokens=lots)"),
])
def test_other_budget_units_say_what_they_allow(capsys, monkeypatch, settings, budget, message) -> None:
    result = run_cli(capsys, monkeypatch, "trials", "run", "--task", DIGITS, "--budget", budget)
    assert result.code == 1 and message in result.err, result.err
    assert_no_work_done(settings.db_path)


def test_a_bad_budget_on_resume_changes_nothing_and_calls_no_model(capsys, monkeypatch, settings, store) -> None:
    record = new_run(store, settings, store.ensure_user("alice"), "digits", GOAL, RunOptions(), kind="research")
    store.set_run_status(record.id, "paused")
    result = run_cli(capsys, monkeypatch, "resume", record.id, "--budget", "trials=0", "--yes")
    assert result.code == 1 and "trials must be a whole number of 1 or more" in result.err, result.err
    assert_no_work_done(settings.db_path, runs_before=1)
    assert store.get_run(record.id).options == record.options


@pytest.mark.parametrize("command", [("run", GOAL, "--yes"), ("trials", "run")])
def test_a_file_given_as_task_is_said_to_be_a_file(capsys, monkeypatch, settings, command) -> None:
    result = run_cli(capsys, monkeypatch, *command, "--task", str(ROOT / "README.md"))
    assert result.code == 1
    assert f"error: {ROOT / 'README.md'} is a file, not a task folder" in result.err
    assert "does not exist" not in result.err and "docs/task-format.md" in result.err
    assert_no_work_done(settings.db_path)


def test_a_folder_without_task_toml_points_at_the_task_format_page(capsys, monkeypatch, settings, tmp_path) -> None:
    result = run_cli(capsys, monkeypatch, "trials", "run", "--task", str(tmp_path))
    assert "task.toml is missing" in result.err and "hint: docs/task-format.md" in result.err
    assert (ROOT / "docs" / "task-format.md").is_file()
    assert_no_work_done(settings.db_path)


def test_with_no_runs_the_hint_offers_a_research_run_first(capsys, monkeypatch) -> None:
    result = run_cli(capsys, monkeypatch, "status")
    hint = result.err.splitlines()[-1]
    assert "you have no runs yet" in result.err
    assert hint.index('`nanoresearch run "GOAL"`') < hint.index("`nanoresearch trials run --task DIR`")


def test_an_unknown_run_id_points_at_the_run_list(capsys, monkeypatch, settings, store) -> None:
    new_run(store, settings, store.ensure_user("alice"), "digits", GOAL, RunOptions(), kind="trials")
    result = run_cli(capsys, monkeypatch, "show", "run-nope")
    assert "no run 'run-nope'" in result.err and "hint: `nanoresearch list` shows your runs" in result.err
    assert "trials list" not in result.err
