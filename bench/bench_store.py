"""Store throughput and latency for recorded LLM calls (the replay cache).

Measures, on a fresh temporary SQLite database (WAL, synchronous=NORMAL, as `Store` opens it):

  (a)  calls/s of `Store.record_llm_call`, one call per transaction, exactly as the client records
       them (the call row plus its ledger row for tokens, in one transaction); local calls, so no
       dollar cost and no usd ledger row;
  (a2) the same for calls that carry a dollar cost (remote endpoints): call + tokens + usd ledger
       rows, still one transaction; on a fresh database with --rows/10 calls;
  (b)  calls/s when the same statements are batched, 1000 calls per `Store.transaction()` (the
       Store has no batch API; this is the ceiling one would buy by adding one);
  lookups: p50/p95/p99 latency of `Store.find_llm_call` at --rows rows, for random existing keys
       (hits, including building the LLMCall) and for keys never written (misses);
  concurrency: two processes recording at once into one fresh database, --rows/2 calls each;
       total rows, distinct keys, ledger rows and integrity are checked.

Rows are realistic: a ~1 KB request JSON (system + user message, params) and a ~500 B response.

    python bench/bench_store.py                 # 100k rows (about a minute or two)
    python bench/bench_store.py --rows 5000     # quick
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing as mp
import os
import random
import sys
import tempfile
import time
from pathlib import Path

from nanoresearch.store.db import Store, now
from nanoresearch.store.models import LLMCall

WORDS = (
    "model data result method experiment baseline training loss accuracy dataset evaluation "
    "hypothesis analysis sample metric variance ablation figure table section related prior "
    "approach benchmark score error signal noise feature layer token context budget plan"
).split()

INSERT_SQL = (
    "INSERT INTO llm_calls (key, user_id, run_id, stage, provider, model, request_json,"
    " response_text, finish_reason, prompt_tokens, completion_tokens, cost_usd, latency_s, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)  # the statements record_llm_call runs, used only by the batched measurement (b)
LEDGER_SQL = "INSERT INTO ledger (user_id, run_id, kind, amount, source, created_at) VALUES (?, ?, ?, ?, ?, ?)"


def text(rng: random.Random, size: int) -> str:
    out: list[str] = []
    n = 0
    while n < size:
        w = rng.choice(WORDS)
        out.append(w)
        n += len(w) + 1
    return " ".join(out)[:size]


def key_for(tag: str, i: int) -> str:
    return hashlib.sha256(f"{tag}:{i}".encode()).hexdigest()


def make_call(rng: random.Random, user_id: int, run_id: str | None, key: str, priced: bool = False) -> LLMCall:
    request = {  # the shape of LLMRequest.model_dump(): ~1 KB once serialized
        "model": "smollm2-135m",
        "messages": [
            {"role": "system", "content": text(rng, 250)},
            {"role": "user", "content": text(rng, 620)},
        ],
        "temperature": 0.0,
        "max_tokens": 512,
        "json_schema": None,
        "seed": None,
    }
    return LLMCall(
        key=key, user_id=user_id, run_id=run_id, stage=rng.choice(["ideation", "planning", "writing"]),
        provider="local", model="smollm2-135m", request=request, response_text=text(rng, 500),
        finish_reason="stop", prompt_tokens=rng.randint(100, 400), completion_tokens=rng.randint(50, 200),
        cost_usd=rng.random() / 1000 if priced else None, latency_s=rng.random() * 5,
    )


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))]


def lat(values: list[float]) -> str:
    """p50 / p95 / p99 / max in microseconds."""
    return " / ".join(f"{pct(values, q) * 1e6:8.0f}" for q in (50, 95, 99, 100))


def open_store(path: Path) -> tuple[Store, int, str]:
    store = Store(path)
    user_id = store.ensure_user("bench")
    project_id = store.ensure_project(user_id, "bench")
    run_id = f"run-{os.getpid()}"
    store.create_run(run_id, project_id, "bench", "/tmp", {})
    return store, user_id, run_id


def make_calls(user_id: int, run_id: str | None, tag: str, count: int, seed: int,
               priced: bool = False) -> list[LLMCall]:
    """Built before timing starts, so only the Store is timed."""
    rng = random.Random(seed)
    return [make_call(rng, user_id, run_id, key_for(tag, i), priced) for i in range(count)]


def record_many(store: Store, calls: list[LLMCall]) -> list[float]:
    """Record the calls one per transaction; returns per-call latencies (s)."""
    latencies: list[float] = []
    for call in calls:
        t0 = time.perf_counter()
        store.record_llm_call(call)
        latencies.append(time.perf_counter() - t0)
    return latencies


def writer_process(path: str, tag: str, count: int, seed: int, barrier, results) -> None:
    store = Store(path)
    user_id = store.ensure_user("bench")
    calls = make_calls(user_id, None, tag, count, seed)
    barrier.wait()
    t0 = time.perf_counter()
    latencies = record_many(store, calls)
    results.put((tag, time.perf_counter() - t0, latencies))
    store.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="calls to record (default 100000)")
    parser.add_argument("--lookups", type=int, default=10_000, help="lookups of each kind (default 10000)")
    parser.add_argument("--batch", type=int, default=1000, help="calls per transaction in (b) (default 1000)")
    parser.add_argument("--dir", default=None, help="folder for the temporary databases (default: system temp)")
    args = parser.parse_args()
    if args.rows < 10:
        parser.error("--rows must be >= 10")

    print(f"rows: {args.rows}   lookups: {args.lookups} hits + {args.lookups} misses   cores: {os.cpu_count()}"
          f"   load average 1 min: {os.getloadavg()[0]:.2f}")
    sample = make_call(random.Random(0), 1, None, key_for("x", 0))
    import json

    print(f"row payload: request_json {len(json.dumps(sample.request, sort_keys=True))} B,"
          f" response {len(sample.response_text)} B")
    print()

    with tempfile.TemporaryDirectory(prefix="nanoresearch-bench-", dir=args.dir) as tmp:
        tmp_path = Path(tmp)

        # (a) one call per transaction
        store, user_id, run_id = open_store(tmp_path / "a.db")
        calls = make_calls(user_id, run_id, "a", args.rows, seed=1)
        t0 = time.perf_counter()
        write_lat = record_many(store, calls)
        a_s = time.perf_counter() - t0
        tenth = max(1, args.rows // 10)
        first_rate = tenth / sum(write_lat[:tenth])
        last_rate = tenth / sum(write_lat[-tenth:])

        # lookups on the (a) database, now holding --rows rows
        rng = random.Random(2)
        hit_keys = [key_for("a", rng.randrange(args.rows)) for _ in range(args.lookups)]
        miss_keys = [key_for("never", i) for i in range(args.lookups)]
        hit_lat, miss_lat = [], []
        for key in hit_keys:
            t = time.perf_counter()
            found = store.find_llm_call(user_id, key)
            hit_lat.append(time.perf_counter() - t)
            assert found is not None and found.key == key
        for key in miss_keys:
            t = time.perf_counter()
            found = store.find_llm_call(user_id, key)
            miss_lat.append(time.perf_counter() - t)
            assert found is None
        plan = store._conn.execute(
            "EXPLAIN QUERY PLAN SELECT * FROM llm_calls WHERE user_id = ? AND key = ? ORDER BY id DESC LIMIT 1",
            (user_id, hit_keys[0]),
        ).fetchall()
        plan_text = "; ".join(row[3] for row in plan)
        db_mb = sum(f.stat().st_size for f in tmp_path.glob("a.db*")) / 1e6
        store.close()
        del calls

        # (a2) priced calls: call + tokens + usd ledger rows per transaction, a tenth of the rows
        a2_rows = max(10, args.rows // 10)
        store, user_id, run_id = open_store(tmp_path / "a2.db")
        calls = make_calls(user_id, run_id, "a2", a2_rows, seed=3, priced=True)
        t0 = time.perf_counter()
        a2_lat = record_many(store, calls)
        a2_s = time.perf_counter() - t0
        a2_ledger = store._conn.execute("SELECT COUNT(*) FROM ledger").fetchone()[0]
        assert a2_ledger == 2 * a2_rows, a2_ledger
        store.close()

        # (b) batched through Store.transaction()
        store, user_id, run_id = open_store(tmp_path / "b.db")
        calls = make_calls(user_id, run_id, "b", args.rows, seed=4)
        b_time = 0.0
        for start in range(0, args.rows, args.batch):
            batch = calls[start:start + args.batch]
            t = time.perf_counter()
            with store.transaction() as conn:
                for c in batch:  # the body of record_llm_call, many calls per transaction
                    call_id = conn.execute(INSERT_SQL, (
                        c.key, c.user_id, c.run_id, c.stage, c.provider, c.model, json.dumps(c.request, sort_keys=True),
                        c.response_text, c.finish_reason, c.prompt_tokens, c.completion_tokens, c.cost_usd,
                        c.latency_s, now(),
                    )).lastrowid
                    conn.execute(LEDGER_SQL, (c.user_id, c.run_id, "tokens", c.prompt_tokens + c.completion_tokens,
                                              f"llm_call:{call_id}", now()))
            b_time += time.perf_counter() - t
        b_count = store._conn.execute("SELECT COUNT(*) FROM llm_calls").fetchone()[0]
        assert b_count == args.rows, b_count
        store.close()
        del calls

        # concurrency: two processes, one fresh database
        conc_path = tmp_path / "c.db"
        Store(conc_path).close()  # schema created up front
        per_proc = args.rows // 2
        ctx = mp.get_context("spawn")
        barrier, results = ctx.Barrier(3), ctx.Queue()
        procs = [ctx.Process(target=writer_process, args=(str(conc_path), f"p{i}", per_proc, 10 + i, barrier, results))
                 for i in range(2)]
        for p in procs:
            p.start()
        barrier.wait()
        t0 = time.perf_counter()
        done = [results.get() for _ in procs]
        c_wall = time.perf_counter() - t0
        for p in procs:
            p.join()
            assert p.exitcode == 0, p.exitcode
        store = Store(conc_path)
        c_count = store._conn.execute("SELECT COUNT(*) FROM llm_calls").fetchone()[0]
        c_keys = store._conn.execute("SELECT COUNT(DISTINCT key) FROM llm_calls").fetchone()[0]
        c_ledger = store._conn.execute("SELECT COUNT(*) FROM ledger").fetchone()[0]
        c_ok = store.integrity_ok()
        store.close()
        c_lat = [x for _, _, lats in done for x in lats]

    w = 44
    print(f"{'record_llm_call (call + ledger rows)':<{w}} {'calls':>8} {'seconds':>8} {'calls/s':>9}   latency us p50 / p95 / p99 / max")
    print(f"{'(a) 1 call per transaction (client)':<{w}} {args.rows:>8} {a_s:>8.2f} {args.rows / a_s:>9.0f}   {lat(write_lat)}")
    print(f"{'    first 10% / last 10% of calls, calls/s':<{w}} {first_rate:>27.0f} / {last_rate:.0f}")
    print(f"{'(a2) priced calls (+ usd ledger row)':<{w}} {a2_rows:>8} {a2_s:>8.2f} {a2_rows / a2_s:>9.0f}   {lat(a2_lat)}")
    print(f"{f'(b) batched, {args.batch} calls per transaction':<{w}} {args.rows:>8} {b_time:>8.2f} {args.rows / b_time:>9.0f}")
    print(f"{'(c) 2 processes at once, 1 per transaction':<{w}} {c_count:>8} {c_wall:>8.2f} {c_count / c_wall:>9.0f}   {lat(c_lat)}")
    for tag, secs, lats in sorted(done):
        print(f"{f'    process {tag}':<{w}} {len(lats):>8} {secs:>8.2f} {len(lats) / secs:>9.0f}")
    expected = 2 * per_proc
    print(f"    rows in database: {c_count} (expected {expected}: {'OK' if c_count == expected else 'WRONG'}),"
          f" distinct keys {c_keys}, ledger rows {c_ledger}, integrity_check {'ok' if c_ok else 'FAILED'}")
    print()
    print(f"{'find_llm_call at ' + str(args.rows) + ' rows':<{w}} {'count':>8} {'':>8} {'calls/s':>9}   latency us p50 / p95 / p99 / max")
    for name, values in (("hits (random existing keys)", hit_lat), ("misses (keys never written)", miss_lat)):
        print(f"{name:<{w}} {len(values):>8} {'':>8} {len(values) / sum(values):>9.0f}   {lat(values)}")
    print(f"query plan: {plan_text}")
    print(f"database size at {args.rows} rows: {db_mb:.1f} MB (db + wal)")
    return 0 if c_count == c_keys == c_ledger == expected and c_ok else 1


if __name__ == "__main__":
    sys.exit(main())
