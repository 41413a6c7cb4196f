#!/bin/bash
# Written by NanoResearch's SLURM executor for one job; regenerated on every submit.
#SBATCH --job-name=nr-lora-sweep
#SBATCH --comment=nanoresearch:<UUID>
#SBATCH --partition=gpu
#SBATCH --nodes=1
#SBATCH --ntasks=1
#SBATCH --cpus-per-task=8
#SBATCH --mem=32256M
#SBATCH --gres=gpu:2
#SBATCH --time=60:01
#SBATCH --chdir=<TMP>/trial-8
#SBATCH --output=<TMP>/trial-8.logs/stdout.log
#SBATCH --error=<TMP>/trial-8.logs/stderr.log
#SBATCH --open-mode=append
#SBATCH --requeue
#SBATCH --export=NONE
#SBATCH --account=lab

# SLURM loads the login environment even with --export=NONE: keep only its own variables.
for name in $(compgen -e); do
    case "$name" in SLURM_*|SLURMD_*|CUDA_VISIBLE_DEVICES|GPU_DEVICE_ORDINAL|ROCR_VISIBLE_DEVICES|TMPDIR) ;; *) unset "$name" 2>/dev/null ;; esac
done
unset -f $(compgen -A function) 2>/dev/null

export PATH=<VENV_BIN>:/usr/local/bin:/usr/bin:/bin
export HOME=<HOME>
export LANG=C.UTF-8
export PYTHONUNBUFFERED=1
export OMP_NUM_THREADS=8
export MKL_NUM_THREADS=8
export OPENBLAS_NUM_THREADS=8
export NUMEXPR_NUM_THREADS=8
export EPOCHS=3
export RUN_NOTE='a b $HOME'

ulimit -f 65536  # KiB: largest file the job may write

echo "[nanoresearch] job $SLURM_JOB_ID attempt $((${SLURM_RESTART_COUNT:-0} + 1)) on $SLURMD_NODENAME" >&2
exec <PYTHON> -m nanoresearch.compute.sandboxed_job <TMP>/trial-8.logs/job.json
