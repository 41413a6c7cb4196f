import multiprocessing
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from nanoresearch.errors import StoreError
from nanoresearch.store import Store
from nanoresearch.store.budget import Budget
from nanoresearch.store.db import migrations
from nanoresearch.store.models import LLMCall, RunOptions

TABLES = {"users", "projects", "runs", "steps", "llm_calls", "feedback", "ledger"}


def make_call(user_id: int, key: str, run_id: str | None = None, cost: float | None = None) -> LLMCall:
    return LLMCall(key=key, user_id=user_id, run_id=run_id, provider="local", model="m",
                   request={"messages": [key]}, response_text=f"answer {key}",
                   prompt_tokens=3, completion_tokens=4, cost_usd=cost)


def test_migrates_an_empty_database(tmp_path):
    with Store(tmp_path / "db.sqlite") as store:
        assert store.schema_version() == migrations()[-1][0]
        names = {r[0] for r in store._conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert TABLES <= names
        assert store._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store._conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_reopening_does_not_migrate_twice(tmp_path):
    Store(tmp_path / "db.sqlite").close()
    with Store(tmp_path / "db.sqlite") as store:
        assert store.schema_version() == migrations()[-1][0]


def test_foreign_keys_are_enforced(store):
    with pytest.raises(sqlite3.IntegrityError):
        store.create_run("r1", project_id=999, goal="g", workspace="/w")


def test_runs_steps_feedback_and_ledger(store):
    user = store.ensure_user("alice")
    project = store.ensure_project(user, "p", "goal")
    store.create_run("r1", project, "goal", "/w", RunOptions(executor="slurm", budget=Budget(trials=3)), kind="trials")
    run = store.get_run("r1")
    assert (run.kind, run.options.executor, run.options.budget) == ("trials", "slurm", Budget(trials=3))
    store.save_step("r1", "ideation", "query", "running")
    store.save_step("r1", "ideation", "query", "done", {"n": 3})
    assert [(s.step, s.status, s.payload) for s in store.steps("r1")] == [("query", "done", {"n": 3})]
    store.add_feedback(user, "r1", "ideation", "comment", "more ablations")
    assert store.feedback(user, "r1")[0].text == "more ablations"
    store.record_llm_call(make_call(user, "k1", "r1", cost=0.5))
    store.charge(user, "r1", "gpu_hours", 1.5, "trial:1")
    assert store.spent(user, "r1") == {"tokens": 7, "usd": 0.5, "gpu_hours": 1.5}
    assert [r.id for r in store.list_runs(user)] == ["r1"]
    assert store.list_runs(store.ensure_user("bob")) == []


def test_recordings_are_scoped_to_their_user(store):
    alice, bob = store.ensure_user("alice"), store.ensure_user("bob")
    store.record_llm_call(make_call(alice, "same-key"))
    assert store.find_llm_call(alice, "same-key").response_text == "answer same-key"
    assert store.find_llm_call(bob, "same-key") is None


def test_a_failed_call_is_kept_and_charged_but_not_found_as_an_answer(store):
    user = store.ensure_user("alice")
    store.record_llm_call(make_call(user, "k").model_copy(update={"failure": "schema violation at score"}))
    assert store.find_llm_call(user, "k") is None
    assert store.find_llm_call(user, "k", include_failed=True).failure == "schema violation at score"
    assert [c.failure for c in store.llm_calls(user)] == ["schema violation at score"]
    assert store.spent(user)["tokens"] == 7


def test_a_usable_recording_comes_before_a_later_failed_one(store):
    user = store.ensure_user("alice")
    store.record_llm_call(make_call(user, "k"))
    store.record_llm_call(make_call(user, "k").model_copy(update={"response_text": "bad", "failure": "cut off"}))
    assert store.find_llm_call(user, "k").response_text == "answer k"
    assert store.find_llm_call(user, "k", include_failed=True).response_text == "answer k"


def test_unwritable_location_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StoreError, match="cannot open the database"):
        Store(blocker / "db.sqlite")


