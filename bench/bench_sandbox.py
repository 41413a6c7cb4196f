"""What the sandbox costs per job: start-up of `true` under each layer, and LocalExecutor overhead.

Rows of the first table (each: prepare the command, spawn, wait, clean up, as the executor does):

  direct                    subprocess.run(["/bin/true"])
  sh -c                     /bin/sh -c true (every job runs through the shell)
  rlimits                   + rlimits set in the child, fresh environment (the fallback without bwrap)
  rlimits + cgroups         + a pids/memory/cpu cgroup made, joined and removed per job
  bwrap + rlimits           + bubblewrap namespaces and mounts, no cgroups
  bwrap + rlimits + cgroups the default where everything works

The second table times `LocalExecutor` for a trivial job: submit() returning (the job is
running), and submit → finished (wait() returning), with and without bubblewrap.

    python bench/bench_sandbox.py              # 200 runs per row (about half a minute)
    python bench/bench_sandbox.py --runs 50
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from nanoresearch.compute import sandbox
from nanoresearch.compute.executor import JobSpec, Resources
from nanoresearch.compute.local import LocalExecutor


def timed(runs: int, once: Callable[[], None]) -> list[float]:
    once()  # warm caches (binaries, the probe) outside the measurement
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        once()
        samples.append(time.perf_counter() - start)
    return samples


def sandboxed_true(workdir: Path, use_bwrap: bool) -> Callable[[], None]:
    spec = JobSpec(name="bench", workdir=workdir, command="true", resources=Resources())

    def once() -> None:
        prepared = sandbox.prepare(spec, f"bench-{os.getpid()}", use_bwrap=use_bwrap)
        try:
            subprocess.run(prepared.argv, cwd=prepared.cwd, env=prepared.env, preexec_fn=prepared.preexec_fn,
                           start_new_session=True, check=True)
        finally:
            prepared.cleanup()

    return once


def with_cgroups(enabled: bool, once: Callable[[], None]) -> Callable[[], None]:
    real = sandbox.sandbox_status()
    status = real if enabled else dataclasses.replace(real, cgroups={})

    def run() -> None:
        sandbox._status = status
        try:
            once()
        finally:
            sandbox._status = real

    return run


def executor_job(workdir: Path, use_bwrap: bool) -> tuple[Callable[[], None], list[float]]:
    executor = LocalExecutor(use_bwrap=use_bwrap)
    spec = JobSpec(name="bench", workdir=workdir, command="true", resources=Resources())
    submit_s: list[float] = []

    def once() -> None:
        start = time.perf_counter()
        job_id = executor.submit(spec)
        submit_s.append(time.perf_counter() - start)
        status = executor.wait(job_id, 30)
        assert status.state.value == "completed", executor.logs(job_id)

    return once, submit_s


def row(name: str, samples: list[float], base: float | None) -> str:
    ms = sorted(s * 1000 for s in samples)
    median, p95 = statistics.median(ms), ms[min(len(ms) - 1, int(0.95 * len(ms)))]
    extra = f"{median - base:+9.2f}" if base is not None else f"{'':>9}"
    return f"{name:<28} {median:9.2f} {p95:9.2f} {extra}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    status = sandbox.sandbox_status()
    print(f"isolation: {status.isolation}")
    print(f"load average (1 min): {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; {args.runs} runs per row\n")

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp) / "work"
        workdir.mkdir()
        cases: list[tuple[str, Callable[[], None]]] = [
            ("direct", lambda: subprocess.run(["/bin/true"], check=True)),
            ("sh -c", lambda: subprocess.run(["/bin/sh", "-c", "true"], check=True)),
            ("rlimits", with_cgroups(False, sandboxed_true(workdir, use_bwrap=False))),
        ]
        if status.cgroups:
            cases.append(("rlimits + cgroups", with_cgroups(True, sandboxed_true(workdir, use_bwrap=False))))
        if status.sandboxed:
            cases.append(("bwrap + rlimits", with_cgroups(False, sandboxed_true(workdir, use_bwrap=True))))
            if status.cgroups:
                cases.append(("bwrap + rlimits + cgroups", with_cgroups(True, sandboxed_true(workdir, use_bwrap=True))))

        print(f"{'start-up of `true`':<28} {'median ms':>9} {'p95 ms':>9} {'vs direct':>9}")
        base = None
        for name, once in cases:
            samples = timed(args.runs, once)
            print(row(name, samples, base))
            base = statistics.median(samples) * 1000 if base is None else base

        print(f"\n{'LocalExecutor, `true`':<28} {'median ms':>9} {'p95 ms':>9}")
        modes = [False, True] if status.sandboxed else [False]
        for use_bwrap in modes:
            once, submit_s = executor_job(workdir, use_bwrap)
            total = timed(max(20, args.runs // 4), once)
            label = "bwrap" if use_bwrap else "rlimits"
            print(row(f"{label}: submit -> running", submit_s[1:], None))
            print(row(f"{label}: submit -> finished", total, None))


if __name__ == "__main__":
    main()
