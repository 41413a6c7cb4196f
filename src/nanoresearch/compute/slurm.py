"""The SLURM executor: one job = one generated sbatch script, tracked until SLURM says how it ended.

Submission writes `<workdir>.logs/job.sbatch` and the spec as `job.json` (beside the job's
stdout/stderr, outside its working copy) and runs `sbatch --parsable`. The script asks for exactly
the spec's resources (`--time` included, never the partition's default), clears the environment
SLURM gives the job down to SLURM's own variables plus PATH, HOME, LANG, thread counts and the
spec's env, and then runs the command on the node in the same bubblewrap sandbox as a local job
(`python -m nanoresearch.compute.sandboxed_job job.json`, see `sandbox.py`).

Every job carries two marks: its name starts with `nr-` and its comment is
`nanoresearch:<uuid>`. `cancel` only touches job ids this executor submitted or re-attached to,
and checks both marks on the live job before calling `scancel`, so a reused job id or somebody
else's job is never cancelled.

Tracking asks three sources in turn, because each forgets a job at a different time:

1. `squeue -t all -O ...`: pending and running jobs, and finished ones for MinJobAge seconds;
2. `scontrol show job -o`: the same window, plus the exit code and restart count;
3. `sacct -c` (the job completion log, which needs no slurmdbd), then plain `sacct` (clusters
   with slurmdbd): finished jobs, for good. Records that ended before our job was submitted
   belong to an earlier job with the same id and are skipped.

Time limits hold to the second. SLURM keeps `--time` in whole minutes and checks it every 30 s or
so, while a trial's share of a budget is seconds: so a watch thread checks each of our jobs against
its own limit (from its start) and its absolute deadline (a share of a wall budget, which counts the
time the job waited for a node) every poll interval and cancels it when either is reached, pending
jobs included; the job then reads TIMEOUT. `--time` (minutes:seconds) stays as SLURM's own backstop.

A job none of them knows is LOST; a controller that does not answer also gives LOST (detail says
so), though `wait` keeps trying for `controller_grace_s` first. Queries run with
`SLURM_TIME_FORMAT=%s`, so times come back as unix seconds and no time zone is guessed.

OOM is SLURM's OUT_OF_MEMORY, or a FAILED/CANCELLED job whose stderr carries slurmstepd's
memory-limit message: that is how jobacct_gather's OverMemoryKill (memory enforcement without
cgroups) ends a job. Preempted jobs are requeued (`--requeue`), keep their job id and are tracked
on: while requeued they read PENDING with a detail that says so, and the logs keep every attempt
(`--open-mode=append`).
"""

from __future__ import annotations

import math
import os
import re
import shlex
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from nanoresearch.compute.executor import JobSpec, JobState, JobStatus, log_paths, register
from nanoresearch.errors import MissingDependencyError, NanoResearchError, UserError

if TYPE_CHECKING:
    from nanoresearch.config import Settings

JOB_PREFIX = "nr-"
MARKER_PREFIX = "nanoresearch:"
INSTALL_HINT = (
    "install SLURM's client commands (Debian/Ubuntu: apt-get install -y --no-install-recommends "
    "slurm-wlm munge) or load your cluster's slurm module; for a cluster on this machine run "
    "scripts/slurm-local.sh start"
)
# What the SLURM client commands print when no controller answers (or none is configured).
_UNREACHABLE = (
    "Unable to contact slurm controller",
    "Socket timed out",
    "Zero Bytes were transmitted",
    "Connection refused",
    "Could not establish a configuration source",
)
# How slurmstepd (memory sampling, cgroup OOM events) and the job itself report running out of
# memory. Needed because a job killed by jobacct_gather's OverMemoryKill ends as FAILED, not
# OUT_OF_MEMORY.
_OOM_PATTERN = re.compile(
    r"exceeded (?:job )?memory limit|oom[-_ ]kill|out of memory|MemoryError", re.IGNORECASE
)
# A requeued job shows PREEMPTED for a moment before it is PENDING again; after this long a
# PREEMPTED job was not requeued (e.g. PreemptMode=CANCEL) and the state is final.
_REQUEUE_GRACE_S = 30.0
# Variables SLURM sets for the job that the job keeps; everything else is cleared (see script).
_KEPT_FROM_SLURM = ("SLURM_*", "SLURMD_*", "CUDA_VISIBLE_DEVICES", "GPU_DEVICE_ORDINAL", "ROCR_VISIBLE_DEVICES", "TMPDIR")
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_JOB_ID = re.compile(r"\d+\Z")

