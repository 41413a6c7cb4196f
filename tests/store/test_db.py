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
from nanoresearch.store.db import migrations
from nanoresearch.store.models import LLMCall

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
        store.create_run("r1", project_id=999, goal="g", workspace="/w", config={})


def test_runs_steps_feedback_and_ledger(store):
    user = store.ensure_user("alice")
    project = store.ensure_project(user, "p", "goal")
    store.create_run("r1", project, "goal", "/w", {"a": 1})
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
