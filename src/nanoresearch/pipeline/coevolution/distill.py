"""Skills distilled at the end of a run from the steps that worked.

The model reads the kept trials (hypothesis and diff), the stage plans and summaries and the
user's feedback, and proposes at most three candidate skills. Each candidate is checked against the
user's bank before anything is written:

- nearly the same as an existing skill (embedding similarity ≥ DUPLICATE, or the procedure text
  ≥ DUPLICATE_TEXT alike): dropped as a duplicate;
- related (similarity ≥ RELATED): the model judges new / merge / duplicate; a merge adds the
  candidate's procedure to the existing skill, bumps its version and merges its provenance;
- otherwise: a new private skill.

Nothing is added without provenance: only a run with kept trials that beat the baseline distills
skills, and every skill written names the run and those trials. `skills.json` in the workspace
lists each candidate and what became of it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from difflib import SequenceMatcher
from functools import partial
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, StringConstraints, ValidationError

from nanoresearch.errors import EndpointUnavailableError, LLMError
from nanoresearch.knowledge.skillbank import SkillBank
from nanoresearch.pipeline.coevolution.recall import ask_judgement, skill_bank
from nanoresearch.pipeline.context import STAGE_NAMES, RunContext
from nanoresearch.store.knowledge_models import Provenance, Skill
from nanoresearch.store.models import Trial

DUPLICATE = 0.92
DUPLICATE_TEXT = 0.9
RELATED = 0.6
DIFF_CHARS = 1200


def skill_slug(name: str) -> str:
    """`IncreaseTrainingIterations` or `tune_solver iterations` -> `increase-training-iterations`.

    The schema asks for a hyphenated name in words, not by a pattern: a 1.5B model named its
    skill in CamelCase on every try, the pattern refused all three (380 s of a recorded run),
    and the spelling of a name is not worth a model call.
    """
    words = re.sub(r"([a-z0-9])([A-Z])", r"\1-\2", name.strip())
    slug = re.sub(r"[^a-z0-9]+", "-", words.lower()).strip("-")[:48].rstrip("-")
    if not slug:
        raise ValueError("a skill name needs at least one letter or digit")
    return slug


class SkillDraft(BaseModel):
    name: Annotated[
        str,
        StringConstraints(min_length=1, max_length=60),
        Field(description="lowercase words joined by hyphens"),
        AfterValidator(skill_slug),
    ]
    description: Annotated[str, StringConstraints(min_length=10, max_length=200)]
    stages: list[Literal[STAGE_NAMES]] = Field(min_length=1, max_length=2)  # type: ignore[valid-type]
    tags: list[Annotated[str, StringConstraints(min_length=2, max_length=30)]] = Field(default_factory=list, max_length=4)
    procedure: Annotated[str, StringConstraints(min_length=20, max_length=800)]


class SkillCandidates(BaseModel):
    skills: list[SkillDraft] = Field(default_factory=list, max_length=3)


class Judgement(BaseModel):
    decision: Literal["new", "merge", "duplicate"]


class Outcome(BaseModel):
    candidate: str
    decision: Literal["new", "merge", "duplicate", "skipped"]
    skill: str | None = None
    version: int | None = None
    similar_to: str | None = None
    similarity: float | None = None


def distill_skills(ctx: RunContext) -> list[Outcome]:
    if not ctx.options.uses("skills"):  # `run --no-skills`: the bank is neither read nor written
        ctx.write_json("skills.json", {"note": "skills were switched off for this run", "outcomes": []})
        return []
    trials = improving_trials(ctx)
    if not trials:
        ctx.write_json("skills.json", {"note": "no kept trial beat the baseline: nothing to learn a skill from", "outcomes": []})
        return []
    provenance = Provenance(run_id=ctx.run.id, trial_ids=[t.id for t in trials])
    bank = skill_bank(ctx)
    outcomes = [filed_once(ctx, i, partial(file_candidate, ctx, bank, draft, provenance))
                for i, draft in enumerate(candidates(ctx, trials))]
    ctx.write_json("skills.json", {"provenance": provenance.model_dump(), "outcomes": [o.model_dump() for o in outcomes]})
    ctx.log("skills_distilled", outcomes=[o.model_dump() for o in outcomes])
    return outcomes


def filed_once(ctx: RunContext, index: int, file: Callable[[], Outcome]) -> Outcome:
    """Each candidate is its own checkpoint: a resumed run never merges the same variant twice."""
    done = ctx.done("run", f"skill-{index}")
    if done is not None:
        return Outcome.model_validate(done)
    outcome = file()
    ctx.mark("run", f"skill-{index}", outcome.model_dump())
    return outcome


def improving_trials(ctx: RunContext) -> list[Trial]:
    return [t for t in ctx.store.trials(ctx.run.id) if t.kept and t.proposer != "baseline" and not t.failure]


def candidates(ctx: RunContext, trials: list[Trial]) -> list[SkillDraft]:
    try:
        reply = ctx.llm.complete(distill_prompt(ctx, trials), stage="analysis", schema=SkillCandidates, max_tokens=600)
        return SkillCandidates.model_validate(reply.parsed).skills
    except EndpointUnavailableError:  # an outage pauses the run; distillation runs on resume
        raise
    except (LLMError, ValidationError) as exc:  # a model that cannot distil must not fail a finished run
        ctx.log("skills_skipped", reason=getattr(exc, "message", str(exc))[:300])
        return []


def distill_prompt(ctx: RunContext, trials: list[Trial]) -> str:
    steps = [s for s in ctx.store.steps(ctx.run.id) if s.step == "stage" and s.status == "done"]
    summaries = "\n".join(f"- {s.stage}: {s.payload.get('summary', '')}" for s in steps)
    kept = "\n\n".join(f"Trial {t.id} ({t.proposer}, score {t.score}): {t.hypothesis}\n{t.diff[:DIFF_CHARS]}" for t in trials)
    feedback = "\n".join(f"- after {f.stage} ({f.action}): {f.text}" for f in ctx.store.feedback(ctx.user_id, ctx.run.id) if f.text)
    return "\n".join([
        f"Research goal: {ctx.run.goal}",
        f"What each stage did:\n<data>{summaries}</data>",
        f"Changes that improved the result and were kept:\n<data>{kept}</data>",
        f"The user's feedback:\n<data>{feedback or '(none)'}</data>",
        "",
        "Distil at most three reusable skills from what worked: each a short name (lowercase words joined by "
        "hyphens), a one-sentence description of when to use it, the stages it helps, a few tags, and the "
        "procedure as concrete numbered steps. Write no skill rather than a generic one.",
    ])


def file_candidate(ctx: RunContext, bank: SkillBank, draft: SkillDraft, provenance: Provenance) -> Outcome:
    closest, similarity = nearest(bank, draft)
    if closest is not None and (similarity >= DUPLICATE or alike(closest.body, draft.procedure)):
        return Outcome(candidate=draft.name, decision="duplicate", similar_to=closest.name, similarity=similarity)
    decision = judge(ctx, closest, draft) if closest is not None and similarity >= RELATED else "new"
    if closest is not None and decision == "duplicate":  # judge() is asked only when there is a closest skill
        return Outcome(candidate=draft.name, decision="duplicate", similar_to=closest.name, similarity=similarity)
    if closest is not None and decision == "merge" and closest.visibility == "private":
        merged = merge(bank, closest, draft, provenance)
        return Outcome(candidate=draft.name, decision="merge", skill=merged.name, version=merged.version,
                       similar_to=closest.name, similarity=similarity)
    # A shared skill is never merged into: this user's run (its provenance, its procedure) stays private.
    added = bank.add_skill(new_skill(bank, draft, provenance))
    return Outcome(candidate=draft.name, decision="new", skill=added.name, version=added.version,
                   similar_to=closest.name if closest else None, similarity=similarity if closest else None)


def nearest(bank: SkillBank, draft: SkillDraft) -> tuple[Skill | None, float]:
    """The closest skill the user can see, and its embedding similarity to the candidate."""
    hits = bank.search(skill_text(draft), k=1)
    if not hits:
        return None, 0.0
    return hits[0].item, hits[0].components.get("embedding", 0.0)  # type: ignore[return-value]


def skill_text(draft: SkillDraft) -> str:
    return f"{draft.name.replace('-', ' ')}. {draft.description}\n{draft.procedure}"


def alike(a: str, b: str) -> bool:
    return SequenceMatcher(None, a.strip(), b.strip()).ratio() >= DUPLICATE_TEXT


def judge(ctx: RunContext, existing: Skill, draft: SkillDraft) -> str:
    prompt = (
        f"An existing skill, {existing.name}: <data>{existing.description}\n{existing.body[:600]}</data>\n\n"
        f"A candidate skill, {draft.name}: <data>{draft.description}\n{draft.procedure}</data>\n\n"
        "Is the candidate a new skill, a variant that should be merged into the existing one, or a duplicate of it?"
    )
    return ask_judgement(ctx, prompt, Judgement, fallback="new")  # a separate skill loses nothing; a wrong merge would


def merge(bank: SkillBank, existing: Skill, draft: SkillDraft, provenance: Provenance) -> Skill:
    body = f"{existing.body.rstrip()}\n\n## Variant learned in {provenance.run_id}\n\n{draft.procedure.strip()}\n"
    return bank.update_skill(
        existing.name, body=body, tags=list(dict.fromkeys([*existing.tags, *draft.tags])),
        stages=list(dict.fromkeys([*existing.stages, *draft.stages])), provenance=[provenance], shared=False,
    )


def new_skill(bank: SkillBank, draft: SkillDraft, provenance: Provenance) -> Skill:
    return Skill(name=free_name(bank, draft.name), description=draft.description, tags=draft.tags, stages=list(draft.stages),
                 provenance=[provenance], body=draft.procedure.strip() + "\n", visibility="private")


def free_name(bank: SkillBank, name: str) -> str:
    taken = {s.name for s in bank.list_skills()}  # shared names too: one name, one skill
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name}-{n}", n + 1
    return candidate

