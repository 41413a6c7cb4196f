"""The hybrid scorer: components, weights, thresholds, caches, the vector index, and meaning over words."""

from __future__ import annotations

import re

import numpy as np
import pytest

from nanoresearch.knowledge.embeddings import HashedBagOfWords
from nanoresearch.knowledge.memory import Memory
from nanoresearch.knowledge.retrieval import (
    FOLD_DIM,
    WEIGHTS,
    Query,
    Retriever,
    VectorIndex,
    Weights,
    terms,
)
from nanoresearch.knowledge.skillbank import SkillBank
from nanoresearch.store import Store
from nanoresearch.store.knowledge_models import MemoryRecord, Skill


class CountingEmbedder(HashedBagOfWords):
    def __init__(self, name: str = "hashed-bag-of-words") -> None:
        self.name = name
        self.texts: list[str] = []

    def embed(self, texts: list[str]) -> np.ndarray:
        self.texts += texts
        return super().embed(texts)


def skill(name: str, description: str, **fields) -> Skill:
    return Skill(name=name, description=description, **fields)


def test_terms_drop_stopwords_and_fold_plurals() -> None:
    assert terms("The schedules of the Learning-Rates, and 3 batches") == ["schedule", "learning", "rate", "batche"]


def test_the_score_is_the_weighted_mean_of_the_components(bank: SkillBank) -> None:
    bank.add_skill(skill("lr-warmup", "Warm the learning rate up linearly.", tags=["learning-rate"], stages=["experiment"]))
    bank.add_skill(skill("seeds", "Report three seeds with a confidence interval.", stages=["analysis"]))
    (hit, other) = bank.search("learning rate warmup", stage="experiment", k=2)
    assert hit.item.name == "lr-warmup" and set(hit.components) == {"bm25", "embedding", "tags", "stage", "recency", "success"}
    weights = {name: getattr(WEIGHTS, name) for name in hit.components}
    mean = sum(weights[n] * v for n, v in hit.components.items()) / sum(weights.values())
    assert hit.score == pytest.approx(mean, abs=1e-3)
    assert hit.components["tags"] == 1.0 and hit.components["stage"] == 1.0 and hit.components["bm25"] == 1.0
    assert other.components["stage"] == 0.0 and other.components["tags"] == 0.0 and other.components["bm25"] == 0.0
    assert "tags" not in bank.search("confidence interval", k=1)[0].components  # no tag asked or named: not counted


def test_tags_come_from_the_query_or_its_words_and_general_skills_half_match_a_stage(bank: SkillBank) -> None:
    bank.add_skill(skill("amp", "Train faster with lower precision arithmetic.", tags=["mixed-precision", "gpu"]))
    bank.add_skill(skill("lr", "Tune the step size.", tags=["optimisation"], stages=["planning"]))
    (hit,) = bank.search("use mixed precision", k=1)
    assert hit.item.name == "amp" and hit.components["tags"] == 1.0
    hits = {h.item.name: h for h in bank.search("anything", tags=("GPU", "optimisation"), stage="planning")}
    assert hits["amp"].components["tags"] == 0.5 and hits["lr"].components["tags"] == 0.5
    assert hits["amp"].components["stage"] == 0.5 and hits["lr"].components["stage"] == 1.0


def test_k_and_min_score(bank: SkillBank) -> None:
    for i, text in enumerate(["gradient clipping for spikes", "learning rate warmup", "data augmentation with crops"]):
        bank.add_skill(skill(f"s{i}", text))
    assert len(bank.search("gradient clipping", k=2)) == 2
    strict = bank.search("gradient clipping", min_score=0.5)
    assert [h.item.name for h in strict] == ["s0"] and all(h.score >= 0.5 for h in strict)
    assert bank.search("gradient clipping", min_score=0.99) == []


