"""What services need from the outside, as Protocols the edges implement."""

from __future__ import annotations

import os
import random
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from orderchat.core.ids import ConnectionId, ConversationId, IdMinter, SessionId, UserId


@dataclass(frozen=True, slots=True)
class Delivery:
    """One encoded frame for every connection of the recipients.

    `pos` is the event's stream position, 0 for ephemeral frames. The frame is
    encoded once here and the same bytes go to every connection.
    """

    pos: int
    recipients: frozenset[UserId]
    data: str
    skip_connection: ConnectionId | None = None
    # Only this one connection of the recipients (a call's signal to a joined device).
    only_connection: ConnectionId | None = None


@dataclass(frozen=True, slots=True)
class Revocation:
    """Sessions that were signed out: their live connections must close."""

    sessions: frozenset[SessionId]


Publication = Delivery | Revocation


class Publisher(Protocol):
    def publish(self, items: Sequence[Publication]) -> None:
        """Hand committed events to every node's hub, in the order given."""


@dataclass(frozen=True, slots=True)
class Committed:
    """What the database says was committed in (after, horizon]: (position, conversation)."""

    horizon: int
    events: Sequence[tuple[int, ConversationId]]


class StreamSource(Protocol):
    """What ordered delivery (realtime/ordering.py) reads from a shared database."""

    async def committed_after(self, after: int) -> Committed: ...

    async def members_of(self, convs: Sequence[ConversationId]) -> set[UserId]: ...

    async def horizon(self) -> int: ...


class Clock(Protocol):
    def now_ms(self) -> int: ...

    def monotonic_s(self) -> float: ...


class SystemClock:
    def now_ms(self) -> int:
        return int(time.time() * 1000)

    def monotonic_s(self) -> float:
        return time.monotonic()


# Generators handed out by `os_seeded_random`; held weakly, so that a server
# built and dropped (as tests do) leaves nothing behind.
_reseed_after_fork: weakref.WeakSet[random.Random] = weakref.WeakSet()


def _reseed_all() -> None:
    for rng in _reseed_after_fork:
        rng.seed(os.urandom(32))


os.register_at_fork(after_in_child=_reseed_all)


def os_seeded_random() -> random.Random:
    """A generator seeded from the OS, and reseeded in every forked child.

    Two processes forked from one server must never mint the same ids, so the
    child's generators take a fresh seed before anything else runs in it.
    """
    rng = random.Random(os.urandom(32))
    _reseed_after_fork.add(rng)
    return rng


def system_ids(clock: Clock) -> IdMinter:
    """The process's id minter: the clock's milliseconds and OS-seeded bits."""
    return IdMinter(clock.now_ms, os_seeded_random())
