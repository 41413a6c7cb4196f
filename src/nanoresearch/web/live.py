"""Server-sent events: one `change` event each time the run's steps or trials change."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

POLL_S = 0.5  # the store is SQLite on disk: polling it is cheap and needs no hook in the pipeline
RETRY_MS = 2000  # how soon the browser's EventSource reconnects after the connection drops


async def changes(look: Callable[[], str], disconnected: Callable[[], Awaitable[bool]],
                  poll_s: float = POLL_S) -> AsyncIterator[str]:
    """SSE frames: `ready` (with how soon to reconnect), then one `change` per change until the client leaves.

    `look` reads the run's fingerprint (queries.fingerprint), in a worker thread: it blocks on the store.
    The page refreshes on `ready` too, so a change made while it was disconnected is not lost."""
    # Taken before the first frame: a change made while the client reads that frame is still seen.
    seen = await asyncio.to_thread(look)
    yield f"retry: {RETRY_MS}\nevent: ready\ndata: {{}}\n\n"
    while not await disconnected():
        await asyncio.sleep(poll_s)
        current = await asyncio.to_thread(look)
        if current != seen:
            seen = current
            yield "event: change\ndata: {}\n\n"
