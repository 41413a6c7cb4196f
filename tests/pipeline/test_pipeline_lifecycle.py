"""A run never outlives its process as `running`: whatever stops it, at any point of a stage, is recorded.

Failures (a refused model call, a bug) fail the stage and the run; Ctrl-C, SIGTERM and an unreachable
model pause it; a run whose owner died shows as `interrupted`; and only one process drives a run.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from researcher import ResearcherServer, unused_port, write_config

from conftest import CORPUS, DIGITS, GOAL
from helpers import ScriptedProvider, run_cli, wait_for_running_trial
from nanoresearch.errors import FatalLLMError
from nanoresearch.pipeline.orchestrator import Unattended, run_pipeline
from nanoresearch.store import Store

CLI = str(Path(sys.executable).parent / "nanoresearch")
RUN = [CLI, "run", GOAL, "--task", str(DIGITS), "--offline", "--corpus", str(CORPUS), "--budget", "trials=8", "--yes"]


class Interrupting:
    """A model call during which the user presses Ctrl-C."""

    name = "local"

    def complete(self, request: object) -> object:
        raise KeyboardInterrupt


def stage_status(status_out: str, stage: str) -> str:
    """A stage's status in `nanoresearch status`'s table."""
    row = next(line for line in status_out.splitlines() if line.strip("│ ").startswith(stage))
    return row.split("│")[2].strip()


def logged(ctx, event: str) -> list[dict]:
    lines = (ctx.workspace / "log.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["event"] == event]


@pytest.mark.parametrize("failure", [FatalLLMError("the key was refused"), RuntimeError("a bug in NanoResearch")])
def test_a_failed_plan_fails_the_stage_and_the_run(make_context, failure: Exception) -> None:
    ctx = make_context(ScriptedProvider(failure, name="local"))
    with pytest.raises(type(failure)):
        run_pipeline(ctx, Unattended())  # the first call of a run is the ideation stage's plan
    assert ctx.store.get_run(ctx.run.id).status == "failed"
    (step,) = [s for s in ctx.store.steps(ctx.run.id) if s.step == "stage"]
    assert (step.stage, step.status) == ("ideation", "failed") and str(failure) in step.payload["error"]
    assert str(failure) in logged(ctx, "stage_failed")[0]["error"]


def test_ctrl_c_during_a_stage_pauses_the_run(make_context) -> None:
    ctx = make_context(Interrupting())
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(ctx, Unattended())
    assert ctx.store.get_run(ctx.run.id).status == "paused"
    assert logged(ctx, "run_paused")[0]["stage"] == "ideation"


def test_an_unreachable_model_pauses_the_run_with_a_clear_message(capsys, monkeypatch, home: Path) -> None:
    port = unused_port()
    write_config(home, f"http://127.0.0.1:{port}/v1")
    result = run_cli(capsys, monkeypatch, *RUN[1:])
    assert result.code == 1 and "Traceback" not in result.err
    with Store(home / "nanoresearch.db") as store:
        (run,) = store.list_runs(store.ensure_user("alice"))
    assert run.status == "paused"
    assert f"127.0.0.1:{port}" in result.err and f"nanoresearch resume {run.id}" in result.err
    shown = run_cli(capsys, monkeypatch, "status", run.id)
    assert f"{run.id} (paused)" in shown.out and stage_status(shown.out, "ideation") == "paused"


@pytest.mark.slow
def test_a_live_run_shows_running_refuses_a_second_driver_and_sigterm_pauses_it(capsys, monkeypatch, home: Path,
                                                                               tmp_path: Path) -> None:
    with ResearcherServer() as server:
        write_config(home, server.url)
        env = {**os.environ, "NANORESEARCH_HOME": str(home), "NANORESEARCH_USER": "alice"}
        with open(tmp_path / "owner.log", "w") as log:
            owner = subprocess.Popen(RUN, env=env, stdout=log, stderr=subprocess.STDOUT)
            try:
                wait_for_running_trial(home / "nanoresearch.db", owner, "baseline")
                shown = run_cli(capsys, monkeypatch, "status")
                second = run_cli(capsys, monkeypatch, "resume", "--yes")
            finally:
                owner.send_signal(signal.SIGTERM)
                code = owner.wait(timeout=60)
    assert "(running)" in shown.out and re.fullmatch(r"running (\d+\.\d s|\d+ m \d\d s)", stage_status(shown.out, "experiment"))
    assert second.code == 1 and f"pid {owner.pid}" in second.err and "Traceback" not in second.err
    assert code == 130, (tmp_path / "owner.log").read_text()
    assert "nanoresearch resume" in (tmp_path / "owner.log").read_text()
    listed = run_cli(capsys, monkeypatch, "list")
    assert " paused " in listed.out


@pytest.mark.slow
def test_a_sigkilled_run_shows_as_interrupted_and_can_be_resumed(capsys, monkeypatch, home: Path, tmp_path: Path) -> None:
    with ResearcherServer() as server:
        write_config(home, server.url)
        env = {**os.environ, "NANORESEARCH_HOME": str(home), "NANORESEARCH_USER": "alice"}
        owner = subprocess.Popen(RUN, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, killed = wait_for_running_trial(home / "nanoresearch.db", owner, "baseline")
        owner.send_signal(signal.SIGKILL)
        owner.wait(timeout=30)
        assert " interrupted " in run_cli(capsys, monkeypatch, "list").out
        shown = run_cli(capsys, monkeypatch, "status")
        assert "(interrupted)" in shown.out and stage_status(shown.out, "experiment") == "interrupted"

        resumed = subprocess.run([CLI, "resume", "--yes"], env=env, capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    with Store(home / "nanoresearch.db") as store:
        (run,) = store.list_runs(store.ensure_user("alice"))
        trials = store.trials(run.id)
    # the baseline interrupted by the kill is run again, scored, and every later trial descends from it
    by_id = {t.id: t for t in trials}
    baselines = [t for t in trials if t.proposer == "baseline"]
    assert [(b.id, b.failure) for b in baselines][0] == (killed, "infra")
    scored = [b for b in baselines if b.status == "done" and b.score is not None]
    assert len(scored) == 1
    for trial in trials:
        if trial.id > scored[0].id and trial.proposer != "matrix:baseline":
            node = trial
            while node.parent_id is not None:
                node = by_id[node.parent_id]
            assert node.id == scored[0].id, f"trial {trial.id} does not descend from the scored baseline"
    matrix = json.loads((Path(run.workspace) / "matrix.json").read_text())["cells"]
    seed0 = next(c for c in matrix if c["condition"] == "baseline" and c["seed"] == 0)
    assert by_id[seed0["trial_id"]].score is not None
    assert "baseline & --" not in (Path(run.workspace) / "paper" / "paper.tex").read_text()


@pytest.mark.slow
def test_a_run_matrix_cell_killed_midway_is_labelled_and_run_again(home: Path) -> None:
    with ResearcherServer() as server:
        write_config(home, server.url)
        env = {**os.environ, "NANORESEARCH_HOME": str(home), "NANORESEARCH_USER": "alice"}
        owner = subprocess.Popen([*RUN[:-2], "trials=10", "--yes"], env=env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        _, killed = wait_for_running_trial(home / "nanoresearch.db", owner, "matrix:baseline")
        owner.send_signal(signal.SIGKILL)
        owner.wait(timeout=30)
        resumed = subprocess.run([CLI, "resume", "--yes"], env=env, capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    with Store(home / "nanoresearch.db") as store:
        (run,) = store.list_runs(store.ensure_user("alice"))
        trials = {t.id: t for t in store.trials(run.id)}
    assert (trials[killed].status, trials[killed].failure) == ("failed", "infra")
    assert not [t for t in trials.values() if t.status == "running"]
    cells = json.loads((Path(run.workspace) / "matrix.json").read_text())["cells"]
    killed_cell = next(c for c in cells if c["condition"] == "baseline" and c["seed"] == 1)
    assert killed_cell["trial_id"] != killed and trials[killed_cell["trial_id"]].score is not None
