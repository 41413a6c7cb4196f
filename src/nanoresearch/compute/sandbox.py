"""Run a job's command in a sandbox: bubblewrap when it works, cgroups when writable, rlimits always.

Layers, strongest first:

- bubblewrap (`bwrap`): the job starts from an empty root and sees only what a recipe needs:
  the system folders (/usr and its merged-/usr links, /sys) and a short list of /etc files
  (loader cache, passwd/group, certificates, time zone; never shadow or ssh keys), read-only; the
  folders of this Python (interpreter, virtualenv, package folders, `python_runtime`) read-only,
  bound at their own paths and never the home around them; the task's read-only folders
  (`JobSpec.readonly`); the job's workdir, the only writable folder, bound at its own path
  so paths mean the same inside and out; a private /tmp (RAM, sized to the memory budget) with
  HOME=/tmp/home, so caches never land in the working copy; a minimal /dev and its own /proc.
  Homes (/root, /home), the NanoResearch home (all users' folders and the store) except the
  job's own workdir, /var, /opt, /run and everything else are absent, not merely read-only.
  Own network namespace (no network, not even the host's loopback); own PID namespace (the job
  sees and signals only its own processes, and all of them die with it); no capabilities, even
  as root.
- cgroups (v1 or v2), each job in a folder nested under this process's own cgroup so that
  limits set on us still apply: `pids.max` stops fork bombs as root, where RLIMIT_NPROC is not
  enforced; the memory limit covers what rlimits cannot (shared memory, tmpfs, child processes);
  a CPU quota of `cpus` cores. Used only where the controller's folder is writable.
- rlimits, set in the child before exec: RLIMIT_DATA from mem_gb (not RLIMIT_AS: torch and CUDA
  reserve tens of GB of address space they never touch, RLIMIT_DATA counts only private writable
  memory), CPU seconds, file size (which also caps the job's log files), no core dumps, and
  RLIMIT_NPROC for non-root users.
- the environment is rebuilt from nothing every time: no variable of the caller passes, so API
  keys and tokens never reach a job, with or without bubblewrap.

`run_sandboxed` runs one short command the same way and returns its output (a runner for the
trial evaluator). The SLURM executor runs the same sandbox on the node (`sandboxed_job.py`).

Without a working bwrap the job runs with rlimits (and cgroups) only: it can then read and write
anything the user can and reach the network. That is logged as a warning once, and
`sandbox_status()` says so for `doctor` and the CLI.
"""

from __future__ import annotations

import functools
import glob
import logging
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from nanoresearch.compute.executor import JobSpec, Resources
from nanoresearch.errors import ConfigError

log = logging.getLogger(__name__)

GiB = 1 << 30
MiB = 1 << 20
SANDBOX_HOME = "/tmp/home"  # HOME inside bubblewrap: on the private /tmp, gone with the job
BASE_PATH = "/usr/local/bin:/usr/bin:/bin"
# Names that look like credentials; refused in JobSpec.env (the caller's environment never passes).
# Whole words only, so TOKENIZERS_PARALLELISM or MONKEY_COUNT pass.
SECRET_NAME = re.compile(r"(^|_)(KEY|APIKEY|TOKEN|SECRET|PASSWD|CREDENTIALS?)(_|$)|PASSWORD", re.IGNORECASE)
# Processes our wrappers add to a job's cgroup: bwrap, its PID-1 reaper, /bin/sh.
WRAPPER_PROCESSES = 3
CONTROLLERS = ("pids", "memory", "cpu")
# The system folders a sandboxed job sees, read-only; on merged-/usr systems most are links to /usr.
# /sys stays: libraries read the CPU topology and cgroup limits there (OpenBLAS, torch, loky).
SYSTEM_FOLDERS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/sys")
SYSTEM_ROOTS = tuple(Path(p).resolve() for p in SYSTEM_FOLDERS)
# The /etc files programs need: the loader's cache, users and groups by name, name service
# switch, certificates, time zone, the alternatives' links. Never shadow, sudoers, ssh or the like.
SYSTEM_ETC = (
    "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "passwd", "group", "nsswitch.conf", "hosts", "host.conf",
    "gai.conf", "protocols", "services", "ssl", "ca-certificates", "pki", "localtime", "timezone",
    "alternatives", "fonts", "mime.types", "locale.alias", "os-release",
)


