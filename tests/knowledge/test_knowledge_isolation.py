"""Isolation, as a property over random data: a user's queries see exactly their own items and the
shared ones, never another user's private skills or records, and no score depends on them."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nanoresearch.config import load_settings
from nanoresearch.errors import UserError
from nanoresearch.knowledge.embeddings import HashedBagOfWords
from nanoresearch.knowledge.memory import Memory
from nanoresearch.knowledge.skillbank import SkillBank
from nanoresearch.store import Store
from nanoresearch.store.knowledge_models import MEMORY_TYPES, MemoryRecord, Skill

USERS = ("ann", "ben", "cat")
WORDS = ("dropout", "warmup", "seeds", "ablation", "leakage", "batch", "schedule", "figure", "nan", "gpu")

items = st.lists(
    st.fixed_dictionaries({
        "owner": st.sampled_from(USERS),
        "kind": st.sampled_from(("skill", "memory")),
        "shared": st.booleans(),
        "text": st.lists(st.sampled_from(WORDS), min_size=1, max_size=5).map(" ".join),
        "type": st.sampled_from(MEMORY_TYPES),
    }),
    max_size=14,
)
queries = st.lists(st.tuples(st.sampled_from(USERS), st.lists(st.sampled_from(WORDS), min_size=1, max_size=3)),
                   min_size=1, max_size=4)


def fill(home: Path, data: list[dict], keep=lambda item: True) -> tuple[Store, dict[str, SkillBank], dict[str, Memory]]:
    """Write the items that `keep` accepts, each through its owner's bank or memory."""
    store = Store(home / "db.sqlite")
    embedder = HashedBagOfWords()
    banks = {u: SkillBank(load_settings({"home": str(home), "user": u}), store, embedder=embedder) for u in USERS}
    memories = {u: Memory(store, banks[u].user_id, embedder=embedder) for u in USERS}
    for i, item in enumerate(data):
        if not keep(item):
            continue
        visibility = "shared" if item["shared"] else "private"
        text = f"{item['text']} item{i}"
        if item["kind"] == "skill":
            banks[item["owner"]].add_skill(Skill(name=f"skill-{i}", description=text, visibility=visibility))
        else:
            memories[item["owner"]].remember(MemoryRecord(type=item["type"], text=text, visibility=visibility))
    return store, banks, memories


def visible(item: dict, user: str) -> bool:
    return item["owner"] == user or item["shared"]


def scores(banks: dict[str, SkillBank], memories: dict[str, Memory], user: str, words: list[str]) -> dict[str, float]:
    text = " ".join(words)
    found = {h.item.name: h.score for h in banks[user].search(text, k=100)}
    found |= {f"{h.item.type}: {h.item.text}": h.score for h in memories[user].search(text, k=100)}
    return found


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=items, asked=queries)
def test_a_user_sees_own_and_shared_items_only_and_scores_ignore_the_rest(data, asked) -> None:
    with tempfile.TemporaryDirectory() as everything, tempfile.TemporaryDirectory() as alone:
        store, banks, memories = fill(Path(everything), data)
        for user, words in asked:
            skill_hits = banks[user].search(" ".join(words), k=100)
            memory_hits = memories[user].search(" ".join(words), k=100)
            for hit in skill_hits:
                assert hit.item.visibility == "shared" or hit.item.owner == user
            for hit in memory_hits:
                assert hit.item.visibility == "shared" or hit.item.user_id == memories[user].user_id
            expected_skills = {f"skill-{i}" for i, item in enumerate(data) if item["kind"] == "skill" and visible(item, user)}
            assert {h.item.name for h in skill_hits} == expected_skills  # nothing visible is lost either
            assert {s.name for s in banks[user].list_skills()} == expected_skills
            expected_records = sum(1 for item in data if item["kind"] == "memory" and visible(item, user))
            assert len(memory_hits) == len(memories[user].list()) == expected_records
            for record in memories[user].list():
                assert all(memories[user].get(other).id == other for other in record.contradicts)
        hidden = [m for m in store.visible_memories(memories["ann"].user_id) if m.visibility == "private"]
        for record in hidden:
            with pytest.raises(UserError):
                memories["ben"].get(record.id)
        # The same queries over a store holding only what each user may see give the same scores:
        # no statistic of the scorer (BM25 document frequencies, lengths) reaches across users.
        for n, (user, words) in enumerate(asked):
            folder = Path(alone) / str(n)
            _, banks_alone, memories_alone = fill(folder, data, keep=lambda item, u=user: visible(item, u))
            together = scores(banks, memories, user, words)
            apart = scores(banks_alone, memories_alone, user, words)
            assert together.keys() == apart.keys()
            for key, value in together.items():
                assert apart[key] == pytest.approx(value, abs=2e-3), key
            banks_alone[user].store.close()
        store.close()
