"""Hybrid retrieval: the one scorer for skills and memory records.

A query for user U goes through four steps:

1. **Scope.** U's in-memory index holds only U's own items and items shared on purpose; the SQL
   that loads it (`Store.index_entries`) is the filter. A memory query narrows further, before
   scoring, to a project (its records plus the user-wide ones) and to record types. Every
   statistic (BM25's document frequencies and lengths, the vector index's clusters) is computed
   inside the scope, so no score ever depends on another user's private text.
2. **Candidates.** A scope under `IVF_MIN` items is scored exhaustively. Above it, candidates are
   the top `CANDIDATES` by BM25 plus the top `CANDIDATES` by embedding from an inverted-file
   vector index; an item that is neither lexically nor semantically close cannot make the top k.
3. **Components**, each in [0, 1]:
   - `bm25`: Okapi BM25 (k1 = 1.2, b = 0.75, idf = ln(1 + (N − df + 0.5)/(df + 0.5))), divided by
     Σ idf of the query's words, which is what an average-length item holding each of them once
     would score: the idf-weighted share of the query an item covers (clipped to 1). Unlike
     dividing by the best score in scope, it does not call one common shared word a full match;
   - `embedding`: cosine similarity of the query and item embeddings (negative counts as 0);
   - `tags`: the share of the query's tags the item carries (tags given, plus any tag of the
     scope spelled out in the query text: "mixed precision" finds `mixed-precision`);
   - `stage`: 1 if the item is for the query's stage, 0.5 if it is for every stage, else 0;
   - `recency`: 0.5 ** (days since the item last changed / `RECENCY_HALF_LIFE_DAYS`);
   - `success` (skills): Laplace-smoothed successes / uses, (s + 1) / (u + 2);
   - `importance` (memories): importance × confidence, decayed with the record type's half-life.
4. **Score** = Σ weight × component / Σ weight, over the components that apply (tags only when
   the query has tags, stage only with a stage; `success` for skills, `importance` for memories),
   so it stays in [0, 1] and one `min_score` means the same for both kinds. Top k above it.

Why BM25 is computed here and not by SQLite FTS5's bm25(): FTS5 calls its ranking function once
per matching row, which `bench/bench_retrieval.py` measured at 26 ms p50 and 176 ms p95 over
100k records (a query with a common word matches most of them), and its statistics span the
whole table, every user's rows included. The same formula over a per-scope sparse matrix of term
weights costs well under a millisecond.

The index of a scope is built on first use and kept in memory; `Store.knowledge_version` (bumped
by every write, in any process) tells when to rebuild it. Vectors are stored in the database
with the name of the embedder that made them; missing or foreign ones are embedded at rebuild.
"""

from __future__ import annotations

import re
import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache

import numpy as np
from scipy import sparse

from nanoresearch.knowledge import embeddings
from nanoresearch.store import Store
from nanoresearch.store.knowledge_models import (
    IMPORTANCE_HALF_LIFE_DAYS,
    MEMORY_TYPES,
    IndexEntry,
    KnowledgeKind,
    MemoryRecord,
    Skill,
    half_life_decay,
    normalise_label,
)


@dataclass(frozen=True)
class Weights:
    """How much each component counts. Meaning and lexical match lead; the rest break ties and
    prefer what worked, what is meant for this stage, and what is fresh."""

    bm25: float = 0.30
    embedding: float = 0.40
    tags: float = 0.10
    stage: float = 0.10
    recency: float = 0.05
    success: float = 0.10  # skills only
    importance: float = 0.15  # memories only


WEIGHTS = Weights()
RECENCY_HALF_LIFE_DAYS = 90.0
BM25_K1, BM25_B = 1.2, 0.75
IVF_MIN = 20_000  # below this many items in scope, every item is scored exactly
CANDIDATES = 200  # per retriever (BM25, embedding) when the scope is larger
MAX_STORED_DIM = 1024  # wider embeddings (the hashed fallback has 65,536) are folded to FOLD_DIM
FOLD_DIM = 512
EMBED_BATCH = 256


