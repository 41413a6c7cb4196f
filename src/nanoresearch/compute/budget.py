"""Hard budgets for a run: trials, wall time, CPU-hours, GPU-hours, LLM tokens and dollars.

Spending is read from the store's ledger (LLM calls charge tokens and dollars as they happen; each
trial charges its wall time, CPU-hours and GPU-hours when it ends). Before a trial starts its cost
is estimated; if it does not fit, the task's knobs are turned down until it does, and if even the
smallest setting does not fit, the trial is not started. The trial's time limit is capped by what
the budget has left, so a running trial cannot overspend: it is stopped and labelled
`budget_overrun` instead.
"""

from __future__ import annotations

import math
import re
import statistics

from pydantic import BaseModel, Field

from nanoresearch.compute.executor import Resources
from nanoresearch.errors import UserError
from nanoresearch.store import Store


class Budget(BaseModel):
    """Limits for one run; None means no limit on that unit."""

    trials: int | None = Field(None, ge=1)
    wall_s: float | None = Field(None, gt=0)
    cpu_hours: float | None = Field(None, gt=0)
    gpu_hours: float | None = Field(None, gt=0)
    tokens: int | None = Field(None, gt=0)
    usd: float | None = Field(None, gt=0)


_UNITS = {"s": 1, "m": 60, "h": 3600}
_ALIASES = {"wall": "wall_s", "time": "wall_s", "cpu": "cpu_hours", "gpu": "gpu_hours", "money": "usd", "$": "usd"}


def parse_budget(text: str) -> Budget:
    """'trials=8,wall=10m,gpu_hours=2,tokens=200k,usd=1.5' -> Budget."""
    values: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        if "=" not in part:
            raise UserError(f"budget item {part!r} is not name=value", hint="e.g. --budget trials=8,wall=10m,usd=1")
        name, raw = (s.strip() for s in part.split("=", 1))
        name = _ALIASES.get(name, name)
        if name not in Budget.model_fields:
            raise UserError(f"unknown budget unit {name!r}", hint=f"units: {', '.join(Budget.model_fields)}")
        values[name] = _number(raw, seconds=name == "wall_s")
    try:
        return Budget(**values)
    except ValueError as exc:
        raise UserError(f"bad budget {text!r}: {exc}") from None


def _number(raw: str, seconds: bool) -> float:
    match = re.fullmatch(r"([0-9]*\.?[0-9]+)\s*([kKmMsh]?)", raw)
    if not match:
        raise UserError(f"budget value {raw!r} is not a number")
    value, suffix = float(match[1]), match[2]
    if seconds and suffix in _UNITS:
        return value * _UNITS[suffix]
    return value * {"k": 1e3, "K": 1e3, "M": 1e6}.get(suffix, 1)


class Spent(BaseModel):
    trials: int = 0
    wall_s: float = 0.0
    cpu_hours: float = 0.0
    gpu_hours: float = 0.0
    tokens: float = 0.0
    usd: float = 0.0


def spent(store: Store, user_id: int, run_id: str) -> Spent:
    ledger = store.spent(user_id, run_id)
    return Spent(
        # A trial counts once it was started (it has a job); one being planned, refused by the
        # budget, or whose proposal was unusable or illegal never ran and costs no trial.
        trials=sum(1 for t in store.trials(run_id) if t.job_id),
        wall_s=ledger.get("wall_s", 0.0),
        cpu_hours=ledger.get("cpu_hours", 0.0),
        gpu_hours=ledger.get("gpu_hours", 0.0),
        tokens=ledger.get("tokens", 0.0),
        usd=ledger.get("usd", 0.0),
    )


def left(budget: Budget, used: Spent) -> dict[str, float]:
    """What is left of each limited unit (may be negative only if a limit was lowered later)."""
    return {
        unit: limit - getattr(used, unit)
        for unit, limit in budget.model_dump().items()
        if limit is not None
    }


class TrialPlan(BaseModel):
    fits: bool
    resources: Resources
    knobs: dict[str, float] = {}
    scale: float = 1.0  # expected cost relative to the task's default settings
    capped_by_budget: bool = False  # the time limit comes from the budget, not the task
    reason: str = ""


