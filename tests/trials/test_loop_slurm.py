"""The trial loop through real slurmctld/slurmd daemons on loopback, and resume re-attaching to a job."""

import pytest
from tiny import make_loop, proposal

from helpers import ScriptedProvider
from nanoresearch.compute.budget import Budget, spent

pytestmark = pytest.mark.slow


def test_loop_keeps_an_improvement_on_slurm(store, tiny_task, tmp_path, slurm_cluster):
    tiny_task.resources.time_s = 60
    # SLURM reports whole seconds: a job under a second would be charged nothing, honestly.
    tiny_task.command = f"sleep 2 && {tiny_task.command}"
    provider = ScriptedProvider(proposal("a larger value scores higher", ("VALUE = 1", "VALUE = 6")))
    loop = make_loop(store, tiny_task, provider, Budget(trials=2), tmp_path, executor="slurm")
    best = loop.run()
    baseline, improved = store.trials(loop.run_id)
    assert baseline.executor == "slurm" and baseline.job_id
    assert (best.id, improved.score, improved.kept) == (improved.id, 6.0, True)
    used = spent(store, loop.user_id, loop.run_id)
    assert used.cpu_hours > 0 and used.wall_s > 0


def test_resume_reattaches_to_a_job_still_running(store, tiny_task, tmp_path, slurm_cluster):
    tiny_task.resources.time_s = 60
    first = make_loop(store, tiny_task, ScriptedProvider(), Budget(trials=1), tmp_path, executor="slurm")
    trial = first.prepare(None, "baseline", "as given", [])
    first.start(trial)  # the loop's process "dies" here with the job queued or running
    again = make_loop(store, tiny_task, ScriptedProvider(), Budget(trials=1), tmp_path, executor="slurm", reuse_run=True)
    again.recover_interrupted()
    recovered = store.trial(trial.id)
    assert (recovered.status, recovered.score, recovered.kept) == ("done", 1.0, True)
