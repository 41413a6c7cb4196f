"""Hybrid retrieval (knowledge/retrieval.py): quality against NanoResearch's scorer, then speed.

1. Quality, on a labelled set (bench/data/retrieval_skills.yaml: 44 skills; retrieval_queries.yaml:
   48 queries, each naming the skill that should come first, many with a lexical decoy). Every
   scorer ranks all skills for every query, in this run:
   - hybrid: `SkillBank.search` with MiniLM and the default weights, given the query's stage when
     it has one (as the pipeline always does); and without the stage;
   - its two main components alone (BM25 only, embedding only);
   - NanoResearch's bag of words (ANCHORS.md): 2.0·confidence + 0.45·token_overlap +
     0.8·tag_overlap + 0.1·min(usage, 5), tokens `[a-z][a-z0-9_-]{2,}`, filtered to the query's
     stage like its per-domain lists; and the same without the stage filter.
   Printed: recall@1, recall@5, MRR, and how often the decoy ranks above the expected skill.
2. Speed, at each --sizes N: N memory records for one user plus N/10 for another (so the scope
   filter has something to drop), inserted one `Memory.remember` call (one transaction) each;
   vectors are random unit 384-d rows written once (MiniLM on 100k texts would take ~15 minutes
   and changes nothing in the timing). Then: the index build (the first query after a write), and
   `Memory.search` p50/p95/p99 end to end (scope, scoring, reading the records), the query's
   embedding excluded (passed in). Beside it, SQLite FTS5's own bm25() on the same texts, the
   lexical part only, to show why BM25 is not left to FTS5.

    python bench/bench_retrieval.py                        # ~3 min on 2 cores
    python bench/bench_retrieval.py --sizes 1000,10000     # quicker
    python bench/bench_retrieval.py --skip-latency         # quality only
"""

from __future__ import annotations

import argparse
import os
import random
import re
import sqlite3
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from nanoresearch.config import load_settings
from nanoresearch.knowledge.embeddings import default_embedder
from nanoresearch.knowledge.memory import Memory
from nanoresearch.knowledge.retrieval import Retriever, Weights, terms
from nanoresearch.knowledge.skillbank import SkillBank
from nanoresearch.store import Store
from nanoresearch.store.knowledge_models import MEMORY_TYPES, MemoryRecord, Skill

DATA = Path(__file__).parent / "data"
STAGES = ("ideation", "planning", "experiment", "analysis", "figures", "writing", "review")


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))]


def load_data() -> tuple[list[Skill], list[dict]]:
    skills = [Skill(**s) for s in yaml.safe_load((DATA / "retrieval_skills.yaml").read_text())]
    queries = yaml.safe_load((DATA / "retrieval_queries.yaml").read_text())
    return skills, queries


# 1. quality


_NR_TOKEN = re.compile(r"[a-z][a-z0-9_-]{2,}")


def nanoresearch_ranking(skills: list[Skill], query: str, stage: str | None) -> list[str]:
    """NanoResearch's match_nl_skills: a skill's rule text and trigger against the query's tokens.
    Every skill here has the same confidence (its default 0.55) and no usage, as in a fresh bank."""
    wanted = set(_NR_TOKEN.findall(query.lower()))
    scored = []
    for skill in skills:
        if stage and stage not in skill.stages:  # its skills are listed per domain (stage)
            continue
        tokens = set(_NR_TOKEN.findall(f"{skill.description} {skill.body} {skill.name}".lower()))
        scored.append((2.0 * 0.55 + 0.45 * len(tokens & wanted) + 0.8 * 0 + 0.1 * min(0, 5), skill.name))
    scored.sort(key=lambda item: item[0], reverse=True)  # ties keep insertion order, like its created_at sort
    return [name for _, name in scored]


def measures(rankings: list[list[str]], queries: list[dict]) -> dict[str, float]:
    ranks = [r.index(q["expected"]) + 1 if q["expected"] in r else None for r, q in zip(rankings, queries)]
    decoys = [(r, q) for r, q in zip(rankings, queries) if q.get("decoy")]
    beaten = sum(1 for r, q in decoys
                 if q["decoy"] in r and (q["expected"] not in r or r.index(q["decoy"]) < r.index(q["expected"])))
    return {
        "recall@1": sum(1 for k in ranks if k == 1) / len(ranks),
        "recall@5": sum(1 for k in ranks if k and k <= 5) / len(ranks),
        "MRR": sum(1 / k for k in ranks if k) / len(ranks),
        "decoy wins": beaten / max(1, len(decoys)),
    }


