"""Resumable HTTP streams: a bounded in-memory store of the SSE events a server sent.

With it, every POST stream starts with a priming event (an id and a ``retry`` hint), and a client
that lost the connection mid-call (a long ``kb_ingest``) reconnects with ``Last-Event-ID`` and gets
what it missed. Events live in memory only, oldest dropped first; a restarted server has none."""

from __future__ import annotations

from collections import OrderedDict

from mcp.server.streamable_http import EventCallback, EventId, EventMessage, EventStore, StreamId
from mcp.types import JSONRPCMessage

RETRY_MS = 1000  # how long a client waits before reconnecting to a dropped stream


class BoundedEventStore(EventStore):
    """The last ``max_events`` events of all streams, replayable per stream after a given event id."""

    def __init__(self, max_events: int = 2000) -> None:
        self.max_events = max_events
        self._events: OrderedDict[int, tuple[StreamId, JSONRPCMessage | None]] = OrderedDict()
        self._next = 0

    async def store_event(self, stream_id: StreamId, message: JSONRPCMessage | None) -> EventId:
        self._next += 1
        self._events[self._next] = (stream_id, message)
        while len(self._events) > self.max_events:
            self._events.popitem(last=False)
        return str(self._next)

    async def replay_events_after(self, last_event_id: EventId, send_callback: EventCallback) -> StreamId | None:
        try:
            last = int(last_event_id)
        except ValueError:
            return None
        if last not in self._events:
            return None
        stream_id = self._events[last][0]
        for event_id, (stream, message) in list(self._events.items()):
            if event_id > last and stream == stream_id and message is not None:
                await send_callback(EventMessage(message, str(event_id)))
        return stream_id
