import json
from pathlib import Path

import pytest
from tiny import proposal

from helpers import ScriptedProvider, run_cli
from nanoresearch.compute.budget import Budget
from nanoresearch.compute.executor import create_executor
from nanoresearch.llm.client import LLM
from nanoresearch.runs import new_run
from nanoresearch.store.models import RunOptions
from nanoresearch.trials.loop import TrialLoop
from nanoresearch.trials.task import load_task


@pytest.fixture
def finished_run(settings, store, tiny_folder):
    task = load_task(tiny_folder)
    user = store.ensure_user(settings.user)
    run = new_run(store, settings, user, task.name, "optimise", RunOptions(), kind="trials")
    provider = ScriptedProvider(proposal("bigger is better", ("VALUE = 1", "VALUE = 4")))
    llm = LLM(settings, store, user, run_id=run.id, providers={"local": provider})
    TrialLoop(task, store, llm, create_executor("local", settings), run.id, user, Budget(trials=2),
              Path(run.workspace)).run()
    return run


def test_list_show_tree_export(capsys, monkeypatch, finished_run, tmp_path):
    listed = run_cli(capsys, monkeypatch, "trials", "list")
    assert listed.code == 0 and "baseline" in listed.out and "4 kept" in listed.out
    shown = run_cli(capsys, monkeypatch, "trials", "show", "2")
    assert shown.code == 0 and "+VALUE = 4" in shown.out and "working" in shown.out
    tree = run_cli(capsys, monkeypatch, "trials", "tree", "--run", finished_run.id)
    assert tree.code == 0 and "#1 baseline" in tree.out and "#2 generalist" in tree.out
    exported = tmp_path / "trials.json"
    assert run_cli(capsys, monkeypatch, "trials", "export", "--format", "json", "-o", str(exported)).code == 0
    rows = json.loads(exported.read_text())
    assert [r["score"] for r in rows] == [1.0, 4.0] and rows[1]["parent_id"] == 1
    tsv = run_cli(capsys, monkeypatch, "trials", "export")
    assert tsv.out.splitlines()[0].startswith("id\tparent_id\tproposer")


def test_another_users_trials_are_not_shown(capsys, monkeypatch, finished_run):
    assert run_cli(capsys, monkeypatch, "--user", "mallory", "trials", "show", "1").code == 1
    assert run_cli(capsys, monkeypatch, "--user", "mallory", "trials", "list").code == 1


def test_bad_task_folder_and_budget(capsys, monkeypatch, tmp_path, tiny_folder):
    missing = run_cli(capsys, monkeypatch, "trials", "run", "--task", str(tmp_path / "nowhere"))
    assert missing.code == 1 and "does not exist" in missing.err
    bad = run_cli(capsys, monkeypatch, "trials", "run", "--task", str(tiny_folder), "--budget", "walltime=3")
    assert bad.code == 1 and "unknown budget unit" in bad.err
    assert "Traceback" not in missing.err + bad.err


@pytest.mark.slow
def test_trials_run_on_the_embedded_model(capsys, monkeypatch, tiny_folder):
    """The main command with the real local model: a lineage is recorded and the head never gets worse."""
    result = run_cli(capsys, monkeypatch, "trials", "run", "--task", str(tiny_folder), "--budget", "trials=2,wall=5m")
    assert result.code == 0, result.err
    assert "#1 baseline" in result.out and "best: trial" in result.out
    exported = run_cli(capsys, monkeypatch, "trials", "export", "--format", "json")
    rows = json.loads(exported.out)
    assert len(rows) >= 2 and rows[0]["proposer"] == "baseline" and rows[0]["kept"]
    assert all(r["score"] is None or r["score"] >= 0 for r in rows)
