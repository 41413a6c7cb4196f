"""The local executor with real processes: outcomes, limits, isolation, and killing only its own jobs.

Most tests run twice: under bubblewrap ("bwrap") and with rlimits/cgroups only ("rlimits"), the
fallback for machines without bwrap. The bwrap runs skip, saying why, where bwrap does not work.
Jobs mark their processes with a unique `sleep` argument so a test can look in /proc for
anything the job left behind.
"""

from __future__ import annotations

import socket
import sys
import time
import uuid
from pathlib import Path

import pytest

from nanoresearch.compute import sandbox
from nanoresearch.compute.executor import JobSpec, JobState, Resources, create_executor
from nanoresearch.compute.local import LocalExecutor
from nanoresearch.compute.sandbox import SandboxStatus, run_sandboxed, sandbox_status
from nanoresearch.errors import ConfigError

STATUS = sandbox_status()
needs_bwrap = pytest.mark.skipif(
    not STATUS.sandboxed, reason=f"bubblewrap does not work here ({STATUS.problem}); CI installs it"
)
needs_pids_cgroup = pytest.mark.skipif(
    "pids" not in STATUS.cgroups, reason="no writable pids cgroup: a real fork bomb could not be contained"
)
needs_memory_cgroup = pytest.mark.skipif(
    "memory" not in STATUS.cgroups, reason="no writable memory cgroup: shared memory is not limited"
)
MODES = [pytest.param("bwrap", marks=needs_bwrap), "rlimits"]


@pytest.fixture(params=MODES)
def executor(request: pytest.FixtureRequest) -> LocalExecutor:
    return LocalExecutor(use_bwrap=request.param == "bwrap")


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    folder = tmp_path / "work"
    folder.mkdir()
    return folder


def spec(workdir: Path, command: str, **resources: float) -> JobSpec:
    return JobSpec(name="t", workdir=workdir, command=command, resources=Resources(**{"time_s": 20, **resources}))


def run(executor: LocalExecutor, job: JobSpec, timeout_s: float = 30):
    status = executor.wait(executor.submit(job), timeout_s)
    assert status.state.finished, status
    return status


def marker() -> str:
    """A unique `sleep` duration: lets a test find the job's processes in /proc."""
    return f"{1000 + uuid.uuid4().int % 10**6}.{uuid.uuid4().int % 10**6}"


def eventually(check, within_s: float = 10.0) -> bool:
    deadline = time.monotonic() + within_s
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def running_with(mark: str) -> list[int]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if mark.encode() in cmdline.read_bytes():
                found.append(int(cmdline.parent.name))
        except OSError:
            pass
    return found


# --- outcomes ----------------------------------------------------------------------------------


def test_success_records_output_times_and_resources(executor: LocalExecutor, workdir: Path) -> None:
    before = time.time()
    status = run(executor, spec(workdir, "echo hello from $(pwd); python -c 'print(6 * 7)'", cpus=2))
    assert status.state is JobState.COMPLETED and status.failure is None and status.exit_code == 0
    assert before <= status.started_at <= status.ended_at <= time.time()
    assert status.cpus == 2 and status.gpus == 0
    logs = executor.logs(status.job_id)
    assert f"hello from {workdir}" in logs and "42" in logs  # workdir is at its own path inside


def test_nonzero_exit_is_a_crash_with_the_stderr_tail(executor: LocalExecutor, workdir: Path) -> None:
    status = run(executor, spec(workdir, "echo partial; echo 'Traceback: it broke' >&2; exit 3"))
    assert status.state is JobState.FAILED and status.failure == "crash" and status.exit_code == 3
    stdout, stderr = executor.logs(status.job_id).split("===== stderr")
    assert "partial" in stdout and "it broke" in stderr


def test_logs_keep_the_last_200_lines_of_each_stream(executor: LocalExecutor, workdir: Path) -> None:
    status = run(executor, spec(workdir, "seq 1 500; seq 1001 1500 >&2"))
    stdout, stderr = executor.logs(status.job_id).split("===== stderr")
    assert "\n500" in stdout and "\n300\n" not in stdout and "\n301\n" in stdout
    assert "\n1500" in stderr and "\n1300\n" not in stderr


