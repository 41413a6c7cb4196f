"""The ray executor on a real local Ray cluster: outcomes, Ray's failures, resources, isolation,
and the trial loop running on it.

One private two-CPU cluster serves the whole module (starting one takes a few seconds). Each
test gets its own RayExecutor joined to it, closed afterwards: closing cancels the test's
leftover jobs and must leave the cluster running, since that executor did not start it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'nanoresearch[ray]'); CI installs it")

from test_local_executor import eventually, marker, running_with  # noqa: E402

from helpers import ScriptedProvider  # noqa: E402
from nanoresearch.compute.budget import Budget, spent  # noqa: E402
from nanoresearch.compute.executor import JobSpec, JobState, JobStatus, Resources, create_executor, log_paths  # noqa: E402
from nanoresearch.compute.local import visible_gpus  # noqa: E402
from nanoresearch.compute.ray_executor import LOOPBACK_SWITCH, RayExecutor, ray_failure  # noqa: E402
from nanoresearch.compute.sandbox import sandbox_status  # noqa: E402
from nanoresearch.errors import ConfigError, MissingDependencyError  # noqa: E402
from nanoresearch.trials.task import load_task  # noqa: E402
from trials.tiny import make_loop, proposal, write_tiny_task  # noqa: E402

pytestmark = pytest.mark.slow

GPUS = visible_gpus()  # the module's cluster offers these (CI has none; GPU machines some)
# Set while the cluster starts, so every Ray worker has it in its environment; jobs must not.
WORKER_SECRET = ("RAYTEST_SERVICE_TOKEN", "tok-should-not-leak-789")


@pytest.fixture(scope="module")
def cluster() -> Iterator[RayExecutor]:
    """The executor that started the module's cluster: it owns it, and stops it at the end."""
    if ray.is_initialized():
        pytest.fail("Ray is already initialised in this process: these tests need a cluster of their own")
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("RAY_ADDRESS", raising=False)  # a cluster of our own, even where one is configured
        patch.setenv(*WORKER_SECRET)
        owner = RayExecutor(num_cpus=2, num_gpus=len(GPUS))
        start = time.monotonic()
        owner.connect()
        print(f"local Ray cluster started in {time.monotonic() - start:.1f} s")
    yield owner
    owner.close()
    assert not ray.is_initialized()


@pytest.fixture
def make_executor(cluster: RayExecutor) -> Iterator[Callable[..., RayExecutor]]:
    """RayExecutors joined to the module's cluster, closed after the test even when it fails."""
    made: list[RayExecutor] = []

    def make(**options: object) -> RayExecutor:
        made.append(RayExecutor(**options))
        made[-1].connect()
        return made[-1]

    yield make
    for joined in made:
        joined.close()
    assert ray.is_initialized(), "closing an executor that joined a cluster must not stop it"


@pytest.fixture
def executor(make_executor: Callable[..., RayExecutor]) -> RayExecutor:
    return make_executor()


def spec(tmp_path: Path, command: str, name: str = "t", **resources: float) -> JobSpec:
    workdir = tmp_path / name
    workdir.mkdir(parents=True, exist_ok=True)
    return JobSpec(name=name, workdir=workdir, command=command, resources=Resources(**{"time_s": 20, "mem_gb": 1, **resources}))


def run(executor: RayExecutor, job: JobSpec, timeout_s: float = 60) -> JobStatus:
    status = executor.wait(executor.submit(job), timeout_s)
    assert status.state.finished, status
    return status


def wait_for(executor: RayExecutor, job_id: str, state: JobState, within_s: float = 30) -> bool:
    return eventually(lambda: executor.poll(job_id).state is state, within_s)


# --- outcomes ----------------------------------------------------------------------------------


def test_success_records_output_times_and_resources(executor: RayExecutor, tmp_path: Path) -> None:
    before = time.time()
    job = spec(tmp_path, "echo hello from $(pwd); python -c 'print(6 * 7)'", cpus=2)
    status = run(executor, job)
    assert status.state is JobState.COMPLETED and status.failure is None and status.exit_code == 0
    assert status.job_id.startswith("ray-") and (status.cpus, status.gpus) == (2, 0)
    assert before <= status.started_at <= status.ended_at <= time.time()
    logs = executor.logs(status.job_id)
    assert f"hello from {job.workdir}" in logs and "42" in logs
    assert log_paths(job.workdir)[0].read_text().startswith("hello")


def test_nonzero_exit_is_a_crash_with_the_stderr_tail(executor: RayExecutor, tmp_path: Path) -> None:
    status = run(executor, spec(tmp_path, "echo partial; echo 'Traceback: it broke' >&2; exit 3"))
    assert status.state is JobState.FAILED and status.failure == "crash" and status.exit_code == 3
    stdout, stderr = executor.logs(status.job_id).split("===== stderr")
    assert "partial" in stdout and "it broke" in stderr


