"""Which devices of a person are connected right now, on whichever node.

One node knows its own connections (the hub). With Redis, every node also
keeps its connections in a hash per user, `{prefix}:presence:{user}`, one
field per connection with the device's name, the node and when the entry was
last confirmed. Each node re-confirms its entries every `HEARTBEAT_S`; entries
older than `STALE_S` are ignored (their node died), and the hash expires by
itself once nobody confirms it. Presence is a hint for people ("on the phone
now"), never a delivery decision: delivery follows the connections themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from orderchat.core.ids import UserId
from orderchat.realtime.hub import Hub, Sink

logger = logging.getLogger(__name__)

HEARTBEAT_S = 20.0
STALE_S = 3 * HEARTBEAT_S


@dataclass(frozen=True, slots=True)
class Device:
    device: str
    since_ms: int
    node: str


class LocalPresence:
    """This node's connections only: the whole truth when there is one node."""

    def __init__(self, hub: Hub, node: str) -> None:
        self._hub = hub
        self._node = node

    def connected(self, sink: Sink) -> None:
        return None

    def disconnected(self, sink: Sink) -> None:
        return None

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def devices(self, users: Iterable[UserId]) -> dict[UserId, list[Device]]:
        return self._local(users)

    def _local(self, users: Iterable[UserId]) -> dict[UserId, list[Device]]:
        found: dict[UserId, list[Device]] = {}
        for user in users:
            sinks = self._hub.sinks_of({user})
            found[user] = sorted(
                (Device(s.device, s.connected_at_ms, self._node) for s in sinks),
                key=lambda d: d.since_ms,
            )
        return found


class RedisPresence(LocalPresence):
    """Every node's connections, through Redis; this node's alone while Redis is away."""

    def __init__(self, hub: Hub, node: str, url: str, prefix: str) -> None:
        super().__init__(hub, node)
        self._client = aioredis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2)
        self._prefix = prefix
        self._changes: list[tuple[Sink, bool]] = []
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def _key(self, user: UserId) -> str:
        return f"{self._prefix}:presence:{user}"

    def connected(self, sink: Sink) -> None:
        self._changes.append((sink, True))
        self._changed.set()

    def disconnected(self, sink: Sink) -> None:
        self._changes.append((sink, False))
        self._changed.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="presence")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):
            await self._client.aclose()

    async def _run(self) -> None:
        next_heartbeat = 0.0
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), HEARTBEAT_S)
            self._changed.clear()
            changes, self._changes = self._changes, []
            now = time.monotonic()
            if now >= next_heartbeat:  # every entry of this node confirmed again
                changes = [(s, True) for s in self._hub.sinks_of(self._hub.users)] + changes
                next_heartbeat = now + HEARTBEAT_S
            try:
                await self._write(changes)
            except (RedisError, OSError) as exc:
                logger.debug("presence not written: %s", exc)
                next_heartbeat = 0.0  # write everything once Redis answers again

    async def _write(self, changes: list[tuple[Sink, bool]]) -> None:
        if not changes:
            return
        seen_ms = int(time.time() * 1000)
        async with self._client.pipeline(transaction=False) as pipe:
            for sink, present in changes:
                key = self._key(sink.user_id)
                if present:
                    entry = {"d": sink.device, "s": sink.connected_at_ms, "n": self._node}
                    pipe.hset(key, sink.id, orjson.dumps({**entry, "seen": seen_ms}))
                    pipe.expire(key, int(STALE_S))
                else:
                    pipe.hdel(key, sink.id)
            await pipe.execute()

    async def devices(self, users: Iterable[UserId]) -> dict[UserId, list[Device]]:
        wanted = list(users)
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for user in wanted:
                    pipe.hgetall(self._key(user))
                found = await pipe.execute()
        except (RedisError, OSError):
            return self._local(wanted)
        oldest_ms = int(time.time() * 1000) - int(STALE_S * 1000)
        result: dict[UserId, list[Device]] = {}
        for user, entries in zip(wanted, found, strict=True):
            devices = []
            for raw in entries.values():
                entry = orjson.loads(raw)
                if entry.get("seen", 0) >= oldest_ms:
                    devices.append(Device(str(entry["d"]), int(entry["s"]), str(entry["n"])))
            result[user] = sorted(devices, key=lambda d: d.since_ms)
        return result
