"""Listings keep what people copy whole: run ids, trial ids, skill names and doctor's fixes are never
cut, and a narrow terminal or a pipe drops columns and shortens only the free text, on one line per
row. `--json` gives the same listings to programs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import run_cli
from nanoresearch.cli.common import out
from nanoresearch.runs import new_run
from nanoresearch.store.knowledge_models import MemoryRecord
from nanoresearch.store.models import RunOptions, Trial

AGENT_SKILLS = Path(__file__).parents[1] / "knowledge" / "agent_skills"
LONG_GOAL = ("find out whether label smoothing improves the calibration of a small digit classifier "
             "without costing accuracy, across five seeds and three model widths")
LONG_TEXT = " ".join(["prefers tables over figures for every ablation, with means and standard deviations"] * 3)


@pytest.fixture
def runs(settings, store) -> list[str]:
    user_id = store.ensure_user(settings.user)
    made = [new_run(store, settings, user_id, "digits", LONG_GOAL, RunOptions(), kind=kind) for kind in ("research", "trials")]
    for parent in (None, 1):
        store.add_trial(Trial(run_id=made[1].id, parent_id=parent, proposer="generalist", hypothesis=LONG_TEXT,
                              command="python train.py", executor="local", status="done", kept=True, score=0.9))
    store.add_memory(MemoryRecord(user_id=user_id, type="preference", text=LONG_TEXT), LONG_TEXT)
    return [record.id for record in made]


def rows_of(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("│")]


def test_run_ids_are_whole_at_60_columns_and_the_goal_is_cut_not_wrapped(capsys, monkeypatch, runs) -> None:
    monkeypatch.setattr(out, "width", 60)
    listed = run_cli(capsys, monkeypatch, "list")
    assert listed.code == 0
    assert all(len(line) <= 60 for line in listed.out.splitlines()), listed.out
    rows = rows_of(listed.out)
    assert len(rows) == 2  # one line per run: nothing wrapped
    for run_id, row in zip(runs, rows, strict=True):
        assert run_id in row and "find out whether" in row and "…" in row


def test_run_ids_are_whole_in_a_pipe(runs, settings) -> None:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}  # a pipe: Rich's 80 columns
    piped = subprocess.run([sys.executable, "-c", "from nanoresearch.cli import main; main()", "list"], capture_output=True, text=True, env=env,
                           check=True)
    rows = rows_of(piped.stdout)
    assert len(rows) == 2 and all(run_id in row for run_id, row in zip(runs, rows, strict=True)), piped.stdout


def test_even_narrower_the_id_stays_whole(capsys, monkeypatch, runs) -> None:
    monkeypatch.setattr(out, "width", 30)
    rows = rows_of(run_cli(capsys, monkeypatch, "list").out)
    assert len(rows) == 2 and all(run_id in row for run_id, row in zip(runs, rows, strict=True))


def test_trials_and_memory_keep_one_line_per_row_at_60_columns(capsys, monkeypatch, runs) -> None:
    monkeypatch.setattr(out, "width", 60)
    trials = rows_of(run_cli(capsys, monkeypatch, "trials", "list", "--run", runs[1]).out)
    assert len(trials) == 2 and all("prefers tables" in row and "…" in row for row in trials)
    assert trials[0].startswith("│ 1 ") and trials[1].startswith("│ 2 ")
    memory = rows_of(run_cli(capsys, monkeypatch, "memory", "list").out)
    assert len(memory) == 1 and "prefers tables" in memory[0] and len(memory[0]) <= 60


def test_skill_names_are_whole_at_60_columns(capsys, monkeypatch) -> None:
    assert run_cli(capsys, monkeypatch, "skills", "import", str(AGENT_SKILLS)).code == 0
    monkeypatch.setattr(out, "width", 60)
    rows = rows_of(run_cli(capsys, monkeypatch, "skills", "list").out)
    assert len(rows) == 3
    for name, row in zip(("arxiv-paper-summary", "csv-profiler", "latex-table-formatting"), rows, strict=True):
        assert f"│ {name} " in row


def test_doctor_prints_each_fix_whole(capsys, monkeypatch) -> None:
    monkeypatch.setattr(out, "width", 60)
    shown = run_cli(capsys, monkeypatch, "doctor", "--no-model")
    checks = json.loads(run_cli(capsys, monkeypatch, "doctor", "--no-model", "--json").out)
    failed = [c for c in checks if not c["ok"]]
    assert failed  # no API key is set in tests, so the endpoints need a fix
    for check in failed:
        assert f"{check['name']}: {check['hint']}" in shown.out


def test_json_listings(capsys, monkeypatch, runs) -> None:
    listed = json.loads(run_cli(capsys, monkeypatch, "list", "--json").out)
    assert [r["id"] for r in listed] == runs and listed[0]["goal"] == LONG_GOAL and listed[1]["kind"] == "trials"
    trials = json.loads(run_cli(capsys, monkeypatch, "trials", "list", "--run", runs[1], "--json").out)
    assert [(t["id"], t["parent_id"], t["score"]) for t in trials] == [(1, None, 0.9), (2, 1, 0.9)]
    status = json.loads(run_cli(capsys, monkeypatch, "status", runs[1], "--json").out)
    assert status["run"]["id"] == runs[1] and len(status["trials"]) == 2 and status["spent"]["trials"] == 0
    assert status["left"] == {"trials": 6, "wall_s": 1200.0}  # RunOptions' default budget, nothing spent
    shown = json.loads(run_cli(capsys, monkeypatch, "show", runs[0], "--json").out)
    assert shown["run"]["goal"] == LONG_GOAL and shown["ideas"] is None and shown["artifacts"] == {}
    memory = json.loads(run_cli(capsys, monkeypatch, "memory", "list", "--json").out)
    assert [m["text"] for m in memory] == [LONG_TEXT]


def test_skills_list_json(capsys, monkeypatch) -> None:
    run_cli(capsys, monkeypatch, "skills", "import", str(AGENT_SKILLS))
    skills = json.loads(run_cli(capsys, monkeypatch, "skills", "list", "--json").out)
    assert [s["name"] for s in skills] == ["arxiv-paper-summary", "csv-profiler", "latex-table-formatting"]
