"""Typed, time-sortable identifiers made without asking the database.

Ids are minted in the process (not by an autoincrement column) so that several
server processes sharing one PostgreSQL never coordinate for them, and so that
a row's id is known before its transaction commits.
"""

from __future__ import annotations

import base64
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
# Every message needs an id, so the 105 bits are encoded in C: base64's base32
# over 15 bytes (the first three characters carry only zero padding), then
# mapped from RFC 4648's alphabet to Crockford's.
_TO_CROCKFORD = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _ALPHABET.encode())
# Ids need to be unique, not secret (tokens come from `secrets`): a generator
# seeded from the OS saves a getrandom() system call per id. A forked process
# reseeds, so that two processes never mint the same sequence.
_random = random.Random(os.urandom(32))
os.register_at_fork(after_in_child=lambda: _random.seed(os.urandom(32)))


def new_id(prefix: str, now_ms: int | None = None) -> str:
    """Return `prefix_` followed by a lexicographically time-ordered token."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    value = (ms % (1 << 45)) << 60 | _random.getrandbits(60)
    token = base64.b32encode(value.to_bytes(15, "big"))[3:].translate(_TO_CROCKFORD)
    return f"{prefix}_{token.decode()}"


def new_user_id() -> UserId:
    return UserId(new_id("u"))


def new_conversation_id() -> ConversationId:
    return ConversationId(new_id("c"))


def new_message_id() -> MessageId:
    return MessageId(new_id("m"))


def new_session_id() -> SessionId:
    return SessionId(new_id("s"))
