"""What the trial engine costs around a recipe: per-trial overhead and throughput, per executor.

Everything runs through `TrialLoop` with a scripted LLM provider (no model time), a temporary
NANORESEARCH_HOME and a temporary store, on a tiny task like the tests' (tests/trials/tiny.py).

1. Per-trial overhead (parallel=1, `--trials` trials, the first is the baseline): a recipe that
   takes ~0 s. For each trial: total = from `propose()` (or the baseline's `prepare()`) to the
   trial being recorded; recipe = the trial's `ended_at - started_at` as the executor reports it;
   overhead = total - recipe. Overhead is split into
     prepare   propose prompt, working copy, edit, diff, snapshot, legality, store writes, plan()
     start     submit() begins -> recipe clock starts (sandbox / sbatch + scheduling latency)
     collect   recipe clock stops -> executor.wait() returns (poll interval on SLURM)
     evaluate  the task's evaluator, sandboxed, in a fresh copy
     record    logs, ledger charge, head(), store update
   SLURM's started_at/ended_at have 1 s resolution, so its recipe/start/collect columns are only
   good to about a second each (their sum is exact).
2. Throughput: trials/minute of a recipe that sleeps `--sleep` s (2), `--trials` trials after the
   baseline (rounded up to even), with parallel=1 and then parallel=2, in the same run. On SLURM each
   trial asks for 1 of the local cluster's 2 fake GPUs; the local executor has no GPUs here, so it
   asks for cpus=1.

    python bench/bench_trials.py                       # local, and slurm when possible (~2 min)
    python bench/bench_trials.py --trials 10 --executors local

SLURM runs only when `sbatch` exists and we are root. The script takes the local cluster's test
lock (so a concurrent pytest session cannot reconfigure or stop the cluster mid-run), starts it with
scripts/slurm-local.sh if it is not running, and stops it at the end only if it started it.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "trials")]

from tiny import TINY_EVALUATOR, TINY_TASK, proposal  # noqa: E402

import nanoresearch.trials.loop as loop_module  # noqa: E402
from helpers import ScriptedProvider  # noqa: E402
from nanoresearch.compute.budget import Budget  # noqa: E402
from nanoresearch.compute.executor import create_executor  # noqa: E402
from nanoresearch.config import load_settings  # noqa: E402
from nanoresearch.llm.client import LLM  # noqa: E402
from nanoresearch.store import Store  # noqa: E402
from nanoresearch.trials.loop import LoopSettings, TrialLoop  # noqa: E402
from nanoresearch.trials.task import load_task  # noqa: E402

SLURM_SCRIPT = ROOT / "scripts" / "slurm-local.sh"
SLURM_DIR = Path(os.environ.get("SLURM_LOCAL_DIR", "/var/lib/nanoresearch-slurm"))

# Every proposal edits a line that does not change the score, so the baseline stays the head and
# every proposal's `find` line exists in it, whatever ran before (also with two in flight).
RECIPE = textwrap.dedent(
    """\
    import json, time
    NOTE = 0
    time.sleep({sleep})
    print("working")
    json.dump({{"value": 1}}, open("out.json", "w"))
    """
)


# --- instrumentation -------------------------------------------------------------------------------


class TimedExecutor:
    """Passes everything through to the real executor, noting when submit starts and wait returns."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.submit_begin: dict[str, float] = {}
        self.wait_end: dict[str, float] = {}

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def submit(self, spec):
        begin = time.time()
        job_id = self.inner.submit(spec)
        self.submit_begin[job_id] = begin
        return job_id

    def wait(self, job_id, timeout_s=None):
        status = self.inner.wait(job_id, timeout_s)
        self.wait_end[job_id] = time.time()
        return status


