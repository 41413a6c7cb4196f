"""Hard budgets for a run: trials, wall time, CPU-hours, GPU-hours, LLM tokens and dollars.

Spending is read from the store's ledger (LLM calls charge tokens and dollars as they happen; each
trial charges its time, CPU-hours and GPU-hours when it ends), except wall time, which is the clock:
how long the run has been running, paused time excluded (the store keeps it as the run's status
changes). Before a trial starts its cost is estimated; if it does not fit, the task's knobs are
turned down until it does (and the trial says so), and if even the smallest setting does not fit,
the trial is not started. The trial's time limit is capped by its share of what the budget has left,
so a running trial cannot overspend: its executor stops it and it is labelled `budget_overrun`.
"""

from __future__ import annotations

import math
import shlex
import statistics
import time

from pydantic import BaseModel

from nanoresearch.compute.executor import Resources
from nanoresearch.errors import BudgetExhausted, UserError
from nanoresearch.store import Store
from nanoresearch.store.budget import Budget, budget_items, budget_number, format_budget, plain_number, validated_budget
from nanoresearch.store.budget import parse_budget as parse_budget  # the budget's spelling lives with the run record
from nanoresearch.store.models import Run


def raised_budget(current: Budget, text: str) -> Budget:
    """`resume --budget`: 'tokens=+20k' adds to the run's limit, 'tokens=50k' sets it; other units keep theirs."""
    values = current.model_dump(exclude_none=True)
    for name, raw in budget_items(text).items():
        amount = budget_number(raw.removeprefix("+"), seconds=name == "wall_s")
        if raw.startswith("+"):
            if name not in values:
                flag = _FLAGS.get(name, name)
                raise UserError(f"the run has no {flag} limit to add to", hint=f"give a limit instead, e.g. {flag}={raw[1:]}")
            amount += values[name]
        values[name] = amount
    return validated_budget(text, values)


class Spent(BaseModel):
    trials: int = 0
    wall_s: float = 0.0  # the clock: how long the run has been running, paused time excluded
    trial_s: float = 0.0  # the time its trials ran, summed (parallel trials each count); no limit
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
        wall_s=store.active_seconds(run_id),
        trial_s=ledger.get("trial_s", 0.0),
        cpu_hours=ledger.get("cpu_hours", 0.0),
        gpu_hours=ledger.get("gpu_hours", 0.0),
        tokens=ledger.get("tokens", 0.0),
        usd=ledger.get("usd", 0.0),
    )


# The flag that sets each unit (`--budget wall=20m` sets wall_s) and how its amounts read.
_FLAGS = {"wall_s": "wall"}
_AMOUNTS = {"trials": ("{:,.0f}", " trials"), "wall_s": ("{:,.0f}", " s"), "cpu_hours": ("{:.3g}", " CPU-hours"),
            "gpu_hours": ("{:.3g}", " GPU-hours"), "tokens": ("{:,.0f}", " tokens"), "usd": ("${:.4g}", "")}
MODEL_UNITS = ("tokens", "usd")  # what a model call spends


def budget_spent(unit: str, limit: float, used: float, run_id: str, session: Run | None = None) -> BudgetExhausted:
    """The stop at a spent limit: what was spent of what, and the command that gives the run more
    (`session`: the run, when it may be a trial session, which another command continues)."""
    number, word = _AMOUNTS[unit]
    return BudgetExhausted(
        f"the {_FLAGS.get(unit, unit)} budget is spent: {number.format(used)} of {number.format(limit)}{word}",
        hint=more_budget_hint(unit, limit, run_id, session), unit=unit,
    )


def more_budget_hint(unit: str, limit: float, run_id: str, session: Run | None = None) -> str:
    """How to continue a run with twice its limit of a spent unit. A research run: `resume RUN --budget
    unit=+limit`. A trial session is continued by `trials run --resume`, whose --budget replaces the
    session's own budget and takes no `+`: so it names every limit, the spent one raised."""
    flag = _FLAGS.get(unit, unit)
    if session is not None and session.kind == "trials":
        raised = format_budget(session.options.budget.model_copy(update={unit: 2 * limit}))
        task = shlex.quote(session.options.task or "TASK")
        return f"give more with `nanoresearch trials run --task {task} --resume {run_id} --budget {raised}`"
    more = f"{plain_number(limit / 60)}m" if unit == "wall_s" and limit % 60 == 0 else plain_number(limit)
    return f"give more with `nanoresearch resume {run_id} --budget {flag}=+{more}`"