def _write_many(path: str, user: str, count: int) -> None:
    with Store(path) as store:
        user_id = store.ensure_user(user)
        for i in range(count):
            store.record_llm_call(make_call(user_id, f"{user}-{i}"))


def test_two_processes_writing_at_once_lose_nothing(tmp_path):
    path = str(tmp_path / "db.sqlite")
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_write_many, args=(path, name, 150)) for name in ("a", "b")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
        assert worker.exitcode == 0
    with Store(path) as store:
        assert store._conn.execute("SELECT COUNT(*) FROM llm_calls").fetchone()[0] == 300
        assert store._conn.execute("SELECT COUNT(*) FROM ledger").fetchone()[0] == 300
        assert store.integrity_ok()


WRITER = textwrap.dedent(
    """
    import sys
    from nanoresearch.store import Store
    from nanoresearch.store.models import LLMCall
    store = Store(sys.argv[1])
    user = store.ensure_user("w")
    i = 0
    while True:
        store.record_llm_call(LLMCall(key=f"k{i}", user_id=user, provider="local", model="m",
                                      request={"pad": "x" * 2000}, response_text="y" * 2000,
                                      prompt_tokens=1, completion_tokens=1))
        i += 1
        if i == 20:
            print("writing", flush=True)
    """
)


def test_a_killed_writer_leaves_a_consistent_database(tmp_path):
    path = tmp_path / "db.sqlite"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline().strip() == "writing"
    time.sleep(0.5)  # let it get well into its stream of transactions
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    with Store(path) as store:
        assert store.integrity_ok()
        calls = store._conn.execute("SELECT COUNT(*) FROM llm_calls").fetchone()[0]
        charges = store._conn.execute("SELECT COUNT(*) FROM ledger").fetchone()[0]
        assert calls >= 20
        assert calls == charges  # each call and its charge landed together or not at all
        store.record_llm_call(make_call(store.ensure_user("after"), "still-writable"))


def test_trials_of_an_older_database_survive_the_failure_label_migration(tmp_path):
    """0005 rebuilds `trials` (SQLite cannot change a CHECK): rows, lineage links and the index stay."""
    path = tmp_path / "db.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA foreign_keys = ON")
    for number, sql in migrations():
        if number >= 5:
            break
        conn.executescript(sql)
        conn.execute(f"PRAGMA user_version = {number}")
    conn.executescript("""
        INSERT INTO users VALUES (1, 'ann', 't');
        INSERT INTO projects VALUES (1, 1, 'p', 'g', 't');
        INSERT INTO runs VALUES ('r1', 1, 'g', 'done', '/w', '{}', 't', 't');
        INSERT INTO trials (id, run_id, parent_id, proposer, command, executor, status, failure, created_at)
            VALUES (1, 'r1', NULL, 'baseline', 'python train.py', 'local', 'done', NULL, 't'),
                   (2, 'r1', 1, 'tuner', 'python train.py', 'local', 'failed', 'infra', 't');
    """)
    with pytest.raises(sqlite3.IntegrityError):  # the old CHECK refuses the new labels
        conn.execute("UPDATE trials SET failure = 'disk' WHERE id = 2")
    conn.close()
    with Store(path) as store:
        assert [(t.id, t.parent_id, t.failure) for t in store.trials("r1")] == [(1, None, None), (2, 1, "infra")]
        store._conn.execute("UPDATE trials SET failure = 'bad_proposal' WHERE id = 2")
        with pytest.raises(sqlite3.IntegrityError):  # still a foreign key to itself
            store._conn.execute("UPDATE trials SET parent_id = 99 WHERE id = 2")
        assert store._conn.execute("PRAGMA foreign_key_check").fetchall() == []
        indexes = {r[0] for r in store._conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert "trials_by_run" in indexes
