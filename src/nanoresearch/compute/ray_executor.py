"""The `ray` executor: every job is one Ray task, and the task runs the command in our sandbox.

Ray only places the job: it reserves `cpus`, `gpus` and `mem_gb` on some node and runs
`run_job` there. `run_job` hands the JobSpec to a `LocalExecutor` on that node, so the command
gets exactly what a local job gets (bubblewrap when it works, rlimits, cgroups, a cleared
environment, the wall-clock limit, the process-limit watch) and ends with the same states and
details (timeout, oom, crash). Ray's own failures are mapped on top of that: a cancelled task is
CANCELLED, a dead worker or node NODE_FAIL, a worker killed by Ray's memory monitor OOM.

Where the cluster comes from:
- Ray already initialised in this process: use it, never shut it down;
- `RAY_ADDRESS` set: connect to that cluster (its workers need nanoresearch installed, and the
  job's workdir must be on a filesystem shared with this machine, like for SLURM);
- otherwise start a private one-node cluster, bound to loopback only, which `close()` stops.

The driver learns that a job has started from a small file the task writes beside the logs
(`<workdir>.logs/ray-started`), which the job itself cannot write.

Time limits: the LocalExecutor on the worker stops a job at its limit (a trial's budget share),
or at the spec's absolute deadline (a share of a wall budget, which counts the time Ray took to
place the task), to the tick, and reports TIMEOUT. Should it not (a hung worker), the driver
cancels the task itself once the limit is `LIMIT_GRACE_S` past, and a task still unplaced at its
deadline at once; both report TIMEOUT too.

Cancelling asks the task to stop (a KeyboardInterrupt in `run_job`, which then kills its job
the way the local executor does) and kills the worker only if that does not work. A worker that
dies (killed, crashed, `ray stop`) takes a bubblewrap job along (--die-with-parent); a job
without bubblewrap outlives it, held in check by its rlimits only, as a local job outlives a
SIGKILLed nanoresearch process.
"""

from __future__ import annotations

import atexit
import logging
import os
import time
import uuid
import weakref
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nanoresearch.compute.executor import JobSpec, JobState, JobStatus, log_paths, register
from nanoresearch.compute.local import LocalExecutor, format_logs
from nanoresearch.compute.sandbox import GiB, check_env
from nanoresearch.errors import ConfigError, MissingDependencyError, UserError

if TYPE_CHECKING:
    from nanoresearch.config import Settings

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'nanoresearch[ray]'"
# A running task learns of a (graceful) cancel as a KeyboardInterrupt that Python delivers only
# between bytecodes, never inside a blocking wait: so the task waits for its job in slices.
SLICE_S = 0.1
# How long a graceful cancel may take before the worker is killed outright.
CANCEL_GRACE_S = 10.0
# How long past its time limit a running job may go before the driver stops it (the worker's own
# stop comes first; this is the backstop).
LIMIT_GRACE_S = 5.0
# `wait` blocks in slices too, so that Ctrl-C reaches the caller.
WAIT_SLICE_S = 1.0
STARTED_FILE = "ray-started"
# Ray's switch for its single-machine mode, read when ray is imported (see _loopback_only).
LOOPBACK_SWITCH = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
# Trials pass no data through Ray: the object store only holds each job's small status.
OBJECT_STORE_BYTES = 128 * 1024 * 1024


def import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise MissingDependencyError("the ray executor needs Ray, which is not installed", hint=INSTALL_HINT) from exc
    return ray


# --- on the worker -----------------------------------------------------------------------------


def run_job(spec_data: dict[str, Any], use_bwrap: bool | None) -> dict[str, Any]:
    """The body of every Ray task: run one sandboxed job on this node and report how it ended."""
    import ray

    spec = JobSpec.model_validate(spec_data)
    # Ray chose this task's GPUs; the job gets those and no others.
    executor = LocalExecutor(use_bwrap=use_bwrap, gpu_ids=[str(g) for g in ray.get_gpu_ids()])
    job_id = None
    try:
        job_id = executor.submit(spec)
        status = executor.poll(job_id)
        _write_started(spec.workdir, status.started_at or time.time())
        while not status.state.finished:
            status = executor.wait(job_id, SLICE_S)
    except BaseException:  # ray.cancel arrives as KeyboardInterrupt: stop the job before the task ends
        if job_id is not None:
            executor.cancel(job_id)
        else:  # interrupted inside submit: the job may have started all the same
            executor.kill_all()
        raise
    return status.model_dump(mode="json")


def _started_path(workdir: Path) -> Path:
    return log_paths(workdir)[0].parent / STARTED_FILE


def _write_started(workdir: Path, started_at: float) -> None:
    with suppress(OSError):  # only `poll` uses it, to tell RUNNING from PENDING
        _started_path(workdir).write_text(repr(started_at))