def check_model_call(budget: Budget, used: Spent, run_id: str, session: Run | None = None) -> None:
    """Refuse a model call once the run's tokens or dollars are spent (BudgetExhausted)."""
    for unit in MODEL_UNITS:
        limit = getattr(budget, unit)
        if limit is not None and getattr(used, unit) >= limit:
            raise budget_spent(unit, limit, getattr(used, unit), run_id, session)


def model_budget_spent(budget: Budget, used: Spent, run_id: str, session: Run | None = None) -> BudgetExhausted:
    """The stop for a model call the budget cut short: the model unit nearest its limit is the one spent."""
    unit = max((u for u in MODEL_UNITS if getattr(budget, u) is not None), key=lambda u: getattr(used, u) / getattr(budget, u))
    return budget_spent(unit, getattr(budget, unit), getattr(used, unit), run_id, session)


def affordable_tokens(budget: Budget, used: Spent, usd_per_output_token: float | None) -> float:
    """The most tokens a model may still answer with: what is left of the tokens budget, and what the
    dollars left buy at the model's output price (inf when neither is limited)."""
    room = [budget.tokens - used.tokens] if budget.tokens is not None else []
    if budget.usd is not None and usd_per_output_token:
        room.append((budget.usd - used.usd) / usd_per_output_token)
    return min(room, default=math.inf)


class ModelCallGate:
    """The run's budget as the LLM client checks it before every live model call (llm.client.BudgetGate).

    It reads the budget from the run's record each time, so `resume --budget` takes effect at once,
    and the spending from the ledger, where each call is charged in the transaction that records it."""

    def __init__(self, store: Store, user_id: int, run_id: str) -> None:
        self.store, self.user_id, self.run_id = store, user_id, run_id

    def room(self, usd_per_output_token: float | None) -> float:
        run, used = self._now()
        check_model_call(run.options.budget, used, self.run_id, run)
        return affordable_tokens(run.options.budget, used, usd_per_output_token)

    def spent_error(self) -> BudgetExhausted:
        run, used = self._now()
        return model_budget_spent(run.options.budget, used, self.run_id, run)

    def _now(self) -> tuple[Run, Spent]:
        return self.store.get_run(self.run_id), spent(self.store, self.user_id, self.run_id)


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
    unit: str = ""  # the Budget field that refused the trial, when it does not fit
    downscaled: str = ""  # the knob changes made to fit the budget ("MAX_ITER 10 → 3"), for the lineage
    # Unix time at which the wall budget is spent: the trial must be over by then, however long it
    # waits for a node (its time limit counts from its start only). None without a wall limit.
    deadline: float | None = None


# Units whose time several trials running together each spend; the clock (wall_s) they share.
_SUMMED = ("cpu_hours", "gpu_hours")


