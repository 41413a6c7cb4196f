"""Hard constraints made real: caps applied to the run budget, and forbidden resources refused.

The pipeline calls these before any work starts. A capped budget is an ordinary `Budget`, so the
ledger and `plan_trial` (compute/budget.py) enforce the profile's caps like any other limit.
"""

from __future__ import annotations

from collections.abc import Sequence

from nanoresearch.compute.budget import Budget, parse_budget
from nanoresearch.errors import UserError
from nanoresearch.profile.models import Profile
from nanoresearch.store.budget import format_budget


def capped_budget(budget: Budget, profile: Profile) -> tuple[Budget, list[str]]:
    """The budget with every cap of the profile applied, and a note for each limit it changed.

    A unit the run limits is lowered to the cap when above it; a unit the run leaves unlimited
    gets the cap.
    """
    limits = budget.model_dump(exclude_none=True)
    notes = []
    for unit, cap in profile.hard_constraints.caps().items():
        asked = limits.get(unit)
        if asked is None:
            notes.append(f"{unit} limited to {cap:g} by your profile (the run set no {unit} limit)")
        elif asked > cap:
            notes.append(f"{unit} capped at {cap:g} by your profile (the run asked for {asked:g})")
        else:
            continue
        limits[unit] = cap
    return Budget(**limits), notes


def cap_budget_text(text: str, profile: Profile) -> tuple[str, list[str]]:
    """`capped_budget` for the budget strings runs store ("trials=6,wall=20m")."""
    budget, notes = capped_budget(parse_budget(text), profile)
    return format_budget(budget), notes


def check_allowed(profile: Profile, *, gpus: int = 0, executor: str = "local") -> None:
    """Refuse, before anything runs, a run that uses what the profile forbids."""
    forbid = profile.hard_constraints.forbid
    how = "nanoresearch profile set hard_constraints.forbid"
    if "gpu" in forbid and gpus > 0:
        raise UserError(f"your profile forbids GPUs, but each trial of this task asks for {gpus}",
                        hint=f"use a CPU task, or allow GPUs with `{how} {_without(forbid, 'gpu')}`")
    if executor in forbid:
        raise UserError(f"your profile forbids the {executor} executor",
                        hint=f"use --executor local, or allow it with `{how} {_without(forbid, executor)}`")


def _without(forbid: Sequence[str], item: str) -> str:
    rest = [f for f in forbid if f != item]
    return ",".join(rest) if rest else "none"
