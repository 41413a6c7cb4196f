"""`nanoresearch trials run` stopped the hard ways: SIGKILL at the baseline, a second driver, a dead model server.

The model is the pipeline tests' deterministic researcher, served over HTTP on loopback.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import run_cli, wait_for_running_trial
from nanoresearch.compute.budget import spent
from nanoresearch.store import Store
from pipeline.researcher import ResearcherServer, unused_port, write_config

CLI = str(Path(sys.executable).parent / "nanoresearch")
DIGITS = Path(__file__).resolve().parents[2] / "examples" / "tasks" / "digits-classifier"
TRIALS_RUN = ["trials", "run", "--task", str(DIGITS), "--budget", "trials=3,wall=10m"]


def root_of(trial_id: int, by_id: dict) -> int:
    node = by_id[trial_id]
    while node.parent_id is not None:
        node = by_id[node.parent_id]
    return node.id


@pytest.mark.slow
def test_sigkill_during_the_baseline_then_resume_runs_the_baseline_again(capsys, monkeypatch, home: Path,
                                                                         tmp_path: Path) -> None:
    with ResearcherServer() as server:
        write_config(home, server.url)
        env = {**os.environ, "NANORESEARCH_HOME": str(home), "NANORESEARCH_USER": "alice"}
        first = subprocess.Popen([CLI, *TRIALS_RUN], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            run_id, killed = wait_for_running_trial(home / "nanoresearch.db", first, "baseline")
            second = run_cli(capsys, monkeypatch, *TRIALS_RUN, "--resume", run_id)  # while the first still drives it
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=30)
        assert second.code == 1 and f"pid {first.pid}" in second.err and "Traceback" not in second.err
        assert " interrupted " in run_cli(capsys, monkeypatch, "list").out

        resumed = run_cli(capsys, monkeypatch, *TRIALS_RUN, "--resume", run_id)
    assert resumed.code == 0, resumed.err
    with Store(home / "nanoresearch.db") as store:
        trials = store.trials(run_id)
        assert store.get_run(run_id).status == "done"
    by_id = {t.id: t for t in trials}
    assert (by_id[killed].proposer, by_id[killed].failure) == ("baseline", "infra")
    (baseline,) = [t for t in trials if t.proposer == "baseline" and t.status == "done"]
    assert baseline.score is not None and baseline.kept
    later = [t for t in trials if t.id > baseline.id]
    assert later and all(root_of(t.id, by_id) == baseline.id for t in later)


def test_a_dead_model_server_pauses_the_run_without_charging_trials(capsys, monkeypatch, home: Path, store) -> None:
    port = unused_port()
    write_config(home, f"http://127.0.0.1:{port}/v1")
    stopped = run_cli(capsys, monkeypatch, *TRIALS_RUN)
    assert stopped.code == 1 and "Traceback" not in stopped.err
    (run,) = store.list_runs(store.ensure_user("alice"))
    assert store.get_run(run.id).status == "paused"
    assert f"127.0.0.1:{port}" in stopped.err and f"--resume {run.id}" in stopped.err
    assert [t.proposer for t in store.trials(run.id)] == ["baseline"]  # the outage cost no trial
    assert spent(store, store.ensure_user("alice"), run.id).trials == 1

    with ResearcherServer(port):  # the server comes back
        resumed = run_cli(capsys, monkeypatch, *TRIALS_RUN, "--resume", run.id)
    assert resumed.code == 0, resumed.err
    trials = store.trials(run.id)
    assert store.get_run(run.id).status == "done"
    assert len(trials) == 3 and [t.proposer for t in trials].count("baseline") == 1
    assert all(t.failure is None for t in trials)
