"""The events waiting for the application: bounded, in order, ending once.

The client's reader puts events in; the application takes them with
`async for`. The cursor the application may persist moves only as it takes
events, so it never runs ahead of what the application has seen.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

from orderchat.client._errors import ClientError
from orderchat.client._models import CommandReply, Event, MessageReceived, UserTyping
from orderchat.core.ids import ConversationId


@dataclass(frozen=True, slots=True)
class _End:
    """The last item in the buffer: the stream ends, with `error` if it failed."""

    error: ClientError | None


_Item = tuple[Event | None, str | None] | _End


class EventBuffer:
    def __init__(
        self,
        max_events: int,
        cursor: str | None,
        last_seqs: Mapping[ConversationId, int] | None,
    ) -> None:
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._room = asyncio.Event()
        self._max_events = max_events
        self._ended = False
        # The cursor of the last item the application took: what it may persist.
        self.cursor = cursor
        self.taken_seqs: dict[ConversationId, int] = dict(last_seqs or {})

    async def put(self, event: Event | None, cursor: str | None) -> None:
        """Add an event (or only a cursor to move past), waiting while the buffer is full:
        the reader stops reading, and the server eventually drops a client that far behind."""
        while self._queue.qsize() >= self._max_events:
            self._room.clear()
            await self._room.wait()
        self._queue.put_nowait((event, cursor))

    def offer_typing(self, event: UserTyping | CommandReply) -> None:
        """Typing notices (and copies of command replies, which the asking call also
        returns) are advisory: dropped, never waited for, when the buffer is full."""
        if self._queue.qsize() < self._max_events:
            self._queue.put_nowait((event, None))

    def end(self, error: ClientError | None) -> None:
        """End the stream after what is buffered, raising `error` if given (once)."""
        if not self._ended:
            self._ended = True
            self._queue.put_nowait(_End(error))

    def __aiter__(self) -> EventBuffer:
        return self

    async def __anext__(self) -> Event:
        while True:
            item = await self._queue.get()
            self._room.set()
            if isinstance(item, _End):
                self._queue.put_nowait(item)  # every later call ends the same way
                if item.error is not None:
                    raise item.error
                raise StopAsyncIteration
            event, cursor = item
            if cursor is not None:
                self.cursor = cursor
            if isinstance(event, MessageReceived):
                message = event.message
                if message.seq > self.taken_seqs.get(message.conv, 0):
                    self.taken_seqs[message.conv] = message.seq
            if event is not None:
                return event
