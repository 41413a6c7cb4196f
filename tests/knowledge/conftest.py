"""Skill bank and memory on the test's own home and store, with a fast embedder.

The hashed bag of words (the fallback embedder) keeps these tests quick; the tests that need
real meaning load MiniLM and are marked slow.
"""

from __future__ import annotations

import pytest

from nanoresearch.knowledge import embeddings
from nanoresearch.knowledge.embeddings import HashedBagOfWords
from nanoresearch.knowledge.memory import Memory
from nanoresearch.knowledge.skillbank import SkillBank


@pytest.fixture
def embedder() -> HashedBagOfWords:
    return HashedBagOfWords()


@pytest.fixture
def cheap_default_embedder(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the CLI (which uses the default embedder) gets in tests that do not need meaning."""
    monkeypatch.setattr(embeddings, "default_embedder", HashedBagOfWords)


@pytest.fixture
def bank(settings, store, embedder) -> SkillBank:
    return SkillBank(settings, store, embedder=embedder)


@pytest.fixture
def memory(store, embedder) -> Memory:
    return Memory(store, store.ensure_user("alice"), embedder=embedder)