def test_custom_weights_change_the_ranking(settings, store, embedder) -> None:
    lexical = SkillBank(settings, store, embedder=embedder, retriever=Retriever(store, embedder, Weights(
        bm25=1, embedding=0, tags=0, stage=0, recency=0, success=0, importance=0)))
    lexical.add_skill(skill("a", "loss loss loss nan"))
    lexical.add_skill(skill("b", "a loss that becomes nan after many steps of training"))
    (hit,) = lexical.search("loss", k=1)
    assert hit.score == hit.components["bm25"] == 1.0


def test_a_write_from_another_connection_is_seen(memory: Memory, settings, embedder) -> None:
    assert memory.search("cosine schedule") == []
    with Store(settings.db_path) as other:  # as another process would
        Memory(other, memory.user_id, embedder=embedder).remember(MemoryRecord(type="lesson", text="cosine schedule works"))
    assert [h.item.text for h in memory.search("cosine schedule")] == ["cosine schedule works"]


def test_vectors_are_stored_once_and_redone_for_another_embedder(store) -> None:
    user = store.ensure_user("alice")
    counting = CountingEmbedder()
    memory = Memory(store, user, embedder=counting)
    memory.remember(MemoryRecord(type="lesson", text="pin memory in the data loader"))
    memory.search("data loader")
    memory.remember(MemoryRecord(type="lesson", text="use bf16 on A100"))
    memory.search("bf16")
    embedded = [t for t in counting.texts if t != "width"]
    assert embedded == ["lesson: pin memory in the data loader", "data loader", "lesson: use bf16 on A100", "bf16"]
    entry = store.index_entries("memory", user)[0]
    assert entry.embedder == "hashed-bag-of-words/fold512" and len(entry.vector) == FOLD_DIM * 4

    renamed = CountingEmbedder("another-model")
    Memory(store, user, embedder=renamed).search("bf16")
    assert len([t for t in renamed.texts if t.startswith("lesson:")]) == 2
    assert {e.embedder for e in store.index_entries("memory", user)} == {"another-model/fold512"}


def test_folding_a_wide_embedding_keeps_similarity() -> None:
    texts = ["learning rate warmup for transformers", "learning rate warmup for large transformers",
             "colour palettes for figures"]
    retriever = Retriever.__new__(Retriever)
    retriever._embedder = HashedBagOfWords()
    wide = HashedBagOfWords().embed(texts)
    folded = retriever.embed(texts)
    assert folded.shape == (3, FOLD_DIM)
    assert folded[0] @ folded[1] == pytest.approx(float(wide[0] @ wide[1]), abs=0.15)
    assert folded[0] @ folded[1] > folded[0] @ folded[2]


def test_the_inverted_file_index_finds_the_exact_neighbours() -> None:
    rng = np.random.default_rng(1)
    centres = rng.standard_normal((40, 64))
    points = centres[rng.integers(0, 40, 3000)] + 0.3 * rng.standard_normal((3000, 64))
    matrix = (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)
    exact, ivf = VectorIndex(matrix, ivf_min=10**9), VectorIndex(matrix, ivf_min=100)
    assert exact.exact and not ivf.exact
    everything = np.ones(len(matrix), bool)
    overlap = []
    for query in matrix[:50]:
        truth = set(exact.nearest(query, 10, everything))
        overlap.append(len(truth & set(ivf.nearest(query, 10, everything))) / 10)
        positions = np.array(sorted(truth))
        assert np.allclose(ivf.similarities(query, positions), exact.similarities(query, positions), atol=1e-5)
    assert np.mean(overlap) > 0.9
    odd = np.arange(len(matrix)) % 2 == 1
    assert all(p % 2 == 1 for p in ivf.nearest(matrix[0], 10, odd))  # a scope mask is applied inside the index


