"""Judged alignment and novelty of a finished run, by a judge model on a fixed rubric.

The judge sees the persona's profile and what the run made (the selected hypothesis, the blueprint's
method and ablations, the outcome) and scores each criterion 1-5 on the rubric below. The prompt and
the answer are written to `judge/round-<n>.json` in the lane's folder, and the call is stored in the
lane's store (charged to no run: judging is the harness's cost, not the run's). `[judge] enabled =
false` in the spec turns it off.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from nanoresearch.config import Settings
from nanoresearch.errors import EndpointUnavailableError, LLMError
from nanoresearch.evaluation.spec import Judge
from nanoresearch.llm.client import LLM
from nanoresearch.profile import Profile, profile_prompt
from nanoresearch.store import Store
from nanoresearch.store.models import Run

RUBRIC = """Score each criterion from 1 to 5.
alignment: does the work follow this researcher's profile?
  1 ignores it; 2 follows one point; 3 follows most points but misses one they care about (e.g. ablations,
  seeds, risk); 4 follows all but minor points; 5 exactly what this researcher asked for.
novelty: is the tested hypothesis new relative to the cited prior work?
  1 a textbook default; 2 a known trick restated; 3 a sensible variant of known work; 4 a non-obvious
  combination; 5 an idea the prior work does not suggest."""


class Verdict(BaseModel):
    alignment: int = Field(ge=1, le=5)
    novelty: int = Field(ge=1, le=5)
    reason: str = Field("", max_length=300)


class Judged(BaseModel):
    """What `judge/round-<n>.json` holds (docs/evaluation.md)."""

    run_id: str
    model: str
    prompt: str
    answer: str
    verdict: Verdict | None = None  # None: the judge gave no valid answer
    problem: str = ""


def judge_run(settings: Settings, store: Store, user_id: int, run: Run, profile: Profile, judge: Judge,
              path: Path) -> Judged:
    if path.is_file():  # judged before the harness stopped: judged once
        return Judged.model_validate_json(path.read_text(encoding="utf-8"))
    prompt = judge_prompt(run, profile)
    llm = LLM(settings, store, user_id)  # no run: not charged to the run it judges
    try:
        reply = llm.complete(prompt, stage=judge.stage, endpoint=judge.endpoint, model=judge.model, schema=Verdict,
                             max_tokens=160, temperature=0.0)
        judged = Judged(run_id=run.id, model=reply.model, prompt=prompt, answer=reply.text,
                        verdict=Verdict.model_validate(reply.parsed))
    except EndpointUnavailableError:
        raise
    except (LLMError, ValidationError) as exc:
        judged = Judged(run_id=run.id, model=judge.model or settings.stage(judge.stage).model, prompt=prompt, answer="",
                        problem=getattr(exc, "message", str(exc))[:300])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(judged.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return judged


def judge_prompt(run: Run, profile: Profile) -> str:
    folder = Path(run.workspace)
    ideas, blueprint, results = (read_json(folder / name) for name in ("ideas.json", "blueprint.json", "results.json"))
    hypothesis = ideas["hypotheses"][ideas["selected"]] if ideas else {}
    closest = (hypothesis.get("closest") or {}).get("title", "") if isinstance(hypothesis, dict) else ""
    conditions = [c.get("name", "") for c in (results or {}).get("conditions", [])]
    seeds = max((len(c.get("seeds", [])) for c in (results or {}).get("conditions", [])), default=0)
    return "\n".join([
        "You judge a research run for the researcher described here.",
        profile_prompt(profile),
        "",
        f"Goal: <data>{run.goal}</data>",
        f"Hypothesis tested: <data>{hypothesis.get('statement', '(none)')}</data>",
        f"Closest prior work found: <data>{closest or '(none)'}</data>",
        f"Method: <data>{(blueprint or {}).get('proposed_method', '(none)')}</data>",
        f"Conditions run: <data>{', '.join(conditions) or '(none)'}</data>; seeds per condition: {seeds}",
        f"Outcome: {'a change beat the baseline' if (results or {}).get('success') else 'no change beat the baseline'}",
        "",
        RUBRIC,
    ])


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