def plan_trial(
    resources: Resources, knobs: dict, budget: Budget, used: Spent, past_elapsed: list[float],
    expected_s: float | None = None, share_of: int = 1,
) -> TrialPlan:
    """Estimate a trial's cost, downscale its knobs to fit the budget, or refuse it.

    `knobs` maps name -> Knob (default, min, cost_exponent). A trial's time is estimated from the
    median of this run's past trials (×1.5 for safety), else from the task's declared `expected_s`.
    With neither there is nothing to estimate from, so nothing is downscaled: the trial runs as
    given, its time limit capped by what the budget has left, and its time is the calibration for
    the next ones. `share_of` trials start together: the CPU- and GPU-hours left are split between
    them (the clock is not: they run at the same time).
    """
    remaining = left(budget, used)
    if remaining.get("trials", 1) < 1:
        return TrialPlan(fits=False, resources=resources, reason="the trial budget is used up", unit="trials")
    for unit in ("tokens", "usd"):
        if remaining.get(unit, 1) <= 0:
            return TrialPlan(fits=False, resources=resources, reason=f"the {unit} budget is used up", unit=unit)
    share = {unit: value / share_of if unit in _SUMMED else value for unit, value in remaining.items()}
    if spent_unit := _time_spent(resources, share):
        return _out_of_time(resources, spent_unit)
    estimate_s = _estimate(resources, past_elapsed, expected_s)
    room = math.inf if estimate_s is None else _room_factor(estimate_s, resources, share)
    defaults = {name: knob.default for name, knob in knobs.items()}
    if estimate_s is None or room >= 1:  # no estimate: nothing to cut down to size
        return _capped(TrialPlan(fits=True, resources=resources, knobs=defaults), share)
    values, scale = _downscale(knobs, room)
    if scale > room:
        unit = _tightest(estimate_s, resources, share)
        return TrialPlan(fits=False, resources=resources, knobs=values, scale=scale, unit=unit,
                         reason=f"the {_FLAGS.get(unit, unit)} budget has no room for another trial: one is expected to take "
                                f"{estimate_s:.3g} s, {scale:.0%} of that at its smallest settings, and {room:.0%} of it is left")
    scaled = resources.model_copy(update={"time_s": _scaled_time_s(resources, scale)})
    changes = ", ".join(f"{name} {_number_text(defaults[name])} → {_number_text(value)}"
                        for name, value in values.items() if value != defaults[name])
    plan = TrialPlan(fits=True, resources=scaled, knobs=values, scale=scale, downscaled=changes,
                     reason=f"downscaled to fit the budget: {changes} ({scale:.0%} of the default cost)")
    return _capped(plan, share)


def trials_that_fit(
    resources: Resources, budget: Budget, used: Spent, past_elapsed: list[float], expected_s: float | None, wanted: int,
) -> int:
    """How many trials of a batch to ask for (at least one): no more than the trial budget can start,
    nor than fit side by side in the CPU- and GPU-hours left at their estimated cost, so no proposal
    is paid for and then refused."""
    remaining = left(budget, used)
    count = min(wanted, int(remaining.get("trials", wanted)))
    estimate_s = _estimate(resources, past_elapsed, expected_s)
    if estimate_s is not None:
        room = _room_factor(estimate_s, resources, {unit: remaining[unit] for unit in _SUMMED if unit in remaining})
        count = min(count, math.floor(room)) if math.isfinite(room) else count
    return max(1, count)


def with_running(used: Spent, running: list[Resources]) -> Spent:
    """Spending plus the most that trials still running can charge (each may run to its time limit),
    so trials started beside them are planned from what is truly left."""
    return used.model_copy(update={
        unit: getattr(used, unit) + sum(r.time_s * count(r) for r in running) / 3600
        for unit, count in (("cpu_hours", lambda r: r.cpus), ("gpu_hours", lambda r: r.gpus))
    })


def _estimate(resources: Resources, past_elapsed: list[float], expected_s: float | None) -> float | None:
    if past_elapsed:
        return min(resources.time_s, 1.5 * statistics.median(past_elapsed))
    return min(resources.time_s, expected_s) if expected_s else None


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _room_factors(estimate_s: float, resources: Resources, remaining: dict[str, float]) -> dict[str, float]:
    """How many default-sized trials still fit, per limited time unit."""
    needs = {
        "wall_s": estimate_s,
        "cpu_hours": estimate_s * resources.cpus / 3600,
        "gpu_hours": estimate_s * resources.gpus / 3600,
    }
    return {unit: remaining[unit] / need for unit, need in needs.items() if unit in remaining and need > 0}


def _room_factor(estimate_s: float, resources: Resources, remaining: dict[str, float]) -> float:
    """How many default-sized trials still fit, in the tightest unit (inf when nothing is limited)."""
    return min(_room_factors(estimate_s, resources, remaining).values(), default=math.inf)