_STATE_OF = {
    "PENDING": JobState.PENDING,
    "CONFIGURING": JobState.PENDING,
    "REQUEUED": JobState.PENDING,
    "REQUEUE_HOLD": JobState.PENDING,
    "REQUEUE_FED": JobState.PENDING,
    "RESV_DEL_HOLD": JobState.PENDING,
    "RUNNING": JobState.RUNNING,
    "COMPLETING": JobState.RUNNING,  # the exit code is known, but its processes are still ending
    "SUSPENDED": JobState.RUNNING,
    "STOPPED": JobState.RUNNING,
    "SIGNALING": JobState.RUNNING,
    "STAGE_OUT": JobState.RUNNING,
    "RESIZING": JobState.RUNNING,
    "COMPLETED": JobState.COMPLETED,
    "FAILED": JobState.FAILED,
    "SPECIAL_EXIT": JobState.FAILED,
    "TIMEOUT": JobState.TIMEOUT,
    "DEADLINE": JobState.TIMEOUT,
    "OUT_OF_MEMORY": JobState.OOM,
    "CANCELLED": JobState.CANCELLED,
    "REVOKED": JobState.CANCELLED,
    "PREEMPTED": JobState.PREEMPTED,
    "NODE_FAIL": JobState.NODE_FAIL,
    "BOOT_FAIL": JobState.NODE_FAIL,
}


class SlurmUnavailableError(NanoResearchError):
    """No SLURM controller answers (daemon down, wrong SLURM_CONF, network)."""


class _Unreachable(Exception):
    pass


@dataclass
class _Owned:
    """What this executor remembers about a job it submitted or re-attached to."""

    marker: str | None  # None only for a job attached from the completion log (no comment kept there)
    workdir: Path
    cpus: int
    gpus: int
    # SubmitTime on the controller's clock. Job ids do get reused (MaxJobId wraps, state is
    # lost, purged ids are handed out again), so older records under the same id are not ours.
    submitted_at: float | None = None
    # The job as submitted: its time limit and deadline, which the watch enforces to the poll.
    spec: JobSpec | None = None


@dataclass
class _Record:
    """One job as one SLURM source describes it; fields a source lacks stay None."""

    source: str
    state: str
    reason: str = ""
    exit_code: str | None = None  # "code:signal"
    submit: float | None = None
    start: float | None = None
    end: float | None = None
    cpus: int | None = None
    gpus: int | None = None
    restarts: int = 0
    name: str = ""
    comment: str = ""
    workdir: Path | None = None


# --- the sbatch script -------------------------------------------------------------------------


def sbatch_script(
    spec: JobSpec,
    marker: str,
    partition: str = "debug",
    extra_args: Sequence[str] = (),
    path_dirs: Sequence[str] | None = None,
    home: str | None = None,
    python: str | None = None,
) -> str:
    """The batch script for one job. Pure, so a golden file can pin it.

    The command itself is in `spec_path(workdir)`, which the script hands to `sandboxed_job`:
    the job runs in the same sandbox as a local one."""
    res = spec.resources
    stdout, stderr = log_paths(spec.workdir)
    options = [
        f"--job-name={job_name(spec.name)}",
        f"--comment={marker}",
        f"--partition={partition}",
        "--nodes=1",
        "--ntasks=1",
        f"--cpus-per-task={res.cpus}",
        f"--mem={math.ceil(res.mem_gb * 1024)}M",
        *([f"--gres=gpu:{res.gpus}"] if res.gpus else []),
        # Always set (SLURM's own default limit can be a month), as minutes:seconds. SLURM rounds it up
        # to whole minutes and checks it late: the executor's watch stops the job on time.
        f"--time={res.time_s // 60}:{res.time_s % 60:02d}",
        f"--chdir={spec.workdir}",
        f"--output={stdout}",
        f"--error={stderr}",
        # A requeued job appends, so the logs keep every attempt.
        "--open-mode=append",
        "--requeue",
        "--export=NONE",
        *extra_args,
    ]
    lines = ["#!/bin/bash", "# Written by NanoResearch's SLURM executor for one job; regenerated on every submit."]
    lines += [f"#SBATCH {shlex.quote(option)}" for option in options]
    lines += ["", *_clear_environment(), "", *_exports(spec, path_dirs, home), "", *_limits(spec)]
    lines += [
        "",
        'echo "[nanoresearch] job $SLURM_JOB_ID attempt $((${SLURM_RESTART_COUNT:-0} + 1)) on $SLURMD_NODENAME" >&2',
        f"exec {shlex.quote(python or sys.executable)} -m nanoresearch.compute.sandboxed_job "
        f"{shlex.quote(str(spec_path(spec.workdir)))}",
    ]
    return "\n".join(lines) + "\n"


