"""The executor plug point: submit / poll / wait / cancel / logs, and a registry by name.

An executor runs one command in one working folder with requested resources and reports how it
ended. It never decides whether a result is good (the task's evaluator does) but it does say *how*
a job failed, as a failure label, because only the executor can tell an OOM kill from a crash.
Executors only ever stop jobs they submitted themselves.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from pydantic import BaseModel, Field

from nanoresearch.plugins import EXECUTORS_GROUP, Registry

if TYPE_CHECKING:
    from nanoresearch.config import Settings

# disk: the working copy outgrew its disk limit; bad_proposal: the model gave no usable edit (a
# weak model, not a broken server); infra: the machinery failed (executor, lost job, evaluator).
FailureLabel = Literal[
    "crash", "timeout", "oom", "disk", "budget_overrun", "gate_miss", "illegal_edit", "bad_proposal", "infra"
]


class Resources(BaseModel):
    """Generic resource names; each executor translates them (sbatch flags, rlimits, Ray options)."""

    cpus: int = Field(1, ge=1)
    gpus: int = Field(0, ge=0)
    mem_gb: float = Field(2.0, gt=0)
    time_s: int = Field(600, gt=0)  # wall-clock limit; SLURM's --time comes from this, never a default
    max_file_mb: int = Field(512, gt=0)
    disk_mb: int = Field(1024, gt=0)  # the whole working copy; past it the job is killed (state DISK)
    max_processes: int = Field(256, gt=0)


class JobSpec(BaseModel):
    name: str
    workdir: Path  # the only folder the job may write
    command: str  # run by /bin/sh -c inside workdir
    resources: Resources = Resources()
    env: dict[str, str] = {}  # added to a cleared environment; secrets never belong here
    # Folders the job may read but not write besides the system and the Python installation (an
    # evaluator reads the trial it scores); in the sandbox nothing else outside workdir is visible.
    readonly: list[Path] = []
    # Unix time by which the job must be over however long it waited to start: a trial's share of a
    # wall budget counts from the run's start, not the job's. Executors stop it then, as at its time limit.
    deadline: float | None = None

    def ends_by(self, started_at: float) -> float:
        """Unix time at which a job started at `started_at` must stop: its time limit or its deadline, the earlier."""
        end = started_at + self.resources.time_s
        return end if self.deadline is None else min(end, self.deadline)

    def limit_text(self, started_at: float) -> str:
        """Which limit stops the job, in words (for the detail of a job stopped by it)."""
        if self.deadline is not None and self.deadline < started_at + self.resources.time_s:
            return f"its deadline (its share of the wall-clock budget, {max(0.0, self.deadline - started_at):.1f} s after it started)"
        return f"its time limit (the wall-clock limit of {self.resources.time_s} s)"


class JobState(str, Enum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"  # non-zero exit
    TIMEOUT = "timeout"
    OOM = "oom"
    DISK = "disk"  # the working copy outgrew resources.disk_mb
    CANCELLED = "cancelled"
    PREEMPTED = "preempted"
    NODE_FAIL = "node_fail"
    LOST = "lost"  # the executor can no longer find the job (daemon gone, record expired)

    @property
    def finished(self) -> bool:
        return self not in (JobState.PENDING, JobState.RUNNING)


FAILURE_OF_STATE: dict[JobState, FailureLabel | None] = {
    JobState.COMPLETED: None,
    JobState.FAILED: "crash",
    JobState.TIMEOUT: "timeout",
    JobState.OOM: "oom",
    JobState.DISK: "disk",
    JobState.CANCELLED: "infra",
    JobState.PREEMPTED: "infra",
    JobState.NODE_FAIL: "infra",
    JobState.LOST: "infra",
}


class JobStatus(BaseModel):
    job_id: str
    state: JobState
    exit_code: int | None = None
    started_at: float | None = None  # unix seconds
    ended_at: float | None = None
    gpus: int = 0
    cpus: int = 1
    detail: str = ""  # why it ended, in words (signal, SLURM reason, …)

    @property
    def elapsed_s(self) -> float:
        if self.started_at is None:
            return 0.0
        return (self.ended_at or time.time()) - self.started_at

    @property
    def failure(self) -> FailureLabel | None:
        return FAILURE_OF_STATE.get(self.state) if self.state.finished else None


class Executor(Protocol):
    name: str

    def submit(self, spec: JobSpec) -> str: ...

    def poll(self, job_id: str) -> JobStatus: ...

    def wait(self, job_id: str, timeout_s: float | None = None) -> JobStatus: ...

    def cancel(self, job_id: str) -> None: ...

    def logs(self, job_id: str) -> str: ...

    def attach(self, job_id: str) -> JobStatus | None:
        """Take over a job that an earlier process submitted (a resumed run), so that it can be
        polled, waited for and cancelled. None: this executor's jobs never outlive the process
        that submitted them (local, ray), so there is nothing to take over. A NanoResearchError:
        the job cannot be taken over (unknown, not ours, the scheduler does not answer)."""
        ...


def wait_by_polling(executor: Executor, job_id: str, timeout_s: float | None, interval_s: float = 0.2) -> JobStatus:
    """`wait` for executors that can only poll."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        status = executor.poll(job_id)
        if status.state.finished or (deadline is not None and time.monotonic() >= deadline):
            return status
        time.sleep(interval_s)


def log_paths(workdir: Path) -> tuple[Path, Path]:
    """Where a job's stdout and stderr go: beside the working copy, so the job cannot rewrite them."""
    folder = workdir.parent / f"{workdir.name}.logs"
    return folder / "stdout.log", folder / "stderr.log"


ExecutorFactory = Callable[["Settings"], Executor]


# The built-ins, which compute/__init__.py imports, and the executors plug-ins add (see nanoresearch.plugins).
EXECUTORS: Registry[ExecutorFactory] = Registry(EXECUTORS_GROUP, "executor")
register = EXECUTORS.register


def create_executor(name: str, settings: Settings) -> Executor:
    return EXECUTORS.lookup(name, fix=f"choose one with --executor, or install the plug-in that provides {name!r}")(settings)