# --- What this machine offers --------------------------------------------------------------


@dataclass(frozen=True)
class SandboxStatus:
    bwrap: str | None  # path of a bwrap that was seen to work
    cgroups: dict[str, Path]  # controller -> writable folder under our own cgroup
    problem: str = ""  # why bwrap is not used, in words
    tmpfs_size: bool = True  # bwrap takes --size (0.7+): the private /tmp is capped

    @property
    def sandboxed(self) -> bool:
        return self.bwrap is not None

    @property
    def isolation(self) -> str:
        limits = "rlimits" + (f" + cgroups ({', '.join(sorted(self.cgroups))})" if self.cgroups else "")
        if self.sandboxed:
            return f"bubblewrap ({VISIBLE_INSIDE}) + {limits}"
        return f"{limits} only: NOT isolated (the job can read and write all the user can and use the network): {self.problem}"


# What a sandboxed job sees, in words (doctor and the CLI print it).
VISIBLE_INSIDE = (
    "system folders and the Python installation read-only, the trial folder writable, the task read-only; "
    "homes and the NanoResearch home absent; private /tmp; no network; own PID namespace"
)

_status: SandboxStatus | None = None
_status_lock = threading.Lock()
_warned = False


def sandbox_status(refresh: bool = False) -> SandboxStatus:
    """Probe once per process (a real bwrap run and a real cgroup mkdir); doctor reuses this."""
    global _status
    with _status_lock:
        if _status is None or refresh:
            bwrap, problem, sized = _probe_bwrap()
            _status = SandboxStatus(bwrap=bwrap, cgroups=_writable_cgroups(), problem=problem, tmpfs_size=sized)
        return _status


def warn_if_unsandboxed(status: SandboxStatus) -> None:
    global _warned
    if not status.sandboxed and not _warned:
        _warned = True
        log.warning("jobs run WITHOUT a sandbox: %s", status.isolation)


def _probe_bwrap() -> tuple[str | None, str, bool]:
    """(path, problem, takes --size): runs `true` with the very mounts a job gets."""
    path = shutil.which("bwrap")
    if path is None:
        return None, "bwrap not found (install bubblewrap: apt-get install bubblewrap)", False
    try:
        sized = "--size" in subprocess.run([path, "--help"], capture_output=True, text=True, timeout=10).stdout
        with tempfile.TemporaryDirectory(prefix="nanoresearch-probe-") as workdir:
            args = bwrap_args(Path(workdir), Resources(), {"PATH": BASE_PATH}, (), sized)
            result = subprocess.run(
                [path, *args, "--", "/bin/true"], capture_output=True, text=True, timeout=10, env={"PATH": BASE_PATH}
            )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"bwrap does not run: {exc}", False
    if result.returncode != 0:
        first = (result.stderr.strip().splitlines() or ["no message"])[0]
        return None, f"bwrap does not work here (user namespaces disabled?): {first}", sized
    return path, "", sized


# --- Command line and environment ------------------------------------------------------------


@dataclass
class PreparedJob:
    """Everything `subprocess.Popen` needs, plus what to clean up when the job is over."""

    argv: list[str]
    env: dict[str, str]
    cwd: Path
    preexec_fn: Callable[[], None]
    sandboxed: bool
    cgroup: JobCgroup | None = None
    scratch_home: Path | None = None  # HOME made for a job run without bwrap

    def cleanup(self) -> None:
        if self.cgroup is not None:
            self.cgroup.remove()
        if self.scratch_home is not None:
            shutil.rmtree(self.scratch_home, ignore_errors=True)


