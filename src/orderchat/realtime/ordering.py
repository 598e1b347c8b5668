"""Delivery in stream order when several nodes write: the hub gets nothing above the horizon.

Every node's committed events reach this node twice over: as publications
(its own writer's directly, other nodes' through Redis), which carry the
encoded frames and their recipients, and as rows in the database, which is
the truth. A connection must get its events in position order, because the
cursor it keeps says "everything up to here" (G4). So publications wait in a
buffer until the persisted horizon (storage/stream.py) passes them, and are
then handed to the hub in position order.

On every tick the node reads the horizon and then the positions of the events
committed since the last tick. An event the buffer lacks was never published
to us: its node died between commit and publish, or Redis was down or dropped
it. The local connections of that conversation's members then catch up from
the database, exactly as a reconnecting client resumes, before anything later
reaches them. So Redis makes delivery fast and the database makes it complete.

Ticks run when a publication arrives and otherwise every `POLL_S` (faster
while Redis is unreachable), which also notices the horizon moving past a
node that died mid-transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from orderchat.core.errors import DomainError
from orderchat.core.ids import ConversationId
from orderchat.realtime.hub import Hub
from orderchat.services.ports import Delivery, Publication, StreamSource

logger = logging.getLogger(__name__)

POLL_S = 1.0
POLL_WITHOUT_BUS_S = 0.25


class OrderedDelivery:
    """Buffers durable publications and releases them to the hub up to the horizon."""

    def __init__(self, hub: Hub, source: StreamSource) -> None:
        self._hub = hub
        self._source = source
        self._buffer: dict[int, list[Delivery]] = {}
        self._released = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # Checked as well as cancelling: the database driver may swallow a
        # cancellation that arrives while a connection goes back to its pool.
        self._stopping = False
        self.bus_healthy = True
        self.caught_up_connections = 0
        self.missed_events = 0

    @property
    def released(self) -> int:
        return self._released

    async def start(self) -> None:
        self._released = await self._source.horizon()
        self._task = asyncio.create_task(self._run(), name="ordered-delivery")

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._wake.set()
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def offer(self, items: Sequence[Publication]) -> None:
        """Take publications from any node; durable ones wait for the horizon."""
        immediate: list[Publication] = []
        for item in items:
            if isinstance(item, Delivery) and item.pos > 0:
                if item.pos > self._released:
                    self._buffer.setdefault(item.pos, []).append(item)
            else:
                immediate.append(item)
        if immediate:
            self._hub.dispatch(immediate)
        self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    async def _run(self) -> None:
        while not self._stopping:
            timeout = POLL_S if self.bus_healthy else POLL_WITHOUT_BUS_S
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            self._wake.clear()
            if self._stopping:
                return
            try:
                await self.tick()
            except DomainError:  # the database is unavailable: try again next tick
                logger.debug("delivery tick skipped", exc_info=True)
            except Exception:
                logger.exception("delivery tick failed")

    async def tick(self) -> None:
        committed = await self._source.committed_after(self._released)
        horizon = committed.horizon
        if horizon <= self._released:
            return
        ready = sorted(p for p in self._buffer if p <= horizon)
        missing = [(p, c) for p, c in committed.events if p not in self._buffer]
        if missing:
            self.missed_events += len(missing)
            await self._catch_up(sorted({c for _, c in missing}), horizon)
        items: list[Publication] = []
        for pos in ready:
            items.extend(self._buffer.pop(pos))
        self._released = horizon
        if items:
            self._hub.dispatch(items)

    async def _catch_up(self, convs: Sequence[ConversationId], horizon: int) -> None:
        """Bring the members of these conversations up to `horizon` from the database."""
        users = await self._source.members_of(convs)
        for sink in self._hub.sinks_of(users):
            self.caught_up_connections += 1
            await sink.catch_up(horizon)
