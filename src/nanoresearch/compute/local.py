"""The `local` executor: every job a sandboxed subprocess of this Python process.

Each job runs `/bin/sh -c COMMAND` in its own session and process group (see `sandbox.py` for
the isolation), its stdout and stderr in files beside the workdir (`log_paths`). One supervisor
thread per executor starts jobs and checks the running ones every `TICK_S`: a job is killed at
its wall-clock limit even when nobody polls it, and when it reaches its process limit (a fork
bomb) it is killed at once instead of churning until the time runs out. A small thread per
running job blocks until its leader exits, so a finished job is seen at once, not a tick later.

Only the executor's own jobs are ever signalled, and only in ways that cannot hit anything else:
- a job's process group and session ids are its leader's pid, which the kernel cannot hand out
  again while the leader is unreaped; so the leader is reaped last, after everything left of the
  job (background children included) has been killed;
- a job's cgroup holds its processes and nothing else.
Processes are started by the supervisor thread, never by the caller's: bubblewrap's
`--die-with-parent` fires when the *thread* that started it exits, and a caller's worker thread
may well end before its job does.
"""

from __future__ import annotations

import atexit
import glob
import logging
import os
import re
import signal
import subprocess
import threading
import time
import uuid
import weakref
from collections import defaultdict
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from nanoresearch.compute.executor import JobSpec, JobState, JobStatus, log_paths, register
from nanoresearch.compute.sandbox import (
    WRAPPER_PROCESSES,
    MiB,
    PreparedJob,
    SandboxStatus,
    check_env,
    prepare,
    sandbox_status,
)
from nanoresearch.errors import ConfigError, NanoResearchError, UserError

if TYPE_CHECKING:
    from nanoresearch.config import Settings

log = logging.getLogger(__name__)

TICK_S = 0.05
DISK_CHECK_S = 0.5  # a walk of the working copy is dearer than a tick; this is often enough
BLOCK = 4096  # every file or folder counts at least this much: a million empty files fill a disk too
LOG_TAIL_LINES = 200
LOG_TAIL_BYTES = 256 * 1024
# What running out of memory looks like in Python, C++, libc, torch (CPU and CUDA) and numpy.
MEMORY_ERROR = re.compile(r"MemoryError|Cannot allocate memory|std::bad_alloc|can't allocate memory|out of memory", re.I)
FILE_TOO_LARGE = re.compile(r"File too large|File size limit exceeded")


@dataclass(eq=False)
class _Job:
    id: str
    spec: JobSpec
    state: JobState = JobState.PENDING
    gpu_ids: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None
    prepared: PreparedJob | None = None
    started_at: float | None = None
    ended_at: float | None = None
    deadline: float = 0.0  # time.monotonic() at which the wall-clock limit is reached
    next_disk_check: float = 0.0  # time.monotonic() of the next measure of the working copy
    exit_code: int | None = None
    detail: str = ""
    kill: tuple[JobState, str] | None = None  # why we killed it, decided before the kill
    considered: bool = False  # the supervisor has tried to start it at least once
    launch_error: BaseException | None = None

    def status(self) -> JobStatus:
        r = self.spec.resources
        return JobStatus(
            job_id=self.id, state=self.state, exit_code=self.exit_code, started_at=self.started_at,
            ended_at=self.ended_at, gpus=r.gpus, cpus=r.cpus, detail=self.detail,
        )


