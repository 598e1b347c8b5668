"""The bus of a shared database: local ordering, and Redis pub/sub between nodes.

`OrderedBus` is the `Publisher` when several nodes may write: what this
node's writer commits goes to its own `OrderedDelivery` at once and, through
`RedisRelay`, to every other node's. Every node subscribes to one channel per
database; a message begins with the sending node's id so a node skips its
own unread.

Redis carries speed, never truth. A publication Redis loses (it restarts, a
node cannot reach it, a node dies between commit and publish) is found missing
by the ordering's next tick and read from the database; while the relay is
down the ticks come faster. The relay reconnects by itself, with back-off.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Sequence
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from orderchat.core.ids import ConnectionId, SessionId, UserId
from orderchat.realtime.ordering import OrderedDelivery
from orderchat.services.ports import Delivery, Publication, Revocation

logger = logging.getLogger(__name__)

RETRY_MIN_S = 0.1
RETRY_MAX_S = 2.0
# Publications waiting for Redis, at most; beyond it they are dropped and the
# database fills the gap (a node cut off from Redis must not grow without bound).
MAX_PENDING = 10_000


def channel_for(database_url: str) -> str:
    """One channel per database, so that two shops may share one Redis."""
    digest = hashlib.sha256(database_url.encode()).hexdigest()[:16]
    return f"orderchat:{digest}:events"


def encode(node: str, items: Sequence[Publication]) -> bytes:
    out: list[list[Any]] = []
    for item in items:
        if isinstance(item, Delivery):
            entry = ["d", item.pos, sorted(item.recipients), item.data, item.skip_connection]
            out.append(entry if item.only_connection is None else [*entry, item.only_connection])
        elif isinstance(item, Revocation):
            out.append(["r", sorted(item.sessions)])
    return orjson.dumps({"n": node, "i": out})


def sent_by(node: str) -> bytes:
    """How every publication `encode` makes for `node` begins (orjson keeps key order):
    a node tells its own among everything on the channel without parsing any of it."""
    return orjson.dumps({"n": node})[:-1] + b","


def decode(data: bytes) -> tuple[str, list[Publication]]:
    """The sending node and its publications; raises ValueError for anything malformed."""
    try:
        body = orjson.loads(data)
        node = str(body["n"])
        items: list[Publication] = []
        for entry in body["i"]:
            if entry[0] == "d":
                _, pos, recipients, frame, skip, *only = entry
                items.append(
                    Delivery(
                        int(pos),
                        frozenset(UserId(str(u)) for u in recipients),
                        str(frame),
                        None if skip is None else ConnectionId(str(skip)),
                        ConnectionId(str(only[0])) if only else None,
                    )
                )
            elif entry[0] == "r":
                items.append(Revocation(frozenset(SessionId(str(s)) for s in entry[1])))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, IndexError) as exc:
        raise ValueError(f"malformed publication: {exc}") from exc
    return node, items


class RedisRelay:
    """Publishes this node's publications and feeds other nodes' to the ordering."""

    def __init__(self, url: str, channel: str, node: str, ordering: OrderedDelivery) -> None:
        self._url = url
        self._channel = channel
        self._node = node
        self._own = sent_by(node)
        self._ordering = ordering
        self._pending: list[bytes] = []
        self._has_pending = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._client: aioredis.Redis | None = None
        self._sending = False
        self.published = 0
        self.received = 0

    async def start(self) -> None:
        self._client = aioredis.Redis.from_url(
            self._url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=10
        )
        subscribed = asyncio.Event()
        self._tasks = [
            asyncio.create_task(self._receive(subscribed), name="redis-receive"),
            asyncio.create_task(self._send(), name="redis-send"),
        ]
        # Start-up waits a moment for the subscription, but never for Redis itself.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(subscribed.wait(), 2.0)

    async def stop(self) -> None:
        """Stop, after up to 2 s for what waits to go out (a command-line tool's revocations)."""
        if self._tasks:
            self._has_pending.set()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2.0):
                    while self._pending or self._sending:  # noqa: ASYNC110 - a short drain
                        await asyncio.sleep(0.01)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.aclose()

    def send(self, items: Sequence[Publication]) -> None:
        if len(self._pending) >= MAX_PENDING:
            return  # the database fills the gap on every node's next tick
        self._pending.append(encode(self._node, items))
        self._has_pending.set()

    async def _send(self) -> None:
        assert self._client is not None
        delay = RETRY_MIN_S
        while True:
            await self._has_pending.wait()
            self._has_pending.clear()
            batch, self._pending = self._pending, []
            if not batch:
                continue
            self._sending = True
            try:
                async with self._client.pipeline(transaction=False) as pipe:
                    for data in batch:
                        pipe.publish(self._channel, data)
                    await pipe.execute()
                self.published += len(batch)
                delay = RETRY_MIN_S
            except (RedisError, OSError) as exc:
                # Dropped, not retried: by the time Redis is back the other
                # nodes have read these events from the database.
                if self._ordering.bus_healthy:
                    logger.warning(
                        "redis publish failed (%s); delivery falls back to the database", exc
                    )
                self._ordering.bus_healthy = False
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)
            finally:
                self._sending = False

    async def _receive(self, subscribed: asyncio.Event) -> None:
        assert self._client is not None
        delay = RETRY_MIN_S
        while True:
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._channel)
                if not self._ordering.bus_healthy:
                    logger.info("redis is back; delivery is live again")
                self._ordering.bus_healthy = True
                self._ordering.wake()  # whatever was lost meanwhile is read now
                subscribed.set()
                delay = RETRY_MIN_S
                await self._listen(pubsub)
            except (RedisError, OSError) as exc:
                if self._ordering.bus_healthy:
                    logger.warning(
                        "redis unreachable (%s); delivery falls back to the database", exc
                    )
                self._ordering.bus_healthy = False
                self._ordering.wake()
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    async def _listen(self, pubsub: Any) -> None:
        async for message in pubsub.listen():
            if message.get("type") != "message":
                continue
            data = message["data"]
            if data.startswith(self._own):
                continue  # half of what a node of two hears: not worth a parse
            try:
                _, items = decode(data)
            except ValueError:
                logger.warning("ignored a malformed publication on %s", self._channel)
                continue
            self.received += 1
            self._ordering.offer(items)


class OrderedBus:
    """The Publisher of a node on a shared database."""

    def __init__(self, ordering: OrderedDelivery, relay: RedisRelay | None) -> None:
        self.ordering = ordering
        self.relay = relay

    def publish(self, items: Sequence[Publication]) -> None:
        self.ordering.offer(items)
        if self.relay is not None:
            self.relay.send(items)

    async def start(self) -> None:
        if self.relay is not None:
            await self.relay.start()
        else:
            self.ordering.bus_healthy = False  # no bus: the database is read more often
        await self.ordering.start()

    async def stop(self) -> None:
        await self.ordering.stop()
        if self.relay is not None:
            await self.relay.stop()
