"""Housekeeping: `rm`, `archive`, `mark-failed` and `open`, and a home folder that still works once
copied or moved (paths inside it are stored relative to it; migration 0010 converts old ones)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
from pathlib import Path

import pytest

from helpers import run_cli
from nanoresearch.config import load_settings
from nanoresearch.runs import driving, new_run
from nanoresearch.store import Store
from nanoresearch.store.db import migrations, split_statements
from nanoresearch.store.models import LLMCall, RunOptions, Trial

GOAL = "improve digit classification accuracy"


def make_run(store: Store, settings, kind: str = "trials") -> str:
    """A run with a trial, a step, a recorded model call (and its ledger rows) and files in its workspace."""
    user_id = store.ensure_user(settings.user)
    record = new_run(store, settings, user_id, "digits", GOAL, RunOptions(), kind=kind)
    workspace = Path(record.workspace)
    (workspace / "trials" / "1" / "work").mkdir(parents=True)
    (workspace / "paper").mkdir()
    (workspace / "paper" / "paper.pdf").write_bytes(b"%PDF-1.4\n")
    store.add_trial(Trial(run_id=record.id, proposer="baseline", command="python train.py", executor="local",
                          workdir=str(workspace / "trials" / "1" / "work"), status="done", score=0.9))
    store.save_step(record.id, "ideation", "stage", "done", {"summary": "three ideas"})
    store.record_llm_call(LLMCall(key=f"k-{record.id}", user_id=user_id, run_id=record.id, stage="ideation",
                                  provider="local", model="m", request={}, response_text="ok", prompt_tokens=3,
                                  completion_tokens=2, cost_usd=0.01))
    return record.id


def rows(db: Path, table: str, run_id: str) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute(f"SELECT count(*) FROM {table} WHERE run_id = ?", (run_id,)).fetchone()[0]


def test_rm_deletes_the_runs_rows_and_its_workspace_only(capsys, monkeypatch, settings, store) -> None:
    doomed, kept = make_run(store, settings), make_run(store, settings)
    workspace = Path(store.get_run(doomed).workspace)
    result = run_cli(capsys, monkeypatch, "rm", doomed, "--yes")
    assert result.code == 0 and f"deleted run {doomed} and {workspace}" in result.err
    assert not workspace.exists() and Path(store.get_run(kept).workspace).is_dir()
    for table in ("trials", "steps", "llm_calls", "ledger"):
        assert rows(settings.db_path, table, doomed) == 0 and rows(settings.db_path, table, kept) > 0, table
    assert [r.id for r in store.list_runs(store.ensure_user(settings.user))] == [kept]


def test_rm_asks_and_without_a_terminal_deletes_nothing(capsys, monkeypatch, settings, store) -> None:
    run_id = make_run(store, settings)
    result = run_cli(capsys, monkeypatch, "rm", run_id)
    assert result.code == 1 and "not deleting without a yes" in result.err and "add --yes" in result.err
    assert Path(store.get_run(run_id).workspace).is_dir() and rows(settings.db_path, "trials", run_id) == 1


def test_a_run_that_a_live_process_drives_is_not_touched(capsys, monkeypatch, settings, store) -> None:
    run_id = make_run(store, settings)
    store.set_run_status(run_id, "running")
    with driving(store.get_run(run_id)):  # this process holds the run's lock, as `nanoresearch run` does
        for args in (("rm", run_id, "--yes"), ("archive", run_id), ("mark-failed", run_id)):
            result = run_cli(capsys, monkeypatch, *args)
            assert result.code == 1 and f"run {run_id}: it is running (pid {os.getpid()}" in result.err, result.err
    assert store.get_run(run_id).status == "running" and rows(settings.db_path, "trials", run_id) == 1


def test_a_dead_running_run_can_be_marked_failed_then_deleted(capsys, monkeypatch, settings, store) -> None:
    run_id = make_run(store, settings)
    store.set_run_status(run_id, "running")  # and no process holds its lock: it died
    marked = run_cli(capsys, monkeypatch, "mark-failed", run_id)
    assert marked.code == 0 and f"run {run_id} was interrupted; it is marked failed" in marked.err
    assert store.get_run(run_id).status == "failed"
    assert "already failed" in run_cli(capsys, monkeypatch, "mark-failed", run_id).err
    assert run_cli(capsys, monkeypatch, "rm", run_id, "--yes").code == 0
    assert rows(settings.db_path, "trials", run_id) == 0


def test_archive_hides_a_run_from_list_until_undone(capsys, monkeypatch, settings, store) -> None:
    hidden, shown = make_run(store, settings), make_run(store, settings)
    assert run_cli(capsys, monkeypatch, "archive", hidden).code == 0
    listed = run_cli(capsys, monkeypatch, "list", "--json").out
    assert hidden not in listed and shown in listed
    everything = run_cli(capsys, monkeypatch, "list", "--all").out
    assert hidden in everything and "(archived)" in everything
    assert run_cli(capsys, monkeypatch, "show", hidden).code == 0  # still there by its id
    assert run_cli(capsys, monkeypatch, "archive", hidden, "--undo").code == 0
    assert hidden in run_cli(capsys, monkeypatch, "list", "--json").out


def test_a_moved_home_still_finds_every_path(capsys, monkeypatch, tmp_path, settings, store) -> None:
    run_id = make_run(store, settings)
    task = Path(store.get_run(run_id).workspace) / "task"
    task.mkdir()
    store.set_run_options(run_id, RunOptions(task=str(task)))
    store.close()
    moved = tmp_path / "elsewhere" / "home"
    shutil.move(settings.home, moved)
    monkeypatch.setenv("NANORESEARCH_HOME", str(moved))
    with Store(load_settings().db_path) as reopened:
        record = reopened.get_run(run_id)
        workspace = moved / "users" / "alice" / "runs" / run_id
        assert record.workspace == str(workspace) and Path(record.workspace).is_dir()
        assert record.options.task == str(workspace / "task")
        assert reopened.trials(run_id)[0].workdir == str(workspace / "trials" / "1" / "work")
    shown = run_cli(capsys, monkeypatch, "open", run_id, "paper")
    assert shown.out.strip() == str(workspace / "paper" / "paper.pdf")


def test_migration_0010_makes_old_absolute_paths_relative(tmp_path) -> None:
    db = tmp_path / "home" / "nanoresearch.db"
    db.parent.mkdir()
    old = "/old/home/users/alice/runs/run-1"
    with sqlite3.connect(db) as conn:
        for number, sql in migrations():
            if number <= 9:
                for statement in split_statements(sql):
                    conn.execute(statement)
        conn.execute("PRAGMA user_version = 9")
        conn.execute("INSERT INTO users (id, name, created_at) VALUES (1, 'alice', '')")
        conn.execute("INSERT INTO projects (id, user_id, name, goal, created_at) VALUES (1, 1, 'p', '', '')")
        for run_id, workspace, task in (("run-1", old, f"{old}/task"), ("run-2", "/scratch/w", "/tasks/digits")):
            conn.execute("INSERT INTO runs (id, project_id, goal, status, workspace, options_json, created_at, updated_at)"
                         " VALUES (?, 1, 'g', 'done', ?, json_object('task', ?), '', '')", (run_id, workspace, task))
        conn.execute("INSERT INTO trials (run_id, proposer, command, executor, status, workdir, created_at)"
                     " VALUES ('run-1', 'baseline', 'c', 'local', 'done', ?, '')", (f"{old}/trials/1/work",))
    with Store(db) as store:
        home = db.parent
        moved, elsewhere = store.get_run("run-1"), store.get_run("run-2")
        assert moved.workspace == str(home / "users/alice/runs/run-1")
        assert moved.options.task == str(home / "users/alice/runs/run-1/task")
        assert store.trials("run-1")[0].workdir == str(home / "users/alice/runs/run-1/trials/1/work")
        assert (elsewhere.workspace, elsewhere.options.task) == ("/scratch/w", "/tasks/digits")  # not the home's
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT workspace FROM runs WHERE id = 'run-1'").fetchone()[0] == "users/alice/runs/run-1"


def test_open_prints_the_path_when_there_is_no_viewer(capsys, monkeypatch, settings, store) -> None:
    run_id = make_run(store, settings)
    monkeypatch.setenv("PATH", "")
    result = run_cli(capsys, monkeypatch, "open", run_id, "paper")
    assert result.code == 0 and result.out.strip() == str(Path(store.get_run(run_id).workspace) / "paper/paper.pdf")
    assert "no system viewer (xdg-open or open) was found; the path is above" in result.err


def test_open_hands_the_path_to_the_system_viewer(capsys, monkeypatch, tmp_path, settings, store) -> None:
    run_id = make_run(store, settings)
    bin_dir, seen = tmp_path / "bin", tmp_path / "opened.txt"
    bin_dir.mkdir()
    for name in ("xdg-open", "open"):  # a viewer that notes what it was asked to open
        viewer = bin_dir / name
        viewer.write_text(f'#!/bin/sh\nprintf "%s" "$1" > {seen}\n')
        viewer.chmod(viewer.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", str(bin_dir))
    result = run_cli(capsys, monkeypatch, "open", "workspace")  # the latest run's
    assert result.code == 0 and seen.read_text() == store.get_run(run_id).workspace == result.out.strip()


@pytest.mark.parametrize(("what", "message"), [("paper", "has no paper yet"), ("slides", "cannot open 'slides'")])
def test_open_says_what_is_missing(capsys, monkeypatch, settings, store, what, message) -> None:
    record = new_run(store, settings, store.ensure_user(settings.user), "digits", GOAL, RunOptions(), kind="research")
    result = run_cli(capsys, monkeypatch, "open", record.id, what)
    assert result.code == 1 and message in result.err
    if what == "paper":
        assert str(Path(record.workspace) / "paper" / "paper.pdf") in result.err  # the path, even so
