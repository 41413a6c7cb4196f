"""Do the job-side budgets hold? Budget campaigns for each unit on each executor, against ground truth.

For each job-side unit (trials, wall, cpu_hours, gpu_hours), each executor available (local always;
slurm when `sbatch` exists and we are root, on the local loopback cluster; ray when it is installed),
each budget level (tight, medium, generous) and `--parallel` 1 and 3, one `TrialLoop` runs a tiny task
whose recipe sleeps `--sleep` s, with a scripted model (no model time) and a fresh store, its run
marked `running` as a command does. Per campaign it prints:

    budget     the limit (trials, or seconds of the unit: wall s, CPU-s, GPU-s)
    spent      what the ledger says was spent of it
    over       spent - budget, when positive
    past unit  over beyond one unit of granularity (trials: 0; time units: 1 s of the unit, SLURM's
               resolution and one poll): the figure that must stay 0
    orphaned   trials left `proposed`/`running` after the loop returned, plus (SLURM) our jobs still
               known to squeue as pending or running: must stay 0
    truth      ground truth for the unit: wall = the clock measured around the loop; on SLURM the
               CPU-/GPU-seconds of our jobs from `sacct -c` (Start..End x CPUs/GPUs); elsewhere the
               executor's own start/end times
    ledger-truth  the difference (wall: ledger clock minus measured; SLURM: ledger minus sacct)

GPU-hours need GPUs: they run on SLURM (the local cluster's fake GPUs) and are skipped elsewhere.

    python bench/bench_budget.py                         # local only, ~3 min
    python bench/bench_budget.py --executors local,slurm,ray
    python bench/bench_budget.py --units wall --levels tight --parallel 3
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import time
from contextlib import nullcontext
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "trials"), str(Path(__file__).resolve().parent)]

from bench_trials import slurm_cluster, slurm_reason  # noqa: E402
from tiny import TINY_EVALUATOR, TINY_TASK, proposal  # noqa: E402

from helpers import ScriptedProvider  # noqa: E402
from nanoresearch.compute.budget import Budget, spent  # noqa: E402
from nanoresearch.compute.executor import create_executor  # noqa: E402
from nanoresearch.config import load_settings  # noqa: E402
from nanoresearch.llm.client import LLM  # noqa: E402
from nanoresearch.store import Store  # noqa: E402
from nanoresearch.trials.loop import LoopSettings, TrialLoop  # noqa: E402
from nanoresearch.trials.task import load_task  # noqa: E402

GPU_TRES = re.compile(r"gpu(?::[^:=,]+)?[:=](\d+)")  # gres/gpu=1, gres/gpu:tesla=1, gpu:1
UNITS = ("trials", "wall", "cpu_hours", "gpu_hours")
# Budgets in trials' worth (a trial ~ --sleep s plus overhead): tight stops a trial at its share.
LEVELS = {"tight": 1.5, "medium": 3.5, "generous": 7.0}
RECIPE = textwrap.dedent(
    """\
    import json, time
    NOTE = 0
    time.sleep({sleep})
    print("working")
    json.dump({{"value": 1}}, open("out.json", "w"))
    """
)


def make_task(folder: Path, sleep_s: float, gpus: int):
    folder.mkdir(parents=True)
    (folder / "task.toml").write_text(TINY_TASK.replace("time_s = 4\n", f"time_s = 60\ncpus = 1\ngpus = {gpus}\n"))
    (folder / "train.py").write_text(RECIPE.format(sleep=sleep_s))
    (folder / "evaluate.py").write_text(TINY_EVALUATOR)
    return load_task(folder)


def budget_for(unit: str, level: str, sleep_s: float) -> tuple[Budget, float]:
    """The campaign's Budget and its limit in the unit's printed measure (trials, or seconds)."""
    worth = LEVELS[level]
    if unit == "trials":
        count = max(2, round(worth))
        return Budget(trials=count), count
    seconds = round(worth * (sleep_s + 0.7), 1)  # a trial's recipe plus the executor's start
    field = {"wall": "wall_s", "cpu_hours": "cpu_hours", "gpu_hours": "gpu_hours"}[unit]
    return Budget(**{field: seconds if unit == "wall" else seconds / 3600}), seconds


def ledger_amount(unit: str, used) -> float:
    return {"trials": used.trials, "wall": used.wall_s, "cpu_hours": used.cpu_hours * 3600,
            "gpu_hours": used.gpu_hours * 3600}[unit]


def campaign(tmp: Path, executor: str, unit: str, level: str, parallel: int, sleep_s: float) -> dict:
    tmp.mkdir(parents=True)
    gpus = 1 if unit == "gpu_hours" else 0
    task = make_task(tmp / "task", sleep_s, gpus)
    if executor == "slurm":
        task.command = f"sleep 1 && {task.command}"  # SLURM counts whole seconds: no trial under one
    budget, limit = budget_for(unit, level, sleep_s)
    settings = load_settings({"llm": {"replay": "off", "backoff_initial_s": 0}})
    provider = ScriptedProvider(*(proposal(f"note {i}", ("NOTE = 0", f"NOTE = {i}")) for i in range(1, 200)))
    runner = create_executor(executor, settings)
    with Store(tmp / "store.db") as store:
        user = store.ensure_user("bench")
        run = store.create_run(f"budget-{executor}-{unit}-{level}-p{parallel}",
                               store.ensure_project(user, task.name), "optimise", str(tmp / "ws"), kind="trials")
        llm = LLM(settings, store, user, run_id=run.id, providers={"local": provider})
        loop = TrialLoop(task, store, llm, runner, run.id, user, budget, tmp / "ws",
                         LoopSettings(parallel=parallel, max_debug=0))
        store.set_run_status(run.id, "running")
        start = time.monotonic()
        try:
            loop.run()
        finally:
            measured = time.monotonic() - start
            store.set_run_status(run.id, "done")
            if executor == "ray":
                runner.close()
        trials = loop.trials()
        used = spent(store, user, run.id)
    jobs = [t.job_id for t in trials if t.job_id]
    orphaned = sum(t.status in ("proposed", "running") for t in trials) + slurm_live(jobs, executor)
    amount = ledger_amount(unit, used)
    truth = truth_for(unit, executor, trials, jobs, measured)
    granularity = 0 if unit == "trials" else 1.0
    return {
        "executor": executor, "unit": unit, "level": level, "parallel": parallel, "budget": limit,
        "spent": amount, "over": max(0.0, amount - limit), "past_unit": max(0.0, amount - limit - granularity),
        "orphaned": orphaned, "truth": truth, "ledger_minus_truth": None if truth is None else amount - truth,
        "trials": len(jobs), "stopped": loop.stop_reason,
    }


def truth_for(unit: str, executor: str, trials: list, jobs: list[str], measured: float) -> float | None:
    if unit == "wall":
        return measured
    if unit == "trials":
        return float(len(jobs))
    per = "gpus" if unit == "gpu_hours" else "cpus"
    if executor == "slurm":
        return sacct_seconds(jobs, per)
    return sum((t.ended_at - t.started_at) * t.resources.get(per, 0) for t in trials if t.started_at and t.ended_at)


def sacct_seconds(jobs: list[str], per: str) -> float | None:
    """CPU- or GPU-seconds of our jobs as SLURM's completion log records them."""
    if not jobs:
        return 0.0
    result = subprocess.run(["sacct", "-c", "-X", "-P", "-n", "-j", ",".join(jobs), "-o", "JobIDRaw,Start,End,NCPUS,AllocTRES"],
                            capture_output=True, text=True, env={**os.environ, "SLURM_TIME_FORMAT": "%s"})
    if result.returncode != 0:
        return None
    last: dict[str, tuple[float, int]] = {}
    for row in result.stdout.splitlines():
        job, start, end, cpus, tres = row.split("|", 4)
        if job in jobs and start.isdigit() and end.isdigit():
            count = int(cpus) if per == "cpus" else sum(int(n) for n in GPU_TRES.findall(tres))
            last[job] = (float(end) - float(start), count)
    return sum(seconds * count for seconds, count in last.values())


