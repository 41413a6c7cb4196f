"""Parallel batches under a budget: every started trial is collected, charged and labelled before the
loop stops, and trials started together share what the budget has left."""

import pytest
from tiny import make_loop, proposal

from helpers import ScriptedProvider
from nanoresearch.compute.budget import Budget, spent

CRASH = proposal("crash on purpose", ('print("working")', 'raise SystemExit("boom")'))
SLOW_FOUR = proposal("four, slowly", ("VALUE = 1", "VALUE = 4"), ('print("working")', "import time; time.sleep(2)"))


def crash_beside_a_slow_trial(store, tiny_task, tmp_path, executor):
    """Baseline, then a batch of two (the trial budget's last two): one crashes at once, the other is
    still running when the crash is seen. The crash's repair cannot be afforded."""
    provider = ScriptedProvider(CRASH, SLOW_FOUR)
    loop = make_loop(store, tiny_task, provider, Budget(trials=3), tmp_path, executor=executor, parallel=4, max_debug=1)
    loop.run()
    return loop, provider


def assert_all_collected(store, loop, provider):
    baseline, crashed, slow = store.trials(loop.run_id)
    assert len(provider.history) == 2  # two proposals for the two trials left, not four
    assert (crashed.status, crashed.failure) == ("failed", "crash")
    assert (slow.status, slow.score, slow.kept) == ("done", 4.0, True)  # collected although the repair was refused
    ran_s = sum(t.ended_at - t.started_at for t in (baseline, crashed, slow))
    assert spent(store, loop.user_id, loop.run_id).cpu_hours * 3600 == pytest.approx(ran_s)  # every trial charged
    assert "trial budget is used up" in loop.stop_reason


def test_a_refused_repair_does_not_abandon_the_rest_of_the_batch(store, tiny_task, tmp_path):
    tiny_task.resources.time_s = 30
    loop, provider = crash_beside_a_slow_trial(store, tiny_task, tmp_path, "local")
    assert_all_collected(store, loop, provider)


@pytest.mark.slow
def test_a_refused_repair_does_not_abandon_the_rest_of_the_batch_on_slurm(store, tiny_task, tmp_path, slurm_cluster):
    tiny_task.resources.time_s = 60
    tiny_task.command = f"sleep 1 && {tiny_task.command}"
    loop, provider = crash_beside_a_slow_trial(store, tiny_task, tmp_path, "slurm")
    assert_all_collected(store, loop, provider)
    assert all(t.executor == "slurm" and t.job_id for t in store.trials(loop.run_id))


def test_trials_started_together_share_the_cpu_hours_left(store, tiny_task, tmp_path):
    tiny_task.resources.time_s = 60
    slow = [proposal(f"slow {n}", ("VALUE = 1", f"VALUE = {n}"), ('print("working")', "import time; time.sleep(60)"))
            for n in (2, 3, 4)]
    budget = Budget(cpu_hours=9 / 3600)
    loop = make_loop(store, tiny_task, ScriptedProvider(*slow), budget, tmp_path, parallel=3)
    loop.run()
    baseline, *batch = store.trials(loop.run_id)
    assert [t.failure for t in batch] == ["budget_overrun"] * 3  # each stopped at its share
    shares = [t.resources["time_s"] for t in batch]
    assert max(shares) - min(shares) <= 1 and sum(shares) <= 9  # a third each of what was left
    # Overrun is bounded by the executor's tick per trial, not by a whole share per extra trial.
    assert spent(store, loop.user_id, loop.run_id).cpu_hours * 3600 <= 9 + 1
