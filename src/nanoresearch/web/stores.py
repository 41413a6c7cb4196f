"""One store connection per server thread.

The server answers requests from a pool of threads. A SQLite connection shared between them lets one
thread read another's half-done transaction (a write it may still roll back), so each thread opens its
own connection to the same database file; WAL mode lets them read side by side.
"""

from __future__ import annotations

import threading
from pathlib import Path

from nanoresearch.store import Store


class ThreadStores:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._opened: list[Store] = []
        self._lock = threading.Lock()

    def get(self) -> Store:
        """This thread's store, opened on first use."""
        store = getattr(self._local, "store", None)
        if store is None:
            store = Store(self.path)
            self._local.store = store
            with self._lock:
                self._opened.append(store)
        return store

    def close(self) -> None:
        with self._lock:
            opened, self._opened = self._opened, []
        for store in opened:
            store.close()