def quality(workdir: Path) -> None:
    skills, queries = load_data()
    settings = load_settings({"home": str(workdir / "quality"), "user": "bench"})
    store = Store(settings.db_path)
    bank = SkillBank(settings, store)
    for skill in skills:
        bank.add_skill(skill)
    embedder = default_embedder()
    vectors = embedder.embed([q["query"] for q in queries])
    only = {"bm25 only": Weights(bm25=1, embedding=0, tags=0, stage=0, recency=0, success=0),
            "embedding only": Weights(bm25=0, embedding=1, tags=0, stage=0, recency=0, success=0)}
    variants = {
        "hybrid (with stage)": (bank, True),
        "hybrid (no stage)": (bank, False),
        **{name: (SkillBank(settings, store, retriever=Retriever(store, embedder, w)), False) for name, w in only.items()},
    }
    table: dict[str, list[list[str]]] = {}
    for name, (scorer, with_stage) in variants.items():
        table[name] = [[h.item.name for h in scorer.search(q["query"], stage=q.get("stage") if with_stage else None,
                                                           k=len(skills), vector=v)]
                       for q, v in zip(queries, vectors)]
    table["NanoResearch bag of words (stage)"] = [nanoresearch_ranking(skills, q["query"], q.get("stage")) for q in queries]
    table["NanoResearch bag of words (no stage)"] = [nanoresearch_ranking(skills, q["query"], None) for q in queries]
    with_decoy = sum(1 for q in queries if q.get("decoy"))
    print(f"\n1. quality: {len(skills)} skills, {len(queries)} labelled queries ({with_decoy} with a lexical decoy, "
          f"{sum(1 for q in queries if q.get('stage'))} with a stage); embedder {embedder.name}")
    kinds = {"all": queries, **{k: [q for q in queries if q.get("kind", "paraphrase") == k] for k in ("paraphrase", "term")}}
    print(f"{'':38s}" + "".join(f"{f'{k} ({len(v)})':18s}" for k, v in kinds.items()) + "decoy")
    print(f"{'scorer':38s}" + "R@1  R@5  MRR     " * len(kinds) + "wins")
    for name, rankings in table.items():
        cells = ""
        for subset in kinds.values():
            row = measures([r for r, q in zip(rankings, queries) if q in subset], subset)
            cells += f"{row['recall@1']:.2f} {row['recall@5']:.2f} {row['MRR']:.2f}    "
        print(f"{name:38s}{cells}{measures(rankings, queries)['decoy wins']:.2f}")
    store.close()


# 2. speed


class RandomEmbedder:
    """Stands in for MiniLM where only the cost of the vectors matters: random unit 384-d rows."""

    name = "bench-random-384"

    def __init__(self) -> None:
        self.rng = np.random.default_rng(7)

    def embed(self, texts: list[str]) -> np.ndarray:
        rows = self.rng.standard_normal((len(texts), 384)).astype(np.float32)
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def sentences() -> list[str]:
    skills, _ = load_data()
    found = []
    for skill in skills:
        found.append(skill.description)
        found += [re.sub(r"^\d+\.\s*", "", line).strip() for line in skill.body.splitlines() if len(line) > 20]
    return found


def make_records(count: int, rng: random.Random, corpus: list[str], project_ids: list[int]) -> list[MemoryRecord]:
    """Record texts made of the skill corpus's sentences (so word frequencies look like real notes), each unique."""
    records = []
    for i in range(count):
        text = " ".join(rng.sample(corpus, rng.randint(1, 2))) + f" (run {i}, trial {rng.randint(1, 40)})"
        records.append(MemoryRecord(type=rng.choice(MEMORY_TYPES), text=text, importance=rng.random(),
                                    project_id=rng.choice(project_ids), stages=[rng.choice(STAGES)],
                                    tags=rng.sample(["vision", "nlp", "tabular", "speech", "rl"], 1)))
    return records


def fill(store: Store, name: str, count: int, rng: random.Random, corpus: list[str]) -> tuple[Memory, float]:
    user_id = store.ensure_user(name)
    projects = [None, *(store.ensure_project(user_id, f"p{i}") for i in range(5))]
    memory = Memory(store, user_id, embedder=RandomEmbedder())
    records = make_records(count, rng, corpus, projects)
    start = time.perf_counter()
    for record in records:
        memory.remember(record)
    return memory, time.perf_counter() - start


