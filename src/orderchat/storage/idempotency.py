"""Idempotency keys and the answers kept under them (table `idempotency_keys`).

The primary key (user, key) is what stops two server processes from running
the same call: only one of them can insert the claim. Within one process the
service refuses a second caller before it gets here.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from orderchat.core.errors import Conflict
from orderchat.core.idempotency import IN_FLIGHT, StoredKey
from orderchat.core.ids import UserId
from orderchat.core.texts import say
from orderchat.storage.schema import idempotency_keys as keys


def _this(user_id: UserId, key: str) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    return (keys.c.user_id == user_id, keys.c.key == key)


async def find_key(conn: AsyncConnection, user_id: UserId, key: str) -> StoredKey | None:
    row = (await conn.execute(select(keys).where(*_this(user_id, key)))).first()
    if row is None:
        return None
    return StoredKey(row.request_hash, row.status, row.response, row.created_at_ms)


async def insert_claim_txn(
    conn: AsyncConnection, user_id: UserId, key: str, request_hash: str, now_ms: int
) -> None:
    """Claim a key nobody holds.

    Raises:
        Conflict: another process claimed it first.
    """
    try:
        async with conn.begin_nested():
            await conn.execute(
                keys.insert().values(
                    user_id=user_id,
                    key=key,
                    request_hash=request_hash,
                    status=IN_FLIGHT,
                    response="",
                    created_at_ms=now_ms,
                )
            )
    except IntegrityError as exc:
        raise Conflict(say("idempotency.request_with_idempotency_key_still")) from exc


async def reclaim_txn(
    conn: AsyncConnection,
    user_id: UserId,
    key: str,
    request_hash: str,
    now_ms: int,
    seen_created_at_ms: int,
) -> None:
    """Take over an expired key, or a claim abandoned by a dead process.

    The row is replaced only if it is still the one the caller read, so two
    processes cannot both take it over.

    Raises:
        Conflict: another process took it over first.
    """
    result = await conn.execute(
        update(keys)
        .where(*_this(user_id, key), keys.c.created_at_ms == seen_created_at_ms)
        .values(request_hash=request_hash, status=IN_FLIGHT, response="", created_at_ms=now_ms)
    )
    if result.rowcount != 1:
        raise Conflict(say("idempotency.request_with_idempotency_key_still"))


async def store_answer_txn(
    conn: AsyncConnection, user_id: UserId, key: str, status: int, response: str
) -> None:
    await conn.execute(
        update(keys).where(*_this(user_id, key)).values(status=status, response=response)
    )


async def delete_key_txn(conn: AsyncConnection, user_id: UserId, key: str) -> None:
    await conn.execute(delete(keys).where(*_this(user_id, key)))


async def prune_keys_txn(conn: AsyncConnection, created_before_ms: int) -> int:
    """Forget keys created before the cutoff; returns how many."""
    result = await conn.execute(delete(keys).where(keys.c.created_at_ms < created_before_ms))
    return int(result.rowcount)