def _tightest(estimate_s: float, resources: Resources, remaining: dict[str, float]) -> str:
    factors = _room_factors(estimate_s, resources, remaining)
    return min(factors, key=factors.__getitem__)


def _downscale(knobs: dict, room: float) -> tuple[dict[str, float], float]:
    """Lower every knob by the same factor, not below its minimum; return values and cost scale."""
    values = {}
    share = room ** (1 / max(len(knobs), 1))
    for name, knob in knobs.items():
        wanted = knob.default * share ** (1 / knob.cost_exponent)
        value = max(knob.min, wanted)
        if float(knob.default).is_integer() and float(knob.min).is_integer():
            value = max(knob.min, math.floor(value))
        values[name] = value
    return values, _cost_scale(knobs, values)


def _cost_scale(knobs: dict, values: dict[str, float]) -> float:
    """Expected cost of a trial at these knob values, relative to the defaults."""
    scale = 1.0
    for name, knob in knobs.items():
        scale *= (values.get(name, knob.default) / knob.default) ** knob.cost_exponent
    return scale


def _scaled_time_s(resources: Resources, scale: float) -> int:
    return max(1, math.ceil(resources.time_s * scale))


def was_capped_by_budget(task_resources: Resources, knobs: dict, trial: Resources, values: dict[str, float]) -> bool:
    """Whether a trial's time limit came from the budget's share (not the task's limit, downscaled as
    its knobs say): for a trial re-attached after a restart, whose plan is gone, so that a stop at
    its limit is labelled `budget_overrun` as it would have been by the loop that started it."""
    return trial.time_s < _scaled_time_s(task_resources, _cost_scale(knobs, values))


def _time_caps(resources: Resources, remaining: dict[str, float]) -> dict[str, float]:
    """Seconds a trial with these resources may run before each limited time unit is spent."""
    caps = {"wall_s": remaining["wall_s"]} if "wall_s" in remaining else {}
    if "cpu_hours" in remaining:
        caps["cpu_hours"] = remaining["cpu_hours"] * 3600 / resources.cpus
    if "gpu_hours" in remaining and resources.gpus:
        caps["gpu_hours"] = remaining["gpu_hours"] * 3600 / resources.gpus
    return caps


def _time_spent(resources: Resources, remaining: dict[str, float]) -> str:
    """The time unit that leaves a trial less than a second ("" when one can start)."""
    caps = _time_caps(resources, remaining)
    unit = min(caps, key=caps.__getitem__, default=None)
    return "" if unit is None or caps[unit] >= 1 else unit


def _out_of_time(resources: Resources, unit: str) -> TrialPlan:
    return TrialPlan(fits=False, resources=resources, unit=unit,
                     reason=f"the {_FLAGS.get(unit, unit)} budget is spent: less than a second of it is left for a trial")


def _capped(plan: TrialPlan, remaining: dict[str, float]) -> TrialPlan:
    """Cap the trial's time limit by the wall, CPU and GPU time the budget has left, and end it by the
    time the wall budget is spent."""
    resources = plan.resources
    caps = _time_caps(resources, remaining)
    if not caps:
        return plan
    if "wall_s" in remaining:
        plan = plan.model_copy(update={"deadline": time.time() + remaining["wall_s"]})
    cap = math.floor(min(caps.values()))
    if cap < 1:
        return _out_of_time(resources, min(caps, key=caps.__getitem__))
    if cap < resources.time_s:
        return plan.model_copy(update={"resources": resources.model_copy(update={"time_s": cap}), "capped_by_budget": True})
    return plan


def charge_trial(store: Store, user_id: int, run_id: str, trial_id: int, elapsed_s: float, cpus: int, gpus: int) -> None:
    """What a finished trial cost, as the executor reported it (elapsed × allocated units)."""
    source = f"trial:{trial_id}"
    store.charge(user_id, run_id, "trial_s", elapsed_s, source)
    store.charge(user_id, run_id, "cpu_hours", elapsed_s * cpus / 3600, source)
    if gpus:
        store.charge(user_id, run_id, "gpu_hours", elapsed_s * gpus / 3600, source)
