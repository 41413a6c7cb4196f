"""A real single-node SLURM cluster for the SLURM executor's tests, run by scripts/slurm-local.sh.

`slurm_cluster` (session scope; import `slurm_cluster_fixture` to use it) starts munged, slurmctld and slurmd on loopback, points
SLURM_CONF at the cluster's config for the whole session and stops the daemons at the end,
unless they were already running before the session (a developer's cluster is left as found).
It skips only when SLURM is not installed or the tests do not run as root; any other failure
to start is a test error, with the script's output. Test sessions on one machine share the
cluster, and some tests stop the controller or reconfigure it, so a session holds an exclusive
lock on it from start to stop: a second session waits for the first.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "slurm-local.sh"
COMMANDS = ("slurmctld", "slurmd", "munged", "sbatch", "squeue", "scontrol", "sacct", "scancel", "sinfo")


@dataclass
class LocalCluster:
    dir: Path

    @property
    def conf(self) -> Path:
        return self.dir / "etc" / "slurm.conf"

    def script(self, command: str, **env: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([str(SCRIPT), command], capture_output=True, text=True, timeout=120,
                                env={**os.environ, "SLURM_LOCAL_DIR": str(self.dir), **env})
        if result.returncode != 0 and command != "status":
            raise RuntimeError(f"slurm-local.sh {command} failed:\n{result.stdout}{result.stderr}")
        return result

    def stop_controller(self) -> None:
        """Stops slurmctld (started by the script: its pid file says which), leaving slurmd and jobs."""
        pid = int((self.dir / "run" / "slurmctld.pid").read_text())
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.2)

    @contextlib.contextmanager
    def min_job_age(self, seconds: int) -> Iterator[None]:
        """Makes slurmctld forget finished jobs after `seconds` (purged within about 10 s)."""
        self.script("reconfigure", SLURM_LOCAL_MIN_JOB_AGE=str(seconds))
        try:
            yield
        finally:
            self.script("reconfigure")

    def sbatch(self, *args: str) -> str:
        """Submits a job the way a user would, bypassing the executor; returns its id."""
        result = subprocess.run(["sbatch", "--parsable", *args], capture_output=True, text=True, timeout=60, check=True)
        return result.stdout.strip().split(";")[0]

    def state(self, job_id: str) -> str:
        """The job's state as scontrol reports it, or '' once the controller forgot it."""
        result = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True, timeout=60)
        for token in result.stdout.split():
            if token.startswith("JobState="):
                return token.removeprefix("JobState=")
        return ""

    def scancel(self, job_id: str) -> None:
        subprocess.run(["scancel", job_id], capture_output=True, timeout=60)


def skip_reason() -> str | None:
    missing = [command for command in COMMANDS if shutil.which(command) is None]
    if missing:
        return f"SLURM is not installed ({', '.join(missing)} missing): apt-get install -y slurm-wlm munge"
    if os.geteuid() != 0:
        return "the local SLURM cluster needs root (slurmd starts jobs as their users)"
    return None


@pytest.fixture(scope="session", name="slurm_cluster")
def slurm_cluster_fixture() -> Iterator[LocalCluster]:
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    cluster = LocalCluster(Path(os.environ.get("SLURM_LOCAL_DIR", "/var/lib/nanoresearch-slurm")))
    cluster.dir.mkdir(parents=True, exist_ok=True)
    with open(cluster.dir / "tests.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, after stop
        was_running = cluster.script("status").returncode == 0
        cluster.script("start")
        previous = os.environ.get("SLURM_CONF")
        os.environ["SLURM_CONF"] = str(cluster.conf)
        try:
            yield cluster
        finally:
            if previous is None:
                os.environ.pop("SLURM_CONF", None)
            else:
                os.environ["SLURM_CONF"] = previous
            if not was_running:
                cluster.script("stop")