def prepare(
    spec: JobSpec,
    job_id: str,
    gpu_ids: Sequence[str] = (),
    use_bwrap: bool | None = None,
    cgroups: bool = True,
) -> PreparedJob:
    """Build the command line, environment and child setup for one job.

    use_bwrap: None = when it works (warn once otherwise); True = required; False = rlimits only.
    cgroups: False where someone else's cgroups already hold the job (SLURM).
    """
    status = sandbox_status()
    if use_bwrap and not status.sandboxed:
        raise ConfigError("bubblewrap was asked for but does not work here", hint=status.problem)
    sandboxed = status.sandboxed if use_bwrap is None else use_bwrap
    if use_bwrap is None:
        warn_if_unsandboxed(status)
    check_env(spec.env)
    workdir = spec.workdir.resolve()
    scratch = None if sandboxed else Path(tempfile.mkdtemp(prefix=f"nanoresearch-home-{job_id}-"))
    env = job_environment(spec, home=SANDBOX_HOME if sandboxed else str(scratch), gpu_ids=gpu_ids)
    command = ["/bin/sh", "-c", spec.command]
    if sandboxed:
        assert status.bwrap is not None
        mounts = bwrap_args(workdir, spec.resources, env, gpu_ids, status.tmpfs_size, spec.readonly)
        argv = [status.bwrap, *mounts, "--", *command]
        popen_env = {"PATH": BASE_PATH}  # bwrap's own; the job's comes from --setenv
    else:
        argv, popen_env = command, env
    cgroup = JobCgroup.create(job_id, spec.resources, status.cgroups) if cgroups else None
    limits = rlimits_for(spec.resources)
    procs = cgroup.procs_files if cgroup else []
    return PreparedJob(
        argv=argv, env=popen_env, cwd=workdir, preexec_fn=_child_setup(limits, procs),
        sandboxed=sandboxed, cgroup=cgroup, scratch_home=scratch,
    )


def job_environment(spec: JobSpec, home: str, gpu_ids: Sequence[str] = ()) -> dict[str, str]:
    """A fresh environment: nothing is inherited, so no secret of the caller can leak."""
    threads = str(spec.resources.cpus)
    # The project's interpreter first, so `python` in a task command has numpy, sklearn, torch.
    env = {
        "PATH": f"{Path(sys.executable).parent}:{BASE_PATH}",
        "HOME": home,
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "OMP_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
        "OPENBLAS_NUM_THREADS": threads,
        "NUMEXPR_NUM_THREADS": threads,
    }
    if gpu_ids:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(gpu_ids)
    elif spec.resources.gpus == 0:
        env["CUDA_VISIBLE_DEVICES"] = ""  # a CPU job must not grab a GPU someone else was given
    env.update(spec.env)
    return env


def check_env(extra: dict[str, str]) -> None:
    """JobSpec.env must not carry credentials, by name or by value."""
    secret_values = {v for k, v in os.environ.items() if SECRET_NAME.search(k) and len(v) >= 8}
    bad = sorted(k for k, v in extra.items() if SECRET_NAME.search(k) or v in secret_values)
    if bad:
        raise ConfigError(
            f"job environment carries what looks like a secret: {', '.join(bad)}",
            hint="jobs never get credentials; remove these from JobSpec.env",
        )


def _namespace_args() -> list[str]:
    args = ["--unshare-all", "--die-with-parent", "--new-session"]
    if os.geteuid() == 0:
        args += ["--cap-drop", "ALL"]  # root keeps all capabilities in bwrap otherwise (mknod, mount …)
    return args


def system_args() -> list[str]:
    """The system part of the sandbox's root: programs, libraries, a few /etc files, /dev, /proc.

    bwrap starts from an empty root, so whatever is not listed here (homes, /var, /opt, /srv, /mnt,
    the NanoResearch home) does not exist inside. Merged-/usr links (/bin -> usr/bin) stay links.
    """
    args: list[str] = []
    for name in SYSTEM_FOLDERS:
        path = Path(name)
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), name]
        elif path.is_dir():
            args += ["--ro-bind", name, name]
    for name in SYSTEM_ETC:
        if os.path.lexists(f"/etc/{name}"):
            args += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
    return [*args, "--dev", "/dev", "--proc", "/proc"]


