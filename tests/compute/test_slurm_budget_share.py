"""On SLURM a trial is stopped at its share of the budget, to the second, and labelled budget_overrun:
SLURM's own --time is whole minutes and enforced late, so it cannot hold a budget of seconds."""

import pytest

from helpers import ScriptedProvider
from nanoresearch.compute.budget import Budget, spent
from nanoresearch.trials.task import load_task
from trials.tiny import make_loop, proposal, write_tiny_task

pytestmark = pytest.mark.slow


def test_a_gpu_trial_is_stopped_at_its_budget_share(store, tmp_path, slurm_cluster):
    task = load_task(write_tiny_task(tmp_path / "tiny-task"))
    task.resources.gpus, task.resources.time_s = 1, 30
    task.command = f"sleep 2 && {task.command}"  # SLURM reports whole seconds
    provider = ScriptedProvider(proposal("slow", ('print("working")', "import time; time.sleep(100)")))
    budget = Budget(gpu_hours=31 / 3600, trials=2)  # the baseline fits; the next trial's share is under 30 s
    loop = make_loop(store, task, provider, budget, tmp_path, executor="slurm", max_debug=0)
    loop.run()
    baseline, slow = store.trials(loop.run_id)
    assert baseline.status == "done" and slow.failure == "budget_overrun", slow.detail
    assert "time limit" in slow.detail and slow.resources["time_s"] < 30
    used = spent(store, loop.user_id, loop.run_id)
    # Before, the share went to SLURM as --time=1 (a minute) and the job ran on: 60+ GPU-seconds of 31.
    assert used.gpu_hours * 3600 <= 31 + 2  # past the budget by at most the watch's round and SLURM's second
