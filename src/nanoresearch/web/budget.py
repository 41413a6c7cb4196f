"""Budget charts: spent against the limit for each unit, for the run, per stage and per trial.

Charges are read from the ledger. A trial's compute is charged with its id as the source; a charge
belongs to the stage that was running when it was made (stages run one after another, so a charge
made after stage k-1 finished and before stage k finished is stage k's). The bars are laid out here
and drawn as SVG by the template: no script, no chart library.
"""

from __future__ import annotations

from pydantic import BaseModel

from nanoresearch.compute.budget import Budget, Spent, spent
from nanoresearch.store import Store
from nanoresearch.store.models import Charge, Run, Step, Trial

# wall_s is the run's clock (for the run as a whole only); trial_s is the time trials ran, which has no limit.
UNITS = ("trials", "wall_s", "trial_s", "cpu_hours", "gpu_hours", "tokens", "usd")
UNIT_NAMES = {"trials": "trials", "wall_s": "wall s", "trial_s": "trial s", "cpu_hours": "CPU-h", "gpu_hours": "GPU-h",
              "tokens": "tokens", "usd": "USD"}
BAR_WIDTH = 300  # pixels for a whole limit
ROW_HEIGHT = 22
LABEL_WIDTH = 170


class Bar(BaseModel):
    label: str
    width: int  # pixels of the spent part
    full: int  # pixels of the limit (or of the largest bar when the unit has no limit)
    text: str
    over: bool = False  # spent more than the limit


class Chart(BaseModel):
    title: str
    bars: list[Bar]

    @property
    def height(self) -> int:
        return ROW_HEIGHT * len(self.bars) + 6

    @property
    def width(self) -> int:
        return LABEL_WIDTH + BAR_WIDTH + 200


class BudgetView(BaseModel):
    total: Chart
    per_stage: Chart
    per_trial: Chart


def amount_text(unit: str, value: float) -> str:
    if unit in ("trials", "tokens", "wall_s", "trial_s"):
        return f"{value:,.0f}"
    return f"{value:.4g}" if unit != "usd" else f"${value:.4f}"


def bar(label: str, unit: str, value: float, limit: float | None, scale: float) -> Bar:
    """One bar: against the limit when there is one, else against `scale` (the largest amount of its kind)."""
    if not limit and not scale:  # nothing to draw it against: the amount alone
        return Bar(label=label, width=0, full=0, text=f"{amount_text(unit, value)} {UNIT_NAMES[unit]} (no limit)")
    whole = limit or scale
    text = f"{amount_text(unit, value)} / {amount_text(unit, limit)} {UNIT_NAMES[unit]}" if limit else \
        f"{amount_text(unit, value)} {UNIT_NAMES[unit]} (no limit)"
    return Bar(label=label, width=round(BAR_WIDTH * min(value / whole, 1.0)), full=BAR_WIDTH, text=text,
               over=value > limit if limit else False)


def budget_view(store: Store, user_id: int, run: Run) -> BudgetView:
    limits = run.options.budget
    used = spent(store, user_id, run.id)
    charges = store.charges(user_id, run.id)
    return BudgetView(total=total_chart(limits, used), per_stage=stage_chart(limits, store, run, charges),
                      per_trial=trial_chart(limits, charges))


def total_chart(limits: Budget, used: Spent) -> Chart:
    """Every unit that has a limit or was spent at all; a unit without a limit shows its amount only."""
    bars = [bar(UNIT_NAMES[unit], unit, getattr(used, unit), _limit(limits, unit), 0.0)
            for unit in UNITS if _limit(limits, unit) is not None or getattr(used, unit)]
    return Chart(title="run", bars=bars)


def stage_chart(limits: Budget, store: Store, run: Run, charges: list[Charge]) -> Chart:
    per_stage = split_by_stage(store.steps(run.id), charges)
    for stage, started in trials_by_stage(store.steps(run.id), store.trials(run.id)).items():
        per_stage.setdefault(stage, {})["trials"] = started
    return _grouped_chart("per stage", limits, per_stage)


def trial_chart(limits: Budget, charges: list[Charge]) -> Chart:
    per_trial: dict[str, dict[str, float]] = {}
    for charge in charges:
        if charge.source.startswith("trial:"):
            amounts = per_trial.setdefault(f"trial {charge.source.removeprefix('trial:')}", {})
            amounts[charge.kind] = amounts.get(charge.kind, 0.0) + charge.amount
    return _grouped_chart("per trial", limits, per_trial)


def _grouped_chart(title: str, limits: Budget, groups: dict[str, dict[str, float]]) -> Chart:
    """One bar per group and unit spent; units without a limit are scaled to their largest group."""
    largest = {unit: max((g.get(unit, 0.0) for g in groups.values()), default=0.0) for unit in UNITS}
    bars = [bar(f"{name} · {UNIT_NAMES[unit]}", unit, amounts[unit], _limit(limits, unit), largest[unit])
            for name, amounts in groups.items() for unit in UNITS if amounts.get(unit)]
    return Chart(title=title, bars=bars)


def _limit(limits: Budget, unit: str) -> float | None:
    return getattr(limits, unit, None)  # trial_s has no limit


def stage_ends(steps: list[Step]) -> list[tuple[str, str]]:
    """(stage, when its last step was saved), in the order stages started."""
    ends: dict[str, str] = {}
    for step in steps:
        ends[step.stage] = max(ends.get(step.stage, ""), step.updated_at)
    return list(ends.items())


def stage_at(ends: list[tuple[str, str]], stamp: str) -> str:
    """The stage running at `stamp`: the first that ended after it; after the last, the last. (Stamps are
    milliseconds: a charge in the very millisecond a stage ended goes to the next stage, which had begun.)"""
    for stage, end in ends:
        if stamp < end:
            return stage
    return ends[-1][0]


def split_by_stage(steps: list[Step], charges: list[Charge]) -> dict[str, dict[str, float]]:
    """Amounts per stage and unit; a run without stages (a trial session) has no split."""
    ends = stage_ends(steps)
    groups: dict[str, dict[str, float]] = {stage: {} for stage, _ in ends}
    for charge in charges if ends else []:
        amounts = groups[stage_at(ends, charge.created_at)]
        amounts[charge.kind] = amounts.get(charge.kind, 0.0) + charge.amount
    return groups


def trials_by_stage(steps: list[Step], trials: list[Trial]) -> dict[str, int]:
    """Started trials (those with a job) per stage, by when each was created."""
    ends = stage_ends(steps)
    counts: dict[str, int] = {}
    for trial in trials if ends else []:
        if trial.job_id:
            stage = stage_at(ends, trial.created_at)
            counts[stage] = counts.get(stage, 0) + 1
    return counts
