"""The SLURM executor: its sbatch script pinned by golden files, and every job outcome produced
for real by slurmctld/slurmd on loopback (tests/compute/slurm_cluster.py).

The slow tests need root and `slurm-wlm munge`; CI has both. Order matters only at the end:
the test that stops the controller runs last and starts it again.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from compute.slurm_cluster import LocalCluster
from nanoresearch.compute.executor import JobSpec, JobState, JobStatus, Resources, create_executor, log_paths
from nanoresearch.compute.slurm import (
    SlurmExecutor,
    SlurmUnavailableError,
    _gpu_count,
    _Owned,
    _Record,
    sbatch_script,
)
from nanoresearch.errors import MissingDependencyError, UserError

GOLDEN = Path(__file__).parent / "golden"
slow = pytest.mark.slow


def spec(tmp_path: Path, command: str, name: str = "t", **resources: object) -> JobSpec:
    workdir = tmp_path / name
    workdir.mkdir(parents=True, exist_ok=True)
    small = {"mem_gb": 0.25, "time_s": 120, **resources}
    return JobSpec(name=name, workdir=workdir, command=command, resources=Resources(**small))


def wait_for_state(executor: SlurmExecutor, job_id: str, states: set[JobState], timeout_s: float = 60,
                   detail: str = "") -> JobStatus:
    deadline = time.monotonic() + timeout_s
    while True:
        status = executor.poll(job_id)
        if (status.state in states and detail in status.detail) or time.monotonic() > deadline:
            return status
        time.sleep(0.5)


# --- without daemons ---------------------------------------------------------------------------


def normalised(text: str, tmp_path: Path) -> str:
    """Volatile parts of a generated script replaced by placeholders."""
    text = text.replace(str(tmp_path), "<TMP>").replace(sys.executable, "<PYTHON>")
    text = text.replace(str(Path(sys.executable).parent), "<VENV_BIN>")
    text = re.sub(r"^export HOME=.*$", "export HOME=<HOME>", text, flags=re.M)
    return re.sub(r"nanoresearch:[0-9a-f]{32}", "nanoresearch:<UUID>", text)


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{name} changed; rerun with UPDATE_GOLDEN=1 if intended"


def test_sbatch_script_for_a_cpu_job_matches_golden(tmp_path: Path) -> None:
    job = JobSpec(name="trial 7/baseline", workdir=tmp_path / "trial-7", command="python train.py --epochs 3")
    check_golden("sbatch_cpu.sh", normalised(sbatch_script(job, "nanoresearch:" + "0" * 32), tmp_path))


def test_sbatch_script_for_a_gpu_job_matches_golden(tmp_path: Path) -> None:
    job = JobSpec(
        name="lora-sweep", workdir=tmp_path / "trial-8", command='python train.py && echo "done: $EPOCHS"',
        resources=Resources(cpus=8, gpus=2, mem_gb=31.5, time_s=3601, max_file_mb=64),
        env={"EPOCHS": "3", "RUN_NOTE": "a b $HOME"},
    )
    text = sbatch_script(job, "nanoresearch:" + "1" * 32, partition="gpu", extra_args=["--account=lab"])
    check_golden("sbatch_gpu.sh", normalised(text, tmp_path))


def test_time_limit_is_given_in_seconds_and_never_defaults(tmp_path: Path) -> None:
    def limit(seconds: int) -> str:
        job = JobSpec(name="t", workdir=tmp_path, command="true", resources=Resources(time_s=seconds))
        return re.search(r"--time=(\S+)", sbatch_script(job, "nanoresearch:x")).group(1)

    assert [limit(s) for s in (1, 23, 60, 61, 3600)] == ["0:01", "0:23", "1:00", "1:01", "60:00"]


def test_bad_environment_names_are_refused(tmp_path: Path) -> None:
    job = JobSpec(name="t", workdir=tmp_path, command="true", env={"BAD NAME": "x"})
    with pytest.raises(UserError, match="not a valid environment variable"):
        sbatch_script(job, "nanoresearch:x")


def fake_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **scripts: str) -> None:
    """Stand-ins for SLURM commands (as submitit's tests do), first on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, body in scripts.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")


def test_submit_writes_the_script_beside_the_logs_and_parses_the_job_id(tmp_path: Path, monkeypatch) -> None:
    fake_commands(tmp_path, monkeypatch, sbatch=f"echo \"$@\" > {tmp_path}/args; echo '4242;lab'",
                  squeue="exit 1")
    executor = SlurmExecutor(partition="gpu")
    job = spec(tmp_path, "echo hi", name="w")
    stdout, _ = log_paths(job.workdir)
    stdout.parent.mkdir()
    stdout.write_text("left over from an earlier job")

    assert executor.submit(job) == "4242"
    script = SlurmExecutor.script_path(job.workdir)
    assert (tmp_path / "args").read_text().split() == ["--parsable", str(script)]
    assert script.read_text() == sbatch_script(job, executor.marker("4242"), "gpu")
    assert stdout.read_text() == ""


def test_missing_sbatch_is_a_clear_error_with_the_install_hint(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MissingDependencyError) as caught:
        SlurmExecutor().submit(spec(tmp_path, "true"))
    assert "sbatch not found" in caught.value.message and "apt-get install" in caught.value.hint


def test_an_earlier_job_with_the_same_id_is_not_taken_for_ours(tmp_path: Path, monkeypatch) -> None:
    # Job ids get reused. With the controller down, only the completion log answers, and it
    # holds a job 5 that ended (t=110) before our job 5 was submitted (t=200).
    unreachable = "echo 'slurm_load_jobs error: Unable to contact slurm controller (connect failure)' >&2; exit 1"
    old_row = "5|FAILED|7:0|100|110|1||/w|nr-old"
    fake_commands(tmp_path, monkeypatch, squeue=unreachable, scontrol=unreachable,
                  sacct=f'[ "$1" = -c ] && echo "{old_row}" && cat {tmp_path}/more 2>/dev/null')
    executor = SlurmExecutor()
    executor._owned["5"] = _Owned("nanoresearch:ours", tmp_path, cpus=1, gpus=0, submitted_at=200)

    assert executor.poll("5").state is JobState.LOST

    (tmp_path / "more").write_text("5|COMPLETED|0:0|210|220|1||/w|nr-t\n")
    assert (executor.poll("5").state, executor.poll("5").started_at) == (JobState.COMPLETED, 210)


def test_cancel_refuses_job_ids_it_did_not_submit() -> None:
    with pytest.raises(UserError, match="did not submit"):
        SlurmExecutor().cancel("12345")


def test_registry_builds_it_from_settings(settings) -> None:
    executor = create_executor("slurm", settings)
    assert isinstance(executor, SlurmExecutor) and executor.partition == "debug"


@pytest.mark.parametrize("text, gpus", [
    ("gres:gpu:2", 2), ("gres/gpu:a100:3", 3), ("cpu=4,mem=8G,gres/gpu=2,node=1", 2), ("gpu:1", 1),
    ("N/A", None), ("cpu=1,mem=1G", 0),
])
def test_gpu_counts_are_read_from_gres_and_tres_strings(text: str, gpus: int | None) -> None:
    assert _gpu_count(text) == gpus


def test_preempted_reads_pending_while_requeued_and_final_in_the_completion_log() -> None:
    executor = SlurmExecutor()
    live = _Record("scontrol", "PREEMPTED", end=time.time(), restarts=1)
    logged = _Record("sacct -c", "PREEMPTED", end=time.time(), exit_code="0:0")
    assert (executor._status("1", live).state, executor._status("1", live).detail) == (
        JobState.PENDING, "preempted; being requeued")
    assert executor._status("1", logged).state is JobState.PREEMPTED


def test_failed_job_whose_stderr_reports_the_memory_limit_is_oom(tmp_path: Path) -> None:
    _, stderr = log_paths(tmp_path / "w")
    stderr.parent.mkdir()
    stderr.write_text("slurmstepd: error: Exceeded job memory limit\n")
    record = _Record("scontrol", "FAILED", exit_code="0:9", start=1.0, end=2.0, workdir=tmp_path / "w")
    status = SlurmExecutor()._status("1", record)
    assert (status.state, status.failure, status.exit_code) == (JobState.OOM, "oom", -9)


def test_scripts_are_executable() -> None:
    script = Path(__file__).resolve().parents[2] / "scripts" / "slurm-local.sh"
    assert os.access(script, os.X_OK)
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0


# --- against slurmctld and slurmd on loopback --------------------------------------------------


@slow
def test_success_reports_times_and_logs(slurm_cluster: LocalCluster, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-must-not-leak")
    executor = SlurmExecutor(poll_interval_s=0.5)
    job = spec(tmp_path, "echo hello from $SLURM_JOB_ID; env > env.txt; echo to-stderr >&2", cpus=2)
    job.env["EPOCHS"] = "3"
    job_id = executor.submit(job)

    status = executor.wait(job_id, timeout_s=60)

    assert status.state is JobState.COMPLETED and status.exit_code == 0 and status.failure is None
    assert status.started_at and status.ended_at and status.started_at <= status.ended_at
    assert (status.cpus, status.gpus) == (2, 0)
    logs = executor.logs(job_id)
    assert f"hello from {job_id}" in logs and "--- stderr ---" in logs and "to-stderr" in logs
    env = dict(line.split("=", 1) for line in (job.workdir / "env.txt").read_text().splitlines() if "=" in line)
    assert env["EPOCHS"] == "3" and env["OMP_NUM_THREADS"] == "2" and env["CUDA_VISIBLE_DEVICES"] == ""
    assert env["PATH"].startswith(str(Path(sys.executable).parent))
    # Nothing of the submitter's or the login environment, only SLURM's variables and ours.
    ours = {"PATH", "HOME", "LANG", "PYTHONUNBUFFERED", "EPOCHS", "CUDA_VISIBLE_DEVICES", "TMPDIR", "PWD",
            "SHLVL", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"}
    assert {name for name in env if not name.startswith(("SLURM_", "SLURMD_"))} <= ours


@slow
def test_non_zero_exit_is_failed_with_its_exit_code(slurm_cluster: LocalCluster, tmp_path: Path) -> None:
    executor = SlurmExecutor(poll_interval_s=0.5)
    job_id = executor.submit(spec(tmp_path, "echo about to fail >&2; exit 3"))

    status = executor.wait(job_id, timeout_s=60)

    assert (status.state, status.exit_code, status.failure) == (JobState.FAILED, 3, "crash")
    assert "exit code 3" in status.detail and "about to fail" in executor.logs(job_id)


@slow
def test_gpu_job_gets_a_device_and_reports_its_gpus(slurm_cluster: LocalCluster, tmp_path: Path) -> None:
    executor = SlurmExecutor(poll_interval_s=0.5)
    job_id = executor.submit(spec(tmp_path, "echo visible=$CUDA_VISIBLE_DEVICES; sleep 5", gpus=1))

    running = wait_for_state(executor, job_id, {JobState.RUNNING})
    status = executor.wait(job_id, timeout_s=60)

    assert running.state is JobState.RUNNING and running.gpus == 1
    assert status.state is JobState.COMPLETED and status.gpus == 1
    assert re.search(r"visible=\d", executor.logs(job_id))
    assert "#SBATCH --gres=gpu:1" in SlurmExecutor.script_path(tmp_path / "t").read_text()


@slow
def test_job_over_its_memory_limit_is_oom(slurm_cluster: LocalCluster, tmp_path: Path) -> None:
    # SLURM's own enforcement: jobacct_gather samples every second and kills the job (no cgroups).
    allocate = "python -c 'import time; x = b\"1\" * (400 << 20); time.sleep(60)'"
    executor = SlurmExecutor(poll_interval_s=0.5)
    job_id = executor.submit(spec(tmp_path, allocate, mem_gb=0.1))

    status = executor.wait(job_id, timeout_s=60)

    assert (status.state, status.failure) == (JobState.OOM, "oom"), status
    assert "memory limit" in status.detail


@slow
def test_time_limit_ends_as_timeout(slurm_cluster: LocalCluster, tmp_path: Path) -> None:
    executor = SlurmExecutor(poll_interval_s=1)
    job = spec(tmp_path, "sleep 300", time_s=60)
    job_id = executor.submit(job)
    assert "#SBATCH --time=1:00\n" in SlurmExecutor.script_path(job.workdir).read_text()

    # SLURM checks time limits only every 30 s or so; the executor's watch stops the job at its limit.
    status = executor.wait(job_id, timeout_s=180)

    assert (status.state, status.failure) == (JobState.TIMEOUT, "timeout"), status
    assert 60 <= status.elapsed_s <= 65  # not SLURM's 60-130 s


@slow
def test_cancel_stops_own_jobs_only(slurm_cluster: LocalCluster, tmp_path: Path) -> None:
    foreign = slurm_cluster.sbatch("--job-name=someone-else", "--mem=100M", "--output=/dev/null", "--wrap=sleep 120")
    disguised = slurm_cluster.sbatch("--job-name=nr-not-ours", "--mem=100M", "--output=/dev/null", "--wrap=sleep 120")
    executor = SlurmExecutor(poll_interval_s=0.5)
    try:
        own = executor.submit(spec(tmp_path, "sleep 120"))
        assert wait_for_state(executor, own, {JobState.RUNNING}).state is JobState.RUNNING

        for job_id in (foreign, disguised):
            with pytest.raises(UserError, match="did not submit"):
                executor.cancel(job_id)
        with pytest.raises(UserError, match="refusing to attach"):
            executor.attach(foreign)
        with pytest.raises(UserError, match="comment"):
            executor.attach(disguised)  # the right name prefix, but no marker
        with pytest.raises(UserError, match="did not submit"):
            SlurmExecutor().cancel(own)  # another executor has not attached it

        executor.cancel(own)
        status = executor.wait(own, timeout_s=60)

        assert (status.state, status.failure) == (JobState.CANCELLED, "infra")
        assert slurm_cluster.state(foreign) == "RUNNING" and slurm_cluster.state(disguised) == "RUNNING"
    finally:
        slurm_cluster.scancel(foreign)
        slurm_cluster.scancel(disguised)


@slow
def test_attach_resumes_tracking_a_job_from_an_earlier_process(slurm_cluster: LocalCluster, tmp_path: Path) -> None:
    first = SlurmExecutor(poll_interval_s=0.5)
    job_id = first.submit(spec(tmp_path, "sleep 60; echo finished"))
    marker = first.marker(job_id)

    later = SlurmExecutor(poll_interval_s=0.5)  # as after a restart: knows only the id and the marker
    with pytest.raises(UserError, match="comment"):
        later.attach(job_id, marker="nanoresearch:" + "f" * 32)
    assert later.attach(job_id, marker=marker).state in (JobState.PENDING, JobState.RUNNING)
    later.cancel(job_id)

    assert later.wait(job_id, timeout_s=60).state is JobState.CANCELLED


@slow
def test_preempted_job_is_requeued_and_tracked_to_the_end(slurm_cluster: LocalCluster, tmp_path: Path) -> None:
    # The whole node (4 CPUs) in `debug`; a job in `urgent` (higher PriorityTier) then preempts
    # it and SLURM requeues it (PreemptMode=REQUEUE). The second attempt finishes at once.
    command = 'if [ "${SLURM_RESTART_COUNT:-0}" -gt 0 ]; then echo attempt 2; else echo attempt 1; sleep 300; fi'
    executor = SlurmExecutor(poll_interval_s=0.5)
    job_id = executor.submit(spec(tmp_path, command, cpus=4))
    # RUNNING comes with the allocation; wait until the first attempt's script really runs.
    deadline = time.monotonic() + 60
    while "attempt 1" not in executor.logs(job_id) and time.monotonic() < deadline:
        time.sleep(0.5)

    urgent = slurm_cluster.sbatch("--partition=urgent", "--cpus-per-task=4", "--mem=100M", "--output=/dev/null",
                                  "--wrap=sleep 2")
    try:
        requeued = wait_for_state(executor, job_id, {JobState.PENDING}, timeout_s=30, detail="requeued 1x")
        assert requeued.state is JobState.PENDING and "requeued 1x" in requeued.detail, requeued

        status = executor.wait(job_id, timeout_s=120)
    finally:
        slurm_cluster.scancel(urgent)

    assert status.state is JobState.COMPLETED, status
    logs = executor.logs(job_id)
    assert "attempt 1" in logs and "attempt 2" in logs and "DUE TO PREEMPTION" in logs


@slow
def test_job_finished_long_ago_is_found_in_the_completion_log(slurm_cluster: LocalCluster, tmp_path: Path) -> None:
    executor = SlurmExecutor(poll_interval_s=0.5)
    job_id = executor.submit(spec(tmp_path, "exit 7"))
    finished = executor.wait(job_id, timeout_s=60)
    assert finished.state is JobState.FAILED

    # What MinJobAge (300 s) does to every job, made quick: the controller forgets it.
    with slurm_cluster.min_job_age(2):
        deadline = time.monotonic() + 60
        while slurm_cluster.state(job_id) and time.monotonic() < deadline:
            time.sleep(1)
        assert slurm_cluster.state(job_id) == "", "slurmctld did not purge the job"

    later = SlurmExecutor()  # a new process: nothing cached, only sacct -c still knows the job
    status = later.attach(job_id)

    assert (status.state, status.exit_code) == (JobState.FAILED, 7)
    assert (status.started_at, status.ended_at) == (finished.started_at, finished.ended_at)


@slow
def test_unknown_job_is_lost(slurm_cluster: LocalCluster) -> None:
    status = SlurmExecutor().poll("987654")
    assert (status.state, status.failure) == (JobState.LOST, "infra") and "knows no job" in status.detail, status


@slow
def test_controller_down_reads_lost_then_the_job_is_found_again(slurm_cluster: LocalCluster, tmp_path: Path) -> None:
    # Runs last: it stops slurmctld (slurmd and the job keep running) and starts it again.
    executor = SlurmExecutor(poll_interval_s=0.5, controller_grace_s=0)
    job_id = executor.submit(spec(tmp_path, "sleep 120"))
    assert wait_for_state(executor, job_id, {JobState.RUNNING}).state is JobState.RUNNING

    slurm_cluster.stop_controller()
    try:
        status = executor.wait(job_id, timeout_s=60)
        assert (status.state, status.failure) == (JobState.LOST, "infra")
        assert "controller does not answer" in status.detail and "Unable to contact" in status.detail
        with pytest.raises(SlurmUnavailableError, match="cannot submit"):
            executor.submit(spec(tmp_path, "true", name="second"))
    finally:
        slurm_cluster.script("start")

    assert executor.poll(job_id).state is JobState.RUNNING  # LOST was about the controller, not the job
    executor.cancel(job_id)
    assert executor.wait(job_id, timeout_s=60).state is JobState.CANCELLED

