"""Both kinds of run, research runs (`nanoresearch run`) and trial sessions (`nanoresearch trials run`), are
one typed record: every run command reads either kind, or says clearly why it does not apply to it. Stores
written before the record was typed (schema 8 and older) still open."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sqlite3
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from helpers import run_cli
from nanoresearch.store import Store
from nanoresearch.store.budget import Budget
from nanoresearch.store.db import migrations, split_statements
from pipeline.researcher import unused_port, write_config

REPO = Path(__file__).resolve().parents[1]
DIGITS = REPO / "examples" / "tasks" / "digits-classifier"
CORPUS = REPO / "examples" / "corpus"
GOAL = "improve handwritten digit classification accuracy"


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    from nanoresearch.cli.common import out

    monkeypatch.setattr(out, "width", 200)  # tables must not wrap ids for the assertions


def latest_run(home: Path) -> str:
    with Store(home / "nanoresearch.db") as store:
        return store.list_runs(store.ensure_user("alice"))[-1].id


@pytest.fixture
def trials_session(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, home: Path) -> str:
    """A finished trial session on the digits task: the baseline, nothing else (no model call)."""
    made = run_cli(capsys, monkeypatch, "trials", "run", "--task", str(DIGITS), "--budget", "trials=1")
    assert made.code == 0, made.err
    return latest_run(home)


@pytest.fixture
def research_run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, home: Path) -> str:
    """A research run paused at its first model call: the model's server is not there."""
    write_config(home, f"http://127.0.0.1:{unused_port()}/v1")
    made = run_cli(capsys, monkeypatch, "run", GOAL, "--task", str(DIGITS), "--offline", "--corpus", str(CORPUS),
                   "--budget", "trials=2", "--yes")
    assert made.code == 1 and "Traceback" not in made.err, made.err
    return latest_run(home)


def test_status_of_a_trials_session_shows_its_trials_and_budget(trials_session: str, capsys, monkeypatch) -> None:
    shown = run_cli(capsys, monkeypatch, "status")
    assert shown.code == 0, shown.err
    assert f"{trials_session} (done)" in shown.out and "#1 baseline" in shown.out
    assert "spent: 1 trials" in shown.out and "left: trials 0" in shown.out


def test_resuming_a_trial_session_keeps_its_budget_unless_given_another(trials_session: str, capsys, monkeypatch,
                                                                        home: Path) -> None:
    again = run_cli(capsys, monkeypatch, "trials", "run", "--task", str(DIGITS), "--resume", trials_session)
    assert again.code == 0 and "budget trials=1" in again.err  # its one trial is spent: nothing more runs
    with Store(home / "nanoresearch.db") as store:
        assert len(store.trials(trials_session)) == 1
    more = run_cli(capsys, monkeypatch, "trials", "run", "--task", str(DIGITS), "--resume", trials_session,
                   "--budget", "trials=1,usd=2")
    assert more.code == 0
    with Store(home / "nanoresearch.db") as store:
        assert store.get_run(trials_session).options.budget == Budget(trials=1, usd=2)


def test_list_show_and_export_read_both_kinds(trials_session: str, research_run: str, capsys, monkeypatch,
                                              tmp_path: Path) -> None:
    listed = run_cli(capsys, monkeypatch, "list").out
    assert f"{trials_session} │ done   │ trials " in listed and f"{research_run} │ paused │ research " in listed

    session = run_cli(capsys, monkeypatch, "show", trials_session)
    assert session.code == 0 and "best: trial 1, accuracy = 0.9" in session.out
    research = run_cli(capsys, monkeypatch, "show", research_run)
    assert research.code == 0 and f"{research_run} (paused): {GOAL}" in research.out

    status = run_cli(capsys, monkeypatch, "status", research_run)
    assert status.code == 0 and re.search(r"ideation +│ paused", status.out) and "left: trials 2" in status.out

    for run_id in (trials_session, research_run):
        target = tmp_path / f"{run_id}.zip"
        assert run_cli(capsys, monkeypatch, "export", run_id, "-o", str(target)).code == 0
        trials = json.loads(zipfile.ZipFile(target).read(f"{run_id}/store/trials.json"))
        assert len(trials) == (1 if run_id == trials_session else 0)


def test_commands_of_one_kind_say_which_command_serves_the_other(trials_session: str, research_run: str, capsys,
                                                                 monkeypatch) -> None:
    resumed = run_cli(capsys, monkeypatch, "resume", trials_session, "--yes")
    assert resumed.code == 1 and "Traceback" not in resumed.err
    assert f"nanoresearch trials run --task {DIGITS} --resume {trials_session}" in resumed.err

    judged = run_cli(capsys, monkeypatch, "feedback", trials_session, "more epochs", "--stage", "experiment")
    assert judged.code == 1 and f"feedback applies to research runs; {trials_session} is a trial session" in judged.err

    continued = run_cli(capsys, monkeypatch, "trials", "run", "--task", str(DIGITS), "--resume", research_run)
    assert continued.code == 1 and "Traceback" not in continued.err
    assert f"`nanoresearch resume {research_run}`" in continued.err


def test_resume_continues_a_research_run_and_feedback_waits_for_its_stage(research_run: str, capsys,
                                                                          monkeypatch) -> None:
    judged = run_cli(capsys, monkeypatch, "feedback", research_run, "more ablations", "--stage", "ideation")
    assert judged.code == 1 and f"run {research_run} has no ideation stage yet" in judged.err
    resumed = run_cli(capsys, monkeypatch, "resume", research_run, "--yes")  # the model is still away
    assert resumed.code == 1 and f"`nanoresearch resume {research_run}`" in resumed.err
    assert "(the run is paused)" in resumed.err


