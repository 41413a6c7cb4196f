"""`wall` is the clock: how long a run has been running, paused time excluded, not the sum of its
trials' durations (which stays in the ledger as trial_s)."""

import sqlite3
import time
from datetime import UTC, datetime

import pytest

from helpers import ScriptedProvider
from nanoresearch.compute.budget import Budget, charge_trial, spent
from nanoresearch.trials.task import load_task
from trials.tiny import make_loop, proposal, write_tiny_task


def new_run(store, run_id="r1"):
    user = store.ensure_user("alice")
    store.create_run(run_id, store.ensure_project(user, "p"), "g", "/w")
    return user


def test_wall_counts_running_time_and_not_paused_time(store):
    user = new_run(store)
    store.set_run_status("r1", "running")
    time.sleep(0.3)
    store.set_run_status("r1", "paused")
    paused_at = spent(store, user, "r1").wall_s
    assert paused_at >= 0.29  # SQLite's clock reads milliseconds
    time.sleep(0.3)
    assert spent(store, user, "r1").wall_s == paused_at  # a paused run's clock stands still
    store.set_run_status("r1", "running")
    time.sleep(0.2)
    assert spent(store, user, "r1").wall_s >= paused_at + 0.19
    store.set_run_status("r1", "done")


def test_trial_time_is_its_own_ledger_entry(store):
    user = new_run(store)
    charge_trial(store, user, "r1", 1, elapsed_s=1800, cpus=1, gpus=0)
    used = spent(store, user, "r1")
    assert (used.trial_s, used.wall_s) == (1800, 0)


def test_a_run_its_process_left_running_counts_only_to_its_last_activity(store, settings):
    user = new_run(store)
    store.set_run_status("r1", "running")
    charge_trial(store, user, "r1", 1, elapsed_s=5, cpus=1, gpus=0)
    # The run started an hour ago and its process died ten seconds later: move the record back in time.
    started = time.time() - 3600
    with sqlite3.connect(settings.db_path) as db:
        db.execute("UPDATE runs SET running_since = ?, updated_at = ? WHERE id = 'r1'", (started, iso(started)))
        db.execute("UPDATE ledger SET created_at = ?", (iso(started + 10),))
    store.set_run_status("r1", "running")  # resumed: the dead hour is not counted
    assert spent(store, user, "r1").wall_s == pytest.approx(10, abs=0.5)


def iso(unix_s: float) -> str:
    return datetime.fromtimestamp(unix_s, UTC).isoformat(timespec="milliseconds")


class SlowModel(ScriptedProvider):
    """Answers after a pause, as a real model does: time the old ledger never counted."""

    def complete(self, request):
        time.sleep(1)
        return super().complete(request)


def test_the_loop_stops_on_the_clock_and_the_ledger_agrees_with_it(store, tmp_path):
    task = load_task(write_tiny_task(tmp_path / "tiny-task"))
    task.resources.time_s = 30
    proposals = [proposal(f"value {n}", ("VALUE = 1", f"VALUE = {n}")) for n in range(2, 12)]
    loop = make_loop(store, task, SlowModel(*proposals), Budget(wall_s=6), tmp_path)
    store.set_run_status(loop.run_id, "running")
    start = time.monotonic()
    loop.run()
    store.set_run_status(loop.run_id, "done")
    measured = time.monotonic() - start
    used = spent(store, loop.user_id, loop.run_id)
    assert "the wall budget is spent" in loop.stop_reason
    assert abs(used.wall_s - measured) < 0.5  # the ledger's wall is the measured wall
    assert used.trial_s < used.wall_s  # model time and evaluators are on the clock, not in the trials
    assert measured <= 6 + 2  # over by at most one model call and one evaluator
