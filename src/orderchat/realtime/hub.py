"""The local connections of this process, indexed by user and by session.

The hub does no I/O: it offers each published frame to the bounded queue of
every connection that should have it and returns at once. A connection whose
queue is full drops itself (see `connection.py`); the hub never waits for one.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from typing import Protocol, TypeVar

from orderchat.core.ids import ConnectionId, SessionId, UserId
from orderchat.services.ports import Delivery, Publication, Revocation

logger = logging.getLogger(__name__)

K = TypeVar("K")


class Sink(Protocol):
    id: ConnectionId
    user_id: UserId
    session_id: SessionId
    device: str
    connected_at_ms: int

    def offer(self, pos: int, data: str) -> None:
        """Take a frame without waiting, or drop the connection if it cannot."""

    def revoke(self) -> None:
        """The session was signed out: close the connection."""

    async def catch_up(self, upto: int) -> None:
        """Read the events up to `upto` this connection missed from the database."""


class Watcher(Protocol):
    """Told of every connection that comes and goes (realtime/presence.py)."""

    def connected(self, sink: Sink) -> None: ...

    def disconnected(self, sink: Sink) -> None: ...


class Hub:
    def __init__(self) -> None:
        self._by_user: dict[UserId, set[Sink]] = defaultdict(set)
        self._by_session: dict[SessionId, set[Sink]] = defaultdict(set)
        self.watcher: Watcher | None = None

    @property
    def connection_count(self) -> int:
        return sum(len(sinks) for sinks in self._by_user.values())

    def attach(self, sink: Sink) -> None:
        self._by_user[sink.user_id].add(sink)
        self._by_session[sink.session_id].add(sink)
        if self.watcher is not None:
            self.watcher.connected(sink)

    def detach(self, sink: Sink) -> None:
        known = sink in self._by_user.get(sink.user_id, ())
        _discard(self._by_user, sink.user_id, sink)
        _discard(self._by_session, sink.session_id, sink)
        if known and self.watcher is not None:
            self.watcher.disconnected(sink)

    @property
    def users(self) -> frozenset[UserId]:
        return frozenset(u for u, sinks in self._by_user.items() if sinks)

    def sinks_of(self, users: set[UserId] | frozenset[UserId]) -> list[Sink]:
        """The connections of these users on this node."""
        return [sink for u in users for sink in tuple(self._by_user.get(u, ()))]

    def dispatch(self, items: Sequence[Publication]) -> None:
        for item in items:
            if isinstance(item, Delivery):
                self._deliver(item)
            elif isinstance(item, Revocation):
                self._revoke(item)

    def _deliver(self, delivery: Delivery) -> None:
        if delivery.only_connection is not None:
            for user in delivery.recipients:
                for sink in tuple(self._by_user.get(user, ())):
                    if sink.id == delivery.only_connection:
                        sink.offer(delivery.pos, delivery.data)
            return
        # Walk whichever side is smaller: a 2,000-member channel with ten
        # people online should cost ten offers, not 2,000 look-ups.
        if len(delivery.recipients) <= len(self._by_user):
            targets = [self._by_user.get(u, ()) for u in delivery.recipients]
        else:
            targets = [s for u, s in self._by_user.items() if u in delivery.recipients]
        for sinks in targets:
            for sink in tuple(sinks):
                if sink.id != delivery.skip_connection:
                    sink.offer(delivery.pos, delivery.data)

    def _revoke(self, revocation: Revocation) -> None:
        for session_id in revocation.sessions:
            for sink in tuple(self._by_session.get(session_id, ())):
                sink.revoke()


def _discard(index: dict[K, set[Sink]], key: K, sink: Sink) -> None:
    sinks = index.get(key)
    if sinks is not None:
        sinks.discard(sink)
        if not sinks:
            del index[key]