class CtrlCServer:
    """A model server whose every request is answered by the user pressing Ctrl-C in the CLI (this process)."""

    def __init__(self) -> None:
        class PressCtrlC(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                os.kill(os.getpid(), signal.SIGINT)  # the CLI waits for this reply in the main thread
                with contextlib.suppress(OSError):  # the interrupted CLI may have hung up already
                    self.send_error(503)

            def log_message(self, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), PressCtrlC)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    def __enter__(self) -> CtrlCServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()


@pytest.mark.parametrize(("command", "again"), [
    (["run", GOAL, "--task", str(DIGITS), "--offline", "--corpus", str(CORPUS), "--yes"], "nanoresearch resume {id}"),
    (["trials", "run", "--task", str(DIGITS), "--budget", "trials=2"], f"nanoresearch trials run --task {DIGITS} --resume {{id}}"),
], ids=["research", "trials"])
def test_ctrl_c_pauses_either_kind_the_same_way(command: list[str], again: str, capsys, monkeypatch, home: Path) -> None:
    with CtrlCServer() as server:
        write_config(home, server.url)
        stopped = run_cli(capsys, monkeypatch, *command)
    run_id = latest_run(home)
    assert stopped.code == 130 and "Traceback" not in stopped.err
    assert "interrupted; the run is paused" in stopped.err and f"`{again.format(id=run_id)}` continues it" in stopped.err
    with Store(home / "nanoresearch.db") as store:
        assert store.get_run(run_id).status == "paused"


def test_the_hint_without_runs_suits_both_kinds(capsys, monkeypatch) -> None:
    empty = run_cli(capsys, monkeypatch, "status")
    assert empty.code == 1 and "you have no runs yet" in empty.err
    assert 'nanoresearch run "GOAL"' in empty.err and "nanoresearch trials run --task DIR" in empty.err


def test_an_unknown_run_id_points_to_the_list(trials_session: str, capsys, monkeypatch) -> None:
    unknown = run_cli(capsys, monkeypatch, "show", "run-nope")
    assert unknown.code == 1 and "no run 'run-nope'" in unknown.err and "`nanoresearch list`" in unknown.err


# Stores written before schema 9


def store_before_run_kinds(path: Path) -> sqlite3.Connection:
    """An empty store at the schema just before runs had a kind (0009)."""
    conn = sqlite3.connect(path, isolation_level=None)
    for number, sql in migrations():
        if number >= 9:
            break
        for statement in split_statements(sql):
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {number}")
    return conn


def add_old_run(conn: sqlite3.Connection, run_id: str, goal: str, config: dict, workspace: Path) -> None:
    """A run row as the code before schema 9 wrote it: everything in one untyped `config`."""
    workspace.mkdir(parents=True)
    conn.execute("INSERT OR IGNORE INTO users (id, name, created_at) VALUES (1, 'alice', '2026-01-01')")
    conn.execute("INSERT OR IGNORE INTO projects (id, user_id, name, created_at) VALUES (1, 1, 'digits', '2026-01-01')")
    conn.execute("INSERT INTO runs (id, project_id, goal, status, workspace, config_json, created_at, updated_at)"
                 " VALUES (?, 1, ?, 'done', ?, ?, ?, ?)",
                 (run_id, goal, str(workspace), json.dumps(config), f"2026-01-01T00:00:0{len(run_id)}", "2026-01-01"))


OLD_RESEARCH = {"goal": GOAL, "task": str(DIGITS), "budget": "trials=6,wall=20m,tokens=200k", "executor": "local",
                "parallel": 1, "offline": True, "corpus": str(CORPUS), "max_debug": 1}
OLD_SESSION = {"task": str(DIGITS), "executor": "local", "direction": "minimize",
               "budget": {"trials": 3, "wall_s": None, "cpu_hours": 0.5, "gpu_hours": None, "tokens": None, "usd": None}}


@pytest.fixture
def old_store(home: Path) -> None:
    home.mkdir(parents=True, exist_ok=True)
    conn = store_before_run_kinds(home / "nanoresearch.db")
    add_old_run(conn, "run-old-research", GOAL, OLD_RESEARCH, home / "ws" / "research")
    add_old_run(conn, "run-old-trials", "optimise accuracy (minimize) on digits-classifier", OLD_SESSION,
                home / "ws" / "trials")
    conn.close()


def test_an_old_store_migrates_each_run_to_its_kind_with_a_typed_budget(old_store: None, home: Path) -> None:
    with Store(home / "nanoresearch.db") as store:
        research, session = store.get_run("run-old-research"), store.get_run("run-old-trials")
    assert (research.kind, research.goal) == ("research", GOAL)
    assert research.options.budget == Budget(trials=6, wall_s=1200, tokens=200_000)
    assert (research.options.task, research.options.offline, research.options.corpus) == (str(DIGITS), True, str(CORPUS))
    assert session.kind == "trials" and session.options.budget == Budget(trials=3, cpu_hours=0.5)
    assert session.options.direction == "minimize"


def test_list_status_and_show_open_both_kinds_of_an_old_store(old_store: None, capsys, monkeypatch) -> None:
    listed = run_cli(capsys, monkeypatch, "list")
    assert "run-old-research │ done   │ research" in listed.out and "run-old-trials   │ done   │ trials" in listed.out
    for run_id, left in (("run-old-research", "trials 6, wall 20 m 00 s, tokens 200,000"), ("run-old-trials", "trials 3")):
        status = run_cli(capsys, monkeypatch, "status", run_id)
        assert status.code == 0 and left in status.out, status.err
        shown = run_cli(capsys, monkeypatch, "show", run_id)
        assert shown.code == 0 and f"{run_id} (done)" in shown.out, shown.err