@dataclass(frozen=True)
class Query:
    text: str
    stage: str | None = None
    tags: tuple[str, ...] = ()
    k: int = 5
    min_score: float = 0.0
    vector: np.ndarray | None = None  # the query's embedding when the caller already has it
    project_id: int | None = None  # memories: this project's records and the user-wide ones
    types: tuple[str, ...] = ()  # memories: only these record types


@dataclass(frozen=True)
class Scored:
    id: int
    score: float
    components: dict[str, float]


# documents: the text of an item that BM25 and the embedding see


def skill_document(skill: Skill) -> str:
    """Name and description first: the embedding model reads only the first 256 word pieces."""
    return f"{skill.name.replace('-', ' ')}. {skill.description}\n{' '.join(skill.tags)}\n{skill.body}"


def memory_document(record: MemoryRecord) -> str:
    parts = [f"{record.type.replace('_', ' ')}: {record.text}", record.conditions.as_text(), " ".join(record.tags)]
    return "\n".join(p for p in parts if p)


# text to terms

_WORD = re.compile(r"[^\W_]+")
STOPWORDS = frozenset(
    "a an and are as at be been but by can could did do does for from had has have how i if in into is it its "
    "me my no not of on or our should so than that the their them then there these they this those to too use "
    "used using was we were what when where which while who why will with would you your".split()
)


def terms(text: str) -> list[str]:
    """Lowercase words without stopwords, plurals folded ("schedules" -> "schedule")."""
    return [t for t in map(_term, _WORD.findall(text.lower())) if t]


@lru_cache(maxsize=1 << 16)  # a scope's vocabulary is small next to its word count: index builds reuse it
def _term(word: str) -> str:
    if len(word) < 2 or word in STOPWORDS:
        return ""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


# the parts of a scope's index


class SparseIndex:
    """Items × keys (terms, tags or stages) with a weight each, stored by column: a query reads
    only the columns of its own keys."""

    def __init__(self, rows: list[dict[str, float]]) -> None:
        self.keys: dict[str, int] = {}
        row_ids, col_ids, values = [], [], []
        for row, weights in enumerate(rows):
            for key, weight in weights.items():
                row_ids.append(row)
                col_ids.append(self.keys.setdefault(key, len(self.keys)))
                values.append(weight)
        shape = (len(rows), max(1, len(self.keys)))
        self.matrix = sparse.csc_matrix((np.asarray(values, np.float32), (row_ids, col_ids)), shape=shape)
        self.df = np.diff(self.matrix.indptr)  # items per key

    def dot(self, query: dict[str, float]) -> np.ndarray:
        """Σ over the query's known keys of item weight × query weight, for every item."""
        known = [(self.keys[k], w) for k, w in query.items() if k in self.keys]
        if not known:
            return np.zeros(self.matrix.shape[0], np.float32)
        columns, weights = zip(*known)
        return np.asarray(self.matrix[:, list(columns)] @ np.asarray(weights, np.float32)).ravel()


def bm25_rows(documents: list[list[str]]) -> list[dict[str, float]]:
    """Each document's term weights tf·(k1+1) / (tf + k1·(1 − b + b·len/avglen)); idf is applied per query."""
    lengths = [len(d) for d in documents]
    average = (sum(lengths) / len(lengths)) if lengths and sum(lengths) else 1.0
    rows = []
    for words, length in zip(documents, lengths):
        norm = BM25_K1 * (1 - BM25_B + BM25_B * length / average)
        rows.append({t: tf * (BM25_K1 + 1) / (tf + norm) for t, tf in Counter(words).items()})
    return rows