class LocalExecutor:
    name = "local"

    def __init__(
        self, settings: Settings | None = None, *, use_bwrap: bool | None = None, gpu_ids: Sequence[str] | None = None
    ) -> None:
        """use_bwrap: None = bubblewrap when it works; gpu_ids: the GPUs jobs may get (default: all visible)."""
        self.settings = settings
        self.use_bwrap = use_bwrap
        self.gpu_ids = list(gpu_ids) if gpu_ids is not None else visible_gpus()
        self._jobs: dict[str, _Job] = {}
        self._cond = threading.Condition()
        self._supervisor: threading.Thread | None = None
        _LIVE_EXECUTORS.add(self)

    # --- what the caller can show ---

    @property
    def sandbox(self) -> SandboxStatus:
        status = sandbox_status()
        if self.use_bwrap is False:
            return SandboxStatus(bwrap=None, cgroups=status.cgroups, problem="bubblewrap turned off for this executor")
        return status

    @property
    def sandboxed(self) -> bool:
        return self.sandbox.sandboxed

    @property
    def isolation(self) -> str:
        return self.sandbox.isolation

    # --- the Executor protocol ---

    def submit(self, spec: JobSpec) -> str:
        workdir = spec.workdir.resolve()
        if not workdir.is_dir():
            raise UserError(f"job {spec.name!r}: workdir {workdir} is not a folder")
        if spec.resources.gpus > len(self.gpu_ids):
            raise ConfigError(
                f"job {spec.name!r} asks for {spec.resources.gpus} GPU(s); this machine offers {len(self.gpu_ids)}",
                hint="lower resources.gpus or use an executor with GPUs (slurm, ray)",
            )
        check_env(spec.env)  # fail in the caller's thread, with the caller's traceback
        job = _Job(id=f"local-{uuid.uuid4().hex[:12]}", spec=spec.model_copy(update={"workdir": workdir}))
        with self._cond:
            self._jobs[job.id] = job
            self._ensure_supervisor()
            self._cond.notify_all()
            self._cond.wait_for(lambda: job.considered, timeout=60)
            if job.launch_error is not None:
                del self._jobs[job.id]
                raise NanoResearchError(f"could not start job {spec.name!r}: {job.launch_error}") from job.launch_error
        return job.id

    def poll(self, job_id: str) -> JobStatus:
        with self._cond:
            job = self._jobs.get(job_id)
            if job is None:
                return _unknown(job_id)
            if job.state is JobState.RUNNING:
                self._check(job)  # fresh answer without waiting for the next tick
            return job.status()

    def wait(self, job_id: str, timeout_s: float | None = None) -> JobStatus:
        with self._cond:
            job = self._jobs.get(job_id)
            if job is None:
                return _unknown(job_id)
            self._cond.wait_for(lambda: job.state.finished, timeout_s)
            return job.status()

    def cancel(self, job_id: str) -> None:
        """Kill this job's processes (nothing else) and wait until it is over."""
        with self._cond:
            job = self._jobs.get(job_id)
            if job is None or job.state.finished:
                return
            if job.state is JobState.PENDING:
                job.state, job.detail, job.ended_at = JobState.CANCELLED, "cancelled before it started", time.time()
                self._cond.notify_all()
                return
            job.kill = job.kill or (JobState.CANCELLED, "cancelled")
            self._kill(job)
            self._cond.wait_for(lambda: job.state.finished, timeout=10)

    def logs(self, job_id: str) -> str:
        job = self._jobs.get(job_id)
        return format_logs(job.spec.workdir) if job else ""

    def attach(self, job_id: str) -> None:
        """Nothing to take over: jobs are children of the process that submitted them, which
        ends them when it exits (bubblewrap's --die-with-parent, the exit handler)."""
        return None

    # --- the supervisor thread ---

    def _ensure_supervisor(self) -> None:
        if self._supervisor is None or not self._supervisor.is_alive():
            self._supervisor = threading.Thread(target=self._supervise, name="local-executor", daemon=True)
            self._supervisor.start()

    def _supervise(self) -> None:
        with self._cond:
            while True:
                for job in self._active():
                    try:
                        self._start(job) if job.state is JobState.PENDING else self._check(job)
                    except Exception as exc:  # a bug here must not leave every other job unwatched
                        self._give_up(job, exc)
                if not self._active():  # nothing to watch: end; the next submit starts a new one
                    self._supervisor = None
                    return
                self._cond.wait(TICK_S)

    def _active(self) -> list[_Job]:
        return [job for job in self._jobs.values() if not job.state.finished]

    def _start(self, job: _Job) -> None:
        if job.spec.deadline is not None and time.time() >= job.spec.deadline:  # waited past its deadline for GPUs
            job.state, job.ended_at = JobState.TIMEOUT, time.time()
            job.detail = "not started: its deadline (its share of the wall-clock budget) passed while it waited"
            job.considered = True
            self._cond.notify_all()
            return
        gpus = self._free_gpus(job.spec.resources.gpus)
        if gpus is None:  # stays pending until another job gives its GPUs back
            if not job.considered:
                job.considered = True
                self._cond.notify_all()  # submit() returns now; the job starts later
            return
        try:
            job.prepared = prepare(job.spec, job.id, gpus, self.use_bwrap)
            job.process = _spawn(job.spec.workdir, job.prepared)
        except Exception as exc:  # e.g. bwrap missing after all, cgroup refused the child
            if job.prepared is not None:
                job.prepared.cleanup()
            job.launch_error = exc
            job.state, job.detail, job.ended_at = JobState.NODE_FAIL, f"could not start: {exc}", time.time()
        else:
            job.gpu_ids, job.state, job.started_at = gpus, JobState.RUNNING, time.time()
            job.deadline = time.monotonic() + job.spec.ends_by(job.started_at) - job.started_at
            threading.Thread(target=self._wake_on_exit, args=(job.process.pid,), daemon=True).start()
        job.considered = True
        self._cond.notify_all()

    def _wake_on_exit(self, pid: int) -> None:
        """Block until the job's leader exits (without reaping it), then wake the supervisor:
        a job is seen finished at once rather than at the next tick."""
        with suppress(ChildProcessError):
            os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
        with self._cond:
            self._cond.notify_all()

    def _free_gpus(self, count: int) -> list[str] | None:
        taken = {gpu for job in self._jobs.values() if job.state is JobState.RUNNING for gpu in job.gpu_ids}
        free = [gpu for gpu in self.gpu_ids if gpu not in taken]
        return free[:count] if len(free) >= count else None

    def _check(self, job: _Job) -> None:
        assert job.process is not None
        if _has_exited(job.process.pid):
            self._finish(job)
        elif job.kill is None and (reason := self._limit_reached(job)):
            job.kill = reason
            self._kill(job)

    def _limit_reached(self, job: _Job) -> tuple[JobState, str] | None:
        r = job.spec.resources
        if time.monotonic() >= job.deadline:
            return JobState.TIMEOUT, f"killed at {job.spec.limit_text(job.started_at or time.time())}"
        if time.monotonic() >= job.next_disk_check:
            job.next_disk_check = time.monotonic() + DISK_CHECK_S
            if over_disk_limit(job.spec):
                return _disk_outcome(job.spec)
        too_many = (JobState.FAILED, f"killed: reached the process limit (max_processes={r.max_processes})")
        cgroup = job.prepared.cgroup if job.prepared else None
        if cgroup is not None and cgroup.limits_processes:
            return too_many if cgroup.process_limit_hit() else None
        # No pids cgroup: count the job's processes ourselves (a fork bomb gets a tick's head start).
        count = len(_job_processes(process_table(), job.process.pid))  # type: ignore[union-attr]
        return too_many if count > r.max_processes + WRAPPER_PROCESSES else None

    def _kill(self, job: _Job) -> None:
        """SIGKILL the job's process group, session, their descendants and cgroup until none is left.

        The order matters. Without bwrap the shell's group goes first, at once, so that a script
        cannot move on to its next line when its current command dies. Under bwrap, bwrap itself
        (the leader) goes last: the job's processes are found as its descendants, and once it
        died they would be handed to PID 1 and out of sight; killing its PID-1 child empties the
        namespace and bwrap then exits by itself.
        """
        assert job.process is not None and job.prepared is not None
        leader = job.process.pid  # unreaped, so its pid (= pgid = sid) is still this job's
        if not job.prepared.sandboxed:
            _kill_group(leader)
        _kill_descendants(leader)
        _kill_group(leader)
        if job.prepared.cgroup is not None:
            job.prepared.cgroup.kill_all()

    def _finish(self, job: _Job) -> None:
        assert job.process is not None and job.prepared is not None
        self._kill(job)  # whatever the job left running in the background goes with it
        job.exit_code = job.process.wait()
        job.ended_at = time.time()
        job.state, job.detail = _outcome(job)
        job.prepared.cleanup()
        if job.state is not JobState.COMPLETED:
            _note_in_log(job)
        self._cond.notify_all()

    def _give_up(self, job: _Job, exc: Exception) -> None:
        log.exception("supervising job %s failed; killing it", job.id)
        with suppress(Exception):
            self._kill(job)
            job.process.wait(timeout=5)  # type: ignore[union-attr]
            job.prepared.cleanup()  # type: ignore[union-attr]
        job.state, job.detail, job.ended_at = JobState.NODE_FAIL, f"executor error: {exc}", time.time()
        job.considered = True
        self._cond.notify_all()

    def kill_all(self) -> None:
        with self._cond:
            for job in self._active():
                if job.state is JobState.RUNNING:
                    job.kill = job.kill or (JobState.CANCELLED, "the executor's process exited")
                    self._finish(job)  # kills, reaps, and removes the job's cgroups


