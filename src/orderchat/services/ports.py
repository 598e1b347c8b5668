"""What services need from the outside, as Protocols the edges implement."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from orderchat.core.ids import SessionId, UserId


@dataclass(frozen=True, slots=True)
class Delivery:
    """One encoded frame for every connection of the recipients.

    `pos` is the event's stream position, 0 for ephemeral frames. The frame is
    encoded once here and the same bytes go to every connection.
    """

    pos: int
    recipients: frozenset[UserId]
    data: str
    skip_connection: str | None = None


@dataclass(frozen=True, slots=True)
class Revocation:
    """Sessions that were signed out: their live connections must close."""

    sessions: frozenset[SessionId]


Publication = Delivery | Revocation


class Publisher(Protocol):
    def publish(self, items: Sequence[Publication]) -> None:
        """Hand committed events to every node's hub, in the order given."""


class Clock(Protocol):
    def now_ms(self) -> int: ...

    def monotonic_s(self) -> float: ...


class SystemClock:
    def now_ms(self) -> int:
        return int(time.time() * 1000)

    def monotonic_s(self) -> float:
        return time.monotonic()