class VectorIndex:
    """Unit vectors of a scope. Exact search below `ivf_min` rows; above, an inverted file: spherical
    k-means cells, and a query scans only the cells whose centroids are nearest to it."""

    def __init__(self, matrix: np.ndarray, ivf_min: int = IVF_MIN) -> None:
        self.exact = len(matrix) < ivf_min
        if self.exact:
            self.matrix, self.row_of = matrix, np.arange(len(matrix))
            return
        cells = max(16, int(np.sqrt(len(matrix))))
        self.centroids, assign = _spherical_kmeans(matrix, cells)
        order = np.argsort(assign, kind="stable")  # the rows of a cell lie together
        self.matrix = matrix[order]
        self.position = order  # row in self.matrix -> position in the scope
        self.row_of = np.empty_like(order)
        self.row_of[order] = np.arange(len(order))
        self.starts = np.searchsorted(assign[order], np.arange(cells + 1))
        self.probes = max(8, int(np.ceil(0.06 * cells)))

    def similarities(self, vector: np.ndarray, positions: np.ndarray) -> np.ndarray:
        if len(positions) > len(self.matrix) // 4:  # a full product beats gathering most rows
            return matvec(self.matrix, vector)[self.row_of[positions]]
        return matvec(self.matrix[self.row_of[positions]], vector)

    def nearest(self, vector: np.ndarray, count: int, allowed: np.ndarray) -> np.ndarray:
        """Positions of (about, with IVF) the `count` allowed items most similar to `vector`."""
        if self.exact:
            rows, scores = np.arange(len(self.matrix)), matvec(self.matrix, vector)
        else:
            cells = np.argsort(-matvec(self.centroids, vector))[: self.probes]
            spans = [(self.starts[c], self.starts[c + 1]) for c in cells]
            rows = np.concatenate([np.arange(start, end) for start, end in spans])
            scores = np.concatenate([matvec(self.matrix[start:end], vector) for start, end in spans])
        positions = self.position[rows] if not self.exact else rows
        keep = allowed[positions]
        return positions[keep][_top(scores[keep], count)]


def matvec(matrix: np.ndarray, vector: np.ndarray, rows: int = 1024) -> np.ndarray:
    """matrix @ vector in blocks of rows. A block stays under OpenBLAS's threading threshold: on a
    busy 2-core machine its threaded gemv measured 10-20x slower than one thread (12 ms against
    0.7 ms for 10k x 384)."""
    if len(matrix) <= rows:
        return matrix @ vector
    return np.concatenate([matrix[i:i + rows] @ vector for i in range(0, len(matrix), rows)])


def _spherical_kmeans(matrix: np.ndarray, cells: int, iterations: int = 8, sample: int = 20_000) -> tuple[np.ndarray, np.ndarray]:
    """Cluster centroids trained on a sample (seeded, so the same data gives the same index), then
    every row's cell."""
    rng = np.random.default_rng(0)
    train = matrix[rng.choice(len(matrix), min(sample, len(matrix)), replace=False)]
    centroids = train[rng.choice(len(train), cells, replace=False)].copy()
    for _ in range(iterations):
        assign = _nearest_cell(train, centroids)
        members = sparse.csr_matrix((np.ones(len(train), np.float32), (assign, np.arange(len(train)))),
                                    shape=(cells, len(train)))
        sums = np.asarray(members @ train)
        filled = np.linalg.norm(sums, axis=1) > 0  # an empty cell keeps its centroid
        centroids[filled] = sums[filled] / np.linalg.norm(sums[filled], axis=1, keepdims=True)
    return centroids, _nearest_cell(matrix, centroids)


def _nearest_cell(matrix: np.ndarray, centroids: np.ndarray, chunk: int = 8192) -> np.ndarray:
    return np.concatenate([np.argmax(matrix[i:i + chunk] @ centroids.T, axis=1) for i in range(0, len(matrix), chunk)])