def store_random_vectors(store: Store, memory: Memory) -> None:
    entries = store.index_entries("memory", memory.user_id)
    tag = memory.retriever.embedder_tag
    vectors = RandomEmbedder().embed(["x"] * len(entries))
    store.save_vectors("memory", [(e.id, tag, vectors[i].tobytes()) for i, e in enumerate(entries)])


def fts5_latency(store: Store, user_id: int, workdir: Path, texts: list[str]) -> tuple[float, float]:
    """bm25() of SQLite FTS5 over the same documents (one table, every user), top 200 by rank."""
    db = sqlite3.connect(workdir / "fts5.sqlite")
    db.execute("CREATE VIRTUAL TABLE docs USING fts5(document, tokenize='porter unicode61')")
    rows = [(e.id, e.document) for e in store.index_entries("memory", user_id)]
    db.executemany("INSERT INTO docs (rowid, document) VALUES (?, ?)", rows)
    db.commit()
    latencies = []
    for text in texts:
        match = " OR ".join(f'"{t}"' for t in dict.fromkeys(terms(text)))
        start = time.perf_counter()
        db.execute("SELECT rowid, bm25(docs) FROM docs WHERE docs MATCH ? ORDER BY rank LIMIT 200", (match,)).fetchall()
        latencies.append(time.perf_counter() - start)
    db.close()
    return pct(latencies, 50) * 1e3, pct(latencies, 95) * 1e3


def latency(size: int, queries: list[dict], count: int, workdir: Path) -> dict[str, float]:
    rng = random.Random(size)
    folder = workdir / f"n{size}"
    folder.mkdir()
    store = Store(folder / "db.sqlite")
    corpus = sentences()
    memory, insert_s = fill(store, "bench", size, rng, corpus)
    other, _ = fill(store, "other", size // 10, rng, corpus)
    store_random_vectors(store, memory)
    store_random_vectors(store, other)
    start = time.perf_counter()
    memory.retriever.index("memory", memory.user_id)
    build_s = time.perf_counter() - start
    asked = [queries[i % len(queries)] for i in range(count)]
    vectors = RandomEmbedder().embed([q["query"] for q in asked])
    latencies = []
    for q, vector in zip(asked, vectors):
        start = time.perf_counter()
        memory.search(q["query"], stage=q.get("stage"), k=5, vector=vector)
        latencies.append(time.perf_counter() - start)
    fts_p50, fts_p95 = fts5_latency(store, memory.user_id, folder, [q["query"] for q in asked])
    store.close()
    return {"insert/s": size / insert_s, "build s": build_s, "p50": pct(latencies, 50) * 1e3,
            "p95": pct(latencies, 95) * 1e3, "p99": pct(latencies, 99) * 1e3, "fts p50": fts_p50, "fts p95": fts_p95}


def speed(sizes: list[int], count: int, workdir: Path) -> None:
    _, queries = load_data()
    embedder = default_embedder()
    embedder.embed(["warm up"])
    times = []
    for q in queries:
        start = time.perf_counter()
        embedder.embed([q["query"]])
        times.append(time.perf_counter() - start)
    print(f"\n2. speed: {count} queries per size (the labelled ones, cycled); one query embedding with "
          f"{embedder.name}: p50 {pct(times, 50) * 1e3:.1f} ms (not counted below)")
    print(f"{'records':>8s} {'insert/s':>9s} {'index build':>12s} {'search p50':>11s} {'p95':>7s} {'p99':>7s}"
          f" {'| FTS5 bm25() p50':>17s} {'p95':>7s}  (ms)")
    for size in sizes:
        row = latency(size, queries, count, workdir)
        print(f"{size:8d} {row['insert/s']:9.0f} {row['build s']:10.2f} s {row['p50']:11.2f} {row['p95']:7.2f}"
              f" {row['p99']:7.2f} | {row['fts p50']:15.2f} {row['fts p95']:7.2f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000,100000", help="records per latency row")
    parser.add_argument("--queries", type=int, default=300, help="timed queries per size")
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--dir", type=Path, default=None, help="where to put the temporary databases")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores (figures are noisy when it nears the core count)")
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        if not args.skip_quality:
            quality(Path(tmp))
        if not args.skip_latency:
            speed([int(s) for s in args.sizes.split(",")], args.queries, Path(tmp))


if __name__ == "__main__":
    main()
