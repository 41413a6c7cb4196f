"""Memory: what NanoResearch has learned about one user's research, kept per user and project.

Records are typed (preference, constraint, failed_hypothesis, promising_direction, result,
decision, lesson), carry the conditions they hold under and the evidence they rest on, and belong
to a user and optionally one project. Nobody else sees them unless written with
`visibility="shared"`.

Two numbers say how much a record counts when it is retrieved:

- **importance** (0–1, set by the writer) halves every `IMPORTANCE_HALF_LIFE_DAYS[type]` days,
  counted from when the record was written or last supported: `decayed_importance()`.
- **confidence** (0–1) rises with support (each closes `SUPPORT_GAIN` of the gap to 1) and is
  multiplied by `CONTRADICTION_FACTOR` when a newer record contradicts it. Contradicting records
  are linked both ways and each counts the conflict, so neither silently wins.

Only a record's owner may change it (support, contradict, forget); shared records are read-only
to everyone else.
"""

from __future__ import annotations

import builtins
from datetime import datetime

import numpy as np

from nanoresearch.errors import UserError
from nanoresearch.knowledge.embeddings import Embedder
from nanoresearch.knowledge.retrieval import Query, Retriever, memory_document
from nanoresearch.store import Store
from nanoresearch.store.knowledge_models import (
    IMPORTANCE_HALF_LIFE_DAYS,
    Hit,
    MemoryRecord,
    half_life_decay,
    utcnow,
)

SUPPORT_GAIN = 0.2
CONTRADICTION_FACTOR = 0.5


def decayed_importance(record: MemoryRecord, now: datetime | None = None) -> float:
    """importance × 0.5 ** (days since written or last supported / the type's half-life)."""
    age_days = max(0.0, ((now or utcnow()) - record.reinforced).total_seconds() / 86400)
    return record.importance * half_life_decay(age_days, IMPORTANCE_HALF_LIFE_DAYS[record.type])


class Memory:
    """One user's view of the memory: their own records and shared ones."""

    def __init__(self, store: Store, user_id: int, embedder: Embedder | None = None,
                 retriever: Retriever | None = None) -> None:
        self.store = store
        self.user_id = user_id
        self.retriever = retriever or Retriever(store, embedder)

    def remember(self, record: MemoryRecord) -> MemoryRecord:
        """Store a record for this user (user_id 0 means "mine"). The same text again, of the same
        type and scope, supports the existing record instead of making a twin."""
        record = self._owned(record)
        twin = self.store.memory_twin(record)
        if twin is not None:
            return self.support(twin)
        return self.get(self.store.add_memory(record, memory_document(record)))

    def get(self, memory_id: int) -> MemoryRecord:
        found = self.store.visible_memories(self.user_id, ids=[memory_id])
        if not found:  # another user's private record reads exactly like a missing one
            raise UserError(f"no memory record {memory_id}", hint="`nanoresearch memory list` shows your records")
        return found[0]

    def list(self, project_id: int | None = None, types: list[str] | None = None) -> list[MemoryRecord]:
        return self.store.visible_memories(self.user_id, project_id=project_id, types=types)

    def search(self, text: str, *, project_id: int | None = None, types: tuple[str, ...] = (), stage: str | None = None,
               tags: tuple[str, ...] = (), k: int = 5, min_score: float = 0.0,
               vector: np.ndarray | None = None) -> builtins.list[Hit]:  # `list` here is the method above
        """The k records that best match, scope first (see retrieval.py), each with its components."""
        query = Query(text=text, stage=stage, tags=tuple(tags), k=k, min_score=min_score, vector=vector,
                      project_id=project_id, types=tuple(types))
        scored = self.retriever.search("memory", self.user_id, query)
        records = {m.id: m for m in self.store.visible_memories(self.user_id, ids=[s.id for s in scored])}
        return [Hit(item=records[s.id], score=s.score, components=s.components) for s in scored if s.id in records]

    def support(self, memory_id: int) -> MemoryRecord:
        """Another observation agrees: more confidence, and the importance clock starts again."""
        record = self._own(memory_id)
        self.store.support_memory(record.id, record.confidence + (1 - record.confidence) * SUPPORT_GAIN)
        return self.get(record.id)

    def contradict(self, old_id: int, new: MemoryRecord | int) -> tuple[MemoryRecord, MemoryRecord]:
        """A newer record disagrees with an older one: lower the old one's confidence, link both."""
        old = self._own(old_id)
        newer = self._own(new) if isinstance(new, int) else self.remember(new)
        if newer.id == old.id:
            raise UserError(f"memory record {old.id} cannot contradict itself")
        self.store.contradict_memory(old.id, newer.id, old.confidence * CONTRADICTION_FACTOR)
        return self.get(old.id), self.get(newer.id)

    def forget(self, memory_id: int) -> MemoryRecord:
        """Delete a record for good, with its links and its vector."""
        record = self._own(memory_id)
        self.store.delete_memory(record.id)
        return record

    def _own(self, memory_id: int) -> MemoryRecord:
        record = self.get(memory_id)
        if record.user_id != self.user_id:
            raise UserError(f"memory record {memory_id} is shared by another user; only its owner can change it")
        return record

    def _owned(self, record: MemoryRecord) -> MemoryRecord:
        if record.user_id not in (0, self.user_id):
            raise UserError("a memory record can only be written by the user it belongs to")
        if record.project_id is not None and record.project_id not in self.store.project_names(self.user_id):
            raise UserError(f"project {record.project_id} is not one of yours")
        return record.model_copy(update={"user_id": self.user_id})