def _top(scores: np.ndarray, count: int) -> np.ndarray:
    """Indices of the `count` largest scores, best first."""
    if len(scores) > count:
        picked = np.argpartition(-scores, count - 1)[:count]
        return picked[np.argsort(-scores[picked], kind="stable")]
    return np.argsort(-scores, kind="stable")


@dataclass
class ScopeIndex:
    """Everything one user may retrieve of one kind, as arrays; rebuilt when the store's version moves."""

    version: int
    ids: np.ndarray
    vectors: VectorIndex
    terms: SparseIndex
    tags: SparseIndex
    stages: SparseIndex
    has_stages: np.ndarray
    updated: np.ndarray  # epoch seconds
    uses: np.ndarray
    successes: np.ndarray
    importance: np.ndarray
    confidence: np.ndarray
    reinforced: np.ndarray  # epoch seconds
    half_life: np.ndarray  # days, by memory type
    project: np.ndarray  # -1: no project
    types: np.ndarray  # index in MEMORY_TYPES, -1 for skills
    tag_words: dict[str, str] = field(default_factory=dict)  # "mixed precision" -> "mixed-precision"

    @classmethod
    def build(cls, version: int, entries: list[IndexEntry], matrix: np.ndarray, ivf_min: int = IVF_MIN) -> ScopeIndex:
        tags = SparseIndex([dict.fromkeys(e.tags, 1.0) for e in entries])
        return cls(
            version=version,
            ids=np.array([e.id for e in entries], np.int64),
            vectors=VectorIndex(matrix, ivf_min),
            terms=SparseIndex(bm25_rows([terms(e.document) for e in entries])),
            tags=tags,
            stages=SparseIndex([dict.fromkeys(e.stages, 1.0) for e in entries]),
            has_stages=np.array([bool(e.stages) for e in entries]),
            updated=_epochs([e.updated for e in entries]),
            uses=np.array([e.uses for e in entries], np.float32),
            successes=np.array([e.successes for e in entries], np.float32),
            importance=np.array([e.importance for e in entries], np.float32),
            confidence=np.array([e.confidence for e in entries], np.float32),
            reinforced=_epochs([e.reinforced or e.updated for e in entries]),
            half_life=np.array([IMPORTANCE_HALF_LIFE_DAYS.get(e.type, 1.0) for e in entries], np.float32),
            project=np.array([-1 if e.project_id is None else e.project_id for e in entries], np.int64),
            types=np.array([_TYPE_CODES.get(e.type, -1) for e in entries], np.int8),
            tag_words={tag.replace("-", " "): tag for tag in tags.keys},
        )

    def allowed(self, query: Query) -> np.ndarray:
        mask = np.ones(len(self.ids), bool)
        if query.project_id is not None:
            mask &= (self.project == -1) | (self.project == query.project_id)
        if query.types:
            mask &= np.isin(self.types, [_TYPE_CODES.get(t, -2) for t in query.types])
        return mask

    def query_tags(self, query: Query) -> list[str]:
        """The tags asked for, plus any tag of this scope whose words appear together in the text."""
        found = [normalise_label(t) for t in query.tags]
        words = _WORD.findall(query.text.lower())
        for size in (1, 2, 3):
            for start in range(len(words) - size + 1):
                tag = self.tag_words.get(" ".join(words[start:start + size]))
                if tag and tag not in found:
                    found.append(tag)
        return [t for t in found if t]


_TYPE_CODES = {name: code for code, name in enumerate(MEMORY_TYPES)}


def _epochs(stamps: list[str]) -> np.ndarray:
    return np.array([datetime.fromisoformat(s).timestamp() if s else 0.0 for s in stamps], np.float64)


def half_life_decay_days(seconds: np.ndarray, half_life_days: np.ndarray | float) -> np.ndarray:
    return half_life_decay(np.maximum(seconds, 0.0) / 86400.0, half_life_days)


# the retriever

_CACHE: OrderedDict[tuple, ScopeIndex] = OrderedDict()
_CACHE_SIZE = 8
_CACHE_LOCK = threading.Lock()