def slurm_live(jobs: list[str], executor: str) -> int:
    if executor != "slurm" or not jobs:
        return 0
    result = subprocess.run(["squeue", "-h", "-t", "PENDING,RUNNING", "-j", ",".join(jobs), "-o", "%i"],
                            capture_output=True, text=True)
    return len(result.stdout.split())


def print_table(rows: list[dict]) -> None:
    head = (f"{'executor':8} {'unit':9} {'level':8} {'par':>3} {'budget':>7} {'spent':>7} {'over':>6} {'past unit':>9}"
            f" {'orphaned':>8} {'truth':>7} {'ledger-truth':>12} {'trials':>6}")
    print(head)
    print("-" * len(head))
    for r in rows:
        truth = "-" if r["truth"] is None else f"{r['truth']:.1f}"
        diff = "-" if r["ledger_minus_truth"] is None else f"{r['ledger_minus_truth']:+.2f}"
        print(f"{r['executor']:8} {r['unit']:9} {r['level']:8} {r['parallel']:>3} {r['budget']:7.1f} {r['spent']:7.1f}"
              f" {r['over']:6.2f} {r['past_unit']:9.2f} {r['orphaned']:8d} {truth:>7} {diff:>12} {r['trials']:6d}")
    bad = [r for r in rows if r["past_unit"] > 0 or r["orphaned"]]
    print(f"\n{len(rows)} campaigns; {sum(r['past_unit'] > 0 for r in rows)} overran by more than one unit,"
          f" {sum(r['orphaned'] for r in rows)} trials orphaned" + ("" if not bad else " — see the rows above"))


