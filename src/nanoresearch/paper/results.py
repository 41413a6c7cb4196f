"""results.json: what the experiment measured, computed by code from trial result files.

Every number in the paper is read from this file (through paper/), never typed by the LLM.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from nanoresearch.errors import UserError


class TrialPoint(BaseModel):
    """One trial of the closed loop, in the order it ran: the learning curve."""

    id: int
    parent_id: int | None = None
    proposer: str
    hypothesis: str
    score: float | None = None  # primary metric; None when the trial failed
    kept: bool = False
    failure: str | None = None
    elapsed_s: float | None = None


class Condition(BaseModel):
    """One cell group of the run matrix: a version of the recipe run over several seeds."""

    name: str  # "baseline", "proposed", "ablation: without <component>", ...
    kind: Literal["baseline", "proposed", "ablation"]
    description: str = ""
    trial_ids: list[int] = Field(default_factory=list)
    seeds: list[int] = Field(default_factory=list)
    scores: list[float] = Field(default_factory=list)  # primary metric, one per successful seed
    metrics: dict[str, list[float]] = Field(default_factory=dict)  # every metric, one value per seed
    failures: list[str] = Field(default_factory=list)  # failure labels of seeds that did not finish
    n: int = 0
    mean: float | None = None
    std: float | None = None  # sample standard deviation (ddof=1); 0.0 when n == 1
    ci95: tuple[float, float] | None = None  # t-interval of the mean; None when n < 2


class Comparison(BaseModel):
    """`a` against `b` on the primary metric (usually proposed vs baseline, or vs an ablation)."""

    a: str
    b: str
    difference: float  # mean(a) - mean(b)
    test: str  # "Welch t-test", or why none was possible
    statistic: float | None = None
    p_value: float | None = None
    significant: bool | None = None  # p < 0.05; None when untestable (n < 2 or zero variance)


class Results(BaseModel):
    run_id: str
    task: str
    metric: str
    direction: Literal["maximize", "minimize"]
    # A kept change beat the baseline (and the run matrix, where it compared them, agrees): the only
    # outcome a paper may present as an improvement. Anything else gets the negative-result report.
    success: bool
    evaluated: bool = False  # at least one loop trial passed the evaluator
    best_trial_id: int | None = None
    trials: list[TrialPoint] = Field(default_factory=list)
    conditions: list[Condition] = Field(default_factory=list)
    comparisons: list[Comparison] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)  # honest caveats: deterministic recipe, failed seeds, ...

    def condition(self, name: str) -> Condition | None:
        return next((c for c in self.conditions if c.name == name), None)


def write_results(results: Results, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(results.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return path


def read_results(path: Path) -> Results:
    path = Path(path)
    if not path.is_file():
        raise UserError(
            f"results file not found: {path}", hint="run the experiment stage first; it writes results.json"
        )
    try:
        return Results.model_validate_json(path.read_text(encoding="utf-8"))
    except (ValidationError, UnicodeDecodeError) as exc:
        raise UserError(
            f"results file is malformed: {path}: {first_problem(exc)}",
            hint="results.json is written by code; rerun the analysis instead of editing it by hand",
        ) from exc


def first_problem(exc: ValidationError | UnicodeDecodeError) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8 text"
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}" if where else error["msg"]
