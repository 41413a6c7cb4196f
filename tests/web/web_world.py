"""The dashboard tests' tiny world: alice's run with steps, a log, figures and trials (a baseline,
a kept one, a failed one), bob's run beside it. A uniquely named module, not conftest: several test
folders have a conftest.py, and `from conftest import` would find whichever was loaded last."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from nanoresearch.config import Settings
from nanoresearch.paper.numbers import number_macros, number_map_json
from nanoresearch.paper.results import Comparison, Condition, Results
from nanoresearch.pipeline.coevolution.recall import Recalled, RecalledMemory, RecalledSkill
from nanoresearch.pipeline.stages.ideation import Ideas, PriorWork, ScoredHypothesis
from nanoresearch.pipeline.stages.planning import Blueprint, ComputeEstimate, MatrixRow, Metric
from nanoresearch.pipeline.stages.review import ReviewForm
from nanoresearch.runs import new_run
from nanoresearch.store import Store
from nanoresearch.store.budget import parse_budget
from nanoresearch.store.models import Run, RunOptions, StagePlanRecord, Trial

SCRIPT = "<script>window.pwned = 1</script>"
DIFF = "--- a/train.py\n+++ b/train.py\n@@ -1,2 +1,2 @@\n-lr = 0.1\n+lr = 0.05\n keep = True\n"


class World(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    store: Store
    settings: Settings
    run: Run
    other: Run  # bob's
    baseline: Trial
    kept: Trial
    failed: Trial
    other_trial: Trial
    second: Run  # alice's second run, to compare with the first


def secret_from_run(world: World) -> str:
    """bob's secret file as a path relative to alice's workspace: what a traversal probe asks for."""
    return os.path.relpath(Path(world.other.workspace) / "secret.txt", world.run.workspace)


def add_trial(store: Store, run: Run, **fields: object) -> Trial:
    base = {"run_id": run.id, "proposer": "llm", "command": "python train.py", "executor": "local", "status": "done"}
    return store.add_trial(Trial(**{**base, **fields}))


def build_world(settings: Settings, store: Store) -> World:
    alice = store.ensure_user(settings.user)
    run = new_run(store, settings, alice, "demo", f"beat the baseline {SCRIPT}",
                  RunOptions(budget=parse_budget("trials=5,tokens=2000,usd=1")), kind="research")
    store.set_run_status(run.id, "running")
    store.save_step(run.id, "ideation", "pool", "done")
    write_stage_records(store, alice, run)
    store.save_step(run.id, "experiment", "trials", "running")
    store.charge(alice, run.id, "tokens", 1234, "test")
    store.charge(alice, run.id, "usd", 0.25, "test")
    workspace = Path(run.workspace)
    (workspace / "log.jsonl").write_text('{"event": "start"}\n{"event": "note", "text": "' + SCRIPT + '"}\n')
    (workspace / "figures").mkdir()
    (workspace / "figures" / "curve.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>')
    (workspace / "paper.pdf").write_bytes(b"%PDF-1.4\n%%EOF\n")
    baseline = add_trial(store, run, proposer="baseline", hypothesis="the recipe as given", score=0.5, kept=True)
    kept = add_trial(store, run, parent_id=baseline.id, hypothesis=f"halve the lr {SCRIPT}", diff=DIFF,
                     score=0.7, kept=True, metrics={"acc": 0.7}, resources={"cpus": 1},
                     logs_tail=f"epoch 1\n{SCRIPT}\n")
    failed = add_trial(store, run, parent_id=kept.id, status="failed", failure="oom", hypothesis="huge batch")
    store.charge(alice, run.id, "trial_s", 30, f"trial:{kept.id}")
    store.charge(alice, run.id, "cpu_hours", 30 / 3600, f"trial:{kept.id}")
    write_artifacts(run)
    second = new_run(store, settings, alice, "demo", "a second attempt", RunOptions(budget=parse_budget("trials=4")),
                     kind="research")
    add_trial(store, second, proposer="baseline", hypothesis="as given", score=0.4, kept=True)

    settings_bob = settings.model_copy(update={"user": "bob"})
    bob = store.ensure_user("bob")
    other = new_run(store, settings_bob, bob, "secret", "bob's private goal", RunOptions(), kind="trials")
    (Path(other.workspace) / "secret.txt").write_text("bob's secret")
    other_trial = add_trial(store, other, hypothesis="bob's idea")
    return World(store=store, settings=settings, run=run, other=other, baseline=baseline, kept=kept,
                 failed=failed, other_trial=other_trial, second=second)


RECALLED = Recalled(
    skills=[RecalledSkill(name="lr-sweep", description="sweep the learning rate", procedure="try 3 values", version=2,
                          score=0.61, components={"bm25": 0.5, "embedding": 0.7}),
            RecalledSkill(name="early-stop", description="stop when flat", procedure="patience 3", version=1,
                          score=0.42, components={"bm25": 0.3, "embedding": 0.5})],
    memories=[RecalledMemory(id=7, type="result", text=f"small lr helps {SCRIPT}", confidence=0.8, score=0.55)],
)


def write_stage_records(store: Store, user_id: int, run: Run) -> None:
    """The ideation stage finished with a plan (stored and in plans/), which used one of two recalled skills."""
    plan = {"objectives": ["find two papers on digits"], "constraints": ["stay offline"], "skills": ["lr-sweep"],
            "budget_share": "50%", "procedures": {"lr-sweep": "try 3 values"}}
    plan_id = store.save_stage_plan(StagePlanRecord(user_id=user_id, run_id=run.id, stage="ideation", provider="local",
                                                    model="tiny", prompt=[], output_text="{}", plan=plan))
    store.save_step(run.id, "ideation", "stage", "done", {"summary": "3 hypotheses", "plan_id": plan_id})
    write_json(run, "plans/ideation.json", {"plan_id": plan_id, **plan, "recalled": RECALLED.model_dump()})


def write_artifacts(run: Run) -> None:
    closest = PriorWork(kind="paper", ref="lecun98", title="Gradient-based learning", similarity=0.25)
    ideas = Ideas(queries=["digits"], papers=["lecun98"], evidence=[], selected=0, reason="highest novelty",
                  embedder="all-MiniLM-L6-v2", hypotheses=[
                      ScoredHypothesis(title="Halve the lr", statement=f"a smaller lr converges {SCRIPT}",
                                       rationale="noise", novelty=0.75, closest=closest),
                      ScoredHypothesis(title="Bigger batch", statement="batch 512", rationale="speed", novelty=0.4,
                                       dead_end=True)])
    blueprint = Blueprint(title="Learning rates for digits", datasets=["digits"], baselines=["lr 0.1"],
                          proposed_method="lr 0.05", primary_metric=Metric(name="accuracy", direction="maximize"),
                          hypothesis="a smaller lr converges", task="digits", seeds=3,
                          compute_estimate=ComputeEstimate(trials=8, cpu_hours=0.1, gpu_hours=0, basis="baseline time"),
                          run_matrix=[MatrixRow(condition="baseline", kind="baseline", description="as given", seeds=3),
                                      MatrixRow(condition="proposed", kind="proposed", description="lr 0.05", seeds=3)])
    results = Results(run_id=run.id, task="digits", metric="accuracy", direction="maximize", success=True, conditions=[
        Condition(name="baseline", kind="baseline", scores=[0.5, 0.52, 0.48], n=3, mean=0.5, std=0.02, ci95=(0.45, 0.55)),
        Condition(name="proposed", kind="proposed", scores=[0.7, 0.71, 0.69], n=3, mean=0.7, std=0.01, ci95=(0.675, 0.725)),
    ], comparisons=[Comparison(a="proposed", b="baseline", difference=0.2, test="Welch t-test", statistic=12.0,
                               p_value=0.0003, significant=True)])
    review = ReviewForm(summary=f"a paper {SCRIPT}", strengths=["clear"], weaknesses=["one dataset"], soundness=3,
                        presentation=3, contribution=2, overall=5, confidence=3)
    refs = number_macros(results)
    tex = ("\\section{Results}\nThe proposed lr reaches \\ResProposedMean{} against \\ResBaselineMean{} "
           f"(p = \\ResProposedVsBaselineP). {SCRIPT}\n")
    for name, data in (("ideas.json", ideas), ("blueprint.json", blueprint), ("results.json", results),
                       ("reviews/review.json", review)):
        write_json(run, name, data.model_dump(mode="json"))
    paper = Path(run.workspace) / "paper"
    paper.mkdir(exist_ok=True)
    (paper / "paper.tex").write_text(tex)
    (paper / "numbers.json").write_text(number_map_json(refs))
    (paper / "paper.pdf").write_bytes(b"%PDF-1.4\n%%EOF\n")


def write_json(run: Run, relative: str, data: object) -> None:
    path = Path(run.workspace) / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]




def write_version(settings: Settings, version: int, margin: tuple[float, float], active: bool) -> None:
    """An adapter version's figures as a round writes them (metrics.json), for the pages that list them."""
    from nanoresearch.policy.adapters import policy_paths, set_active
    from nanoresearch.policy.metrics import Drift, Gap, Snapshot, Training, UpdateMetrics

    def snapshot(gap: float, margin: float, kl: float, ppl: float) -> Snapshot:
        return Snapshot(gap=Gap(abs_log_ratio=gap, kl=gap / 2), margin=margin, control_margin=-0.075,
                        drift=Drift(kl_to_base=kl, perplexity=ppl, base_perplexity=10.0))

    metrics = UpdateMetrics(version=version, trained=[1], replayed=[], relevance={1: 0.5}, probes="derived",
                            before=snapshot(0.386, margin[0], 0.0, 10.0), after=snapshot(0.076, margin[1], 0.06, 10.2),
                            training=Training(steps=6, examples=1, first_loss=1.0, last_loss=0.5, seconds_per_step=0.1,
                                              max_grad_norm=1.0), seconds=3.0)
    paths = policy_paths(settings)
    paths.version(version).mkdir(parents=True)
    (paths.version(version) / "metrics.json").write_text(metrics.model_dump_json())
    if active:
        set_active(paths, version)
