"""Typed, time-sortable identifiers made without asking the database.

Ids are minted in the process (not by an autoincrement column) so that several
server processes sharing one PostgreSQL never coordinate for them, and so that
a row's id is known before its transaction commits.
"""

from __future__ import annotations

import os
import random
import time
from typing import NewType

UserId = NewType("UserId", str)
ConversationId = NewType("ConversationId", str)
MessageId = NewType("MessageId", str)
SessionId = NewType("SessionId", str)

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case
_TIME_CHARS = 9  # 45 bits of milliseconds: good until the year 3084
_RANDOM_CHARS = 12  # 60 random bits: collisions are not a practical concern
# Every message needs an id, so the 105 bits are spelled ten bits (two
# characters) at a time from a table, most significant first.
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]
# Ids need to be unique, not secret (tokens come from `secrets`): a generator
# seeded from the OS saves a getrandom() system call per id. A forked process
# reseeds, so that two processes never mint the same sequence.
_random = random.Random(os.urandom(32))
os.register_at_fork(after_in_child=lambda: _random.seed(os.urandom(32)))


def new_id(prefix: str, now_ms: int | None = None) -> str:
    """Return `prefix_` followed by a lexicographically time-ordered token."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    value = (ms % (1 << 45)) << 60 | _random.getrandbits(60)
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


def new_user_id() -> UserId:
    return UserId(new_id("u"))


def new_conversation_id() -> ConversationId:
    return ConversationId(new_id("c"))


def new_message_id() -> MessageId:
    return MessageId(new_id("m"))


def new_session_id() -> SessionId:
    return SessionId(new_id("s"))
