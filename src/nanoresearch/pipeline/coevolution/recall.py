"""What the planner is reminded of at the start of a stage: the user's skills and memories.

Both come from the hybrid retriever (knowledge/retrieval.py), scoped to the user (and, for
memories, to this project plus the user-wide records) before anything is scored. The set recalled
for a stage is saved in the workspace, so a resumed run shows the planner the same prompt and its
recorded call replays. Skills the plan chooses to use are counted: one use per stage, a success
when the stage succeeds.
"""

from __future__ import annotations

from pydantic import BaseModel, ValidationError

from nanoresearch.errors import EndpointUnavailableError, LLMError, NanoResearchError
from nanoresearch.knowledge.memory import Memory
from nanoresearch.knowledge.skillbank import SkillBank
from nanoresearch.pipeline.context import RunContext
from nanoresearch.store.knowledge_models import MemoryRecord, Skill

SKILLS_PER_STAGE = 3
MEMORIES_PER_STAGE = 4
# Scores are in [0, 1] (weighted mean of the components); below these a hit is noise, not knowledge.
MIN_SKILL_SCORE = 0.35
MIN_MEMORY_SCORE = 0.35
PROCEDURE_CHARS = 400  # of a chosen skill's procedure, carried into the stage's prompts
# Stages computed by code alone: no prompt there that a skill's procedure could reach.
CODE_STAGES = ("analysis", "figures")


class RecalledSkill(BaseModel):
    name: str
    description: str
    procedure: str
    version: int
    score: float
    components: dict[str, float]


class RecalledMemory(BaseModel):
    id: int
    type: str
    text: str
    confidence: float
    score: float


class Recalled(BaseModel):
    skills: list[RecalledSkill] = []
    memories: list[RecalledMemory] = []

    def skill(self, name: str) -> RecalledSkill | None:
        return next((s for s in self.skills if s.name == name), None)


def recall(ctx: RunContext, stage: str, description: str) -> Recalled:
    path = f"plans/{stage}.recall.json"
    if (ctx.workspace / path).is_file():
        return Recalled.model_validate(ctx.read_json(path))
    query = recall_query(ctx, stage, description)
    # A level switched off for the run (`run --no-skills`, `--no-memory`) is not even searched.
    skills = [] if stage in CODE_STAGES or not ctx.options.uses("skills") else skill_bank(ctx).search(
        query, stage=stage, k=SKILLS_PER_STAGE, min_score=MIN_SKILL_SCORE)
    memories = [] if not ctx.options.uses("memory") else memory(ctx).search(
        query, project_id=ctx.run.project_id, stage=stage, k=MEMORIES_PER_STAGE, min_score=MIN_MEMORY_SCORE)
    recalled = Recalled(
        skills=[recalled_skill(h.item, h.score, h.components) for h in skills if isinstance(h.item, Skill)],
        memories=[recalled_memory(h.item, h.score) for h in memories if isinstance(h.item, MemoryRecord)],
    )
    ctx.write_json(path, recalled)
    ctx.log("knowledge_retrieved", stage=stage, skills={s.name: s.score for s in recalled.skills},
            memories={m.id: m.score for m in recalled.memories})
    return recalled


def recall_query(ctx: RunContext, stage: str, description: str) -> str:
    """What the stage is about: the goal, the stage, and once known the task and the hypothesis under test."""
    parts = [ctx.run.goal, f"{stage}: {description}"]
    if ctx.task is not None:
        parts.append(f"{ctx.task.name}: {ctx.task.description}")
    if (ctx.workspace / "ideas.json").is_file():
        ideas = ctx.read_json("ideas.json")
        parts.append(ideas["hypotheses"][ideas["selected"]]["statement"])
    return ". ".join(parts)


def recalled_skill(skill: Skill, score: float, components: dict[str, float]) -> RecalledSkill:
    body = skill.body.strip()
    procedure = body if len(body) <= PROCEDURE_CHARS else body[:PROCEDURE_CHARS] + f"… (the rest: `nanoresearch skills show {skill.name}`)"
    return RecalledSkill(name=skill.name, description=skill.description, procedure=procedure,
                         version=skill.version, score=score, components=components)


def recalled_memory(record: MemoryRecord, score: float) -> RecalledMemory:
    return RecalledMemory(id=record.id, type=record.type, text=record.text, confidence=round(record.confidence, 2),
                          score=score)


def prompt_block(recalled: Recalled) -> str:
    """The planner's view: skills by name and description, memories as typed lines; both quoted as data."""
    skills = "\n".join(f"- {s.name}: <data>{s.description}</data>" for s in recalled.skills)
    memories = "\n".join(f"- {m.type} (confidence {m.confidence:g}): <data>{m.text}</data>" for m in recalled.memories)
    return (f"Skills from the user's bank (list the ones this stage should use):\n{skills or '(none)'}\n\n"
            f"What you remember about this user's research:\n{memories or '(nothing yet)'}")


def count_uses(ctx: RunContext, stage: str, plan_id: int | None, names: list[str], succeeded: bool) -> None:
    """One use per skill per stage plan, marked before the files change: a resume never counts twice."""
    if not names or ctx.done(stage, f"uses-{plan_id}") is not None:
        return
    ctx.mark(stage, f"uses-{plan_id}", {"skills": names, "succeeded": succeeded})
    bank = skill_bank(ctx)
    for name in names:
        try:
            bank.record_use(name, succeeded)
        except NanoResearchError as exc:  # removed or broken since it was recalled: the stage's result stands
            ctx.log("skill_use_not_counted", stage=stage, skill=name, reason=exc.message)
    ctx.log("skills_used", stage=stage, skills=names, succeeded=succeeded)


def skill_bank(ctx: RunContext) -> SkillBank:
    return SkillBank(ctx.settings, ctx.store, user=ctx.settings.user)


def memory(ctx: RunContext) -> Memory:
    return Memory(ctx.store, ctx.user_id)


def ask_judgement(ctx: RunContext, prompt: str, schema: type[BaseModel], fallback: str) -> str:
    """A one-word decision (the schema's only field) from the model, or the safe fallback when it gives none."""
    try:
        reply = schema.model_validate(ctx.llm.complete(prompt, stage="analysis", schema=schema, max_tokens=20).parsed)
    except EndpointUnavailableError:  # an outage is not a verdict: the run pauses instead
        raise
    except (LLMError, ValidationError):
        return fallback
    return str(next(iter(reply.model_dump().values())))