class TimedLoop(TrialLoop):
    """Notes when each trial was asked for and when it was recorded."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.executor = TimedExecutor(self.executor)
        self.asked: dict[int, float] = {}
        self.recorded: dict[int, float] = {}
        self.evaluated: dict[str, tuple[float, float]] = {}  # workdir -> (begin, end)
        self._asking: float | None = None

    def propose(self, specialist):
        self._asking = time.time()
        return super().propose(specialist)

    def prepare(self, parent, proposer, hypothesis, edits, files=None):
        asked, self._asking = self._asking or time.time(), None
        trial = super().prepare(parent, proposer, hypothesis, edits, files)
        self.asked[trial.id] = asked
        return trial

    def complete(self, trial, plan):
        done = super().complete(trial, plan)
        self.recorded[done.id] = time.time()
        return done


@contextlib.contextmanager
def timed_evaluator(loop: TimedLoop) -> Iterator[None]:
    real = loop_module.run_evaluator

    def wrapper(task, workdir, runner):
        begin = time.time()
        try:
            return real(task, workdir, runner)
        finally:
            loop.evaluated[str(workdir)] = (begin, time.time())

    loop_module.run_evaluator = wrapper
    try:
        yield
    finally:
        loop_module.run_evaluator = real


# --- one loop run ------------------------------------------------------------------------------------


def make_task(folder: Path, sleep_s: float, gpus: int, time_s: int):
    folder.mkdir(parents=True)
    resources = f"time_s = {time_s}\ncpus = 1\ngpus = {gpus}\n"
    (folder / "task.toml").write_text(TINY_TASK.replace("time_s = 4\n", resources))
    (folder / "train.py").write_text(RECIPE.format(sleep=sleep_s))
    (folder / "evaluate.py").write_text(TINY_EVALUATOR)
    return load_task(folder)


def run_loop(tmp: Path, executor: str, trials: int, parallel: int, sleep_s: float, gpus: int) -> TimedLoop:
    """A fresh store, task and run; `trials` trials in all (the baseline included)."""
    tmp.mkdir(parents=True)
    task = make_task(tmp / "task", sleep_s, gpus, time_s=120)
    settings = load_settings({"llm": {"replay": "off", "backoff_initial_s": 0}})
    provider = ScriptedProvider(*(proposal(f"note {i}", ("NOTE = 0", f"NOTE = {i}")) for i in range(1, trials + 2)))
    with Store(tmp / "store.db") as store:
        user = store.ensure_user("bench")
        run_id = f"bench-{executor}-p{parallel}"
        store.create_run(run_id, store.ensure_project(user, task.name), "optimise", str(tmp / "ws"), {})
        llm = LLM(settings, store, user, run_id=run_id, providers={"local": provider})
        loop = TimedLoop(task, store, llm, create_executor(executor, settings), run_id, user,
                         Budget(trials=trials), tmp / "ws", LoopSettings(parallel=parallel))
        with timed_evaluator(loop):
            loop.run()
        loop.final = loop.trials()
    bad = [(t.id, t.failure, t.detail[:200]) for t in loop.final if t.status != "done"]
    if bad or len(loop.final) != trials:
        raise SystemExit(f"{executor}: expected {trials} finished trials, got {len(loop.final)}; failures: {bad}")
    return loop


def phases(loop: TimedLoop) -> list[dict[str, float]]:
    rows = []
    for t in loop.final:
        ex = loop.executor
        submit, waited = ex.submit_begin[t.job_id], ex.wait_end[t.job_id]
        eval_begin, eval_end = loop.evaluated[t.workdir]
        total = loop.recorded[t.id] - loop.asked[t.id]
        recipe = t.ended_at - t.started_at
        rows.append({
            "trial": t.id, "total": total, "recipe": recipe, "overhead": total - recipe,
            "prepare": submit - loop.asked[t.id], "start": t.started_at - submit,
            "collect": waited - t.ended_at, "evaluate": eval_end - eval_begin,
            "record": loop.recorded[t.id] - waited - (eval_end - eval_begin),
        })
    return rows


COLUMNS = ("total", "recipe", "overhead", "prepare", "start", "collect", "evaluate", "record")


def print_overhead(executor: str, rows: list[dict[str, float]]) -> None:
    print(f"\n[{executor}] per-trial times, ms (parallel=1, recipe ~0 s; trial 1 is the baseline)")
    print(f"{'trial':>7} " + " ".join(f"{c:>9}" for c in COLUMNS))
    for r in rows:
        print(f"{r['trial']:>7} " + " ".join(f"{r[c] * 1000:9.0f}" for c in COLUMNS))
    for label, pick in (("median", statistics.median), ("p95", p95)):
        print(f"{label:>7} " + " ".join(f"{pick([r[c] for r in rows]) * 1000:9.0f}" for c in COLUMNS))


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def throughput(loop: TimedLoop) -> tuple[int, float]:
    """Trials after the baseline, and the wall seconds from the first of them asked to the last recorded."""
    later = [t for t in loop.final if t.proposer != "baseline"]
    window = max(loop.recorded[t.id] for t in later) - min(loop.asked[t.id] for t in later)
    return len(later), window


# --- SLURM ---------------------------------------------------------------------------------------


def slurm_reason() -> str | None:
    if shutil.which("sbatch") is None:
        return "sbatch not found"
    if os.geteuid() != 0:
        return "not root (the local SLURM cluster needs root)"
    return None


@contextlib.contextmanager
def slurm_cluster(wait_lock_s: float = 300) -> Iterator[None]:
    SLURM_DIR.mkdir(parents=True, exist_ok=True)
    with open(SLURM_DIR / "tests.lock", "w") as lock:
        deadline = time.monotonic() + wait_lock_s
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the local SLURM cluster is busy (a test session holds {lock.name})") from None
                time.sleep(1)
        env = {**os.environ, "SLURM_LOCAL_DIR": str(SLURM_DIR)}
        was_running = subprocess.run([str(SLURM_SCRIPT), "status"], capture_output=True, env=env).returncode == 0
        if not was_running:
            print("starting the local SLURM cluster (scripts/slurm-local.sh start)", flush=True)
            subprocess.run([str(SLURM_SCRIPT), "start"], check=True, capture_output=True, env=env, timeout=120)
        previous = os.environ.get("SLURM_CONF")
        os.environ["SLURM_CONF"] = str(SLURM_DIR / "etc" / "slurm.conf")
        try:
            yield
        finally:
            if previous is None:
                os.environ.pop("SLURM_CONF", None)
            else:
                os.environ["SLURM_CONF"] = previous
            if not was_running:
                subprocess.run([str(SLURM_SCRIPT), "stop"], capture_output=True, env=env, timeout=120)
                print("stopped the local SLURM cluster", flush=True)


# --- main ----------------------------------------------------------------------------------------


def bench(executor: str, tmp: Path, args: argparse.Namespace) -> tuple[str, list[dict[str, float]], list[tuple]]:
    gpus = 1 if executor == "slurm" else 0
    loop = run_loop(tmp / "overhead", executor, args.trials, 1, 0, gpus=0)
    rows = phases(loop)
    print_overhead(executor, rows)
    later = args.trials + args.trials % 2
    rates = []
    for parallel in (1, 2):
        loop = run_loop(tmp / f"throughput-p{parallel}", executor, later + 1, parallel, args.sleep, gpus)
        count, window = throughput(loop)
        rates.append((parallel, count, window, 60 * count / window))
    ideal = 60 / args.sleep
    print(f"\n[{executor}] throughput, recipe sleeps {args.sleep:g} s, {'1 fake GPU' if gpus else 'cpus=1'} per trial")
    print(f"{'parallel':>8} {'trials':>6} {'wall s':>8} {'trials/min':>10} {'ideal':>7} {'vs p=1':>7}")
    for parallel, count, window, rate in rates:
        print(f"{parallel:>8} {count:>6} {window:8.1f} {rate:10.1f} {ideal * parallel:7.0f} {rate / rates[0][3]:6.2f}x")
    return executor, rows, rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=6, help="trials per measurement (default 6)")
    parser.add_argument("--executors", default="local,slurm", help="comma-separated: local,slurm")
    parser.add_argument("--sleep", type=float, default=2.0, help="the throughput recipe's run time, s")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if args.trials < 2:
        parser.error("--trials must be at least 2")
    print(f"load average (1 min): {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; {time.strftime('%Y-%m-%d %H:%M')}")

    results = []
    with tempfile.TemporaryDirectory(prefix="bench-trials-") as tmp:
        os.environ["NANORESEARCH_HOME"] = str(Path(tmp) / "home")
        os.environ["NANORESEARCH_USER"] = "bench"
        for executor in filter(None, (e.strip() for e in args.executors.split(","))):
            if executor == "slurm":
                reason = slurm_reason()
                if reason:
                    print(f"\n[slurm] skipped: {reason}")
                    continue
                with slurm_cluster():
                    results.append(bench(executor, Path(tmp) / executor, args))
            else:
                results.append(bench(executor, Path(tmp) / executor, args))
    if args.json:
        args.json.write_text(json.dumps([{"executor": e, "rows": r, "throughput": t} for e, r, t in results], indent=1))


if __name__ == "__main__":
    main()