def plan_trial(resources: Resources, knobs: dict, budget: Budget, used: Spent, past_elapsed: list[float]) -> TrialPlan:
    """Estimate a trial's cost, downscale its knobs to fit the budget, or refuse it.

    `knobs` maps name -> Knob (default, min, cost_exponent). The estimate of wall time is the median
    of past trials of this run (×1.5 for safety) or, before any trial, the task's time limit.
    """
    remaining = left(budget, used)
    if remaining.get("trials", 1) < 1:
        return TrialPlan(fits=False, resources=resources, reason="the trial budget is used up")
    for unit in ("tokens", "usd"):
        if remaining.get(unit, 1) <= 0:
            return TrialPlan(fits=False, resources=resources, reason=f"the {unit} budget is used up")
    estimate_s = min(resources.time_s, 1.5 * statistics.median(past_elapsed)) if past_elapsed else resources.time_s
    room = _room_factor(estimate_s, resources, remaining)
    defaults = {name: knob.default for name, knob in knobs.items()}
    if room >= 1:
        return _capped(TrialPlan(fits=True, resources=resources, knobs=defaults), remaining)
    values, scale = _downscale(knobs, room)
    if scale > room:
        return TrialPlan(fits=False, resources=resources, knobs=values, scale=scale,
                         reason=f"even the smallest settings need {scale:.0%} of a full trial; {room:.0%} is left")
    scaled = resources.model_copy(update={"time_s": max(1, math.ceil(resources.time_s * scale))})
    plan = TrialPlan(fits=True, resources=scaled, knobs=values, scale=scale,
                     reason=f"downscaled to {scale:.0%} of the default cost to fit the budget")
    return _capped(plan, remaining)


def _room_factor(estimate_s: float, resources: Resources, remaining: dict[str, float]) -> float:
    """How many default-sized trials still fit, in the tightest unit (inf when nothing is limited)."""
    needs = {
        "wall_s": estimate_s,
        "cpu_hours": estimate_s * resources.cpus / 3600,
        "gpu_hours": estimate_s * resources.gpus / 3600,
    }
    factors = [remaining[unit] / need for unit, need in needs.items() if unit in remaining and need > 0]
    return min(factors, default=math.inf)


def _downscale(knobs: dict, room: float) -> tuple[dict[str, float], float]:
    """Lower every knob by the same factor, not below its minimum; return values and cost scale."""
    values, scale = {}, 1.0
    share = room ** (1 / max(len(knobs), 1))
    for name, knob in knobs.items():
        wanted = knob.default * share ** (1 / knob.cost_exponent)
        value = max(knob.min, wanted)
        if float(knob.default).is_integer() and float(knob.min).is_integer():
            value = max(knob.min, math.floor(value))
        values[name] = value
        scale *= (value / knob.default) ** knob.cost_exponent
    return values, (scale if knobs else 1.0)


def _capped(plan: TrialPlan, remaining: dict[str, float]) -> TrialPlan:
    """Cap the trial's time limit by the wall, CPU and GPU time the budget has left."""
    resources = plan.resources
    caps = [remaining["wall_s"]] if "wall_s" in remaining else []
    if "cpu_hours" in remaining:
        caps.append(remaining["cpu_hours"] * 3600 / resources.cpus)
    if "gpu_hours" in remaining and resources.gpus:
        caps.append(remaining["gpu_hours"] * 3600 / resources.gpus)
    if not caps:
        return plan
    cap = math.floor(min(caps))
    if cap < 1:
        return plan.model_copy(update={"fits": False, "reason": "no wall, CPU or GPU time is left"})
    if cap < resources.time_s:
        return plan.model_copy(update={"resources": resources.model_copy(update={"time_s": cap}), "capped_by_budget": True})
    return plan


def charge_trial(store: Store, user_id: int, run_id: str, trial_id: int, elapsed_s: float, cpus: int, gpus: int) -> None:
    """What a finished trial cost, as the executor reported it (elapsed × allocated units)."""
    source = f"trial:{trial_id}"
    store.charge(user_id, run_id, "wall_s", elapsed_s, source)
    store.charge(user_id, run_id, "cpu_hours", elapsed_s * cpus / 3600, source)
    if gpus:
        store.charge(user_id, run_id, "gpu_hours", elapsed_s * gpus / 3600, source)
