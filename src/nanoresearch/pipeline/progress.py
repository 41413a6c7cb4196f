"""What a run has spent, as a person reads it: how long a stage took, what it cost, what is left.

The numbers come from the store's ledger (compute/budget.py `spent` and `left`), never from the
display, so the run's own output, `status` and `watch` all say the same. A stage's cost is logged with
its `stage_done` event, so `watch` shows a finished stage's line as the run printed it.
"""

from __future__ import annotations

from pydantic import BaseModel

from nanoresearch.compute.budget import Spent, left, spent
from nanoresearch.store import Store


class StageCost(BaseModel):
    """What one stage took: its time, the tokens and dollars charged while it ran, and the run's budget left after it."""

    seconds: float
    tokens: float
    usd: float
    left: dict[str, float]


def stage_cost(store: Store, user_id: int, run_id: str, before: Spent, seconds: float) -> StageCost:
    """The cost of the stage that began when the run had spent `before`; the budget is read from the run's
    record, so a budget raised by `resume --budget` counts."""
    after = spent(store, user_id, run_id)
    remaining = left(store.get_run(run_id).options.budget, after)
    return StageCost(seconds=round(seconds, 3), tokens=after.tokens - before.tokens, usd=after.usd - before.usd,
                     left=remaining)


def done_line(summary: str, cost: StageCost | None) -> str:
    """A finished stage as one line: `  done (12.3 s · 1,234 tokens · $0.0012 · left: trials 4): summary`.
    `cost` is None for a stage logged before costs were (an older run's log)."""
    if cost is None:
        return f"  done: {summary}"
    return (f"  done ({duration_text(cost.seconds)} · {cost.tokens:,.0f} tokens · ${cost.usd:.4f} · "
            f"left: {left_text(cost.left)}): {summary}")


def spending_text(used: Spent) -> str:
    """The run's spending so far, in the units a person budgets in."""
    return f"{used.trials} trials · {used.tokens:,.0f} tokens · ${used.usd:.4f}"


def left_text(remaining: dict[str, float]) -> str:
    """What is left of each limited unit, named as `--budget` names it (`wall`, not `wall_s`)."""
    if not remaining:
        return "no limits"
    return ", ".join(_amount_left(unit, value) for unit, value in remaining.items())


def _amount_left(unit: str, value: float) -> str:
    if unit == "wall_s":
        return f"wall {duration_text(value)}"
    if unit == "usd":
        return f"usd ${value:.4f}"
    if unit in ("trials", "tokens"):
        return f"{unit} {value:,.0f}"
    return f"{unit} {value:.3g}"


def duration_text(seconds: float) -> str:
    """12.3 s, 4 m 05 s, 2 h 10 m: short enough for a status line, exact enough to compare stages."""
    if seconds < 0:
        return "-" + duration_text(-seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60} m {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} m"