def _spawn(workdir: Path, prepared: PreparedJob) -> subprocess.Popen[bytes]:
    stdout_path, stderr_path = log_paths(workdir)
    stdout_path.parent.mkdir(parents=True, exist_ok=True)
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        return subprocess.Popen(
            prepared.argv, cwd=prepared.cwd, env=prepared.env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
            start_new_session=True, preexec_fn=prepared.preexec_fn,
        )


def _kill_group(leader: int) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(leader, signal.SIGKILL)


def _kill_descendants(leader: int, within_s: float = 2.0) -> None:
    """SIGKILL the leader's session and descendants (not the leader) until none is alive; a fork
    bomb's new children show up in the next round, and fork fails in a parent already killed."""
    deadline = time.monotonic() + within_s
    while (left := [p for p in _job_processes(process_table(), leader) if p != leader]) and time.monotonic() < deadline:
        for pid in left:
            with suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.005)


def _has_exited(pid: int) -> bool:
    # WNOWAIT: look without reaping, so the pid stays ours until the job's leftovers are killed.
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _outcome(job: _Job) -> tuple[JobState, str]:
    """How the job ended, from (in this order) our own kill, the memory cgroup, the exit code, stderr."""
    r, code = job.spec.resources, job.exit_code
    assert code is not None and job.prepared is not None
    if job.kill is not None:
        return job.kill
    if over_disk_limit(job.spec):  # wrote fast and ended before the next measure
        return _disk_outcome(job.spec)
    cgroup = job.prepared.cgroup
    if cgroup is not None and cgroup.oom_killed():
        return JobState.OOM, f"killed by the memory limit of {r.mem_gb:g} GB"
    if cgroup is not None and cgroup.process_limit_hit():  # even with exit 0: a fork bomb's shell exits at once
        return JobState.FAILED, f"reached the process limit (max_processes={r.max_processes})"
    if code == 0:
        return JobState.COMPLETED, ""
    sig = _signal_of(code)
    stderr = _tail(log_paths(job.spec.workdir)[1], 50)
    if sig == signal.SIGXCPU:
        return JobState.TIMEOUT, "killed at the CPU-time limit"
    if MEMORY_ERROR.search(stderr):
        return JobState.OOM, f"ran out of memory (limit {r.mem_gb:g} GB)"
    if sig == signal.SIGXFSZ or FILE_TOO_LARGE.search(stderr):
        return JobState.FAILED, f"wrote a file past the {r.max_file_mb} MB limit"
    return JobState.FAILED, f"killed by {signal.Signals(sig).name}" if sig else f"exit code {code}"


