"""Typed, time-sortable identifiers made without asking the database.

Ids are minted in the process (not by an autoincrement column) so that several
server processes sharing one PostgreSQL never coordinate for them, and so that
a row's id is known before its transaction commits.

An id is `prefix_` followed by 21 Crockford base32 characters: 45 bits of
milliseconds, then 60 random bits, so ids of one kind sort by creation time.
Like the rest of `core/`, this module reads no clock and owns no randomness:
an `IdMinter` is given both by the edge that wires the process (see
`services/ports.py`), and tests give it a fixed clock and a seeded generator.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import NewType

UserId = NewType("UserId", str)
ConversationId = NewType("ConversationId", str)
MessageId = NewType("MessageId", str)
SessionId = NewType("SessionId", str)
OrderId = NewType("OrderId", str)
"""An order (`o_…`); its human number (`ORD-…`) is a different value."""
SkuCode = NewType("SkuCode", str)
"""A stock-keeping unit's code, chosen by the shop (`TENT-2P-GRN`)."""
UploadId = NewType("UploadId", str)
ConfirmationItemId = NewType("ConfirmationItemId", str)
IssueId = NewType("IssueId", str)
PaymentId = NewType("PaymentId", str)
MovementId = NewType("MovementId", str)
ConnectionId = NewType("ConnectionId", str)

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case
_TIME_CHARS = 9  # 45 bits of milliseconds: good until the year 3084
_RANDOM_CHARS = 12  # 60 random bits: collisions are not a practical concern
_TIME_MASK = (1 << 45) - 1
# Every message needs an id, so the 105 bits are spelled ten bits (two
# characters) at a time from a table, most significant first.
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]


def spell_id(prefix: str, ms: int, random_bits: int) -> str:
    """The id of `prefix` for a millisecond and 60 random bits."""
    value = (ms & _TIME_MASK) << 60 | random_bits
    pairs = _PAIRS
    return "".join(
        (
            prefix,
            "_",
            _ALPHABET[value >> 100],
            pairs[(value >> 90) & 1023],
            pairs[(value >> 80) & 1023],
            pairs[(value >> 70) & 1023],
            pairs[(value >> 60) & 1023],
            pairs[(value >> 50) & 1023],
            pairs[(value >> 40) & 1023],
            pairs[(value >> 30) & 1023],
            pairs[(value >> 20) & 1023],
            pairs[(value >> 10) & 1023],
            pairs[value & 1023],
        )
    )


class IdMinter:
    """Mints ids from a clock and a random generator that its owner provides.

    Ids need to be unique, not secret (tokens come from `secrets`), so a
    `random.Random` seeded from the OS serves, and saves a getrandom() system
    call per id. Whoever owns the process reseeds it after a fork, so that two
    processes never mint the same sequence.
    """

    __slots__ = ("_getrandbits", "_now_ms")

    def __init__(self, now_ms: Callable[[], int], rng: random.Random) -> None:
        self._now_ms = now_ms
        self._getrandbits = rng.getrandbits

    def new(self, prefix: str, now_ms: int | None = None) -> str:
        """`prefix_` and a token ordered by `now_ms` (the clock's time if None)."""
        ms = self._now_ms() if now_ms is None else now_ms
        return spell_id(prefix, ms, self._getrandbits(60))

    def user(self) -> UserId:
        return UserId(self.new("u"))

    def conversation(self) -> ConversationId:
        return ConversationId(self.new("c"))

    def message(self, now_ms: int) -> MessageId:
        """A message's id, at the time its transaction gives it (the message's `ts`)."""
        # Once per message: the writer's transaction already read the clock,
        # so this path skips both the clock and the indirection of `new`.
        return MessageId(spell_id("m", now_ms, self._getrandbits(60)))

    def session(self) -> SessionId:
        return SessionId(self.new("s"))

    def order(self) -> OrderId:
        return OrderId(self.new("o"))

    def upload(self, now_ms: int | None = None) -> UploadId:
        return UploadId(self.new("up", now_ms))

    def confirmation_item(self, now_ms: int | None = None) -> ConfirmationItemId:
        return ConfirmationItemId(self.new("cf", now_ms))

    def issue(self) -> IssueId:
        return IssueId(self.new("i"))

    def payment(self, now_ms: int | None = None) -> PaymentId:
        return PaymentId(self.new("pm", now_ms))

    def movement(self, now_ms: int | None = None) -> MovementId:
        return MovementId(self.new("mv", now_ms))

    def connection(self) -> ConnectionId:
        return ConnectionId(self.new("w"))