class Retriever:
    def __init__(self, store: Store, embedder: embeddings.Embedder | None = None, weights: Weights = WEIGHTS,
                 ivf_min: int = IVF_MIN) -> None:
        self.store = store
        self.weights = weights
        self.ivf_min = ivf_min
        self._database = str(store.path.resolve())
        self._embedder = embedder
        self._tag: str | None = None

    @property
    def embedder(self) -> embeddings.Embedder:
        if self._embedder is None:
            self._embedder = embeddings.default_embedder()  # loaded on first need: writes never wait for it
        return self._embedder

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit rows; an embedder wider than MAX_STORED_DIM is folded so vectors stay small in the store."""
        out = []
        for start in range(0, len(texts), EMBED_BATCH):
            vectors = np.asarray(self.embedder.embed(texts[start:start + EMBED_BATCH]), np.float32)
            out.append(_fold(vectors) if vectors.shape[1] > MAX_STORED_DIM else vectors)
        return _unit(np.concatenate(out)) if out else np.zeros((0, FOLD_DIM), np.float32)

    @property
    def embedder_tag(self) -> str:
        """The embedder's name as stored with each vector (with the fold, if any)."""
        if self._tag is None:
            width = np.asarray(self.embedder.embed(["width"])).shape[1]
            self._tag = self.embedder.name + (f"/fold{FOLD_DIM}" if width > MAX_STORED_DIM else "")
        return self._tag

    def search(self, kind: KnowledgeKind, user_id: int, query: Query) -> list[Scored]:
        index = self.index(kind, user_id)
        allowed = index.allowed(query)
        if not allowed.any() or query.k <= 0:
            return []
        vector = self.embed([query.text])[0] if query.vector is None else _unit(np.asarray(query.vector, np.float32))
        idf = _idf(index.terms, terms(query.text))
        # BM25 over the score of an average-length item holding each query word once (Σ idf): the
        # idf-weighted share of the query an item covers, comparable across queries and scopes.
        bm25 = index.terms.dot(idf) / max(sum(idf.values()), 1e-9)
        positions = self._candidates(index, vector, bm25, allowed)
        components = self._components(kind, index, query, vector, bm25, positions)
        scores = self._combine(components)
        keep = np.flatnonzero(scores >= query.min_score)
        best = keep[_top(scores[keep], query.k)]
        return [Scored(int(index.ids[positions[i]]), round(float(scores[i]), 4),
                       {name: round(float(values[i]), 4) for name, values in components.items()}) for i in best]

    def index(self, kind: KnowledgeKind, user_id: int) -> ScopeIndex:
        key = (self._database, kind, user_id, self.embedder_tag, self.ivf_min)
        version = self.store.knowledge_version(kind)  # read before the entries: a later write only causes a rebuild
        with _CACHE_LOCK:
            cached = _CACHE.get(key)
            if cached is not None and cached.version == version:
                _CACHE.move_to_end(key)
                return cached
            entries = self.store.index_entries(kind, user_id)
            index = ScopeIndex.build(version, entries, self._vectors(kind, entries), self.ivf_min)
            _CACHE[key] = index
            while len(_CACHE) > _CACHE_SIZE:
                _CACHE.popitem(last=False)
            return index

    def _vectors(self, kind: KnowledgeKind, entries: list[IndexEntry]) -> np.ndarray:
        """The stored vectors; the missing ones (new items, another embedder) are embedded and saved."""
        tag = self.embedder_tag
        stale = [i for i, e in enumerate(entries) if e.embedder != tag or e.vector is None]
        fresh = self.embed([entries[i].document for i in stale])
        if stale:
            self.store.save_vectors(kind, [(entries[i].id, tag, fresh[j].tobytes()) for j, i in enumerate(stale)])
        if stale:
            width = fresh.shape[1]
        elif entries and entries[0].vector is not None:  # nothing stale: every vector is stored
            width = len(entries[0].vector) // 4
        else:
            width = FOLD_DIM
        matrix = np.zeros((len(entries), width), np.float32)
        for i, entry in enumerate(entries):
            if entry.embedder == tag and entry.vector is not None:
                matrix[i] = np.frombuffer(entry.vector, np.float32)
        for j, i in enumerate(stale):
            matrix[i] = fresh[j]
        return matrix

    def _candidates(self, index: ScopeIndex, vector: np.ndarray, bm25: np.ndarray, allowed: np.ndarray) -> np.ndarray:
        if index.vectors.exact:
            return np.flatnonzero(allowed)
        semantic = index.vectors.nearest(vector, CANDIDATES, allowed)
        lexical_scores = np.where(allowed, bm25, 0.0)
        lexical = _top(lexical_scores, CANDIDATES)
        return np.union1d(semantic, lexical[lexical_scores[lexical] > 0])

    def _components(self, kind: KnowledgeKind, index: ScopeIndex, query: Query, vector: np.ndarray,
                    bm25: np.ndarray, positions: np.ndarray) -> dict[str, np.ndarray]:
        now = datetime.now(UTC).timestamp()
        found: dict[str, np.ndarray] = {
            "bm25": np.minimum(bm25[positions], 1.0),
            "embedding": np.clip(index.vectors.similarities(vector, positions), 0.0, 1.0),
        }
        wanted = index.query_tags(query)
        if wanted:
            found["tags"] = index.tags.dot(dict.fromkeys(wanted, 1.0 / len(wanted)))[positions]
        if query.stage:
            matched = index.stages.dot({normalise_label(query.stage): 1.0})[positions]
            found["stage"] = np.where(index.has_stages[positions], matched, 0.5)
        found["recency"] = half_life_decay_days(now - index.updated[positions], RECENCY_HALF_LIFE_DAYS)
        if kind == "skill":
            found["success"] = (index.successes[positions] + 1) / (index.uses[positions] + 2)
        else:
            decay = half_life_decay_days(now - index.reinforced[positions], index.half_life[positions])
            found["importance"] = index.importance[positions] * index.confidence[positions] * decay
        return found

    def _combine(self, components: dict[str, np.ndarray]) -> np.ndarray:
        weights = {name: getattr(self.weights, name) for name in components}
        total = sum(weights.values())
        if total <= 0:
            return np.zeros(len(next(iter(components.values()))), np.float32)
        return sum(weights[name] * values for name, values in components.items()) / total


