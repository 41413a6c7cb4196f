"""Fixtures for the dashboard tests: the tiny world, and the app served on a free loopback port."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from web_world import World, build_world, free_port

from nanoresearch.config import Settings
from nanoresearch.store import Store


@pytest.fixture
def world(settings: Settings, store: Store) -> World:
    return build_world(settings, store)


@pytest.fixture
def served(world: World) -> Iterator[str]:
    """The dashboard on a free loopback port in a thread (real uvicorn, real sockets): its base URL."""
    import uvicorn

    from nanoresearch.web.app import create_app

    port = free_port()
    config = uvicorn.Config(create_app(world.store, world.settings.user), host="127.0.0.1", port=port,
                            log_level="warning", timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the dashboard server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
