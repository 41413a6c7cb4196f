"""A trial's share of a wall budget is an absolute deadline: the wall clock runs from the run's start,
so the time a job waits for a node (SLURM's queue, Ray's placement) is spent too. Every executor stops
a job at its deadline, pending ones included, and a trial stopped by its budget reads budget_overrun,
also when a resumed loop re-attached to it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from helpers import ScriptedProvider
from nanoresearch.compute.budget import Budget, Spent, plan_trial
from nanoresearch.compute.executor import JobSpec, JobState, Resources
from nanoresearch.compute.local import LocalExecutor
from nanoresearch.compute.slurm import SlurmExecutor
from nanoresearch.trials.task import load_task
from trials.tiny import make_loop, write_tiny_task


def job(tmp_path: Path, name: str, command: str, deadline: float | None = None, **resources: object) -> JobSpec:
    workdir = tmp_path / name
    workdir.mkdir()
    return JobSpec(name=name, workdir=workdir, command=command, resources=Resources(mem_gb=0.5, **resources),
                   deadline=deadline)


def test_a_wall_budget_gives_the_trial_a_deadline_at_the_end_of_what_is_left():
    before = time.time()
    plan = plan_trial(Resources(time_s=600), {}, Budget(wall_s=100), Spent(wall_s=40), [])
    assert plan.fits and plan.deadline is not None
    assert before + 60 <= plan.deadline <= time.time() + 60
    assert plan_trial(Resources(time_s=600), {}, Budget(cpu_hours=1), Spent(), []).deadline is None


def test_a_local_job_is_stopped_at_its_deadline_before_its_time_limit(tmp_path):
    executor = LocalExecutor(use_bwrap=False)
    job_id = executor.submit(job(tmp_path, "slow", "sleep 60", deadline=time.time() + 1, time_s=60))
    status = executor.wait(job_id, 30)
    assert status.state is JobState.TIMEOUT and "deadline" in status.detail, status


@pytest.mark.slow
def test_a_slurm_job_still_waiting_for_a_node_at_its_deadline_is_stopped_and_never_starts(tmp_path, slurm_cluster):
    executor = SlurmExecutor()
    blocker = executor.submit(job(tmp_path, "blocker", "sleep 60", cpus=4, time_s=120))  # the node's every CPU
    try:
        queued = executor.submit(job(tmp_path, "queued", "true", deadline=time.time() + 2, time_s=60))
        status = executor.wait(queued, 60)
        assert status.state is JobState.TIMEOUT and status.started_at is None, status
        assert status.detail.startswith("not started") and "deadline" in status.detail
    finally:
        executor.cancel(blocker)


@pytest.mark.slow
def test_a_running_slurm_job_is_stopped_at_its_deadline(tmp_path, slurm_cluster):
    executor = SlurmExecutor()
    job_id = executor.submit(job(tmp_path, "running", "sleep 60", deadline=time.time() + 3, time_s=60))
    status = executor.wait(job_id, 60)
    assert status.state is JobState.TIMEOUT and "deadline" in status.detail, status


@pytest.mark.slow
def test_a_ray_job_not_placed_by_its_deadline_is_stopped_and_never_starts(tmp_path, monkeypatch):
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'nanoresearch[ray]'); CI installs it")
    if ray.is_initialized():
        pytest.fail("Ray is already initialised in this process: this test starts a cluster of its own")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    from nanoresearch.compute.ray_executor import RayExecutor

    with RayExecutor(num_cpus=1, use_bwrap=False) as executor:
        blocker = executor.submit(job(tmp_path, "blocker", "sleep 60", time_s=120))  # the cluster's one CPU
        queued = executor.submit(job(tmp_path, "queued", "true", deadline=time.time() + 2, time_s=60))
        status = executor.wait(queued, 60)
        assert status.state is JobState.TIMEOUT and status.started_at is None, status
        assert status.detail.startswith("not started") and "deadline" in status.detail
        executor.cancel(blocker)


@pytest.mark.slow
def test_a_reattached_trial_stopped_at_its_budget_share_is_labelled_budget_overrun(store, tmp_path, slurm_cluster):
    task = load_task(write_tiny_task(tmp_path / "tiny-task"))
    task.resources.time_s = 60
    task.command = f"sleep 30 && {task.command}"
    budget = Budget(cpu_hours=4 / 3600)  # the trial's share: 4 s of its 60 s limit
    first = make_loop(store, task, ScriptedProvider(), budget, tmp_path, executor="slurm")
    trial = first.prepare(None, "baseline", "as given", [])
    first.start(trial)  # the loop's process "dies" here with the job queued or running
    again = make_loop(store, task, ScriptedProvider(), budget, tmp_path, executor="slurm", reuse_run=True)
    again.recover_interrupted()
    recovered = store.trial(trial.id)
    # Before, the resumed loop had lost the plan and read the stop at the share as the task's own timeout.
    assert (recovered.status, recovered.failure) == ("failed", "budget_overrun"), recovered.detail
