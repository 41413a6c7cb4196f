"""Kill a real `nanoresearch run` with SIGKILL mid-experiment, then `resume` finishes the same run.

The model is an OpenAI-compatible server on loopback that counts every request by content, so the
test can see that no call answered before the kill is paid for again after it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from researcher import ResearcherServer, write_config

from conftest import CORPUS, DIGITS, GOAL
from nanoresearch.store import Store

pytestmark = pytest.mark.slow

CLI = str(Path(sys.executable).parent / "nanoresearch")


def wait_for_running_trial(db: Path, process: subprocess.Popen, timeout_s: float = 300) -> int:
    """The id of a trial that is running after the loop's first proposal, once there is one."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, "the run ended before it could be killed"
        if db.exists():
            with Store(db) as store:
                runs = store.list_runs(store.ensure_user("alice"))
                running = [t for r in runs for t in store.trials(r.id) if t.status == "running" and t.id >= 2]
            if running:
                return running[0].id
        time.sleep(0.05)
    raise AssertionError("no trial started running in time")


def test_sigkill_mid_experiment_then_resume_finishes_without_paying_twice(home: Path, tmp_path: Path) -> None:
    with ResearcherServer() as server:
        write_config(home, server.url)
        env = {**os.environ, "NANORESEARCH_HOME": str(home), "NANORESEARCH_USER": "alice"}
        command = [CLI, "run", GOAL, "--task", str(DIGITS), "--offline", "--corpus", str(CORPUS), "--budget", "trials=8", "--yes"]
        with open(tmp_path / "first.log", "w") as log:
            first = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
            killed_trial = wait_for_running_trial(home / "nanoresearch.db", first)
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=30)
        calls_before = sum(server.seen.values())

        second = subprocess.run([CLI, "resume", "--yes"], env=env, capture_output=True, text=True, timeout=600)
        assert second.returncode == 0, second.stdout + second.stderr

    assert calls_before > 0 and sum(server.seen.values()) > calls_before
    assert all(count == 1 for count in server.seen.values()), "a call was sent to the model twice"
    with Store(home / "nanoresearch.db") as store:
        (run,) = store.list_runs(store.ensure_user("alice"))
        assert run.status == "done"
        trials = store.trials(run.id)
        assert store.trial(killed_trial).failure == "infra"  # labelled, not silently rerun
        assert len([t for t in trials if t.job_id]) <= 8  # started trials; a refused proposal starts none
        assert sum(1 for t in trials if t.proposer == "baseline") == 1
        plans = store.stage_plans(store.ensure_user("alice"), run.id)
        assert {p.stage for p in plans} >= {"ideation", "planning", "experiment", "review"}
    folder = Path(run.workspace)
    assert (folder / "paper" / "paper.pdf").is_file() and (folder / "reviews" / "review.json").is_file()
