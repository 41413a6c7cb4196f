"""A run's budget as it is stored with the run, and its spelling as users type it ('trials=8,wall=10m').

It lives in the store because the run record holds it; what is spent of it and what still fits are
compute/budget.py's (which re-exports these names).
"""

from __future__ import annotations

import re

from pydantic import BaseModel, Field, ValidationError

from nanoresearch.errors import UserError


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
    values = {name: budget_number(raw, seconds=name == "wall_s", unit=name) for name, raw in budget_items(text).items()}
    return validated_budget(text, values)


def budget_items(text: str) -> dict[str, str]:
    """'trials=8,wall=10m' -> {'trials': '8', 'wall_s': '10m'}, units checked and aliases resolved."""
    items: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        if "=" not in part:
            raise UserError(f"budget item {part!r} is not name=value", hint="e.g. --budget trials=8,wall=10m,usd=1")
        name, raw = (s.strip() for s in part.split("=", 1))
        name = _ALIASES.get(name, name)
        if name not in Budget.model_fields:
            raise UserError(f"unknown budget unit {name!r}", hint=f"units: {', '.join(map(spelled, Budget.model_fields))}")
        items[name] = raw
    return items


def validated_budget(text: str, values: dict[str, float]) -> Budget:
    """The Budget of these values; a value out of its unit's range is one message naming the unit,
    the value and the range allowed (never pydantic's own report)."""
    try:
        return Budget(**values)  # pydantic checks and converts each value
    except ValidationError as exc:
        first = exc.errors()[0]
        unit = str(first["loc"][0])
        amount = plain_number(values[unit]) + ("s" if unit == "wall_s" else "")
        raise UserError(f"budget {spelled(unit)}={amount} is not allowed: {spelled(unit)} must be {allowed_range(unit)}",
                        hint=f"e.g. --budget {spelled(unit)}={EXAMPLES[unit]}, "
                        "or leave the unit out for no limit on it") from None


# How each unit is spelled on the command line, and a sensible value for it, for messages.
EXAMPLES = {"trials": "8", "wall_s": "10m", "cpu_hours": "1", "gpu_hours": "2", "tokens": "200k", "usd": "1"}


def spelled(unit: str) -> str:
    """A Budget field as users type it: 'wall_s' -> 'wall'."""
    return "wall" if unit == "wall_s" else unit


def allowed_range(unit: str) -> str:
    """The values a unit allows, in words, read from the Budget field's own bounds."""
    field = Budget.model_fields[unit]
    kind = "a whole number" if field.annotation == int | None else "a number"
    for bound in field.metadata:
        if getattr(bound, "ge", None) is not None:
            return f"{kind} of {plain_number(bound.ge)} or more"
        if getattr(bound, "gt", None) is not None:
            return f"{kind} above {plain_number(bound.gt)}"
    return kind


def budget_number(raw: str, seconds: bool, unit: str = "") -> float:
    """'200k' -> 200000.0; with `seconds`, '10m' -> 600.0. A sign is read, so that the range check
    can say what is allowed for a negative amount."""
    match = re.fullmatch(r"(-?[0-9]*\.?[0-9]+)\s*([kKmMsh]?)", raw)
    if not match:
        named = f" (in {spelled(unit)}={raw})" if unit else ""
        raise UserError(f"budget value {raw!r} is not a number{named}",
                        hint="write a number with an optional suffix: k or M (thousand, million), "
                             "and s, m or h for wall, e.g. --budget trials=8,wall=10m,tokens=200k")
    value, suffix = float(match[1]), match[2]
    if seconds and suffix in _UNITS:
        return value * _UNITS[suffix]
    return value * {"k": 1e3, "K": 1e3, "M": 1e6}.get(suffix, 1)


def format_budget(budget: Budget) -> str:
    """The inverse of `parse_budget`: Budget(trials=6, wall_s=1200) -> 'trials=6,wall=20m'."""
    parts = []
    for unit, value in budget.model_dump(exclude_none=True).items():
        if unit == "wall_s":
            parts.append(f"wall={plain_number(value / 60)}m" if value % 60 == 0 else f"wall={plain_number(value)}s")
        else:
            parts.append(f"{unit}={plain_number(value)}")
    return ",".join(parts)


def plain_number(value: float) -> str:
    """A budget amount as `parse_budget` reads it back: plain decimals, never an exponent ("1e+06")."""
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.12f}".rstrip("0").rstrip(".")