def _read_started(workdir: Path) -> float | None:
    try:
        return float(_started_path(workdir).read_text())
    except (OSError, ValueError):
        return None


# --- in the driver -----------------------------------------------------------------------------


@dataclass(eq=False)
class _RayJob:
    id: str
    spec: JobSpec
    ref: Any  # ray.ObjectRef of run_job's result
    final: JobStatus | None = None
    cancelled: bool = False
    over_limit: bool = False  # the driver stopped it at its time limit

    def status(self, state: JobState, detail: str = "", **times: float | None) -> JobStatus:
        r = self.spec.resources
        return JobStatus(job_id=self.id, state=state, cpus=r.cpus, gpus=r.gpus, detail=detail, **times)


class RayExecutor:
    name = "ray"

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        address: str | None = None,
        num_cpus: int | None = None,
        num_gpus: int | None = None,
        use_bwrap: bool | None = None,
    ) -> None:
        """address: a cluster to join (default: RAY_ADDRESS, else a private local cluster);
        num_cpus/num_gpus: size of that local cluster (default: what Ray detects);
        use_bwrap: passed to the LocalExecutor on the worker (None = bubblewrap when it works)."""
        self.settings = settings
        self.ray = import_ray()  # fail at once, not at the first submit
        _close_at_exit(self)
        self.address = address or os.environ.get("RAY_ADDRESS") or None
        self.num_cpus, self.num_gpus, self.use_bwrap = num_cpus, num_gpus, use_bwrap
        self._jobs: dict[str, _RayJob] = {}
        self._remote: Any = None
        self._owns_connection = False  # we called ray.init, so close() calls ray.shutdown
        self._owns_cluster = False  # ... and that init started the cluster (vs. joined one)

    # --- connection ---

    @property
    def owns_cluster(self) -> bool:
        """This executor started the cluster it uses (and `close()` stops it)."""
        return self._owns_cluster

    def connect(self) -> None:
        """Join or start the cluster; costs seconds, so it happens at the first submit."""
        ray = self.ray
        if not ray.is_initialized():
            if self.address:
                ray.init(address=self.address, logging_level=logging.WARNING, log_to_driver=False)
            else:
                self._start_local_cluster()
                self._owns_cluster = True
            self._owns_connection = True
        if self._remote is None:
            # max_retries=0: a re-run would start over in a workdir the first attempt changed.
            self._remote = ray.remote(max_retries=0)(run_job)

    def _start_local_cluster(self) -> None:
        start = time.monotonic()
        with _loopback_only(self.ray):
            self.ray.init(
                address="local",  # a new cluster, even where `ray start` left one to join
                num_cpus=self.num_cpus, num_gpus=self.num_gpus, include_dashboard=False,
                object_store_memory=OBJECT_STORE_BYTES,
                logging_level=logging.ERROR,  # hides Ray's start-up notices (token auth, /dev/shm size)
                log_to_driver=False,  # jobs write their own log files; worker chatter stays in Ray's logs
            )
        log.info("started a local Ray cluster in %.1f s: %s", time.monotonic() - start, self.ray.cluster_resources())

    def close(self) -> None:
        """Cancel our unfinished jobs, then stop the cluster we started (or leave the one we joined).

        Ray has one connection per process: executors that joined ours lose it too."""
        self.cancel_unfinished()
        if self._owns_connection and self.ray.is_initialized():
            self.ray.shutdown()  # stops a cluster we started; only disconnects from one we joined
        self._owns_connection = self._owns_cluster = False
        self._remote = None

    def cancel_unfinished(self) -> None:
        if self.ray.is_initialized():
            for job_id in [j.id for j in self._jobs.values() if j.final is None]:
                self.cancel(job_id)

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the Executor protocol ---

    def submit(self, spec: JobSpec) -> str:
        workdir = spec.workdir.resolve()
        if not workdir.is_dir():
            raise UserError(f"job {spec.name!r}: workdir {workdir} is not a folder")
        check_env(spec.env)  # refuse secrets here, with the caller's traceback
        self.connect()
        if self._owns_cluster:  # a cluster we sized ourselves cannot grow: refuse what never fits
            self._check_fits(spec)
        spec = spec.model_copy(update={"workdir": workdir})
        _started_path(workdir).unlink(missing_ok=True)  # left by an earlier job in this workdir
        log_paths(workdir)[0].parent.mkdir(parents=True, exist_ok=True)
        r = spec.resources
        ref = self._remote.options(
            name=spec.name, num_cpus=r.cpus, num_gpus=r.gpus, memory=int(r.mem_gb * GiB)
        ).remote(spec.model_dump(mode="json"), self.use_bwrap)
        job = _RayJob(id=f"ray-{uuid.uuid4().hex[:12]}", spec=spec, ref=ref)
        self._jobs[job.id] = job
        return job.id

    def poll(self, job_id: str) -> JobStatus:
        job = self._jobs.get(job_id)
        if job is None:
            return _unknown(job_id)
        if job.final is None and not self.ray.is_initialized():  # closed, here or by another executor
            return job.status(JobState.LOST, "the Ray connection was closed before the job finished")
        if job.final is None:
            ready, _ = self.ray.wait([job.ref], timeout=0)
            if not ready:
                return self._in_progress(job)
            job.final = self._outcome(job)
        return job.final

    def wait(self, job_id: str, timeout_s: float | None = None) -> JobStatus:
        job = self._jobs.get(job_id)
        if job is None:
            return _unknown(job_id)
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while job.final is None and self.ray.is_initialized():
            left = WAIT_SLICE_S if deadline is None else min(WAIT_SLICE_S, deadline - time.monotonic())
            if left <= 0:
                break
            self.ray.wait([job.ref], timeout=left)
            self.poll(job_id)
        return self.poll(job_id)

    def cancel(self, job_id: str) -> None:
        """Stop one of our jobs and wait until it is over; ids we did not submit are ignored."""
        job = self._jobs.get(job_id)
        if job is None or self.poll(job_id).state.finished:
            return
        job.cancelled = True
        # Gracefully first: the task then kills its job's processes and cleans up (see run_job).
        # Killing the worker straight away would leave a job without bubblewrap running.
        self.ray.cancel(job.ref, force=False)
        ready, _ = self.ray.wait([job.ref], timeout=CANCEL_GRACE_S)
        if not ready:
            log.warning("job %s did not stop within %.0f s; killing its Ray worker", job_id, CANCEL_GRACE_S)
            self.ray.cancel(job.ref, force=True)  # bubblewrap's --die-with-parent takes the job along
        self.wait(job_id, CANCEL_GRACE_S)

    def logs(self, job_id: str) -> str:
        job = self._jobs.get(job_id)
        return format_logs(job.spec.workdir) if job else ""

    def attach(self, job_id: str) -> None:
        """Nothing to take over: Ray ends a driver's tasks when the driver goes."""
        return None

    # --- helpers ---

    def _check_fits(self, spec: JobSpec) -> None:
        total = self.ray.cluster_resources()
        r = spec.resources
        wanted = {"CPU": r.cpus, "GPU": r.gpus, "memory": r.mem_gb * GiB}
        short = [name for name, amount in wanted.items() if amount > total.get(name, 0)]
        if short:
            have = ", ".join(f"{name}={total.get(name, 0):g}" for name in wanted)
            raise ConfigError(
                f"job {spec.name!r} asks for more {'/'.join(short)} than the local Ray cluster has ({have})",
                hint="lower the job's resources, or set RAY_ADDRESS to a cluster that has them",
            )

    def _in_progress(self, job: _RayJob) -> JobStatus:
        started_at = _read_started(job.spec.workdir)
        if started_at is None:
            if job.spec.deadline is not None and time.time() >= job.spec.deadline:
                self._stop_at_limit(job, force=False)  # not placed before its deadline: it must not start late
            r = job.spec.resources
            wanted = f"cpus={r.cpus}, gpus={r.gpus}, memory={r.mem_gb:g} GB"
            return job.status(JobState.PENDING, f"waiting for Ray to place it ({wanted})")
        if time.time() > job.spec.ends_by(started_at) + LIMIT_GRACE_S:
            self._stop_at_limit(job, force=True)  # the worker did not stop it: bubblewrap's --die-with-parent does
        return job.status(JobState.RUNNING, started_at=started_at)

    def _stop_at_limit(self, job: _RayJob, force: bool) -> None:
        if not job.cancelled:
            job.cancelled = job.over_limit = True
            self.ray.cancel(job.ref, force=force)

    def _outcome(self, job: _RayJob) -> JobStatus:
        """The finished task's own report, or the Ray failure that stopped it, as a JobStatus."""
        try:
            report = self.ray.get(job.ref)
        except Exception as exc:
            state, detail = ray_failure(self.ray, exc, job.cancelled)
            started_at = _read_started(job.spec.workdir)
            if job.over_limit:
                state, detail = JobState.TIMEOUT, _over_limit_detail(job.spec, started_at)
            times = {"started_at": started_at, "ended_at": time.time()}
            status = job.status(state, detail, **times)
            if state is not JobState.CANCELLED:  # a cancelled job's note is the LocalExecutor's
                _note_in_log(job.spec.workdir, status)
            return status
        return JobStatus.model_validate({**report, "job_id": job.id})