def spec_path(workdir: Path) -> Path:
    """The job's spec as JSON, beside its logs (outside the working copy the job may write)."""
    return log_paths(workdir)[0].parent / "job.json"


def job_name(name: str) -> str:
    """`nr-` plus the spec's name, reduced to characters every SLURM tool prints verbatim."""
    return JOB_PREFIX + (re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-")[:60] or "job")


def _clear_environment() -> list[str]:
    # Even with --export=NONE, SLURM loads the user's login environment into a batch job
    # (SLURM_GET_USER_ENV), and dotfiles are where API keys live. Keep only SLURM's own
    # variables and the GPU assignment; the exports below are all the job gets.
    kept = "|".join(_KEPT_FROM_SLURM)
    return [
        "# SLURM loads the login environment even with --export=NONE: keep only its own variables.",
        "for name in $(compgen -e); do",
        f'    case "$name" in {kept}) ;; *) unset "$name" 2>/dev/null ;; esac',
        "done",
        "unset -f $(compgen -A function) 2>/dev/null",
    ]


def _exports(spec: JobSpec, path_dirs: Sequence[str] | None, home: str | None) -> list[str]:
    if path_dirs is None:
        # The interpreter's folder first, so `python` in the command is this virtualenv's.
        path_dirs = [str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"]
    values = {
        "PATH": ":".join(dict.fromkeys(path_dirs)),
        "HOME": home if home is not None else os.environ.get("HOME", str(Path.home())),
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        **{name: str(spec.resources.cpus) for name in _THREAD_VARIABLES},
    }
    lines = [f"export {name}={shlex.quote(value)}" for name, value in values.items()]
    if not spec.resources.gpus:
        # Nodes that do not fence devices would otherwise let the job use GPUs nobody pays for.
        lines.append("export CUDA_VISIBLE_DEVICES=")
    for name, value in spec.env.items():
        if not _ENV_NAME.match(name):
            raise UserError(f"job {spec.name!r}: {name!r} is not a valid environment variable name")
        lines.append(f"export {name}={shlex.quote(value)}")
    return lines


def _limits(spec: JobSpec) -> list[str]:
    # Per process, so safe on a shared node. The process-count limit is not applied: RLIMIT_NPROC
    # counts all of the user's processes on the node, including their other jobs.
    return [f"ulimit -f {spec.resources.max_file_mb * 1024}  # KiB: largest file the job may write"]


# --- running SLURM's commands ------------------------------------------------------------------


def _run(args: Sequence[str], timeout_s: float, epoch_times: bool = True) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if epoch_times:  # not for sbatch: SLURM_* variables travel into the job's environment
        env["SLURM_TIME_FORMAT"] = "%s"
    try:
        return subprocess.run(list(args), capture_output=True, text=True, env=env, timeout=timeout_s)
    except FileNotFoundError:
        raise MissingDependencyError(f"{args[0]} not found: SLURM's commands are not installed", hint=INSTALL_HINT) from None
    except subprocess.TimeoutExpired:
        raise _Unreachable(f"{args[0]} gave no answer within {timeout_s:.0f}s") from None


def _check_reachable(result: subprocess.CompletedProcess[str]) -> None:
    if result.returncode != 0 and any(marker in result.stderr for marker in _UNREACHABLE):
        raise _Unreachable(_first_line(result.stderr))


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "no output")


def _epoch(value: str) -> float | None:
    return float(value) if value.isdigit() else None  # "N/A", "NONE", "Unknown", "None"


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def _gpu_count(text: str | None) -> int | None:
    """GPUs in a TRES or gres string: 'gres:gpu:2', 'gres/gpu:a100:2', 'gres/gpu=2', 'gpu:1'."""
    if not text or text in ("N/A", "(null)"):
        return None
    total = 0
    for item in text.split(","):
        match = re.match(r"(?:gres[:/])?gpu(?::[^:=,]+)?[:=](\d+)", item.strip())
        if match:
            total += int(match.group(1))
    return total


# --- the executor ------------------------------------------------------------------------------


class SlurmExecutor:
    name = "slurm"

    def __init__(
        self,
        partition: str = "debug",
        extra_args: Sequence[str] = (),
        poll_interval_s: float = 0.5,  # one squeue call costs ~10 ms; a slow poll adds seconds per trial
        controller_grace_s: float = 60.0,
        command_timeout_s: float = 60.0,
    ) -> None:
        self.partition = partition
        self.extra_args = tuple(extra_args)  # e.g. --account=..., --qos=..., --constraint=...
        self.poll_interval_s = poll_interval_s
        self.controller_grace_s = controller_grace_s
        self.command_timeout_s = command_timeout_s
        self._owned: dict[str, _Owned] = {}
        self._final: dict[str, JobStatus] = {}
        self._over_limit: set[str] = set()  # jobs the watch cancelled at their time limit
        self._stopped_waiting: set[str] = set()  # ... of which these were still waiting for a node
        self._watch_lock = threading.Lock()
        self._watcher: threading.Thread | None = None

    # -- submit --

    def submit(self, spec: JobSpec) -> str:
        workdir = spec.workdir.resolve()
        spec = spec.model_copy(update={"workdir": workdir})
        if not workdir.is_dir():
            raise UserError(f"job {spec.name!r}: working folder {workdir} does not exist")
        marker = f"{MARKER_PREFIX}{uuid.uuid4().hex}"
        script = self.script_path(workdir)
        script.parent.mkdir(parents=True, exist_ok=True)
        spec_path(workdir).write_text(spec.model_dump_json(), encoding="utf-8")
        script.write_text(sbatch_script(spec, marker, self.partition, self.extra_args), encoding="utf-8")
        for log in log_paths(workdir):
            log.write_bytes(b"")  # a new job starts with empty logs; attempts then append
        job_id = self._sbatch(script)
        self._owned[job_id] = _Owned(marker, workdir, spec.resources.cpus, spec.resources.gpus,
                                     submitted_at=self._submit_time(job_id), spec=spec)
        self._watch()
        return job_id

    def _submit_time(self, job_id: str) -> float | None:
        try:
            record = self._squeue(job_id)
        except _Unreachable:
            return None
        return record.submit if record else None

    @staticmethod
    def script_path(workdir: Path) -> Path:
        return log_paths(workdir)[0].parent / "job.sbatch"

    def _sbatch(self, script: Path) -> str:
        try:
            result = _run(["sbatch", "--parsable", str(script)], self.command_timeout_s, epoch_times=False)
            _check_reachable(result)
        except _Unreachable as exc:
            raise SlurmUnavailableError(f"cannot submit: the SLURM controller does not answer ({exc})",
                                        hint="check `scontrol ping` and SLURM_CONF") from None
        if result.returncode != 0:
            raise UserError(f"sbatch refused the job: {_first_line(result.stderr)}",
                            hint=f"the script is {script}; check the partition and resources against `sinfo`")
        job_id = result.stdout.strip().split(";")[0]  # "<id>" or "<id>;<cluster>"
        if not _JOB_ID.match(job_id):
            raise SlurmUnavailableError(f"sbatch answered without a job id: {result.stdout.strip()!r}")
        return job_id

    # -- poll / wait --

    def poll(self, job_id: str) -> JobStatus:
        _check_job_id(job_id)
        if job_id in self._final:
            return self._final[job_id]
        try:
            record = self._live_record(job_id) or self._accounting_record(job_id)
        except _Unreachable as exc:
            return self._status_without_controller(job_id, str(exc))
        if record is None:
            return self._remember(job_id, JobStatus(job_id=job_id, state=JobState.LOST,
                                  detail=f"SLURM knows no job {job_id} (not in squeue, scontrol or sacct)"))
        return self._remember(job_id, self._status(job_id, record))

    def _remember(self, job_id: str, status: JobStatus) -> JobStatus:
        if status.state.finished:
            self._final[job_id] = status  # SLURM will not change its mind; spare the next poll
        return status

    def wait(self, job_id: str, timeout_s: float | None = None) -> JobStatus:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        silent_since: float | None = None
        while True:
            status = self.poll(job_id)
            now = time.monotonic()
            if status.state is JobState.LOST and job_id not in self._final:
                # LOST but not final: the controller did not answer. Restarting it is routine
                # on a real cluster, so the job is given up only after controller_grace_s.
                silent_since = silent_since or now
                done = now - silent_since >= self.controller_grace_s
            else:
                silent_since, done = None, status.state.finished
            if done or (deadline is not None and now >= deadline):
                return status
            time.sleep(self.poll_interval_s)

    def _status_without_controller(self, job_id: str, why: str) -> JobStatus:
        # The completion log needs no controller: a job that ended is still reported right.
        try:
            record = self._accounting_record(job_id)
        except _Unreachable:
            record = None
        if record is not None and record.state != "PREEMPTED":  # preempted jobs get requeued
            return self._remember(job_id, self._status(job_id, record))
        return JobStatus(job_id=job_id, state=JobState.LOST,
                         detail=f"the SLURM controller does not answer ({why}); the job may still be running")

    # -- the three sources --

    def _live_record(self, job_id: str) -> _Record | None:
        record = self._squeue(job_id)
        owned = self._owned.get(job_id)
        if record is None or (owned and owned.marker and record.comment != owned.marker):
            return None  # gone, or the id now belongs to another job
        state = _STATE_OF.get(record.state)
        if state is None or state.finished or record.state == "PENDING":
            # squeue has no exit code and no restart count: the controller's full record does.
            return self._scontrol(job_id) or record
        return record

    def _squeue(self, job_id: str) -> _Record | None:
        fields = ["JobID", "State", "Reason", "SubmitTime", "StartTime", "EndTime", "NumCPUs", "NumNodes",
                  "tres-per-node", "WorkDir", "Name", "Comment"]
        result = _run(["squeue", "-h", "-t", "all", "-j", job_id, "-O", ",".join(f"{f}:|" for f in fields)],
                      self.command_timeout_s)
        _check_reachable(result)
        line = result.stdout.strip()
        if result.returncode != 0 or not line:
            return None  # "Invalid job id specified": purged, or never existed
        *head, comment = line.splitlines()[0].rstrip("|").split("|", len(fields) - 1)
        listed_id, state, reason, submit, start, end, cpus, nodes, tres, workdir, name = head
        if listed_id != job_id:
            return None
        gpus = _gpu_count(tres)
        return _Record(
            "squeue", state.split()[0], reason, submit=_epoch(submit), start=_epoch(start), end=_epoch(end),
            cpus=_int(cpus), gpus=None if gpus is None else gpus * (_int(nodes) or 1), name=name,
            comment="" if comment == "(null)" else comment, workdir=Path(workdir) if workdir else None,
        )

    def _scontrol(self, job_id: str) -> _Record | None:
        result = _run(["scontrol", "show", "job", "-o", job_id], self.command_timeout_s)
        _check_reachable(result)
        if result.returncode != 0 or not result.stdout.strip():
            return None
        fields = _scontrol_fields(result.stdout.splitlines()[0])
        gpus = _gpu_count(fields.get("TresPerNode"))
        if gpus is not None:
            gpus *= _int(fields.get("NumNodes")) or 1
        else:
            gpus = _gpu_count(fields.get("TRES"))  # gres/gpu=N where AccountingStorageTRES has it
        return _Record(
            "scontrol", fields.get("JobState", "UNKNOWN"), fields.get("Reason", ""), fields.get("ExitCode"),
            submit=_epoch(fields.get("SubmitTime", "")), start=_epoch(fields.get("StartTime", "")),
            end=_epoch(fields.get("EndTime", "")), cpus=_int(fields.get("NumCPUs")), gpus=gpus,
            restarts=_int(fields.get("Restarts")) or 0, name=fields.get("JobName", ""),
            comment="" if fields.get("Comment") in (None, "(null)") else fields["Comment"],
            workdir=Path(fields["WorkDir"]) if fields.get("WorkDir") else None,
        )

    def _accounting_record(self, job_id: str) -> _Record | None:
        owned = self._owned.get(job_id)
        not_before = owned.submitted_at if owned else None
        # The completion log first (no slurmdbd needed), then the accounting database.
        for args in (["sacct", "-c"], ["sacct"]):
            record = self._sacct(args, job_id, not_before)
            if record is not None:
                return record
        return None

    def _sacct(self, args: list[str], job_id: str, not_before: float | None) -> _Record | None:
        fields = "JobIDRaw,State,ExitCode,Start,End,NCPUS,AllocTRES,WorkDir,JobName"
        result = _run([*args, "-j", job_id, "-P", "-n", "-X", "-o", fields], self.command_timeout_s)
        if result.returncode != 0:
            return None  # e.g. "Slurm accounting storage is disabled"
        rows = [row.split("|", 8) for row in result.stdout.splitlines() if row.startswith(f"{job_id}|")]
        # Rows of an earlier job that had the same id ended before ours was submitted.
        rows = [row for row in rows if not_before is None or (_epoch(row[4]) or math.inf) >= not_before]
        if not rows:
            return None
        # One row per attempt (a preempted run, then the requeued one): the last one counts.
        _, state, exit_code, start, end, cpus, tres, workdir, name = rows[-1]
        return _Record(
            " ".join(args), state.split()[0], exit_code=exit_code, start=_epoch(start), end=_epoch(end),
            cpus=_int(cpus), gpus=_gpu_count(tres), restarts=len(rows) - 1, name=name,
            workdir=Path(workdir) if workdir else None,
        )

    # -- from a record to a JobStatus --

    def _status(self, job_id: str, record: _Record) -> JobStatus:
        owned = self._owned.get(job_id)
        # A state this table does not know (a newer SLURM) is taken as still running.
        state = _STATE_OF.get(record.state, JobState.RUNNING)
        code, signal = _exit_parts(record.exit_code)
        if state is JobState.PREEMPTED and not record.source.startswith("sacct") and time.time() - (record.end or 0) < _REQUEUE_GRACE_S:
            return self._make(job_id, record, owned, JobState.PENDING, None, None, "preempted; being requeued")
        if state is JobState.CANCELLED and job_id in self._stopped_waiting:
            # SLURM gives a job cancelled in the queue a start time; it never ran.
            return self._make(job_id, replace(record, start=None), owned, JobState.TIMEOUT, code, signal,
                              "not started: its deadline (its share of the wall-clock budget) passed while it waited for a node")
        if state is JobState.CANCELLED and job_id in self._over_limit and owned is not None and owned.spec is not None:
            limit = owned.spec.limit_text(record.start or owned.submitted_at or time.time())
            return self._make(job_id, record, owned, JobState.TIMEOUT, code, signal, f"stopped at {limit}")
        if state in (JobState.FAILED, JobState.CANCELLED) and (oom_line := self._oom_line(job_id, record)):
            return self._make(job_id, record, owned, JobState.OOM, code, signal,
                              f"out of memory (past the job's memory limit): {oom_line}")
        return self._make(job_id, record, owned, state, code, signal, _detail(state, record, code, signal))

    def _make(self, job_id: str, record: _Record, owned: _Owned | None, state: JobState,
              code: int | None, signal: int | None, detail: str) -> JobStatus:
        started = record.start if state is JobState.RUNNING or state.finished else None
        return JobStatus(
            job_id=job_id,
            state=state,
            # Python's convention: a job killed by signal N reads -N.
            exit_code=(-signal if signal else code) if state.finished else None,
            started_at=started,
            ended_at=record.end if state.finished and started is not None else None,
            gpus=record.gpus if record.gpus is not None else (owned.gpus if owned else 0),
            cpus=record.cpus or (owned.cpus if owned else 1),
            detail=detail,
        )

    def _oom_line(self, job_id: str, record: _Record) -> str | None:
        workdir = record.workdir or (self._owned[job_id].workdir if job_id in self._owned else None)
        if workdir is None:
            return None
        tail = _tail(log_paths(workdir)[1], 8192)
        return next((line.strip() for line in reversed(tail.splitlines()) if _OOM_PATTERN.search(line)), None)

    # -- cancel / logs / attach --

    def cancel(self, job_id: str) -> None:
        owned = self._owned.get(job_id)
        if owned is None:
            raise UserError(f"refusing to cancel SLURM job {job_id}: this executor did not submit it",
                            hint="jobs of an earlier NanoResearch process can be attached first (attach)")
        try:
            record = self._live_record(job_id)
        except _Unreachable as exc:
            raise SlurmUnavailableError(f"cannot cancel job {job_id}: the SLURM controller does not answer ({exc})") from None
        if record is None or _STATE_OF.get(record.state, JobState.RUNNING).finished:
            return  # already over: nothing to stop
        if owned.marker is None or record.comment != owned.marker or not record.name.startswith(JOB_PREFIX):
            raise UserError(f"refusing to cancel SLURM job {job_id}: it does not carry this executor's marker "
                            f"(name {record.name!r}, comment {record.comment!r}); the id may have been reused")
        result = _run(["scancel", job_id], self.command_timeout_s)
        if result.returncode != 0:
            raise SlurmUnavailableError(f"scancel {job_id} failed: {_first_line(result.stderr)}")

    def logs(self, job_id: str, max_bytes: int = 16_000) -> str:
        owned = self._owned.get(job_id)
        if owned is None:
            raise UserError(f"no logs for SLURM job {job_id}: this executor did not submit it",
                            hint="attach it first")
        stdout, stderr = (_tail(path, max_bytes) for path in log_paths(owned.workdir))
        return stdout + (f"\n--- stderr ---\n{stderr}" if stderr.strip() else "")

    def attach(self, job_id: str, marker: str | None = None) -> JobStatus:
        """Takes over a job an earlier process submitted (resume), after checking its marks."""
        _check_job_id(job_id)
        try:
            record = self._live_record(job_id) or self._accounting_record(job_id)
        except _Unreachable as exc:
            raise SlurmUnavailableError(f"cannot attach to job {job_id}: the SLURM controller does not answer ({exc})") from None
        if record is None:
            raise UserError(f"cannot attach to SLURM job {job_id}: SLURM knows no such job")
        _check_marks(job_id, record, marker)
        if record.workdir is None:
            raise UserError(f"cannot attach to SLURM job {job_id}: SLURM does not say where it ran")
        self._owned[job_id] = _Owned(record.comment or marker, record.workdir, record.cpus or 1, record.gpus or 0,
                                     submitted_at=record.submit, spec=_submitted_spec(record.workdir))
        self._watch()
        return self.poll(job_id)

    # -- the time-limit watch --

    def _watch(self) -> None:
        with self._watch_lock:
            if self._watcher is None or not self._watcher.is_alive():
                self._watcher = threading.Thread(target=self._enforce_limits, name="slurm-time-limits", daemon=True)
                self._watcher.start()

    def _enforce_limits(self) -> None:
        """Runs while any job of ours may still run; stops each at its own time limit."""
        while True:
            with self._watch_lock:  # decided under the lock, so a job submitted meanwhile starts a new watch
                watched = [job_id for job_id, owned in list(self._owned.items())
                           if owned.spec is not None and job_id not in self._final]
                if not watched:
                    self._watcher = None
                    return
            for job_id in watched:
                self._stop_if_over_limit(job_id)
            time.sleep(self.poll_interval_s)

    def _stop_if_over_limit(self, job_id: str) -> None:
        spec = self._owned[job_id].spec
        status = self.poll(job_id)
        if spec is None or not _past_its_limit(spec, status):
            return
        self._over_limit.add(job_id)
        if status.state is JobState.PENDING:
            self._stopped_waiting.add(job_id)
        try:
            self.cancel(job_id)
        except NanoResearchError:
            self._over_limit.discard(job_id)
            self._stopped_waiting.discard(job_id)  # could not stop it now: try again next round; --time is the backstop

    def marker(self, job_id: str) -> str | None:
        """The comment that proves a job is ours: store it beside the job id to attach later."""
        owned = self._owned.get(job_id)
        return owned.marker if owned else None


def _check_job_id(job_id: str) -> None:
    # A plain number only: SLURM's commands read "1,2" or "1_[0-3]" as several jobs.
    if not _JOB_ID.match(job_id):
        raise UserError(f"{job_id!r} is not a SLURM job id (expected a number)")


def _check_marks(job_id: str, record: _Record, marker: str | None) -> None:
    if not record.name.startswith(JOB_PREFIX):
        raise UserError(f"refusing to attach to SLURM job {job_id}: its name {record.name!r} is not a NanoResearch job's")
    if record.source in ("squeue", "scontrol"):
        # The completion log keeps no comment; live records must carry the marker.
        if not record.comment.startswith(MARKER_PREFIX) or (marker is not None and record.comment != marker):
            raise UserError(f"refusing to attach to SLURM job {job_id}: its comment {record.comment!r} "
                            f"is not {marker or MARKER_PREFIX + '<uuid>'}")


def _submitted_spec(workdir: Path) -> JobSpec | None:
    """The spec a job was submitted with (its time limit and deadline), from the file beside its logs."""
    try:
        return JobSpec.model_validate_json(spec_path(workdir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _past_its_limit(spec: JobSpec, status: JobStatus) -> bool:
    """Whether the watch must stop the job now: running past its time limit or its deadline, or still
    waiting for a node at its deadline (it must not start late, as its share of the wall clock is gone)."""
    now = time.time()
    if status.state is JobState.PENDING:
        return spec.deadline is not None and now >= spec.deadline
    return status.state is JobState.RUNNING and status.started_at is not None and now >= spec.ends_by(status.started_at)


def _scontrol_fields(line: str) -> dict[str, str]:
    # `scontrol -o` prints Key=Value pairs separated by spaces; values may contain spaces.
    return {m.group(1): m.group(2).strip() for m in re.finditer(r"(\S+?)=(.*?)(?=\s\S+?=|\s*$)", line)}


def _exit_parts(value: str | None) -> tuple[int | None, int | None]:
    if not value or ":" not in value:
        return None, None
    code, signal = value.split(":", 1)
    return _int(code), _int(signal)


_ENDINGS = {
    JobState.TIMEOUT: "hit its time limit (--time)",
    JobState.OOM: "out of memory: SLURM stopped the job",
    JobState.CANCELLED: "cancelled",
    JobState.PREEMPTED: "preempted and not requeued",
    JobState.NODE_FAIL: "the node failed",
}


def _detail(state: JobState, record: _Record, code: int | None, signal: int | None) -> str:
    reason = "" if record.reason in ("", "None") else f" ({record.reason})"
    if state is JobState.FAILED:
        return (f"killed by signal {signal}" if signal else f"exit code {code}") + reason
    if state in _ENDINGS:
        return _ENDINGS[state] + reason
    parts = [f"requeued {record.restarts}x (preempted or requeued)" if record.restarts else "",
             f"waiting{reason}" if state is JobState.PENDING and reason else ""]
    return "; ".join(part for part in parts if part)


def _tail(path: Path, max_bytes: int) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(max(0, handle.seek(0, os.SEEK_END) - max_bytes))
            return handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


@register("slurm")
def _create(settings: Settings) -> SlurmExecutor:
    return SlurmExecutor(partition=settings.slurm.partition, extra_args=settings.slurm.extra_args)
