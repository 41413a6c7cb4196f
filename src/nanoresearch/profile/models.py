"""What a profile holds: soft preferences for the planner and hard constraints for the budget."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from nanoresearch.compute.budget import parse_budget
from nanoresearch.errors import UserError

PresetName = Literal["evidence-first", "ablation-focused", "dataset-driven", "exploratory", "resource-constrained"]
ResearchStyle = Literal["evidence-first", "ablation-focused", "dataset-driven", "exploratory", "frugal"]
Forbidden = Literal["gpu", "slurm", "ray"]

# Each cap and the budget unit it limits (see compute/budget.py), with the factor from the cap's
# unit to the budget's: caps are written in units people think in (minutes, not seconds).
CAP_UNITS: dict[str, tuple[str, float]] = {
    "max_trials": ("trials", 1.0),
    "max_wall_minutes": ("wall_s", 60.0),
    "max_cpu_hours": ("cpu_hours", 1.0),
    "max_gpu_hours": ("gpu_hours", 1.0),
    "max_tokens": ("tokens", 1.0),
    "max_usd": ("usd", 1.0),
}


class HardConstraints(BaseModel):
    """Limits on every run; None means no cap. Enforced by the budget, not left to the planner."""

    model_config = ConfigDict(extra="forbid")

    max_trials: int | None = Field(None, ge=1)
    max_wall_minutes: float | None = Field(None, gt=0)
    max_cpu_hours: float | None = Field(None, gt=0)
    max_gpu_hours: float | None = Field(None, gt=0)
    max_tokens: int | None = Field(None, gt=0)
    max_usd: float | None = Field(None, gt=0)
    # Things a run may not use at all: "gpu" refuses tasks that ask for GPUs, "slurm" and "ray"
    # refuse those executors (e.g. a lab rule against the shared cluster).
    forbid: list[Forbidden] = []

    def caps(self) -> dict[str, float]:
        """The caps that are set, in budget units: {"gpu_hours": 2.0, "wall_s": 1800.0}."""
        values = self.model_dump()
        return {unit: values[name] * factor for name, (unit, factor) in CAP_UNITS.items() if values[name] is not None}


class Profile(BaseModel):
    """How one person likes research done. Every text field is short: it goes into a small prompt."""

    model_config = ConfigDict(extra="forbid")

    preset: PresetName = "evidence-first"  # the preset it started from; a partial file is filled from it
    research_style: ResearchStyle = "evidence-first"
    risk_appetite: Literal["low", "medium", "high"] = "low"
    rigour: Literal["quick", "standard", "strict"] = "strict"
    ablation_strictness: Literal["none", "key-components", "every-component"] = "key-components"
    # The budget a run gets when none is given; the hard constraints still cap it.
    compute_budget: str = "trials=10,wall=20m"
    venue: str = Field("NeurIPS", min_length=1, max_length=60)
    writing_style: str = Field("", max_length=100)
    notes: str = Field("", max_length=300)
    hard_constraints: HardConstraints = HardConstraints()

    @field_validator("compute_budget")
    @classmethod
    def _budget_parses(cls, value: str) -> str:
        try:
            parse_budget(value)
        except UserError as exc:
            raise ValueError(exc.message) from None
        return value
