"""Training triples (x, y, F) from the store, and the per-user replay buffer.

A triple is one planner call (its prompt messages and the exact output token ids) with the
user's feedback on that stage. y is never decoded and re-encoded: the planner's ids plus EOS are
what the student and teacher score. The teacher's prompt is the same messages with the feedback
appended to the last user message in a hindsight block.

The replay buffer keeps up to `policy.buffer_size` triples a user has trained on (oldest out
first) and what became of every feedback row (trained into vN, flagged, skipped), so a round
trains on new feedback plus a few replayed triples and never silently re-trains or drops one.
"""

from __future__ import annotations

import os
import random
import tempfile
from collections.abc import Collection
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from nanoresearch.errors import UserError
from nanoresearch.llm.local import split_adapter
from nanoresearch.llm.local_model import LoadedModel, prompt_ids
from nanoresearch.llm.provider import Message
from nanoresearch.store import Store
from nanoresearch.store.models import StagePlanRecord

HINDSIGHT = "[HINDSIGHT CONTEXT] The user replied to your previous answer for stage {stage}: {feedback}. Use it."
# A reply that says nothing: the teacher shown it measures how much any comment at all moves the
# model, which the relevance check subtracts out (see checks.relevance).
PLACEBO = "noted"


class Triple(BaseModel):
    feedback_id: int
    plan_id: int
    run_id: str
    stage: str
    prompt: list[dict[str, Any]]  # the planner's chat messages
    prompt_ids: list[int] | None = None  # as rendered when the planner ran, to detect a changed template
    output_ids: list[int]
    feedback: str
    model: str  # the planner model that produced output_ids


class Skipped(BaseModel):
    feedback_id: int
    reason: str


def triples_from_store(store: Store, user_id: int, model: str) -> tuple[list[Triple], list[Skipped]]:
    """Every feedback with words on a stage whose plan the planner `model` made, with token ids."""
    plans = {p.id: p for p in store.stage_plans(user_id)}
    triples: list[Triple] = []
    skipped: list[Skipped] = []
    for row in store.feedback(user_id):
        if not row.text.strip():
            continue  # a bare approval carries nothing to learn
        plan = plans.get(row.plan_id) if row.plan_id is not None else None
        reason = _unusable(plan, row.plan_id, model)
        if reason or plan is None:  # no plan always has a reason
            skipped.append(Skipped(feedback_id=row.id, reason=reason))
            continue
        triples.append(Triple(
            feedback_id=row.id, plan_id=plan.id, run_id=row.run_id, stage=row.stage, prompt=plan.prompt,
            prompt_ids=plan.prompt_ids, output_ids=plan.output_ids, feedback=row.text.strip(), model=plan.model,
        ))
    return triples, skipped


def _unusable(plan: StagePlanRecord | None, plan_id: int | None, model: str) -> str:
    if plan_id is None:
        return "no planner call was recorded for this stage"
    if plan is None:
        return "the stage was re-planned since, so the plan this feedback judged is gone"
    if not plan.output_ids:
        return f"the planner ({plan.provider}/{plan.model}) returned no token ids; only a local planner can learn"
    if split_adapter(plan.model)[0] != model:  # "smollm2-135m+lora:v3" was made by an adapter on that base
        return f"the plan was made by {plan.model!r} but the planner is now {model!r}"
    return ""


def hindsight_messages(triple: Triple, feedback: str | None = None) -> list[Message]:
    """The planner prompt with `feedback` (default: the triple's) in a hindsight block at the end."""
    messages = [Message(**m) for m in triple.prompt]
    block = HINDSIGHT.format(stage=triple.stage, feedback=(feedback or triple.feedback).rstrip("."))
    for i in range(len(messages) - 1, -1, -1):
        if messages[i].role == "user":
            messages[i] = Message(role="user", content=f"{messages[i].content}\n\n{block}")
            return messages
    return [*messages, Message(role="user", content=block)]


def end_of_reply(lm: LoadedModel) -> int:
    """The id that ends a reply: the tokenizer's EOS, else the smallest stop id."""
    eos = lm.tokenizer.eos_token_id
    return eos if eos is not None else min(lm.stop_ids)


class TripleError(UserError):
    """A stored triple cannot be scored by the current planner model."""


def to_example(lm: LoadedModel, triple: Triple, feedback: str | None = None) -> Any:
    """The triple as ids: student prompt x, teacher prompt x + hindsight, response y + EOS."""
    from nanoresearch.policy.sdpo import Example

    student = prompt_ids(lm, [Message(**m) for m in triple.prompt])
    if triple.prompt_ids is not None and triple.prompt_ids != student:
        raise TripleError(f"feedback {triple.feedback_id}: the stored prompt renders to other ids now (tokenizer or template changed)")
    vocab = lm.model.config.vocab_size
    if any(not 0 <= i < vocab for i in triple.output_ids):
        raise TripleError(f"feedback {triple.feedback_id}: the output ids do not fit this model's vocabulary")
    teacher = prompt_ids(lm, hindsight_messages(triple, feedback))
    return Example(student_ids=student, teacher_ids=teacher, response_ids=[*triple.output_ids, end_of_reply(lm)])


# the replay buffer


class BufferState(BaseModel):
    format: int = 1
    triples: list[Triple] = []  # trained on and kept, oldest first
    outcomes: dict[int, str] = {}  # feedback id -> "trained in v3", "flagged: ...", "skipped: ..."


class ReplayBuffer:
    def __init__(self, path: Path, capacity: int) -> None:
        self.path = path
        self.capacity = capacity
        self.state = self._read()

    def _read(self) -> BufferState:
        if not self.path.exists():
            return BufferState()
        try:
            return BufferState.model_validate_json(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError, ValidationError) as exc:
            raise UserError(
                f"the replay buffer {self.path} is unreadable: {str(exc).splitlines()[0]}",
                hint="delete the file (its triples are rebuilt from the store on the next round) or run `nanoresearch policy reset --purge`",
            ) from None

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, staging = tempfile.mkstemp(prefix=".buffer-", dir=self.path.parent)
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(self.state.model_dump_json())
        os.replace(staging, self.path)

    @property
    def triples(self) -> list[Triple]:
        return self.state.triples

    def pending(self, triples: list[Triple]) -> list[Triple]:
        """The triples whose feedback has no outcome yet."""
        return [t for t in triples if t.feedback_id not in self.state.outcomes]

    def record(self, feedback_id: int, outcome: str) -> None:
        self.state.outcomes[feedback_id] = outcome

    def add(self, triples: list[Triple]) -> None:
        kept = [t for t in self.state.triples if t.feedback_id not in {n.feedback_id for n in triples}]
        self.state.triples = [*kept, *triples][-self.capacity:]

    def sample(self, count: int, rng: random.Random, exclude: Collection[int] = frozenset()) -> list[Triple]:
        candidates = [t for t in self.state.triples if t.feedback_id not in exclude]
        return rng.sample(candidates, min(count, len(candidates)))