def test_a_job_nobody_polls_is_killed_at_its_time_limit(executor: LocalExecutor, workdir: Path) -> None:
    mark = marker()
    job_id = executor.submit(spec(workdir, f"sleep {mark} & sleep {mark}; echo next line > after.txt", time_s=1))
    assert eventually(lambda: running_with(mark)), "the job should be running"
    # No poll, no wait: the supervisor thread alone enforces the limit.
    assert eventually(lambda: running_with(mark) == [], within_s=5), "the job and its background child must be gone"
    assert not (workdir / "after.txt").exists(), "the script must not go on to its next line"
    status = executor.poll(job_id)
    assert status.state is JobState.TIMEOUT and status.failure == "timeout"
    assert 0.9 <= status.elapsed_s < 3.0
    assert "wall-clock limit" in executor.logs(job_id)


def test_allocating_100_gb_is_oom(executor: LocalExecutor, workdir: Path) -> None:
    status = run(executor, spec(workdir, "python -c 'x = bytearray(100 * 2**30)'", mem_gb=2))
    assert status.state is JobState.OOM and status.failure == "oom", executor.logs(status.job_id)


def test_touching_more_memory_than_allowed_is_oom(executor: LocalExecutor, workdir: Path) -> None:
    pytest.importorskip("numpy")
    # 3 GB would fit on the machine: only our 1 GB limit can stop it.
    command = "python -c 'import numpy; numpy.ones(3 * 2**30 // 8)'"
    status = run(executor, spec(workdir, command, mem_gb=1))
    assert status.state is JobState.OOM, executor.logs(status.job_id)


def test_numpy_and_torch_import_and_compute_under_a_2_gb_limit(workdir: Path) -> None:
    pytest.importorskip("numpy")
    pytest.importorskip("torch")  # the `local` extra; its virtual-memory appetite is what matters here
    command = "python -c 'import numpy, torch; print(float(torch.ones(500, 500).sum()), numpy.ones(10**7).sum())'"
    executor = LocalExecutor()
    status = run(executor, spec(workdir, command, mem_gb=2, time_s=60), timeout_s=90)
    assert status.state is JobState.COMPLETED, executor.logs(status.job_id)
    assert "250000.0 10000000.0" in executor.logs(status.job_id)


@needs_memory_cgroup
def test_shared_memory_past_the_limit_is_oom_through_the_memory_cgroup(executor: LocalExecutor, workdir: Path) -> None:
    # MAP_SHARED memory is not counted by RLIMIT_DATA; only the cgroup sees it.
    command = "python -c 'import mmap; m = mmap.mmap(-1, 3 << 30)\nfor i in range(0, len(m), 4096): m[i] = 1'"
    status = run(executor, spec(workdir, command, mem_gb=1))
    assert status.state is JobState.OOM and "memory limit" in status.detail, executor.logs(status.job_id)


def test_writing_past_the_file_size_limit_fails(executor: LocalExecutor, workdir: Path) -> None:
    command = "python -c \"open('big', 'wb').write(b'x' * 3 * 2**20)\""
    status = run(executor, spec(workdir, command, max_file_mb=1))
    assert status.state is JobState.FAILED and "file" in status.detail, executor.logs(status.job_id)
    assert (workdir / "big").stat().st_size <= 2**20


# --- process limits ----------------------------------------------------------------------------


def fork_many(mark: str, count: int = 400) -> str:
    """A bounded fork loop: past any sane limit, yet harmless should containment fail."""
    return (
        "python -c 'import os, time\n"
        f"for _ in range({count}):\n"
        "    if os.fork() == 0:\n"
        f"        os.execvp(\"sleep\", [\"sleep\", \"{mark}\"])\n"
        "time.sleep(30)'"
    )