def over_disk_limit(spec: JobSpec) -> bool:
    return disk_usage(spec.workdir, spec.resources.disk_mb * MiB) > spec.resources.disk_mb * MiB


def _disk_outcome(spec: JobSpec) -> tuple[JobState, str]:
    return JobState.DISK, f"killed: its working copy outgrew the disk limit of {spec.resources.disk_mb} MB (resources.disk_mb)"


def disk_usage(folder: Path, stop_above: int) -> int:
    """Bytes the folder takes on disk (allocated blocks, so sparse files count what they use),
    without following links; stops counting once past `stop_above`, so a huge tree costs no
    more than the limit's worth of entries."""
    total, pending = 0, [str(folder)]
    while pending and total <= stop_above:
        try:
            with os.scandir(pending.pop()) as entries:  # an iterator: a huge folder is not listed whole
                for entry in entries:
                    if total > stop_above:
                        break
                    total += _size_on_disk(entry)
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(entry.path)
        except OSError:  # gone meanwhile, or made unreadable by the job (its own entry counted already)
            continue
    return total


def _size_on_disk(entry: os.DirEntry[str]) -> int:
    try:
        return max(entry.stat(follow_symlinks=False).st_blocks * 512, BLOCK)
    except OSError:  # removed meanwhile
        return 0


