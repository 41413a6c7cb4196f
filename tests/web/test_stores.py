"""The server's threads each read the store through their own connection: one thread's open
transaction (a write it may still roll back) is never what another thread's page shows."""

from __future__ import annotations

import threading

from fastapi import FastAPI
from fastapi.testclient import TestClient
from web_world import World

from nanoresearch.web.stores import ThreadStores


def test_each_thread_gets_its_own_store_and_close_closes_them_all(world: World) -> None:
    stores = ThreadStores(world.settings.db_path)
    mine = stores.get()
    assert stores.get() is mine
    seen: list[object] = []
    thread = threading.Thread(target=lambda: seen.append(stores.get()))
    thread.start()
    thread.join()
    assert seen[0] is not mine
    stores.close()
    assert stores._opened == []


def test_a_page_never_shows_another_threads_uncommitted_write(dashboard: FastAPI, world: World) -> None:
    client = TestClient(dashboard, base_url="http://127.0.0.1")
    # A write in progress on the app's own connection for this thread, as a feedback POST would hold it.
    with dashboard.state.stores.get().transaction() as conn:
        conn.execute("UPDATE runs SET goal = 'half-written goal' WHERE id = ?", (world.run.id,))
        during = client.get("/").text  # answered from one of the server's worker threads
    assert "half-written goal" not in during
    assert "half-written goal" in client.get("/").text  # committed: now everyone sees it