def bwrap_args(
    workdir: Path,
    resources: Resources,
    env: dict[str, str],
    gpu_ids: Sequence[str],
    tmpfs_size: bool = True,
    readonly: Sequence[Path] = (),
) -> list[str]:
    # Order matters: later mounts go on top of earlier ones, so the workdir is bound after the
    # /tmp tmpfs (a workdir under /tmp stays visible) and bwrap creates its mount point there.
    args = [*_namespace_args(), *system_args()]
    if tmpfs_size:  # /tmp is RAM: cap it at the memory budget
        args += ["--size", str(int(resources.mem_gb * GiB))]
    args += ["--tmpfs", "/tmp", "--dir", SANDBOX_HOME]
    for folder in [*python_runtime(), *readonly]:
        args += ["--ro-bind", str(Path(folder).resolve()), str(Path(folder).resolve())]
    args += ["--bind", str(workdir), str(workdir), "--chdir", str(workdir)]
    if gpu_ids:  # --dev /dev is a minimal /dev; CUDA needs the driver's device files
        for device in sorted(glob.glob("/dev/nvidia*")):
            args += ["--dev-bind", device, device]
    # The root is bwrap's own tmpfs holding the mount points; read-only, so /tmp and the workdir
    # stay the only places a job can write.
    args += ["--remount-ro", "/", "--clearenv"]
    for name, value in env.items():
        args += ["--setenv", name, value]
    return args


@functools.cache
def python_runtime() -> tuple[Path, ...]:
    """The folders of this Python that a job needs and the system folders do not cover: the
    installation (which may live in a home, like pyenv's ~/.pyenv/versions/X), the virtualenv,
    and package folders on sys.path (an editable source tree). Only these folders are bound,
    never the home around them. The current folder on sys.path is not the installation's and is
    left out, and so is any folder that would contain a home, the NanoResearch home or /tmp."""
    candidates = {Path(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)}
    candidates.add(Path(sys.executable).parent)
    # sys.path[0] is the script's folder or the current one, not the installation's.
    candidates |= {Path(p) for p in sys.path[1:] if p and Path(p).is_dir()}
    private = private_places()
    found = set()
    for path in (p.resolve() for p in candidates):
        if any(path.is_relative_to(system) for system in SYSTEM_ROOTS):
            continue  # already visible
        if any(place.is_relative_to(path) for place in private):
            log.warning("not showing %s to jobs: it contains a home, the NanoResearch home or /tmp", path)
            continue
        found.add(path)
    return tuple(sorted(p for p in found if not any(p != other and p.is_relative_to(other) for other in found)))


def private_places() -> set[Path]:
    """Folders a job must never see, not even through a parent bound for the Python installation."""
    home = os.environ.get("NANORESEARCH_HOME") or str(Path.home() / ".nanoresearch")
    places = ("/root", "/home", "~", home, "/tmp", "/var/tmp", tempfile.gettempdir())
    return {Path(p).expanduser().resolve() for p in places}


def run_sandboxed(
    command: str, cwd: Path, env: dict[str, str], time_s: int, readonly: Sequence[Path] = ()
) -> tuple[int, str, str]:
    """Run one short command in the sandbox and return (returncode, stdout, stderr).

    `readonly`: folders it may read besides the system and the Python installation (JobSpec.readonly).
    `env` is added to the cleared environment (secrets refused as for jobs). Raises TimeoutError past `time_s`.
    """
    spec = JobSpec(name="run", workdir=cwd, command=command, env=env, resources=Resources(time_s=time_s),
                   readonly=list(readonly))
    prepared = prepare(spec, f"run-{os.getpid()}-{threading.get_ident()}-{time.monotonic_ns()}")
    try:
        process = subprocess.Popen(
            prepared.argv, cwd=prepared.cwd, env=prepared.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, errors="replace", start_new_session=True,
            preexec_fn=prepared.preexec_fn,
        )
        try:
            stdout, stderr = process.communicate(timeout=time_s)
        except subprocess.TimeoutExpired:
            # The group holds bwrap (whose death empties the namespace) or the shell and its
            # children; the pipes close once every process of the command is gone.
            with suppress(ProcessLookupError):
                os.killpg(process.pid, 9)  # not reaped yet, so the group id is still ours
            if prepared.cgroup is not None:
                prepared.cgroup.kill_all()
            process.communicate()
            raise TimeoutError(f"{command!r} ran past {time_s}s") from None
        return process.returncode, stdout, stderr
    finally:
        prepared.cleanup()


