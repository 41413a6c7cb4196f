"""How well the relevance check separates feedback the planner can learn from and feedback with
nothing in it, measured on a labelled set (tests/policy/data/relevance_labelled.json).

Each item is a feedback text on a plan, labelled actionable (it says what the plan should do
differently) or contentless (it acknowledges, praises or waves the plan through). A plan is either
written in the planner's own layout (checks.probe_messages, checks.plan_json) or recorded: the
prompt and the exact output ids of a real planner call (the embedded SmolLM2's, from the demo run,
whose long and often degenerate plans are what users will comment on). Each item's relevance is
computed as a training round computes it (`checks.relevance`).
Actionable is the positive class: precision is the share of the feedback kept for training that is
actionable, recall the share of actionable feedback kept. Used by bench/bench_sdpo_relevance.py
and the calibration test; `policy.min_relevance` is set from it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel

from nanoresearch.llm.local_model import LoadedModel


class LabelledPlan(BaseModel):
    stage: str
    # written: the stage's description as the orchestrator gives it, and the plan's one objective and constraint
    description: str = ""
    objective: str = ""
    constraint: str = ""
    # recorded: the planner call's messages and the exact ids it produced, with the model that produced them
    messages: list[dict[str, str]] = []
    output_ids: list[int] = []
    model: str = ""


class LabelledItem(BaseModel):
    plan: str  # a key of LabelledSet.plans
    feedback: str
    actionable: bool


class LabelledSet(BaseModel):
    about: str
    goal: str
    plans: dict[str, LabelledPlan]
    items: list[LabelledItem]


class Measured(BaseModel):
    item: LabelledItem
    relevance: float  # checks.relevance: the mean of the largest per-token KL values
    mean: float  # the mean over every plan token, the statistic before this calibration


class Calibration(BaseModel):
    threshold: float
    kept_actionable: int  # true positives
    kept_contentless: int  # false positives
    flagged_actionable: int  # false negatives
    flagged_contentless: int  # true negatives

    @property
    def precision(self) -> float:
        kept = self.kept_actionable + self.kept_contentless
        return self.kept_actionable / kept if kept else 0.0

    @property
    def recall(self) -> float:
        actionable = self.kept_actionable + self.flagged_actionable
        return self.kept_actionable / actionable if actionable else 0.0


def read_labelled(path: Path) -> LabelledSet:
    return LabelledSet.model_validate_json(path.read_text(encoding="utf-8"))


def measure(lm: LoadedModel, model: Any, labelled: LabelledSet, cfg: Any, planner: str) -> list[Measured]:
    """Every item's relevance, as `checks.relevance` computes it in a training round. Recorded plans made
    by another model than `planner` are left out: their ids mean nothing to it."""
    from nanoresearch.policy.checks import peak, token_relevance
    from nanoresearch.policy.sdpo import teacher_log_probs
    from nanoresearch.policy.triples import PLACEBO, to_example

    measured = []
    for name, plan in labelled.plans.items():
        if plan.output_ids and plan.model != planner:
            continue
        triple = plan_triple(lm, labelled.goal, plan)
        placebo = teacher_log_probs(model, to_example(lm, triple, PLACEBO), cfg)  # one plan: one placebo for its items
        for item in (i for i in labelled.items if i.plan == name):
            kl = token_relevance(model, to_example(lm, triple, item.feedback), placebo, cfg)
            measured.append(Measured(item=item, relevance=peak(kl), mean=float(kl.mean())))
    return measured


def plan_triple(lm: LoadedModel, goal: str, plan: LabelledPlan) -> Any:
    from nanoresearch.policy.checks import plan_json, probe_messages
    from nanoresearch.policy.triples import PLACEBO, Triple

    if plan.output_ids:
        messages, ids = plan.messages, plan.output_ids
    else:
        messages = probe_messages(goal, plan.stage, plan.description)
        ids = lm.tokenizer(plan_json(plan.objective, plan.constraint), add_special_tokens=False)["input_ids"]
    return Triple(feedback_id=0, plan_id=0, run_id="calibration", stage=plan.stage, prompt=messages, output_ids=ids,
                  feedback=PLACEBO, model=plan.model or "calibration")


def calibrate(measured: list[Measured], threshold: float, mean: bool = False) -> Calibration:
    """Feedback at or above the threshold is kept for training, as in `train.Round._relevant`; with
    `mean`, judged by the old statistic (the mean over every plan token)."""
    def count(kept: bool, actionable: bool) -> int:
        return sum(1 for m in measured if ((m.mean if mean else m.relevance) >= threshold) == kept
                   and m.item.actionable == actionable)

    return Calibration(threshold=threshold, kept_actionable=count(True, True), kept_contentless=count(True, False),
                       flagged_actionable=count(False, True), flagged_contentless=count(False, False))