def available(executor: str) -> str | None:
    """Why an executor cannot run here (None: it can)."""
    if executor == "slurm":
        return slurm_reason()
    if executor == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            return "ray is not installed"
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--executors", default="local", help="comma-separated: local,slurm,ray (default local)")
    parser.add_argument("--units", default=",".join(UNITS), help=f"comma-separated, of {', '.join(UNITS)}")
    parser.add_argument("--levels", default=",".join(LEVELS), help=f"comma-separated, of {', '.join(LEVELS)}")
    parser.add_argument("--parallel", default="1,3", help="comma-separated --parallel values (default 1,3)")
    parser.add_argument("--sleep", type=float, default=1.0, help="the recipe's run time, s (default 1)")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()
    split = lambda text: [part.strip() for part in text.split(",") if part.strip()]  # noqa: E731
    print(f"load average (1 min): {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; {time.strftime('%Y-%m-%d %H:%M')}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-budget-") as tmp:
        os.environ["NANORESEARCH_HOME"] = str(Path(tmp) / "home")
        os.environ["NANORESEARCH_USER"] = "bench"
        for executor in split(args.executors):
            if reason := available(executor):
                print(f"[{executor}] skipped: {reason}")
                continue
            with slurm_cluster() if executor == "slurm" else nullcontext():
                for unit in split(args.units):
                    if unit == "gpu_hours" and executor != "slurm":
                        print(f"[{executor}] gpu_hours skipped: no GPUs to give a trial here")
                        continue
                    for level in split(args.levels):
                        for parallel in map(int, split(args.parallel)):
                            folder = Path(tmp) / f"{executor}-{unit}-{level}-p{parallel}"
                            rows.append(campaign(folder, executor, unit, level, parallel, args.sleep))
                            print(f"  {executor} {unit} {level} p{parallel}: {rows[-1]['stopped'] or 'done'}", flush=True)
    print()
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