# --- rlimits -------------------------------------------------------------------------------


def rlimits_for(resources: Resources) -> list[tuple[int, int, int]]:
    """(resource, soft, hard) to set in the child; never above the limits we already have."""
    cpu_s = int(resources.time_s * resources.cpus * 1.25) + 5  # wall clock normally ends it first
    wanted = [
        (resource.RLIMIT_DATA, int(resources.mem_gb * GiB), int(resources.mem_gb * GiB)),
        (resource.RLIMIT_CPU, cpu_s, cpu_s + 5),  # SIGXCPU at soft, SIGKILL at hard
        (resource.RLIMIT_FSIZE, resources.max_file_mb * MiB, resources.max_file_mb * MiB),
        (resource.RLIMIT_CORE, 0, 0),
    ]
    if os.geteuid() != 0:  # root ignores RLIMIT_NPROC; for others it counts all their tasks
        nproc = _user_task_count() + resources.max_processes + WRAPPER_PROCESSES
        wanted.append((resource.RLIMIT_NPROC, nproc, nproc))
    return [(res, *_capped(res, soft, hard)) for res, soft, hard in wanted]


def _capped(res: int, soft: int, hard: int) -> tuple[int, int]:
    _, current_hard = resource.getrlimit(res)
    if current_hard != resource.RLIM_INFINITY:
        hard = min(hard, current_hard)
    return min(soft, hard), hard


def _user_task_count() -> int:
    uid = str(os.getuid())
    count = 0
    for status in glob.glob("/proc/[0-9]*/status"):
        try:
            text = Path(status).read_text()
        except OSError:
            continue
        if re.search(rf"^Uid:\s+{uid}\s", text, re.M):
            match = re.search(r"^Threads:\s+(\d+)", text, re.M)
            count += int(match.group(1)) if match else 1
    return count


def _child_setup(limits: list[tuple[int, int, int]], procs_files: list[str]) -> Callable[[], None]:
    """Runs in the child between fork and exec: join the job's cgroups, then lower the rlimits.

    Joining here, before exec, means no process of the job ever runs outside its cgroup.
    """

    def setup() -> None:
        pid = str(os.getpid()).encode()
        for path in procs_files:
            fd = os.open(path, os.O_WRONLY)
            try:
                os.write(fd, pid)
            finally:
                os.close(fd)
        for res, soft, hard in limits:
            resource.setrlimit(res, (soft, hard))

    return setup


# --- cgroups -------------------------------------------------------------------------------


def _own_cgroups() -> dict[str, str]:
    """controller -> our cgroup path; "" is the cgroup v2 hierarchy."""
    own: dict[str, str] = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for name in controllers.split(",") if controllers else [""]:
            own[name] = path
    return own


def _cgroup_mounts() -> list[tuple[str, Path, set[str]]]:
    """(fstype, mount point, super options) of every cgroup mount."""
    mounts = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields, _, rest = line.partition(" - ")
        fstype, _, options = (rest.split() + ["", "", ""])[:3]
        if fstype in ("cgroup", "cgroup2"):
            mounts.append((fstype, Path(fields.split()[4]), set(options.split(","))))
    return mounts


def _writable_cgroups() -> dict[str, Path]:
    try:
        own = _own_cgroups()
        mounts = _cgroup_mounts()
    except (OSError, ValueError):
        return {}
    found: dict[str, Path] = {}
    for fstype, mount, options in mounts:
        if fstype == "cgroup":
            for name in CONTROLLERS:
                if name in options and name in own:
                    found.setdefault(name, mount / own[name].lstrip("/"))
        elif "" in own:
            base = mount / own[""].lstrip("/")
            try:
                enabled = (base / "cgroup.subtree_control").read_text().split()
            except OSError:
                continue
            for name in CONTROLLERS:
                if name in enabled:
                    found.setdefault(name, base)
    return {name: base for name, base in found.items() if _can_place_a_process(base)}


