#!/bin/bash
# Written by NanoResearch's SLURM executor for one job; regenerated on every submit.
#SBATCH --job-name=nr-trial-7-baseline
#SBATCH --comment=nanoresearch:<UUID>
#SBATCH --partition=debug
#SBATCH --nodes=1
#SBATCH --ntasks=1
#SBATCH --cpus-per-task=1
#SBATCH --mem=2048M
#SBATCH --time=10:00
#SBATCH --chdir=<TMP>/trial-7
#SBATCH --output=<TMP>/trial-7.logs/stdout.log
#SBATCH --error=<TMP>/trial-7.logs/stderr.log
#SBATCH --open-mode=append
#SBATCH --requeue
#SBATCH --export=NONE

# SLURM loads the login environment even with --export=NONE: keep only its own variables.
for name in $(compgen -e); do
    case "$name" in SLURM_*|SLURMD_*|CUDA_VISIBLE_DEVICES|GPU_DEVICE_ORDINAL|ROCR_VISIBLE_DEVICES|TMPDIR) ;; *) unset "$name" 2>/dev/null ;; esac
done
unset -f $(compgen -A function) 2>/dev/null

export PATH=<VENV_BIN>:/usr/local/bin:/usr/bin:/bin
export HOME=<HOME>
export LANG=C.UTF-8
export PYTHONUNBUFFERED=1
export OMP_NUM_THREADS=1
export MKL_NUM_THREADS=1
export OPENBLAS_NUM_THREADS=1
export NUMEXPR_NUM_THREADS=1
export CUDA_VISIBLE_DEVICES=

ulimit -f 524288  # KiB: largest file the job may write

echo "[nanoresearch] job $SLURM_JOB_ID attempt $((${SLURM_RESTART_COUNT:-0} + 1)) on $SLURMD_NODENAME" >&2
exec <PYTHON> -m nanoresearch.compute.sandboxed_job <TMP>/trial-7.logs/job.json
