"""What a run's stages wrote in its workspace, read through the pipeline's own models.

A file that is missing (the stage has not run) or does not validate (a run from an older version, a
half-written file) reads as None: the page shows what there is and never fails on one bad file.
"""

from __future__ import annotations

import json
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from nanoresearch.paper.results import Results
from nanoresearch.pipeline.coevolution.planner import StagePlan
from nanoresearch.pipeline.coevolution.recall import Recalled
from nanoresearch.pipeline.orchestrator import STAGE_NAMES
from nanoresearch.pipeline.stages.ideation import Ideas
from nanoresearch.pipeline.stages.planning import Blueprint
from nanoresearch.pipeline.stages.review import ReviewForm
from nanoresearch.store import Store
from nanoresearch.store.models import Feedback, Run
from nanoresearch.web.security import artifact_path

Model = TypeVar("Model", bound=BaseModel)


class PlanFile(StagePlan):
    """plans/<stage>.json: the plan, its planner call and what was recalled for it."""

    plan_id: int
    recalled: Recalled = Recalled()


class StagePanel(BaseModel):
    stage: str
    status: str  # done | running | failed | pending
    summary: str = ""
    plan: PlanFile | None = None
    feedback: list[Feedback] = []

    @property
    def finished(self) -> bool:
        return self.status == "done"


class RunArtifacts(BaseModel):
    ideas: Ideas | None = None
    blueprint: Blueprint | None = None
    results: Results | None = None
    review: ReviewForm | None = None


def read_text(run: Run, relative: str) -> str | None:
    """A workspace file's text; None when missing or when it would lead out of the workspace (a symlink
    planted by a run must not make the page show a file of the user's home)."""
    target = artifact_path(run.workspace, relative)
    try:
        return None if target is None else target.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def read_model(run: Run, relative: str, model: type[Model]) -> Model | None:
    text = read_text(run, relative)
    try:
        return None if text is None else model.model_validate_json(text)
    except ValidationError:
        return None


def read_json(run: Run, relative: str) -> object | None:
    text = read_text(run, relative)
    try:
        return None if text is None else json.loads(text)
    except ValueError:
        return None


def run_artifacts(run: Run) -> RunArtifacts:
    return RunArtifacts(ideas=read_model(run, "ideas.json", Ideas), blueprint=read_model(run, "blueprint.json", Blueprint),
                        results=read_model(run, "results.json", Results),
                        review=read_model(run, "reviews/review.json", ReviewForm))


def stage_panels(store: Store, user_id: int, run: Run) -> list[StagePanel]:
    """Every pipeline stage in order, with its plan, what was recalled for it, and the user's feedback on it.

    A trials session has no stages: it gets an empty list."""
    steps = {s.stage: s for s in store.steps(run.id) if s.step == "stage"}
    if not steps:
        return []
    feedback = store.feedback(user_id, run.id)
    return [StagePanel(stage=stage, status=steps[stage].status if stage in steps else "pending",
                       summary=str(steps[stage].payload.get("summary", "")) if stage in steps else "",
                       plan=read_model(run, f"plans/{stage}.json", PlanFile),
                       feedback=[f for f in feedback if f.stage == stage])
            for stage in STAGE_NAMES]