def _can_place_a_process(base: Path) -> bool:
    """Make a folder and move a real child into it: creating a cgroup is allowed more often than
    moving processes into it (cgroup v2 delegation), and a job must never fail on that."""
    probe = base / f"nanoresearch-probe-{os.getpid()}-{threading.get_ident()}"
    try:
        probe.mkdir()
    except OSError:
        return False
    try:
        setup = _child_setup([], [str(probe / "cgroup.procs")])
        return subprocess.run(["/bin/true"], preexec_fn=setup, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False
    finally:
        _rmdir(probe)


class JobCgroup:
    """One folder per controller for one job; everything in it belongs to that job alone."""

    def __init__(self, folders: dict[str, Path]) -> None:
        self.folders = folders

    @classmethod
    def create(cls, job_id: str, resources: Resources, bases: dict[str, Path]) -> JobCgroup | None:
        folders: dict[str, Path] = {}
        for name, base in bases.items():
            folder = base / f"nanoresearch-{job_id}"
            try:
                folder.mkdir(exist_ok=True)
                folders[name] = folder
                _set_limit(name, folder, resources)
            except OSError as exc:  # a controller that will not take the limit is left out
                log.debug("cgroup %s not used: %s", name, exc)
                folders.pop(name, None)
                if folder not in folders.values():  # v2: one folder serves every controller
                    _rmdir(folder)
        return cls(folders) if folders else None

    @property
    def procs_files(self) -> list[str]:
        # v1 has one folder per controller, v2 one folder for all: join each distinct folder once.
        return sorted({str(folder / "cgroup.procs") for folder in self.folders.values()})

    @property
    def limits_processes(self) -> bool:
        return "pids" in self.folders

    def process_limit_hit(self) -> bool:
        return _counter(self.folders.get("pids"), "pids.events", "max") > 0

    def oom_killed(self) -> bool:
        folder = self.folders.get("memory")
        return _counter(folder, "memory.oom_control", "oom_kill") + _counter(folder, "memory.events", "oom_kill") > 0

    def pids(self) -> set[int]:
        found: set[int] = set()
        for path in self.procs_files:
            try:
                found.update(int(p) for p in Path(path).read_text().split())
            except OSError:
                pass
        return found

    def kill_all(self, within_s: float = 2.0) -> None:
        """SIGKILL every process in the job's cgroup until none is left (pids.max keeps it finite)."""
        deadline = time.monotonic() + within_s
        while (pids := self.pids()) and time.monotonic() < deadline:
            for pid in pids:
                try:
                    os.kill(pid, 9)
                except ProcessLookupError:
                    pass
            time.sleep(0.002)

    def remove(self) -> None:
        self.kill_all()
        for folder in set(self.folders.values()):
            _rmdir(folder)


def _set_limit(name: str, folder: Path, resources: Resources) -> None:
    memory = int(resources.mem_gb * GiB)
    if name == "pids":
        (folder / "pids.max").write_text(str(resources.max_processes + WRAPPER_PROCESSES))
    elif name == "memory" and (folder / "memory.limit_in_bytes").exists():  # v1
        (folder / "memory.limit_in_bytes").write_text(str(memory))
        _try_write(folder / "memory.memsw.limit_in_bytes", str(memory))  # no swapping around it
    elif name == "memory":  # v2
        (folder / "memory.max").write_text(str(memory))
        _try_write(folder / "memory.swap.max", "0")
    elif name == "cpu" and (folder / "cpu.cfs_quota_us").exists():  # v1
        period = int((folder / "cpu.cfs_period_us").read_text())
        (folder / "cpu.cfs_quota_us").write_text(str(period * resources.cpus))
    elif name == "cpu":  # v2
        (folder / "cpu.max").write_text(f"{100_000 * resources.cpus} 100000")


def _try_write(path: Path, value: str) -> None:
    try:
        path.write_text(value)
    except OSError:
        pass


def _counter(folder: Path | None, filename: str, key: str) -> int:
    if folder is None:
        return 0
    try:
        text = (folder / filename).read_text()
    except OSError:
        return 0
    match = re.search(rf"^{key}\s+(\d+)", text, re.M)
    return int(match.group(1)) if match else 0


def _rmdir(folder: Path) -> None:
    # Killed processes leave their cgroup a moment after the signal; retry briefly.
    for _ in range(50):
        try:
            folder.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.02)
    log.debug("could not remove cgroup %s", folder)