def test_the_time_limit_ends_the_job_as_timeout(executor: RayExecutor, tmp_path: Path) -> None:
    mark = marker()
    status = run(executor, spec(tmp_path, f"sleep {mark} & sleep {mark}; echo next > after.txt", time_s=1))
    assert status.state is JobState.TIMEOUT and status.failure == "timeout", status
    assert 0.9 <= status.elapsed_s < 5
    assert "wall-clock limit" in executor.logs(status.job_id)
    assert running_with(mark) == [] and not (tmp_path / "t" / "after.txt").exists()


def test_allocating_100_gb_is_oom(executor: RayExecutor, tmp_path: Path) -> None:
    status = run(executor, spec(tmp_path, "python -c 'x = bytearray(100 * 2**30)'", mem_gb=1))
    assert status.state is JobState.OOM and status.failure == "oom", executor.logs(status.job_id)


@pytest.mark.parametrize("use_bwrap", [None, False], ids=["sandbox", "rlimits"])
def test_a_dead_worker_is_a_node_failure(make_executor, tmp_path: Path, use_bwrap: bool | None) -> None:
    if use_bwrap is None and not sandbox_status().sandboxed:
        pytest.skip(f"bubblewrap does not work here ({sandbox_status().problem}); CI installs it")
    executor = make_executor(use_bwrap=use_bwrap)
    mark = marker()
    job_id = executor.submit(spec(tmp_path, f"sleep {mark}"))
    assert eventually(lambda: running_with(mark)), "the job should be running"
    job_pid = running_with(mark)[0]
    cgroups = _job_cgroups(job_pid)
    try:
        os.kill(_ray_worker_above(job_pid), signal.SIGKILL)  # our own task's worker, as the kernel OOM killer would
        status = executor.wait(job_id, 30)
        assert status.state is JobState.NODE_FAIL and status.failure == "infra", status
        assert "worker" in status.detail
        if use_bwrap is None:  # bubblewrap's --die-with-parent takes the job along with its worker
            # 30 s, not 10: once, under a loaded full-suite run, the teardown took longer than 10 s.
            assert eventually(lambda: running_with(mark) == [], within_s=30), "the job must die with its worker"
    finally:
        # Without bubblewrap nothing outlives the worker to stop the job (see the module's
        # docstring); the test stops what is left of it. Killed workers leave empty cgroups.
        for pid in running_with(mark):
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        assert eventually(lambda: running_with(mark) == [], within_s=5)
        for folder in cgroups:
            with suppress(OSError):
                folder.rmdir()


def _job_cgroups(pid: int) -> list[Path]:
    """The job's own cgroup folders (named nanoresearch-local-...), found through one of its processes."""
    found = []
    for base in sandbox_status().cgroups.values():
        found += [folder for folder in base.glob("nanoresearch-local-*") if str(pid) in _procs(folder)]
    return found


def _procs(folder: Path) -> list[str]:
    try:
        return (folder / "cgroup.procs").read_text().split()
    except OSError:
        return []


def _ray_worker_above(pid: int) -> int:
    """The `ray::` worker process among the ancestors of pid."""
    while pid > 1:
        stat = Path(f"/proc/{pid}/stat").read_text()
        if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"ray::"):
            return pid
        pid = int(stat[stat.rindex(")") + 2 :].split()[1])
    raise AssertionError("no Ray worker above the job")


def test_ray_errors_map_to_job_states() -> None:
    errors = ray.exceptions
    assert ray_failure(ray, errors.TaskCancelledError(), cancelled=False)[0] is JobState.CANCELLED
    assert ray_failure(ray, errors.WorkerCrashedError(), cancelled=True)[0] is JobState.CANCELLED
    assert ray_failure(ray, errors.OutOfMemoryError("node low on memory"), cancelled=False)[0] is JobState.OOM
    assert ray_failure(ray, errors.WorkerCrashedError(), cancelled=False)[0] is JobState.NODE_FAIL
    assert ray_failure(ray, errors.NodeDiedError("node gone"), cancelled=False)[0] is JobState.NODE_FAIL
    assert ray_failure(ray, errors.RaySystemError("?"), cancelled=False)[0] is JobState.NODE_FAIL


# --- several jobs, cancelling, resources ------------------------------------------------------


def test_two_jobs_run_at_the_same_time(executor: RayExecutor, tmp_path: Path) -> None:
    # Long jobs, seen running together: short ones timed against each other ran one after the other
    # whenever a loaded machine started the second worker late.
    ids = [executor.submit(spec(tmp_path, "sleep 60", name)) for name in "ab"]
    assert eventually(lambda: all(executor.poll(i).state is JobState.RUNNING for i in ids), 30)
    for job_id in ids:
        executor.cancel(job_id)


