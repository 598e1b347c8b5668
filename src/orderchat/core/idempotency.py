"""Idempotency keys for creating HTTP calls: the rules, with no I/O.

A client that is not sure its call arrived (a timeout, a dropped connection)
sends it again with the same `Idempotency-Key` header, and the server answers
with what the first call answered instead of doing the work twice.

Rules:
- A key belongs to the user who sent it: two users never share one.
- A key is bound to its request (method, path with query, body). The same key
  with a different request is a client bug and is refused, never replayed.
- Only a successful (2xx) answer is kept. An error is forgotten, so the client
  can correct the request and send it again under the same key.
- While the first call runs its key is *in flight*: a second call with the key
  is refused rather than run alongside it.
- Keys last `KEY_TTL_MS`. An in-flight claim older than `IN_FLIGHT_STALE_MS`
  belongs to a process that died mid-call and may be taken over.

The storage and the HTTP glue live in `storage/idempotency.py`,
`services/idempotency.py` and `api/idempotency.py`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum

from orderchat.core.errors import BadRequest
from orderchat.core.texts import say

HEADER = "Idempotency-Key"
MAX_KEY_CHARS = 128
# A day covers a client's retries across a night's outage; longer only grows the table.
KEY_TTL_MS = 24 * 3600 * 1000
# No HTTP call runs this long (clients time out well before), so a claim this
# old was left by a process that died before it could answer.
IN_FLIGHT_STALE_MS = 5 * 60 * 1000
# The status stored while a claimed call has not answered yet.
IN_FLIGHT = 0


class Verdict(StrEnum):
    RUN = "run"  # claim the key and run the call
    REPLAY = "replay"  # answer with the stored response
    IN_FLIGHT = "in_flight"  # the first call with this key has not answered yet
    MISMATCH = "mismatch"  # the key was used for a different request


@dataclass(frozen=True, slots=True)
class StoredKey:
    request_hash: str
    status: int  # IN_FLIGHT, or the HTTP status of the stored answer
    response: str  # the stored answer, opaque here
    created_at_ms: int


def parse_key(raw: str) -> str:
    """A key is 1-128 printable ASCII characters (space to tilde).

    Raises:
        BadRequest: empty, too long, or holding other characters.
    """
    if not 1 <= len(raw) <= MAX_KEY_CHARS or not all(" " <= c <= "~" for c in raw):
        raise BadRequest(
            say(
                "idempotency.must_1_printable_ascii_characters",
                header=HEADER,
                max_key_chars=MAX_KEY_CHARS,
            )
        )
    return raw


def request_hash(method: str, target: str, body: bytes) -> str:
    """What binds a key to one request: SHA-256 over method, path with query, and body."""
    digest = hashlib.sha256()
    digest.update(method.upper().encode("ascii"))
    digest.update(b"\n")
    digest.update(target.encode("utf-8"))
    digest.update(b"\n")
    digest.update(body)
    return digest.hexdigest()


def is_expired(found: StoredKey, now_ms: int) -> bool:
    return found.created_at_ms <= now_ms - KEY_TTL_MS


def decide(found: StoredKey | None, hashed: str, now_ms: int) -> Verdict:
    """What to do with a request, given what is stored under its key."""
    if found is None or is_expired(found, now_ms):
        return Verdict.RUN
    if found.status == IN_FLIGHT:
        stale = found.created_at_ms <= now_ms - IN_FLIGHT_STALE_MS
        return Verdict.RUN if stale else Verdict.IN_FLIGHT
    return Verdict.REPLAY if found.request_hash == hashed else Verdict.MISMATCH


def is_kept(status: int) -> bool:
    """Only successful answers are kept; errors may be corrected and retried."""
    return 200 <= status < 300
