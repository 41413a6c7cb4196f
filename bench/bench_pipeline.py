"""What the research pipeline costs around its LLM calls and trials, from a recorded run.

A recorded run (`nanoresearch llm export RUN -o FILE`; the default is the suite's recording of the
embedded SmolLM2 on the digits task) is replayed from scratch in a temporary home with
`llm.replay = "only"`: every LLM call answers from the recording in ~0 s, the trials really run.

1. Orchestration overhead: replayed wall time minus the trials' own job time (executor-reported)
   minus the evaluators' time is what the orchestrator itself costs (planning code, literature
   search, MiniLM novelty, statistics, figures, LaTeX, checkpoints, sandbox start-up). Its share is
   given against the recorded live run: overhead / (overhead + recorded LLM latency + trial time).
2. Resume cost: the finished run is resumed three ways: with nothing left to do, with the last two
   stages (writing, review) forgotten, and with everything after the experiment forgotten. Seconds,
   live LLM calls made (must be 0: they replay within the run) and trials run again (must be 0).
3. Tokens and calls per stage, from the recording.
4. Co-evolution share: the recorded model time spent on planner calls (label `planner`) and on memory
   and skill writing (label `analysis`: memory notes, same-topic judgements, skill distillation; the
   analysis stage itself calls no model), against all recorded model time. `--share-only` prints
   just this, for any number of recordings (e.g. one before and one after a change).

    python bench/bench_pipeline.py
    python bench/bench_pipeline.py --recording my-run.json --task DIR --corpus DIR --goal "..." --budget trials=6
    python bench/bench_pipeline.py --share-only old.json tests/pipeline/recorded/digits-smollm2.json
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECORDING = ROOT / "tests" / "pipeline" / "recorded" / "digits-smollm2.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recording", type=Path, default=RECORDING)
    parser.add_argument("--task", type=Path, default=ROOT / "examples" / "tasks" / "digits-classifier")
    parser.add_argument("--corpus", type=Path, default=ROOT / "examples" / "corpus")
    parser.add_argument("--goal", default=None, help="default: the recording's goal")
    parser.add_argument("--budget", default=None, help="default: the recording's budget")
    parser.add_argument("--share-only", nargs="+", type=Path, metavar="RECORDING", help="print only the co-evolution share")
    args = parser.parse_args()
    if args.share_only:
        for path in args.share_only:
            print_share(path.name, json.loads(path.read_text()))
        return
    recording = json.loads(args.recording.read_text())
    goal = args.goal or recording.get("goal")
    budget = args.budget or recording.get("budget")
    with tempfile.TemporaryDirectory() as home:
        os.environ["NANORESEARCH_HOME"] = home
        os.environ["NANORESEARCH_LLM__REPLAY"] = "only"
        if args.recording == RECORDING:  # recorded before proposers were shown the task's [search] ranges
            os.environ["NANORESEARCH_PIPELINE__SHOW_SEARCH_SPACE"] = "false"
        report(recording, *replay(recording, goal, budget, args.task, args.corpus))


def replay(recording: dict, goal: str, budget: str, task: Path, corpus: Path):
    from nanoresearch.config import load_settings
    from nanoresearch.llm.client import LLM
    from nanoresearch.llm.replay import import_recording
    from nanoresearch.pipeline.context import RunContext, RunOptions
    from nanoresearch.pipeline.orchestrator import Unattended, run_pipeline
    from nanoresearch.runs import new_run
    from nanoresearch.store import Store
    from nanoresearch.trials.task import load_task

    settings = load_settings({"user": "bench"})
    store = Store(settings.db_path)
    user_id = store.ensure_user(settings.user)
    import_recording(store, user_id, recording)
    options = RunOptions(goal=goal, task=str(task.resolve()), budget=budget, offline=True, corpus=str(corpus.resolve()))
    run = new_run(store, settings, user_id, "bench", goal, options.model_dump())

    def context() -> RunContext:
        llm = LLM(settings, store, user_id, run_id=run.id, replay_within_run=True)
        return RunContext(settings, store, user_id, store.get_run(run.id), llm, options, task=load_task(task))

    started = time.perf_counter()
    run_pipeline(context(), Unattended())
    wall = time.perf_counter() - started
    trials = store.trials(run.id)
    resumes = []
    for label, stages in (("nothing left", []), ("writing+review", ["writing", "review"]),
                          ("after experiment", ["analysis", "figures", "writing", "review"])):
        for stage in stages:
            store.clear_steps(run.id, stage)
        calls_before, trials_before = len(store.llm_calls(user_id, run.id)), len(store.trials(run.id))
        began = time.perf_counter()
        run_pipeline(context(), Unattended())
        resumes.append((label, time.perf_counter() - began, len(store.llm_calls(user_id, run.id)) - calls_before,
                        len(store.trials(run.id)) - trials_before))
    stages = {s.stage: s.payload.get("seconds", 0.0) for s in store.steps(run.id) if s.step == "stage"}
    return wall, trials, stages, resumes


def print_share(name: str, recording: dict) -> None:
    """The share of recorded model time spent on the planner and on memory and skill writing, counted
    as the research-quality benchmark counts a run's (evaluation/quality.py)."""
    from nanoresearch.evaluation.quality import model_time

    measured = model_time((c.get("stage"), c["latency_s"]) for c in recording["calls"])
    print(f"co-evolution share of model time ({name}, {measured.seconds:.1f} s in {measured.calls} calls):")
    for purpose, spent in measured.coevolution.items():
        print(f"  {purpose:<14} {spent.calls:3d} calls {spent.seconds:7.1f} s  {spent.seconds / measured.seconds:6.1%}")
    print(f"  {'together':<14} {'':9} {measured.coevolution_seconds:7.1f} s  {measured.coevolution_share:6.1%}")


def report(recording: dict, wall: float, trials: list, stages: dict, resumes: list) -> None:
    job_s = sum((t.ended_at - t.started_at) for t in trials if t.started_at and t.ended_at)
    llm_s = sum(c["latency_s"] for c in recording["calls"])
    overhead = wall - job_s
    print(f"replayed run: {wall:.1f} s wall, {len(trials)} trials with {job_s:.1f} s of job time")
    print(f"orchestration overhead (outside LLM calls and trial jobs): {overhead:.1f} s")
    print(f"  share of the recorded live run ({llm_s:.0f} s of LLM latency): "
          f"{overhead / (overhead + llm_s + job_s):.1%}")
    print("\nseconds per stage (replayed):")
    for stage, seconds in stages.items():
        print(f"  {stage:<11} {seconds:7.2f}")
    print("\nresume cost:")
    print(f"  {'forgotten':<18} {'seconds':>8} {'live calls':>11} {'trials rerun':>13}")
    for label, seconds, calls, rerun in resumes:
        print(f"  {label:<18} {seconds:8.2f} {calls:11d} {rerun:13d}")
    per_stage: dict[str, list[float]] = defaultdict(lambda: [0, 0, 0, 0.0])
    for call in recording["calls"]:
        row = per_stage[call.get("stage") or "?"]
        row[0] += 1
        row[1] += call["prompt_tokens"]
        row[2] += call["completion_tokens"]
        row[3] += call["latency_s"]
    print("\ntokens and calls per stage (recording):")
    print(f"  {'stage':<10} {'calls':>6} {'prompt':>8} {'output':>8} {'live s':>8}")
    for stage, (calls, prompt, output, latency) in per_stage.items():
        print(f"  {stage:<10} {calls:6d} {prompt:8d} {output:8d} {latency:8.1f}")
    print()
    print_share("recording", recording)


if __name__ == "__main__":
    main()