def _over_limit_detail(spec: JobSpec, started_at: float | None) -> str:
    if started_at is None:
        return "not started: its deadline (its share of the wall-clock budget) passed while Ray placed it"
    return f"stopped by the driver at {spec.limit_text(started_at)}"


def ray_failure(ray: Any, exc: Exception, cancelled: bool) -> tuple[JobState, str]:
    """How a Ray error ended a job. Cancellation first: a cancelled task can also look like a
    crashed worker (force=True kills it)."""
    errors = ray.exceptions
    if isinstance(exc, errors.TaskCancelledError) or cancelled:
        return JobState.CANCELLED, "cancelled"
    if isinstance(exc, errors.OutOfMemoryError):
        return JobState.OOM, f"Ray killed the task because its node ran low on memory: {_first_line(exc)}"
    node_lost = (errors.NodeDiedError, errors.LocalRayletDiedError, errors.ObjectLostError)
    if isinstance(exc, node_lost):
        return JobState.NODE_FAIL, f"the Ray node running the job was lost: {_first_line(exc)}"
    if isinstance(exc, errors.WorkerCrashedError):
        return JobState.NODE_FAIL, f"the Ray worker running the job died: {_first_line(exc)}"
    if isinstance(exc, errors.RayTaskError):  # run_job itself raised, e.g. the workdir is not on that node
        return JobState.NODE_FAIL, f"the Ray task could not run the job: {_first_line(exc.cause or exc)}"
    return JobState.NODE_FAIL, f"Ray error: {type(exc).__name__}: {_first_line(exc)}"