def _idf(index: SparseIndex, query_terms: list[str]) -> dict[str, float]:
    """Each distinct query word's idf in the scope; a word no item has counts too (df 0): an item
    cannot cover what nobody wrote."""
    n = index.matrix.shape[0]
    weights = {}
    for term in dict.fromkeys(query_terms):
        column = index.keys.get(term)
        df = float(index.df[column]) if column is not None else 0.0
        weights[term] = float(np.log(1 + (n - df + 0.5) / (df + 0.5)))
    return weights


def _unit(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
    return np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)


_FOLD_SIGNS: dict[int, np.ndarray] = {}


def _fold(vectors: np.ndarray) -> np.ndarray:
    """Sum a wide vector's coordinates into FOLD_DIM buckets with fixed random signs (the hashing
    trick once more): cosines survive on average, and a stored vector takes 2 KB, not 256 KB."""
    width = vectors.shape[1]
    padded = -(-width // FOLD_DIM) * FOLD_DIM
    if padded not in _FOLD_SIGNS:
        _FOLD_SIGNS[padded] = np.random.default_rng(12345).choice(np.array([-1.0, 1.0], np.float32), padded)
    wide = np.zeros((len(vectors), padded), np.float32)
    wide[:, :width] = vectors
    return (wide * _FOLD_SIGNS[padded]).reshape(len(vectors), -1, FOLD_DIM).sum(axis=1)
