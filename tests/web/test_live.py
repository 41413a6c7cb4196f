"""Live updates: the event stream speaks when a step or trial changes, and only then."""

from __future__ import annotations

import asyncio

import httpx
from web_world import World, add_trial

from nanoresearch.web.live import changes
from nanoresearch.web.queries import fingerprint


def test_the_stream_emits_a_change_when_a_step_is_saved_and_stops_when_the_client_leaves(world: World) -> None:
    async def scenario() -> list[str]:
        left = asyncio.Event()

        async def disconnected() -> bool:
            return left.is_set()

        stream = changes(lambda: fingerprint(world.store, world.run), disconnected, poll_s=0.01)
        frames = [await anext(stream)]
        world.store.save_step(world.run.id, "analysis", "tables", "running")
        frames.append(await anext(stream))
        add_trial(world.store, world.run, hypothesis="another")
        frames.append(await anext(stream))
        left.set()
        frames.extend([frame async for frame in stream])
        return frames

    frames = asyncio.run(scenario())
    assert frames[0].startswith("retry: ") and "event: ready\n" in frames[0]
    assert frames[1:] == ["event: change\ndata: {}\n\n"] * 2  # one per change, nothing after leaving


def test_the_events_route_streams_over_http(served: str, world: World) -> None:
    with httpx.Client(timeout=10) as client, client.stream("GET", f"{served}/runs/{world.run.id}/events") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.iter_lines()
        assert next(lines).startswith("retry: ")
        assert [next(lines) for _ in range(3)] == ["event: ready", "data: {}", ""]
        world.store.save_step(world.run.id, "analysis", "tables", "done")
        assert [next(lines) for _ in range(2)] == ["event: change", "data: {}"]
