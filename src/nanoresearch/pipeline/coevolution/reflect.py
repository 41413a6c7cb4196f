"""Memory written at the end of each stage, from what happened in it.

The model reads the stage's plan, its outcome and the user's feedback on it and writes at most two
typed records (a preference the user stated, a lesson, a decision, a promising direction...). Each
record is checked against the closest record the user already has: when they are about the same
thing, the model judges whether the new one supports or contradicts it, and the memory counts it
(support raises confidence; a contradiction lowers the old record's confidence and links both).

One record is written by code rather than the model: after analysis, the selected hypothesis with
its measured outcome (failed_hypothesis or promising_direction), because that is a fact of the
results, and ideation needs it to avoid proposing the same dead end twice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints, ValidationError

from nanoresearch.errors import EndpointUnavailableError, LLMError, NanoResearchError
from nanoresearch.knowledge.memory import Memory
from nanoresearch.knowledge.retrieval import memory_document
from nanoresearch.pipeline.coevolution.recall import ask_judgement, memory
from nanoresearch.pipeline.context import RunContext
from nanoresearch.store.knowledge_models import MEMORY_TYPES, Conditions, Evidence, MemoryRecord

Short = Annotated[str, StringConstraints(max_length=80)]
IMPORTANCE = {"low": 0.3, "medium": 0.5, "high": 0.8}
SAME_TOPIC = 0.75  # embedding similarity above which a new record is judged against the old one
HYPOTHESIS_TAG = "hypothesis"


class MemoryNote(BaseModel):
    type: Literal[MEMORY_TYPES]  # type: ignore[valid-type]
    text: Annotated[str, StringConstraints(min_length=10, max_length=240)]
    dataset: Short = ""
    method: Short = ""
    failure_mode: Short = ""
    importance: Literal["low", "medium", "high"] = "medium"


class StageMemories(BaseModel):
    records: list[MemoryNote] = Field(default_factory=list, max_length=2)


class Relation(BaseModel):
    relation: Literal["supports", "contradicts", "unrelated"]


def reflect(ctx: RunContext, stage: str) -> list[int]:
    """Write this stage's memories; returns the ids of the records written, supported or contradicted.

    Each record is its own checkpoint, so a resumed run never files the same observation twice."""
    notes = draft_notes(ctx, stage)
    touched = [once(ctx, stage, f"memory-{i}", lambda note=note: file_note(ctx, stage, note)) for i, note in enumerate(notes)]
    if stage == "analysis":
        touched.append(once(ctx, stage, "memory-outcome", lambda: hypothesis_outcome(ctx)))
    written = [t for t in touched if t]
    ctx.log("memories_written", stage=stage, records=written)
    return written


def once(ctx: RunContext, stage: str, step: str, write: Callable[[], int | None]) -> int | None:
    done = ctx.done(stage, step)
    if done is not None:
        return done.get("id")
    try:
        found = write()
    except EndpointUnavailableError:  # not this record's fault: unmarked, so resume writes it
        raise
    except NanoResearchError as exc:  # memory is a by-product: it never fails a stage that worked
        ctx.log("memory_not_written", stage=stage, step=step, reason=exc.message)
        found = None
    ctx.mark(stage, step, {"id": found})
    return found


def draft_notes(ctx: RunContext, stage: str) -> list[MemoryNote]:
    try:
        reply = ctx.llm.complete(reflection_prompt(ctx, stage), stage="analysis", schema=StageMemories, max_tokens=250)
        return StageMemories.model_validate(reply.parsed).records
    except EndpointUnavailableError:  # an outage pauses the run; the memory is written on resume
        raise
    except (LLMError, ValidationError) as exc:  # memory is a by-product: a model that cannot write it must not stop the run
        ctx.log("memories_skipped", stage=stage, reason=getattr(exc, "message", str(exc))[:300])
        return []


def reflection_prompt(ctx: RunContext, stage: str) -> str:
    step = ctx.done(stage, "stage") or {}
    plan = ctx.read_json(f"plans/{stage}.json") if (ctx.workspace / f"plans/{stage}.json").is_file() else {}
    feedback = [f"- {f.action}: <data>{f.text}</data>" for f in ctx.store.feedback(ctx.user_id, ctx.run.id)
                if f.stage == stage and f.text]
    return "\n".join([
        f"Research goal: {ctx.options.goal}",
        f"Stage {stage} just finished.",
        f"Its objectives: {'; '.join(plan.get('objectives', [])) or '(none)'}",
        f"What happened: <data>{step.get('summary', '')}</data>",
        "The user's feedback on it:\n" + ("\n".join(feedback) or "(none)"),
        "",
        "Write at most two memory records worth keeping for this user's future research: a preference or "
        "constraint the user stated, a lesson, a decision and why, a promising direction, a result, or a "
        "hypothesis that failed. Be specific to what happened here; write no records rather than generic advice.",
    ])


def file_note(ctx: RunContext, stage: str, note: MemoryNote) -> int | None:
    record = MemoryRecord(
        user_id=ctx.user_id, project_id=ctx.run.project_id, type=note.type, text=note.text,
        conditions=Conditions(dataset=note.dataset or None, method=note.method or None, failure_mode=note.failure_mode or None),
        evidence=[Evidence(run_id=ctx.run.id)], stages=[stage], importance=IMPORTANCE[note.importance], confidence=0.6,
    )
    return file_record(ctx, record)


def file_record(ctx: RunContext, record: MemoryRecord) -> int:
    """Store a record, or count it as support for or contradiction of the closest one on the same topic."""
    mine = memory(ctx)
    closest = same_topic(mine, record)
    if closest is None:
        return mine.remember(record).id
    if closest.id in filed_in_this_run(ctx):  # one run is one piece of evidence, however often it repeats itself
        return closest.id
    if closest.text == record.text:  # said again, word for word: support, nothing to judge
        return mine.support(closest.id).id
    relation = judge(ctx, closest, record)
    ctx.log("memory_relation", old=closest.id, relation=relation, text=record.text[:120])
    if relation == "supports":
        return mine.support(closest.id).id
    if relation == "contradicts":
        return mine.contradict(closest.id, record)[1].id
    return mine.remember(record).id


def filed_in_this_run(ctx: RunContext) -> set[int]:
    """The records this run already wrote, supported or contradicted (from its memory checkpoints)."""
    return {s.payload["id"] for s in ctx.store.steps(ctx.run.id)
            if s.step.startswith("memory-") and s.status == "done" and s.payload.get("id")}


def same_topic(mine: Memory, record: MemoryRecord) -> MemoryRecord | None:
    # the record's whole document (text and conditions), as the index embeds it: the same record scores 1
    hits = mine.search(memory_document(record), project_id=record.project_id, k=1)
    if hits and hits[0].components.get("embedding", 0.0) >= SAME_TOPIC and hits[0].item.user_id == mine.user_id:
        return hits[0].item  # type: ignore[return-value]
    return None


def judge(ctx: RunContext, old: MemoryRecord, new: MemoryRecord) -> str:
    prompt = (
        f"An earlier memory record ({old.type}): <data>{old.text}</data>\n"
        f"A new observation ({new.type}): <data>{new.text}</data>\n"
        "Does the new observation support the earlier record, contradict it, or is it about something else?"
    )
    return ask_judgement(ctx, prompt, Relation, fallback="unrelated")  # keep both rather than merge on a guess


def hypothesis_outcome(ctx: RunContext) -> int | None:
    """The tested hypothesis and whether the experiment bore it out, written from results.json by code."""
    from nanoresearch.paper.results import read_results
    from nanoresearch.pipeline.stages.planning import Blueprint

    if not (ctx.workspace / "results.json").is_file() or not (ctx.workspace / "blueprint.json").is_file():
        return None
    results = read_results(ctx.workspace / "results.json")
    blueprint = Blueprint.model_validate(ctx.read_json("blueprint.json"))
    failed, why = hypothesis_failed(results)
    record = MemoryRecord(
        user_id=ctx.user_id, project_id=ctx.run.project_id, type="failed_hypothesis" if failed else "promising_direction",
        text=blueprint.hypothesis, tags=[HYPOTHESIS_TAG], stages=["ideation"], importance=0.8, confidence=0.8,
        conditions=Conditions(dataset=blueprint.task, method=blueprint.proposed_method[:200], failure_mode=why or None),
        evidence=[Evidence(run_id=ctx.run.id, trial_id=results.best_trial_id)],
    )
    mine = memory(ctx)
    opposite = [h.item for h in mine.search(record.text, types=(opposite_type(record.type),), k=1)
                if h.components.get("embedding", 0.0) >= 0.9 and h.item.user_id == mine.user_id]
    if opposite:  # the same hypothesis came out the other way before: both stay, linked, the old one less sure
        return mine.contradict(opposite[0].id, record)[1].id
    return mine.remember(record).id


def hypothesis_failed(results) -> tuple[bool, str]:
    """Failed: nothing ran, or the best recipe is still the baseline."""
    if not results.success or results.best_trial_id is None:
        return True, "no trial succeeded"
    best = next((t for t in results.trials if t.id == results.best_trial_id), None)
    if best is None or best.proposer == "baseline":
        return True, "no change beat the baseline"
    return False, ""


def opposite_type(kind: str) -> str:
    return "promising_direction" if kind == "failed_hypothesis" else "failed_hypothesis"