@pytest.mark.parametrize("use_bwrap", [None, False], ids=["sandbox", "rlimits"])
def test_cancel_stops_only_our_own_job(make_executor, tmp_path: Path, use_bwrap: bool | None) -> None:
    executor, other = make_executor(use_bwrap=use_bwrap), make_executor()  # other: another user of the cluster
    mark = marker()
    victim = executor.submit(spec(tmp_path, f"sleep {mark} & sleep {mark}", "victim"))
    theirs = other.submit(spec(tmp_path, "sleep 2; echo survived", "theirs"))
    assert wait_for(executor, victim, JobState.RUNNING) and eventually(lambda: len(running_with(mark)) >= 2)
    executor.cancel(theirs)  # not ours: ignored
    start = time.monotonic()
    executor.cancel(victim)
    assert time.monotonic() - start < 5, "the task stops its job itself, well before the worker would be killed"
    status = executor.poll(victim)
    assert status.state is JobState.CANCELLED and status.failure == "infra" and status.started_at
    assert running_with(mark) == [], "the job and its background child are gone when cancel returns"
    assert executor.poll(theirs).state is JobState.LOST  # unknown to this executor, never touched
    final = other.wait(theirs, 30)
    assert final.state is JobState.COMPLETED and "survived" in other.logs(theirs)


def test_cancelling_a_job_that_waits_for_cpus(executor: RayExecutor, tmp_path: Path) -> None:
    blocker = executor.submit(spec(tmp_path, "sleep 30", "blocker", cpus=2))
    assert wait_for(executor, blocker, JobState.RUNNING)
    queued = executor.submit(spec(tmp_path, "echo ran > ran.txt", "queued"))
    assert executor.poll(queued).state is JobState.PENDING
    executor.cancel(queued)
    executor.cancel(blocker)
    assert executor.poll(queued).state is JobState.CANCELLED and executor.poll(queued).started_at is None
    assert not (tmp_path / "queued" / "ran.txt").exists()


def test_a_workdir_the_worker_cannot_find_is_a_node_failure(executor: RayExecutor, tmp_path: Path) -> None:
    # What a cluster without a shared filesystem looks like: the folder is not there on the node.
    blocker = executor.submit(spec(tmp_path, "sleep 30", "blocker", cpus=2))
    assert wait_for(executor, blocker, JobState.RUNNING)
    job = spec(tmp_path, "echo ran", "gone")
    queued = executor.submit(job)
    job.workdir.rmdir()  # while the job waits for CPUs
    executor.cancel(blocker)
    status = executor.wait(queued, 30)
    assert status.state is JobState.NODE_FAIL and status.failure == "infra", status
    assert "could not run the job" in status.detail and "not a folder" in status.detail
    assert "node_fail" in executor.logs(queued)


def test_jobs_get_their_cpus_and_wait_for_free_ones(executor: RayExecutor, tmp_path: Path) -> None:
    # The cluster has 2 CPUs: two one-CPU jobs run together, a third waits until one of them ends.
    # (Long jobs, ended by cancelling: short ones could end before a loaded machine polled the third waiting.)
    ids = [executor.submit(spec(tmp_path, "sleep 60", name, cpus=1)) for name in "abc"]
    assert eventually(lambda: sum(executor.poll(i).state is JobState.RUNNING for i in ids) == 2, 30)
    (waiting,) = [i for i in ids if executor.poll(i).state is JobState.PENDING]
    assert "cpus=1" in executor.poll(waiting).detail
    executor.cancel(next(i for i in ids if i != waiting))
    assert wait_for(executor, waiting, JobState.RUNNING)
    for job_id in ids:
        executor.cancel(job_id)


def test_the_job_is_told_how_many_cpus_it_has(executor: RayExecutor, tmp_path: Path) -> None:
    status = run(executor, spec(tmp_path, "echo threads=$OMP_NUM_THREADS gpus=[$CUDA_VISIBLE_DEVICES]", cpus=2))
    assert "threads=2 gpus=[]" in executor.logs(status.job_id)


@pytest.mark.skipif(not GPUS, reason="no GPU on this machine")
def test_a_gpu_job_gets_the_gpu_ray_gave_its_task(executor: RayExecutor, tmp_path: Path) -> None:
    status = run(executor, spec(tmp_path, "echo gpus=[$CUDA_VISIBLE_DEVICES]; ls /dev/nvidia*", gpus=1))
    logs = executor.logs(status.job_id)
    assert status.state is JobState.COMPLETED and status.gpus == 1, logs
    assert any(f"gpus=[{gpu}]" in logs for gpu in GPUS) and "/dev/nvidiactl" in logs, logs


