"""The measures of one round's run, computed by code from the lane's store and the run's workspace.

Nothing here asks a model: success and the scores come from the trials and results.json, the cost
from the recorded calls and the ledger, compliance from the profile checked against what the run
did. Judged alignment and novelty are read from the judge's file (evaluation/judge.py).
"""

from __future__ import annotations

import re
from difflib import SequenceMatcher
from pathlib import Path

from pydantic import BaseModel

from nanoresearch.compute.budget import spent
from nanoresearch.evaluation.judge import Judged, read_json
from nanoresearch.paper.results import Results
from nanoresearch.profile import Profile
from nanoresearch.store import Store
from nanoresearch.store.models import Run, Trial

CRASHED = ("crash", "timeout", "oom")
SAME_HYPOTHESIS = 0.85  # text similarity above which a proposal repeats an earlier one
# Seeds per condition each rigour asks for, at least; strict asks for the configured pipeline.seeds.
RIGOUR_SEEDS = {"quick": 1, "standard": 1}


class Compliance(BaseModel):
    """Each check: True kept, False broken, None not applicable to this run."""

    ablations: bool | None = None  # ablations present when the profile asks for them, absent when it says none
    caps: bool | None = None  # every spent unit within the profile's hard caps
    executors: bool | None = None  # no trial on a forbidden executor, no GPU when GPUs are forbidden
    seeds: bool | None = None  # each condition over at least the seeds the profile's rigour asks for

    def share(self) -> float | None:
        checked = [v for v in self.model_dump().values() if v is not None]
        return sum(checked) / len(checked) if checked else None


class RunMetrics(BaseModel):
    """One round of one lane (a row of report.json's `runs`)."""

    persona: str
    variant: str
    seed: int
    round: int
    run_id: str
    status: str
    levels: list[str]  # the co-evolution levels the run records as on
    success: bool = False
    baseline: float | None = None
    best: float | None = None
    improvement: float | None = None  # best - baseline, signed so that positive is better
    trials: int = 0
    trials_to_first_improvement: int | None = None  # 1-based position among the run's trials
    crashed_share: float = 0.0
    illegal_share: float = 0.0
    gate_missed_share: float = 0.0
    hypotheses: list[str] = []  # the ideation pool, for later rounds' dead-end check
    tested_failed: str | None = None  # the tested hypothesis, when the run's changes lost to the baseline
    dead_end_repeats: int = 0  # proposals repeating a hypothesis an earlier round of this lane found failed
    llm_calls: int = 0
    tokens: int = 0
    usd: float = 0.0
    wall_s: float = 0.0
    cpu_hours: float = 0.0
    gpu_hours: float = 0.0
    feedback: int = 0  # comments the simulated user left
    compliance: Compliance = Compliance()
    compliance_share: float | None = None
    alignment: int | None = None  # judged, 1-5
    novelty: int | None = None


def run_metrics(store: Store, user_id: int, run: Run, profile: Profile, configured_seeds: int,
                earlier_failed: list[str], judged: Judged | None) -> dict:
    """The run's measures (without persona, variant, seed and round, which the caller knows)."""
    trials = store.trials(run.id)
    results = read_results(Path(run.workspace))
    ideas = read_json(Path(run.workspace) / "ideas.json") or {}
    hypotheses = [h.get("statement", "") for h in ideas.get("hypotheses", [])]
    calls = store.llm_calls(user_id, run.id)
    used = spent(store, user_id, run.id)
    baseline, best = scores(trials, run.options.direction)
    compliance = check_compliance(run, profile, trials, results, used.model_dump(), configured_seeds)
    return {
        "run_id": run.id, "status": f"stopped: {run.stop_reason}" if run.stop_reason else run.status,
        "levels": list(run.options.coevolution), "success": bool(results and results.success),
        "baseline": baseline, "best": best, "improvement": improvement(baseline, best, run.options.direction),
        "trials": len(trials), "trials_to_first_improvement": first_improvement(trials, baseline, run.options.direction),
        **failure_shares(trials), "hypotheses": hypotheses, "tested_failed": tested_failed(run, results),
        "dead_end_repeats": sum(any(same_hypothesis(h, f) for f in earlier_failed) for h in hypotheses),
        "llm_calls": len(calls), "tokens": sum(c.prompt_tokens + c.completion_tokens for c in calls),
        "usd": sum(c.cost_usd or 0.0 for c in calls), "wall_s": used.wall_s, "cpu_hours": used.cpu_hours,
        "gpu_hours": used.gpu_hours, "feedback": sum(1 for f in store.feedback(user_id, run.id) if f.text),
        "compliance": compliance, "compliance_share": compliance.share(),
        "alignment": judged.verdict.alignment if judged and judged.verdict else None,
        "novelty": judged.verdict.novelty if judged and judged.verdict else None,
    }