def _signal_of(code: int) -> int | None:
    """Popen reports a signal as -N; /bin/sh and bwrap report a killed child as 128+N."""
    number = -code if code < 0 else code - 128 if 128 < code <= 128 + 64 else None
    return number if number in signal.valid_signals() else None


def _note_in_log(job: _Job) -> None:
    with suppress(OSError), open(log_paths(job.spec.workdir)[1], "a") as err:
        err.write(f"\n[nanoresearch] {job.state.value}: {job.detail}\n")


def format_logs(workdir: Path) -> str:
    """The tails of a job's stdout and stderr under headers (what `logs()` returns)."""
    parts = []
    for label, path in zip(("stdout", "stderr"), log_paths(workdir)):
        parts.append(f"===== {label} (last {LOG_TAIL_LINES} lines) =====\n{_tail(path, LOG_TAIL_LINES)}")
    return "\n".join(parts)


def _tail(path: Path, lines: int) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - LOG_TAIL_BYTES))
            data = f.read()
    except OSError:
        return ""
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])


def _unknown(job_id: str) -> JobStatus:
    return JobStatus(job_id=job_id, state=JobState.LOST, detail="not a job of this executor")


# --- processes ---------------------------------------------------------------------------------


def process_table() -> list[tuple[int, int, int, bool]]:
    """(pid, ppid, session id, alive) of every process; zombies are not alive (no signal reaches them)."""
    rows = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                data = f.read()
        except OSError:
            continue
        fields = data[data.rindex(b")") + 2 :].split()  # the command name may hold spaces and ")"
        rows.append((int(entry.name), int(fields[1]), int(fields[3]), fields[0] not in (b"Z", b"X")))
    return rows


def _job_processes(table: list[tuple[int, int, int, bool]], leader: int) -> list[int]:
    """The live processes of the job's session and all their descendants, parents before children.

    Inside bwrap the command runs in a session of its own, but below bwrap's PID 1, which is a
    child of the leader. Zombies are walked through (a dead parent's children are still the
    job's) but not returned. Parents come first so that a shell is killed before the command it
    waits for, and never gets to run its next line.
    """
    children: dict[int, list[int]] = defaultdict(list)
    for pid, ppid, _, _ in table:
        children[ppid].append(pid)
    order = [pid for pid, _, sid, _ in table if sid == leader]
    seen = set(order)
    for pid in order:  # grows while we walk it: breadth first
        for child in children[pid]:
            if child not in seen:
                seen.add(child)
                order.append(child)
    alive = {pid for pid, _, _, live in table if live}
    return [pid for pid in order if pid in alive]


def visible_gpus() -> list[str]:
    """GPU ids jobs may be given: CUDA_VISIBLE_DEVICES when set, else the NVIDIA device files."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [d.strip() for d in listed.split(",") if d.strip() and d.strip() != "-1"]
    numbers = (re.fullmatch(r"/dev/nvidia(\d+)", path) for path in glob.glob("/dev/nvidia*"))
    return sorted((m.group(1) for m in numbers if m), key=int)


# Jobs must not outlive this process: bwrap's --die-with-parent covers sandboxed jobs, this the rest.
_LIVE_EXECUTORS: weakref.WeakSet[LocalExecutor] = weakref.WeakSet()


@atexit.register
def _kill_all_jobs() -> None:
    for executor in list(_LIVE_EXECUTORS):
        executor.kill_all()


@register("local")
def _create(settings: Settings) -> LocalExecutor:
    return LocalExecutor(settings)
