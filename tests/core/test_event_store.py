"""The resumable-stream store: replay after an event id, per stream, bounded."""

from __future__ import annotations

import asyncio

from mcp.server.streamable_http import EventMessage
from mcp.types import JSONRPCNotification

from servers.core.event_store import BoundedEventStore


def _note(n: int) -> JSONRPCNotification:
    return JSONRPCNotification(jsonrpc="2.0", method="notifications/progress", params={"progress": n, "progressToken": 1})


def test_replay_sends_only_later_events_of_the_same_stream_and_old_ones_are_dropped() -> None:
    async def scenario() -> tuple[str | None, list[tuple[str | None, int]], str | None]:
        store = BoundedEventStore(max_events=5)
        priming = await store.store_event("a", None)
        await store.store_event("a", _note(1))
        await store.store_event("b", _note(99))
        await store.store_event("a", _note(2))
        got: list[EventMessage] = []

        async def send(event: EventMessage) -> None:
            got.append(event)

        stream = await store.replay_events_after(priming, send)
        for n in range(3, 6):  # pushes the priming event and the first note out
            await store.store_event("a", _note(n))
        gone = await store.replay_events_after(priming, send)
        return stream, [(e.event_id, e.message.params["progress"]) for e in got], gone  # type: ignore[union-attr]

    stream, replayed, gone = asyncio.run(scenario())
    assert stream == "a"
    assert replayed == [("2", 1), ("4", 2)]
    assert gone is None