def _first_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return lines[0].strip() if lines else type(exc).__name__


def _note_in_log(workdir: Path, status: JobStatus) -> None:
    with suppress(OSError), open(log_paths(workdir)[1], "a") as err:
        err.write(f"\n[nanoresearch] {status.state.value}: {status.detail}\n")


@contextmanager
def _loopback_only(ray: Any) -> Iterator[None]:
    """While starting a cluster: make it listen on 127.0.0.1 only.

    On Linux Ray binds its servers to the machine's routable address, even when told
    127.0.0.1; only its single-machine mode (meant for macOS and Windows) keeps to loopback.
    The driver reads that switch from ray_constants (already imported), the processes Ray
    starts read it from the environment they inherit. Both are put back afterwards, so that a
    later ray.init(address=...) in this process can still join a real cluster.
    """
    constants = getattr(getattr(ray, "_private", None), "ray_constants", None)
    if constants is None or not hasattr(constants, "ENABLE_RAY_CLUSTER"):
        log.warning("this Ray version has no single-machine switch; the local cluster may listen beyond loopback")
        yield
        return
    saved_env, saved_flag = os.environ.get(LOOPBACK_SWITCH), constants.ENABLE_RAY_CLUSTER
    os.environ[LOOPBACK_SWITCH], constants.ENABLE_RAY_CLUSTER = "0", False
    try:
        yield
    finally:
        constants.ENABLE_RAY_CLUSTER = saved_flag
        if saved_env is None:
            os.environ.pop(LOOPBACK_SWITCH, None)
        else:
            os.environ[LOOPBACK_SWITCH] = saved_env


# Executors still open when Python exits are closed first: their jobs are then cancelled one by
# one (killed and cleaned up by their tasks) before Ray's own exit handler stops the cluster.
_OPEN_EXECUTORS: weakref.WeakSet[RayExecutor] = weakref.WeakSet()
_exit_handler_registered = False


def _close_at_exit(executor: RayExecutor) -> None:
    global _exit_handler_registered
    _OPEN_EXECUTORS.add(executor)
    if not _exit_handler_registered:  # after `import ray`, so it runs before Ray's handler (LIFO)
        atexit.register(_close_open_executors)
        _exit_handler_registered = True


def _close_open_executors() -> None:
    executors = list(_OPEN_EXECUTORS)
    # Every executor's jobs first: closing the one that started the cluster ends the others' too.
    for step in (RayExecutor.cancel_unfinished, RayExecutor.close):
        for executor in executors:
            try:
                step(executor)
            except Exception:  # exiting anyway: one executor's trouble must not keep the others open
                log.exception("closing a Ray executor at exit failed")


def _unknown(job_id: str) -> JobStatus:
    return JobStatus(job_id=job_id, state=JobState.LOST, detail="not a job of this executor")


@register("ray")
def _create(settings: Settings) -> RayExecutor:
    executor = RayExecutor(settings)
    # A command creates its executor before its run's clock starts, so the cluster's start (5-10 s, more
    # on a busy machine) is the command's setup, as loading a model is, not time taken from the first
    # trial's share of a wall budget (it used to happen inside that trial's submit).
    executor.connect()
    return executor