def test_a_large_scope_gives_the_same_top_hits_as_exhaustive_scoring(store, embedder) -> None:
    user = store.ensure_user("alice")
    memory = Memory(store, user, embedder=embedder)
    topics = ["warmup", "dropout", "augmentation", "clipping", "pruning", "distillation", "quantisation", "mixup"]
    for i in range(400):
        memory.remember(MemoryRecord(type="result", text=f"{topics[i % 8]} run{i} changed accuracy by {i % 7} points"))
    exhaustive = Retriever(store, embedder)
    indexed = Retriever(store, embedder, ivf_min=100)
    assert not indexed.index("memory", user).vectors.exact
    for i, topic in enumerate(topics):
        query = Query(text=f"{topic} run{17 + i} accuracy", k=3)
        found, truth = indexed.search("memory", user, query), exhaustive.search("memory", user, query)
        assert found[0].id == truth[0].id and [s.score for s in found] == [s.score for s in truth]


# meaning over words: the relevant skill beats decoys that a bag-of-words scorer ranks first (MiniLM)

DECOY_SKILLS = [  # decoys first: a bag-of-words tie goes to the earlier skill
    skill("stabilise-diverging-training", "Recover a training run that diverges - the loss spikes, explodes or "
          "becomes NaN part-way through.", body="1. Find the step where the loss first jumps; log the gradient norm "
          "around it.\n2. Lower the peak learning rate by 2-3x and add a linear warmup over the first 5% of steps."
          "\n3. Clip the global gradient norm at 1.0.\n4. With fp16, check for overflow: switch to bf16 or use a "
          "dynamic loss scaler.\n5. Look for a bad batch (empty sequences, extreme values) at the failing step.\n"),
    skill("learning-rate-range-test", "Find a good learning rate quickly with a range test before tuning anything "
          "else.", body="1. Train for a few hundred steps while increasing the learning rate exponentially from 1e-7 "
          "to 10.\n2. Plot the loss against the learning rate on a log axis.\n3. Pick a value about ten times below "
          "the point where the loss is lowest, before it blows up.\n"),
    skill("gpu-out-of-memory", "Fix CUDA out-of-memory errors during training without changing the effective batch.",
          body="1. Halve the per-device batch and accumulate gradients to keep the effective batch size.\n2. Enable "
          "activation (gradient) checkpointing on the largest blocks.\n3. Train in bf16; free references to "
          "tensors kept for logging.\n"),
    skill("batch-size-scaling", "When changing the batch size, scale the learning rate and warm up, then re-check "
          "convergence.", body="1. Doubling the batch: multiply the learning rate by 2 (linear rule) or 1.4 "
          "(square-root rule).\n2. Add or lengthen the warmup.\n3. Compare loss curves per sample seen, not per step.\n"),
]
DECOY_QUERIES = [  # (query, the skill that answers it, the skill that word overlap ranks first)
    ("my loss turns into NaN after a few hundred steps", "stabilise-diverging-training", "learning-rate-range-test"),
    ("lower memory use so a bigger model fits on one card", "gpu-out-of-memory", "stabilise-diverging-training"),
    ("I doubled the batch and now it trains worse", "batch-size-scaling", "stabilise-diverging-training"),
]


def bag_of_words_first(query: str, skills: list[Skill]) -> str:
    """NanoResearch's scorer (ANCHORS.md) on a fresh bank: equal confidence and usage, so token overlap decides."""
    words = lambda text: set(re.findall(r"[a-z][a-z0-9_-]{2,}", text.lower()))  # noqa: E731
    overlap = [len(words(query) & words(f"{s.description} {s.body} {s.name}")) for s in skills]
    return skills[overlap.index(max(overlap))].name


@pytest.mark.slow
def test_the_relevant_skill_beats_lexical_decoys(settings, store) -> None:
    bank = SkillBank(settings, store)  # the default embedder: MiniLM
    for s in DECOY_SKILLS:
        bank.add_skill(s)
    for query, relevant, decoy in DECOY_QUERIES:
        assert bag_of_words_first(query, DECOY_SKILLS) == decoy
        hits = bank.search(query, k=2)
        assert hits[0].item.name == relevant, (query, [(h.item.name, h.components) for h in hits])
