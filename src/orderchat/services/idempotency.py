"""Claiming, answering and releasing idempotency keys.

The HTTP glue (`api/idempotency.py`) calls, per keyed request::

    async with keys.hold(user, key):       # refuses a second caller in this process
        stored = await keys.claim(user, key, hashed)
        if stored: replay it
        else: run the call, then keys.keep(...) on 2xx or keys.release(...) otherwise

`hold` is the in-process lock; the claim row's primary key is the lock across
processes. Answers are kept as JSON text: status aside, the response headers
and the body (base64 when it is not UTF-8 text).

A crash between the call's commit and `keep` leaves the claim in flight; a
retry is refused until the claim is stale (`IN_FLIGHT_STALE_MS`), and then
runs the call again. Creating calls that must not run twice even then carry
their own natural key as well (an order's number, a message's `ref`).
"""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import orjson

from orderchat.core.errors import Conflict
from orderchat.core.idempotency import KEY_TTL_MS, StoredKey, Verdict, decide
from orderchat.core.ids import UserId
from orderchat.core.texts import say
from orderchat.services.ports import Clock
from orderchat.storage import idempotency as store
from orderchat.storage.engine import Connection, Database

logger = logging.getLogger(__name__)

# Pruning deletes across the whole table, so it runs at most this often.
PRUNE_EVERY_MS = 10 * 60 * 1000


@dataclass(frozen=True, slots=True)
class Answer:
    """A response as it went out: enough to send it again byte for byte."""

    status: int
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes
    withheld: bool = False  # answered, but not kept (it held a secret)


def encode_answer(answer: Answer) -> str:
    headers = [[k.decode("latin-1"), v.decode("latin-1")] for k, v in answer.headers]
    document: dict[str, object] = {"headers": headers}
    if answer.withheld:
        document["withheld"] = True
    else:
        try:
            document["body"] = answer.body.decode("utf-8")
        except UnicodeDecodeError:
            document["body_base64"] = base64.b64encode(answer.body).decode("ascii")
    return orjson.dumps(document).decode("utf-8")


def decode_answer(status: int, text: str) -> Answer:
    document = orjson.loads(text)
    headers = tuple((k.encode("latin-1"), v.encode("latin-1")) for k, v in document["headers"])
    if document.get("withheld"):
        return Answer(status, headers, b"", withheld=True)
    if "body_base64" in document:
        return Answer(status, headers, base64.b64decode(document["body_base64"]))
    return Answer(status, headers, document["body"].encode("utf-8"))


class IdempotencyKeys:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock
        self._held: set[tuple[UserId, str]] = set()
        self._next_prune_ms = 0

    @asynccontextmanager
    async def hold(self, user_id: UserId, key: str) -> AsyncIterator[None]:
        """This process's lock on a key; a second caller is refused, not queued.

        Queuing would only make the second caller wait to be told what the
        first one was told, and a client that fired twice at once has a bug
        worth a clear answer.

        Raises:
            Conflict: the key is held by a call still running here.
        """
        slot = (user_id, key)
        if slot in self._held:
            raise Conflict(say("idempotency.request_with_idempotency_key_still"))
        self._held.add(slot)
        try:
            yield
        finally:
            self._held.discard(slot)

    async def claim(self, user_id: UserId, key: str, hashed: str) -> Answer | None:
        """Claim the key for this request, or return the answer to replay.

        Raises:
            Conflict: the key is in flight, or was used for a different request,
                or its answer was withheld.
        """
        now_ms = self._clock.now_ms()
        async with self._db.write("claim_idempotency_key") as conn:
            if now_ms >= self._next_prune_ms:
                self._next_prune_ms = now_ms + PRUNE_EVERY_MS
                pruned = await store.prune_keys_txn(conn, now_ms - KEY_TTL_MS)
                if pruned:
                    logger.debug("pruned %d expired idempotency keys", pruned)
            found = await store.find_key(conn, user_id, key)
            verdict = decide(found, hashed, now_ms)
            if verdict is Verdict.RUN:
                await self._claim_txn(conn, user_id, key, hashed, now_ms, found)
                return None
        assert found is not None  # every other verdict comes from a stored key
        return _replay(verdict, found)

    async def _claim_txn(
        self,
        conn: Connection,
        user_id: UserId,
        key: str,
        hashed: str,
        now_ms: int,
        found: StoredKey | None,
    ) -> None:
        if found is None:
            await store.insert_claim_txn(conn, user_id, key, hashed, now_ms)
        else:
            await store.reclaim_txn(conn, user_id, key, hashed, now_ms, found.created_at_ms)

    async def keep(self, user_id: UserId, key: str, answer: Answer) -> None:
        """Store a successful answer under its claimed key."""
        async with self._db.write("keep_idempotent_answer") as conn:
            await store.store_answer_txn(conn, user_id, key, answer.status, encode_answer(answer))

    async def release(self, user_id: UserId, key: str) -> None:
        """Forget a claim whose call failed, so a corrected retry may run."""
        async with self._db.write("release_idempotency_key") as conn:
            await store.delete_key_txn(conn, user_id, key)


def _replay(verdict: Verdict, found: StoredKey) -> Answer:
    if verdict is Verdict.IN_FLIGHT:
        raise Conflict(say("idempotency.request_with_idempotency_key_still"))
    if verdict is Verdict.MISMATCH:
        raise Conflict(say("idempotency.idempotency_key_was_used_for"))
    answer = decode_answer(found.status, found.response)
    if answer.withheld:
        raise Conflict(say("idempotency.request_was_answered_already_answer"))
    return answer