def read_results(folder: Path) -> Results | None:
    data = read_json(folder / "results.json")
    return Results.model_validate(data) if data else None


def better(a: float, b: float, direction: str) -> bool:
    return a > b if direction == "maximize" else a < b


def scores(trials: list[Trial], direction: str) -> tuple[float | None, float | None]:
    """The first baseline's score and the best kept score (the head)."""
    baseline = next((t.score for t in trials if t.proposer == "baseline" and t.score is not None and not t.failure), None)
    kept = [t.score for t in trials if t.kept and t.score is not None and not t.failure]
    best = (max if direction == "maximize" else min)(kept) if kept else None
    return baseline, best


def improvement(baseline: float | None, best: float | None, direction: str) -> float | None:
    if baseline is None or best is None:
        return None
    return best - baseline if direction == "maximize" else baseline - best


def first_improvement(trials: list[Trial], baseline: float | None, direction: str) -> int | None:
    if baseline is None:
        return None
    return next((i for i, t in enumerate(trials, 1) if t.proposer != "baseline" and t.score is not None
                 and not t.failure and better(t.score, baseline, direction)), None)


def failure_shares(trials: list[Trial]) -> dict[str, float]:
    n = len(trials) or 1
    return {
        "crashed_share": sum(t.failure in CRASHED for t in trials) / n,
        "illegal_share": sum(t.failure == "illegal_edit" for t in trials) / n,
        "gate_missed_share": sum(t.failure == "gate_miss" for t in trials) / n,
    }


def tested_failed(run: Run, results: Results | None) -> str | None:
    """The tested hypothesis when changes testing it were scored and none beat the baseline."""
    if results is None or results.success:
        return None
    scored = [t for t in results.trials if t.proposer != "baseline" and t.score is not None and t.failure is None]
    blueprint = read_json(Path(run.workspace) / "blueprint.json") or {}
    return blueprint.get("hypothesis") if scored else None


def normalised(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def same_hypothesis(a: str, b: str) -> bool:
    return SequenceMatcher(None, normalised(a), normalised(b)).ratio() >= SAME_HYPOTHESIS


def check_compliance(run: Run, profile: Profile, trials: list[Trial], results: Results | None, used: dict,
                     configured_seeds: int) -> Compliance:
    caps = profile.hard_constraints.caps()
    forbidden = set(profile.hard_constraints.forbid)
    conditions = results.conditions if results else []
    ablations = [c for c in conditions if c.kind == "ablation"]
    seeded = [len(c.seeds) for c in conditions if c.seeds]
    wanted_seeds = configured_seeds if profile.rigour == "strict" else RIGOUR_SEEDS[profile.rigour]
    return Compliance(
        ablations=(not ablations if profile.ablation_strictness == "none" else bool(ablations)) if conditions else None,
        caps=all(used.get(unit, 0.0) <= cap for unit, cap in caps.items()) if caps else None,
        executors=not any(t.executor in forbidden or ("gpu" in forbidden and t.resources.get("gpus", 0)) for t in trials),
        seeds=min(seeded) >= wanted_seeds if seeded else None,  # None: the task takes no seed
    )