def test_too_many_processes_kill_the_job(executor: LocalExecutor, workdir: Path) -> None:
    mark = marker()
    start = time.monotonic()
    status = run(executor, spec(workdir, fork_many(mark), max_processes=32, time_s=15))
    assert status.state is JobState.FAILED and "process limit" in status.detail, executor.logs(status.job_id)
    assert time.monotonic() - start < 5, "killed when the limit is reached, not at the time limit"
    assert running_with(mark) == []


def test_without_cgroups_the_supervisor_counts_processes(
    executor: LocalExecutor, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sandbox, "_status", SandboxStatus(bwrap=STATUS.bwrap, cgroups={}, problem=STATUS.problem))
    mark = marker()
    status = run(executor, spec(workdir, fork_many(mark), max_processes=32, time_s=15))
    assert status.state is JobState.FAILED and "process limit" in status.detail, executor.logs(status.job_id)
    assert running_with(mark) == []


@needs_pids_cgroup
def test_a_real_fork_bomb_is_contained(executor: LocalExecutor, workdir: Path) -> None:
    # pids.max makes fork fail past the limit, even for root; the supervisor then kills the rest.
    mark = marker()
    start = time.monotonic()
    status = run(executor, spec(workdir, f"bomb() {{ bomb | bomb & }}; bomb; sleep {mark}", max_processes=64, time_s=10))
    assert status.state is JobState.FAILED and "process limit" in status.detail, executor.logs(status.job_id)
    assert time.monotonic() - start < 5
    assert running_with(mark) == []
    assert not list(STATUS.cgroups["pids"].glob(f"nanoresearch-{status.job_id}")), "its cgroup is removed"


# --- isolation ---------------------------------------------------------------------------------


