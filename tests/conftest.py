"""Every test gets its own home folder and store, and no way to reach the network.

The network guard refuses any socket connection that is not to loopback, so a provider that
would call a real API fails loudly instead of silently depending on the internet.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from nanoresearch.config import Settings, load_settings
from nanoresearch.llm.client import LLM
from nanoresearch.store import Store

# One session-wide SLURM cluster fixture (`slurm_cluster`) for every test that needs the daemons.
pytest_plugins = ["compute.slurm_cluster"]

KEY_VARIABLES = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "DEEPSEEK_API_KEY")


def _is_loopback(address: object) -> bool:
    if isinstance(address, tuple) and address:
        host = address[0]
        if host in ("localhost",):
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False
    return isinstance(address, (str, bytes))  # unix sockets


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    real_connect = socket.socket.connect

    def guarded_connect(self: socket.socket, address: object) -> object:
        if not _is_loopback(address):
            raise ConnectionRefusedError(f"tests may not reach the network ({address!r})")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "home"
    monkeypatch.setenv("NANORESEARCH_HOME", str(folder))
    monkeypatch.setenv("NANORESEARCH_USER", "alice")
    for name in KEY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name in list(__import__("os").environ):
        if name.startswith("NANORESEARCH_") and name not in ("NANORESEARCH_HOME", "NANORESEARCH_USER"):
            monkeypatch.delenv(name)
    return folder


@pytest.fixture
def settings(home: Path) -> Settings:
    return load_settings()


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    with Store(settings.db_path) as db:
        yield db


@pytest.fixture
def llm(settings: Settings, store: Store) -> LLM:
    return LLM(settings, store, store.ensure_user(settings.user))
