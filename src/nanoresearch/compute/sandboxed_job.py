"""`python -m nanoresearch.compute.sandboxed_job JOB.json`: run one job in the sandbox, here.

The SLURM executor's batch script ends with this command, so a job on a node gets the same
bubblewrap sandbox, rlimits and cleared environment as a local job (see `sandbox.py`). This
process becomes the sandbox (exec), so SLURM's signals, time limit and accounting reach the job
as before. It makes no cgroups of its own: SLURM's already hold the job. SLURM's variables
(SLURM_JOB_ID …) pass into the job; the GPUs are the ones SLURM gave (CUDA_VISIBLE_DEVICES).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from nanoresearch.compute.executor import JobSpec
from nanoresearch.compute.sandbox import SECRET_NAME, prepare


def slurm_variables() -> dict[str, str]:
    return {name: value for name, value in os.environ.items()
            if name.startswith(("SLURM_", "SLURMD_")) and not SECRET_NAME.search(name)}


def assigned_gpus(spec: JobSpec) -> list[str]:
    if not spec.resources.gpus:
        return []
    return [gpu for gpu in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if gpu.strip()]


def main(argv: list[str]) -> None:
    if len(argv) != 1:
        sys.exit("usage: python -m nanoresearch.compute.sandboxed_job JOB.json")
    spec = JobSpec.model_validate_json(Path(argv[0]).read_text(encoding="utf-8"))
    spec = spec.model_copy(update={"env": {**slurm_variables(), **spec.env}})
    prepared = prepare(spec, f"slurm-{os.environ.get('SLURM_JOB_ID', os.getpid())}", assigned_gpus(spec), cgroups=False)
    os.chdir(prepared.cwd)
    prepared.preexec_fn()  # the rlimits, on this process, kept across exec
    os.execve(prepared.argv[0], prepared.argv, prepared.env)


if __name__ == "__main__":
    main(sys.argv[1:])
