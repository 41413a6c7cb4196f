"""Memory written from what happened in a run.

Once, at the end of the run, the model reads what each stage did and the user's feedback on it and
writes at most three typed records (a lesson, a decision, a promising direction, a result...), each
about a stage. One call per run, not one per stage: in the recorded demo the per-stage calls took
about a fifth of the run's model time, most of it after stages that ran only code. Each record is checked
against the closest record the user already has: when they are about the same thing, the model
judges whether the new one supports or contradicts it, and the memory counts it (support raises
confidence; a contradiction lowers the old record's confidence and links both).

Two kinds of record are written by code rather than the model. What the user wants (preference,
constraint) comes only from the user's own words: each comment on a stage is kept verbatim, and a
model-drafted preference is dropped. After analysis, the selected hypothesis is recorded with its
measured outcome (failed_hypothesis or promising_direction) when a change testing it was scored,
because ideation needs it to avoid proposing the same dead end twice; an idea no trial tested is
logged as untested and is no dead end.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints, ValidationError

from nanoresearch.errors import BudgetExhausted, EndpointUnavailableError, LLMError, NanoResearchError
from nanoresearch.knowledge.memory import Memory
from nanoresearch.knowledge.retrieval import memory_document
from nanoresearch.pipeline.coevolution.recall import ask_judgement, memory
from nanoresearch.pipeline.context import STAGE_NAMES, RunContext
from nanoresearch.store.knowledge_models import MEMORY_TYPES, Conditions, Evidence, MemoryRecord
from nanoresearch.store.models import Feedback

if TYPE_CHECKING:
    from nanoresearch.paper.results import Results

Short = Annotated[str, StringConstraints(max_length=80)]
IMPORTANCE = {"low": 0.3, "medium": 0.5, "high": 0.8}
SAME_TOPIC = 0.75  # embedding similarity above which a new record is judged against the old one
HYPOTHESIS_TAG = "hypothesis"
USER_TYPES = ("preference", "constraint")  # written from the user's feedback, verbatim, never drafted by the model


class MemoryNote(BaseModel):
    type: Literal[MEMORY_TYPES]  # type: ignore[valid-type]
    stage: Literal[("",) + STAGE_NAMES] = ""  # type: ignore[valid-type]  # the stage it is about
    text: Annotated[str, StringConstraints(min_length=10, max_length=240)]
    dataset: Short = ""
    method: Short = ""
    failure_mode: Short = ""
    importance: Literal["low", "medium", "high"] = "medium"


class RunMemories(BaseModel):
    records: list[MemoryNote] = Field(default_factory=list, max_length=3)


class Relation(BaseModel):
    relation: Literal["supports", "contradicts", "unrelated"]


def reflect(ctx: RunContext, stage: str) -> list[int]:
    """Write the memories code takes from this stage (the user's comments, the tested hypothesis); returns
    the ids of the records written, supported or contradicted. The model's notes come once per run
    (`reflect_run`): a call after every stage cost more model time than the stages it followed.

    Each record is its own checkpoint, so a resumed run never files the same observation twice.
    A run with memory switched off (`run --no-memory`) writes none, not even the user's comments."""
    if not ctx.options.uses("memory"):
        return []
    touched = [once(ctx, stage, f"memory-feedback-{f.id}", partial(file_feedback, ctx, stage, f.text))
               for f in stage_feedback(ctx, stage)]
    if stage == "analysis":
        touched.append(once(ctx, stage, "memory-outcome", lambda: hypothesis_outcome(ctx)))
    written = [t for t in touched if t]
    ctx.log("memories_written", stage=stage, records=written)
    return written


def reflect_run(ctx: RunContext) -> list[int]:
    """The model's notes on the whole run, from one call at its end; returns the ids of the records touched."""
    if not ctx.options.uses("memory"):
        return []
    notes = draft_notes(ctx)
    touched = [once(ctx, "run", f"memory-{i}", partial(file_note, ctx, note)) for i, note in enumerate(notes)]
    written = [t for t in touched if t]
    ctx.log("memories_written", stage="run", records=written)
    return written


def once(ctx: RunContext, stage: str, step: str, write: Callable[[], int | None]) -> int | None:
    done = ctx.done(stage, step)
    if done is not None:
        return done.get("id")
    try:
        found = write()
    except (EndpointUnavailableError, BudgetExhausted):  # not this record's fault: unmarked, so resume writes it
        raise
    except NanoResearchError as exc:  # memory is a by-product: it never fails a stage that worked
        ctx.log("memory_not_written", stage=stage, step=step, reason=exc.message)
        found = None
    ctx.mark(stage, step, {"id": found})
    return found


def draft_notes(ctx: RunContext) -> list[MemoryNote]:
    try:
        reply = ctx.llm.complete(reflection_prompt(ctx), stage="analysis", schema=RunMemories, max_tokens=300)
        return RunMemories.model_validate(reply.parsed).records
    except EndpointUnavailableError:  # an outage pauses the run; the memory is written on resume
        raise
    except (LLMError, ValidationError) as exc:  # memory is a by-product: a model that cannot write it must not stop the run
        ctx.log("memories_skipped", stage="run", reason=getattr(exc, "message", str(exc))[:300])
        return []


def stage_feedback(ctx: RunContext, stage: str) -> list[Feedback]:
    return [f for f in ctx.store.feedback(ctx.user_id, ctx.run.id) if f.stage == stage and f.text.strip()]


def file_feedback(ctx: RunContext, stage: str, text: str) -> int | None:
    """The user's comment on a stage, kept in their own words as a preference for later runs."""
    record = MemoryRecord(
        user_id=ctx.user_id, project_id=ctx.run.project_id, type="preference", text=text.strip()[:240],
        evidence=[Evidence(run_id=ctx.run.id)], stages=[stage], tags=["feedback"], importance=0.8, confidence=0.9,
    )
    return file_record(ctx, record)


def reflection_prompt(ctx: RunContext) -> str:
    """What each stage did and what the user said about it. The planner's objectives are left out: they
    are model-written, and a small model's reflection took them for the user's wishes."""
    lines = []
    for stage in STAGE_NAMES:
        step = ctx.done(stage, "stage")
        if step is not None:
            lines.append(f"- {stage}: <data>{step.get('summary', '')}</data>")
            lines += [f"  the user's {f.action}: <data>{f.text}</data>" for f in stage_feedback(ctx, stage)]
    return "\n".join([
        f"Research goal: {ctx.run.goal}",
        "The research run just finished. What each stage did, and the user's feedback on it:",
        *(lines or ["(no stage finished)"]),
        "",
        "Write at most three memory records worth keeping for this user's future research: a lesson, a "
        "decision and why, a promising direction, a result, or a hypothesis that failed, each with the stage "
        "it is about. (The user's preferences are taken from their own feedback, not written here.) Be "
        "specific to what happened here; write no records rather than generic advice.",
    ])


def file_note(ctx: RunContext, note: MemoryNote) -> int | None:
    if note.type in USER_TYPES:  # what the user wants is the user's to say, never the model's to infer
        ctx.log("memory_dropped", stage=note.stage or "run", type=note.type, text=note.text[:120],
                reason="preferences and constraints come only from the user's own words")
        return None
    record = MemoryRecord(
        user_id=ctx.user_id, project_id=ctx.run.project_id, type=note.type, text=note.text,
        conditions=Conditions(dataset=note.dataset or None, method=note.method or None, failure_mode=note.failure_mode or None),
        evidence=[Evidence(run_id=ctx.run.id)], stages=[note.stage] if note.stage else [],
        importance=IMPORTANCE[note.importance], confidence=0.6,
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
    if not hits or not isinstance(hits[0].item, MemoryRecord):  # memory search finds memory records only
        return None
    if hits[0].components.get("embedding", 0.0) >= SAME_TOPIC and hits[0].item.user_id == mine.user_id:
        return hits[0].item
    return None


def judge(ctx: RunContext, old: MemoryRecord, new: MemoryRecord) -> str:
    prompt = (
        f"An earlier memory record ({old.type}): <data>{old.text}</data>\n"
        f"A new observation ({new.type}): <data>{new.text}</data>\n"
        "Does the new observation support the earlier record, contradict it, or is it about something else?"
    )
    return ask_judgement(ctx, prompt, Relation, fallback="unrelated")  # keep both rather than merge on a guess


class TestedHypothesis(BaseModel):
    """The part of blueprint.json (written by the planning stage) that a hypothesis memory records."""

    hypothesis: str
    task: str
    proposed_method: str


def hypothesis_outcome(ctx: RunContext) -> int | None:
    """The tested hypothesis and whether the experiment bore it out, written from results.json by code."""
    from nanoresearch.paper.results import read_results

    if not (ctx.workspace / "results.json").is_file() or not (ctx.workspace / "blueprint.json").is_file():
        return None
    results = read_results(ctx.workspace / "results.json")
    blueprint = TestedHypothesis.model_validate(ctx.read_json("blueprint.json"))
    verdict, why = hypothesis_verdict(results)
    if verdict == "untested":  # an idea no trial tested is not a dead end: later runs may try it
        ctx.log("hypothesis_untested", hypothesis=blueprint.hypothesis[:200], reason=why)
        return None
    failed = verdict == "failed"
    record = MemoryRecord(
        user_id=ctx.user_id, project_id=ctx.run.project_id, type="failed_hypothesis" if failed else "promising_direction",
        text=blueprint.hypothesis, tags=[HYPOTHESIS_TAG], stages=["ideation"], importance=0.8, confidence=0.8,
        conditions=Conditions(dataset=blueprint.task, method=blueprint.proposed_method[:200], failure_mode=why or None),
        evidence=[Evidence(run_id=ctx.run.id, trial_id=results.best_trial_id)],
    )
    mine = memory(ctx)
    opposite = [h.item for h in mine.search(record.text, types=(opposite_type(record.type),), k=1)
                if isinstance(h.item, MemoryRecord) and h.components.get("embedding", 0.0) >= 0.9
                and h.item.user_id == mine.user_id]
    if opposite:  # the same hypothesis came out the other way before: both stay, linked, the old one less sure
        return mine.contradict(opposite[0].id, record)[1].id
    return mine.remember(record).id


def hypothesis_verdict(results: Results) -> tuple[Literal["borne_out", "failed", "untested"], str]:
    """Borne out: a kept change beat the baseline (results.success). Failed: changes ran, were
    scored and lost to the baseline. Untested: no change was ever scored (crashes, illegal edits,
    no usable proposal, or the budget stopped the loop first)."""
    if results.success:
        return "borne_out", ""
    scored = [t for t in results.trials if t.proposer != "baseline" and t.score is not None and t.failure is None]
    if not scored:
        return "untested", "no change to the recipe was ever scored"
    return "failed", "no change beat the baseline"


def opposite_type(kind: str) -> str:
    return "promising_direction" if kind == "failed_hypothesis" else "failed_hypothesis"