def test_secrets_in_our_environment_never_reach_the_job(
    executor: LocalExecutor, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-should-not-leak-123")
    monkeypatch.setenv("SOME_SERVICE_TOKEN", "tok-should-not-leak-456")
    job = spec(workdir, "env; cat /proc/self/environ")
    job.env = {"MY_SETTING": "visible"}
    status = run(executor, job)
    logs = executor.logs(status.job_id)
    assert status.state is JobState.COMPLETED and "MY_SETTING=visible" in logs
    assert "should-not-leak" not in logs and "OPENAI_API_KEY" not in logs


def test_secrets_cannot_be_passed_through_the_job_environment(executor: LocalExecutor, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-should-not-leak-123")
    for env in ({"OPENAI_API_KEY": "x"}, {"HF_TOKEN": "x"}, {"INNOCENT": "sk-test-should-not-leak-123"}):
        job = spec(workdir, "true")
        job.env = env
        with pytest.raises(ConfigError, match="secret"):
            executor.submit(job)
    job = spec(workdir, "echo $TOKENIZERS_PARALLELISM")
    job.env = {"TOKENIZERS_PARALLELISM": "false"}  # a look-alike name that is not a secret
    assert run(executor, job).state is JobState.COMPLETED


def test_the_project_python_is_on_path(executor: LocalExecutor, workdir: Path) -> None:
    status = run(executor, spec(workdir, "python -c 'import sys; print(sys.prefix)'"))
    assert sys.prefix in executor.logs(status.job_id)


@needs_bwrap
def test_network_is_unreachable_in_the_sandbox(workdir: Path) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        probe = (
            "python -c 'import socket\ntry:\n"
            f"    socket.create_connection((\"127.0.0.1\", {port}), timeout=2); print(\"CONNECTED\")\n"
            "except OSError as e: print(\"BLOCKED\", e)'"
        )
        sandboxed, plain = LocalExecutor(use_bwrap=True), LocalExecutor(use_bwrap=False)
        inside = run(sandboxed, spec(workdir, probe))
        (workdir.parent / "control").mkdir()
        outside = run(plain, spec(workdir.parent / "control", probe))  # the same probe reaches our port
    assert "BLOCKED" in sandboxed.logs(inside.job_id)
    assert "CONNECTED" in plain.logs(outside.job_id)


@needs_bwrap
def test_only_the_workdir_is_writable(workdir: Path) -> None:
    outside_repo = Path(__file__).resolve().parent / f"sandbox-escape-{uuid.uuid4().hex}"
    outside_home = Path("/root") / f"sandbox-escape-{uuid.uuid4().hex}"
    in_tmp = Path("/tmp") / f"sandbox-scratch-{uuid.uuid4().hex}"
    logs_folder = workdir.parent / "work.logs"
    command = "; ".join(
        f"(echo x > {path} && echo WROTE {name}) 2>/dev/null || echo REFUSED {name}"
        for name, path in [("inside", "inside.txt"), ("repo", outside_repo), ("root", outside_home),
                           ("logs", logs_folder / "stdout.log"), ("tmp", in_tmp)]
    )
    executor = LocalExecutor(use_bwrap=True)
    try:
        logs = executor.logs(run(executor, spec(workdir, command)).job_id)
    finally:
        for path in (outside_repo, outside_home, in_tmp):
            path.unlink(missing_ok=True)
    assert "WROTE inside" in logs and (workdir / "inside.txt").read_text() == "x\n"
    assert "REFUSED repo" in logs and "REFUSED root" in logs and "REFUSED logs" in logs
    assert "WROTE tmp" in logs and not in_tmp.exists()  # a private /tmp


@needs_bwrap
def test_the_job_sees_only_its_own_processes(workdir: Path) -> None:
    executor = LocalExecutor(use_bwrap=True)
    status = run(executor, spec(workdir, "ls /proc | grep -c '^[0-9]'"))
    assert int(executor.logs(status.job_id).split("\n")[1]) <= 5


@needs_bwrap
def test_run_sandboxed_shows_extra_folders_read_only(tmp_path: Path) -> None:
    trial, scratch = tmp_path / "trial", tmp_path / "scratch"
    trial.mkdir()
    scratch.mkdir()
    (trial / "result.txt").write_text("0.93\n")
    command = "cat $TRIAL/result.txt; (echo x > $TRIAL/forged) 2>/dev/null || echo REFUSED"
    code, out, _ = run_sandboxed(command, scratch, {"TRIAL": str(trial)}, 10, readonly=[trial])
    assert code == 0 and out.split() == ["0.93", "REFUSED"]
    code, out, _ = run_sandboxed(f"ls {trial} || echo HIDDEN", scratch, {}, 10)  # /tmp is private otherwise
    assert "HIDDEN" in out


def test_run_sandboxed_raises_timeout_and_leaves_nothing(tmp_path: Path) -> None:
    mark = marker()
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        run_sandboxed(f"sleep {mark} & sleep {mark}", tmp_path, {}, 1)
    assert time.monotonic() - start < 5 and eventually(lambda: running_with(mark) == [], within_s=3)


# --- several jobs ------------------------------------------------------------------------------


def test_cancel_kills_only_its_own_job(executor: LocalExecutor, tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    mark = marker()
    victim = executor.submit(spec(tmp_path / "a", f"sleep {mark}"))
    survivor = executor.submit(spec(tmp_path / "b", "sleep 2; echo survived"))
    time.sleep(0.3)
    executor.cancel(victim)
    assert executor.poll(victim).state is JobState.CANCELLED and executor.poll(victim).failure == "infra"
    assert running_with(mark) == []
    assert executor.poll(survivor).state is JobState.RUNNING
    final = executor.wait(survivor, 10)
    assert final.state is JobState.COMPLETED and "survived" in executor.logs(survivor)


def test_two_jobs_run_at_the_same_time_in_their_own_workdirs(executor: LocalExecutor, tmp_path: Path) -> None:
    command = "python -c 'import time; print(time.time()); time.sleep(1); print(time.time())' > out.txt"
    ids = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        ids.append(executor.submit(spec(tmp_path / name, command)))
    assert all(executor.wait(job_id, 20).state is JobState.COMPLETED for job_id in ids)
    spans = [[float(t) for t in (tmp_path / n / "out.txt").read_text().split()] for n in "ab"]
    assert max(start for start, _ in spans) < min(end for _, end in spans), f"ran one after the other: {spans}"


def test_gpu_jobs_wait_for_a_free_gpu(workdir: Path) -> None:
    executor = LocalExecutor(gpu_ids=["0"])
    command = "echo gpu=$CUDA_VISIBLE_DEVICES; sleep 0.5"
    first = executor.submit(spec(workdir, command, gpus=1))
    second = executor.submit(spec(workdir.parent, command, gpus=1))
    assert executor.poll(second).state is JobState.PENDING
    assert executor.wait(first, 10).state is JobState.COMPLETED
    assert executor.wait(second, 10).state is JobState.COMPLETED
    assert "gpu=0" in executor.logs(first) and "gpu=0" in executor.logs(second)
    with pytest.raises(ConfigError, match="GPU"):
        executor.submit(spec(workdir, "true", gpus=2))


def test_a_cpu_job_sees_no_gpu(executor: LocalExecutor, workdir: Path) -> None:
    status = run(executor, spec(workdir, "echo \"[$CUDA_VISIBLE_DEVICES]\""))
    assert "[]" in executor.logs(status.job_id)


def test_unknown_jobs_are_lost_and_never_touched(executor: LocalExecutor) -> None:
    assert executor.poll("local-nope").state is JobState.LOST
    executor.cancel("local-nope")  # nothing happens
    assert executor.logs("local-nope") == ""


def test_registered_as_local(settings) -> None:
    executor = create_executor("local", settings)
    assert isinstance(executor, LocalExecutor) and executor.name == "local"
    assert executor.isolation


def test_a_python_under_tmp_stays_visible_in_the_sandbox(tmp_path, monkeypatch):
    """The sandbox's private /tmp must not hide the interpreter of a checkout living under /tmp."""
    from nanoresearch.compute.sandbox import python_runtime

    site = tmp_path / "venv" / "lib" / "site-packages"
    site.mkdir(parents=True)
    monkeypatch.setattr(sys, "path", [*sys.path, str(site), str(site / "nested")])
    (site / "nested").mkdir()
    assert str(tmp_path).startswith("/tmp/")
    assert site.resolve() in python_runtime.__wrapped__()
    assert (site / "nested").resolve() not in python_runtime.__wrapped__()  # covered by its parent


# --- disk ----------------------------------------------------------------------------------------


def test_files_each_under_the_file_limit_are_killed_at_the_disk_limit(executor: LocalExecutor, workdir: Path) -> None:
    mark = marker()
    fill = "for i in 1 2 3 4 5 6 7 8; do head -c 3000000 /dev/zero > big$i; done"
    status = run(executor, spec(workdir, f"{fill}; sleep {mark}", disk_mb=10, max_file_mb=4))
    assert (status.state, status.failure) == (JobState.DISK, "disk"), executor.logs(status.job_id)
    assert "disk limit of 10 MB" in status.detail
    assert running_with(mark) == []


def test_a_job_that_fills_the_disk_and_ends_at_once_is_still_caught(executor: LocalExecutor, workdir: Path) -> None:
    fill = "for i in 1 2 3 4 5 6 7 8; do head -c 3000000 /dev/zero > big$i; done"
    status = run(executor, spec(workdir, fill, disk_mb=10, max_file_mb=4))
    assert status.state is JobState.DISK


def test_disk_usage_counts_every_entry_and_stops_past_the_bound(tmp_path: Path) -> None:
    from nanoresearch.compute.local import BLOCK, disk_usage

    for i in range(100):
        (tmp_path / f"empty{i}").touch()  # no blocks, but inodes: each counts as one block
    assert disk_usage(tmp_path, 1 << 40) == 100 * BLOCK
    assert disk_usage(tmp_path, 10 * BLOCK) <= 12 * BLOCK  # stopped soon after the bound


def test_a_later_process_cannot_attach_to_local_jobs(executor: LocalExecutor, workdir: Path) -> None:
    job = run(executor, spec(workdir, "true")).job_id
    assert executor.attach(job) is None  # the protocol's answer: local jobs end with their process