def test_what_the_local_cluster_cannot_hold_is_refused(cluster: RayExecutor, tmp_path: Path) -> None:
    for resources in ({"cpus": 3}, {"gpus": len(GPUS) + 1}, {"mem_gb": 10_000}):
        with pytest.raises(ConfigError, match="local Ray cluster"):
            cluster.submit(spec(tmp_path, "true", **resources))


# --- isolation ---------------------------------------------------------------------------------


def test_secrets_of_the_worker_never_reach_the_job(executor: RayExecutor, tmp_path: Path) -> None:
    name, value = WORKER_SECRET
    seen_by_worker = ray.get(ray.remote(lambda: os.environ.get(name)).remote())
    assert seen_by_worker == value, "the worker has the secret, so the test means something"
    job = spec(tmp_path, "env; cat /proc/self/environ")
    job.env = {"MY_SETTING": "visible"}
    status = run(executor, job)
    logs = executor.logs(status.job_id)
    assert status.state is JobState.COMPLETED and "MY_SETTING=visible" in logs
    assert value not in logs and name not in logs and "RAY_" not in logs


def test_secrets_cannot_be_passed_through_the_job_environment(executor: RayExecutor, tmp_path: Path) -> None:
    job = spec(tmp_path, "true")
    job.env = {"OPENAI_API_KEY": "x"}
    with pytest.raises(ConfigError, match="secret"):
        executor.submit(job)


def test_the_job_runs_in_the_sandbox(executor: RayExecutor, tmp_path: Path) -> None:
    if not sandbox_status().sandboxed:
        pytest.skip(f"bubblewrap does not work here ({sandbox_status().problem}); CI installs it")
    outside = Path(__file__).resolve().parent / f"ray-escape-{uuid.uuid4().hex}"
    command = f"(echo x > {outside} && echo WROTE) 2>/dev/null || echo REFUSED; ls /proc | grep -c '^[0-9]'"
    try:
        logs = executor.logs(run(executor, spec(tmp_path, command)).job_id)
    finally:
        outside.unlink(missing_ok=True)
    assert "REFUSED" in logs and int(logs.split("\n")[2]) <= 5  # writes outside the workdir refused, own PID namespace


def test_the_local_cluster_listens_on_loopback_only(cluster: RayExecutor) -> None:
    assert [node["NodeManagerAddress"] for node in ray.nodes()] == ["127.0.0.1"]


# --- plugging in -------------------------------------------------------------------------------


def test_joining_through_ray_address_leaves_the_cluster_running(executor: RayExecutor, tmp_path: Path) -> None:
    workdir = tmp_path / "joined"
    workdir.mkdir()
    script = textwrap.dedent(
        f"""\
        from pathlib import Path
        from nanoresearch.compute.executor import JobSpec
        from nanoresearch.compute.ray_executor import RayExecutor
        executor = RayExecutor()
        job_id = executor.submit(JobSpec(name="joined", workdir=Path({str(workdir)!r}), command="echo joined"))
        print(executor.wait(job_id, 60).state.value, executor.owns_cluster)
        executor.close()
        """
    )
    # Our cluster listens on loopback only; another process reaches it in Ray's single-machine mode.
    env = {**os.environ, "RAY_ADDRESS": ray.get_runtime_context().gcs_address, LOOPBACK_SWITCH: "0"}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=90)
    assert result.stdout.split() == ["completed", "False"], result.stderr[-3000:]
    assert "joined" in log_paths(workdir)[0].read_text()
    assert run(executor, spec(tmp_path, "true")).state is JobState.COMPLETED, "our cluster must still run jobs"


def test_registered_as_ray(settings, cluster: RayExecutor) -> None:
    created = create_executor("ray", settings)
    assert isinstance(created, RayExecutor) and created.name == "ray"


def test_missing_ray_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` sees when it is not installed
    with pytest.raises(MissingDependencyError) as caught:
        RayExecutor()
    assert caught.value.hint == "pip install 'nanoresearch[ray]'"


def test_the_trial_loop_keeps_an_improvement_made_on_ray(store, tmp_path, cluster: RayExecutor) -> None:
    task = load_task(write_tiny_task(tmp_path / "tiny-task"))
    provider = ScriptedProvider(proposal("a larger value scores higher", ("VALUE = 1", "VALUE = 5")))
    loop = make_loop(store, task, provider, Budget(trials=2), tmp_path, executor="ray")
    assert isinstance(loop.executor, RayExecutor)
    best = loop.run()
    baseline, improved = store.trials(loop.run_id)
    assert (baseline.score, baseline.kept, baseline.executor) == (1.0, True, "ray")
    assert (improved.score, improved.kept, improved.job_id[:4]) == (5.0, True, "ray-")
    assert best.id == improved.id and "working" in improved.logs_tail
    used = spent(store, loop.user_id, loop.run_id)
    assert used.cpu_hours > 0 and used.wall_s > 0
