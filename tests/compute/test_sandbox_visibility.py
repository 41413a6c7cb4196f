"""What a sandboxed job can see: only what a recipe needs, with the homes kept OUTSIDE /tmp.

The sandbox replaces /tmp with a private one, so a home under /tmp would be hidden by accident
and could not show whether homes are hidden by design. These tests put a fake user home (with an
SSH key), a NanoResearch home (with a real store and a second user's folder) under /var/tmp, the
job's workdir inside that home like a real run's, and run a hostile recipe that tries to read
them all by absolute path.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from compute.slurm_cluster import LocalCluster
from nanoresearch.compute.executor import JobSpec, JobState, Resources
from nanoresearch.compute.local import LocalExecutor
from nanoresearch.compute.sandbox import python_runtime, run_sandboxed, sandbox_status
from nanoresearch.compute.slurm import SlurmExecutor
from nanoresearch.store import Store

STATUS = sandbox_status()
pytestmark = pytest.mark.skipif(
    not STATUS.sandboxed, reason=f"bubblewrap does not work here ({STATUS.problem}); CI installs it"
)

# Tries each path by absolute name and prints what it got; the prints land in the job's log.
HOSTILE = """
import os, sys
for path in sys.argv[1:]:
    try:
        if os.path.isdir(path):
            print("LISTED", path, os.listdir(path))
        else:
            with open(path, "rb") as f:
                print("READ", path, f.read(40))
    except OSError as exc:
        print("DENIED", path, type(exc).__name__)
import numpy, sklearn
open("written.txt", "w").write("ok")
print("IMPORTS OK")
"""


class Places:
    def __init__(self, root: Path) -> None:
        self.ssh_key = root / "home" / "alice" / ".ssh" / "id_rsa"
        self.product = root / "nanoresearch"
        self.store = self.product / "nanoresearch.db"
        self.bob = self.product / "users" / "bob" / "memory.txt"
        self.workdir = self.product / "users" / "alice" / "runs" / "r1" / "trials" / "0001" / "work"
        self.task = root / "task"

    def secrets(self) -> list[Path]:
        return [self.ssh_key, self.ssh_key.parent, self.store, self.bob, self.bob.parent,
                self.workdir.parent / "work.logs", Path("/etc/shadow")]

    def probes(self) -> list[Path]:
        return [*self.secrets(), self.product, Path("/root"), self.task / "data.csv"]


@pytest.fixture
def places() -> Iterator[Places]:
    root = Path(tempfile.mkdtemp(prefix="nanoresearch-visibility-", dir="/var/tmp")).resolve()
    found = Places(root)
    found.ssh_key.parent.mkdir(parents=True)
    found.ssh_key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    with Store(found.store) as store:
        store.ensure_user("alice")
    found.bob.parent.mkdir(parents=True)
    found.bob.write_text("bob's private memory\n")
    found.workdir.mkdir(parents=True)
    (found.workdir / "hostile.py").write_text(HOSTILE)
    (found.workdir.parent / "work.logs").mkdir()
    found.task.mkdir()
    (found.task / "data.csv").write_text("1,2\n")
    yield found
    shutil.rmtree(root, ignore_errors=True)


def command_for(places: Places) -> str:
    return "python hostile.py " + " ".join(str(p) for p in places.probes())


def assert_contained(output: str, places: Places) -> None:
    for path in places.secrets():
        assert f"DENIED {path} " in output, f"{path} was visible:\n{output}"
    assert "bob's private" not in output and "PRIVATE KEY" not in output and "SQLite" not in output
    # Folders on the way to a bound folder exist as empty mount points, and show nothing else:
    # the product home only the path to the job's workdir, /root only the path to pyenv's Python.
    assert f"LISTED {places.product} ['users']" in output
    on_the_way = sorted({p.relative_to("/root").parts[0] for p in python_runtime() if p.is_relative_to("/root")})
    assert f"LISTED /root {on_the_way}" in output or (not on_the_way and "DENIED /root " in output)
    assert "IMPORTS OK" in output and (places.workdir / "written.txt").read_text() == "ok"


def hostile_job(places: Places) -> JobSpec:
    return JobSpec(name="hostile", workdir=places.workdir, command=command_for(places),
                   resources=Resources(time_s=120, mem_gb=1))


def test_a_local_job_sees_no_home_no_store_and_no_other_user(places: Places) -> None:
    executor = LocalExecutor(use_bwrap=True)
    status = executor.wait(executor.submit(hostile_job(places)), 120)
    output = executor.logs(status.job_id)
    assert status.state is JobState.COMPLETED, output
    assert_contained(output, places)
    assert f"DENIED {places.task / 'data.csv'} " in output  # the task is shown only when asked for


def test_run_sandboxed_shows_the_task_read_only_and_nothing_private(places: Places) -> None:
    code, stdout, stderr = run_sandboxed(command_for(places), places.workdir, {}, 60, readonly=[places.task])
    assert code == 0, stderr
    assert_contained(stdout, places)
    assert f"READ {places.task / 'data.csv'} b'1,2" in stdout


@pytest.mark.slow
def test_a_slurm_job_runs_in_the_same_sandbox(slurm_cluster: LocalCluster, places: Places) -> None:
    executor = SlurmExecutor(poll_interval_s=0.5)
    job_id = executor.submit(hostile_job(places))
    status = executor.wait(job_id, timeout_s=120)
    output = executor.logs(job_id)
    assert status.state is JobState.COMPLETED, output
    assert_contained(output, places)
