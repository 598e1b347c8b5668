"""Anchors' rows and the chain heads they are made of."""

from __future__ import annotations

import orjson
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from orderchat.core.anchor import Head, SignedAnchor
from orderchat.storage.schema import anchors, conversations


async def heads(conn: AsyncConnection) -> list[Head]:
    """Every conversation's head; one that has no message yet has nothing to anchor."""
    rows = await conn.execute(
        select(conversations.c.id, conversations.c.last_seq, conversations.c.last_hash)
        .where(conversations.c.last_seq > 0)
        .order_by(conversations.c.id)
    )
    return [Head(r.id, r.last_seq, r.last_hash) for r in rows]


async def insert_txn(
    conn: AsyncConnection,
    ts: int,
    digest: str,
    found: list[Head],
    key_id: str,
    signature: str,
) -> int:
    result = await conn.execute(
        insert(anchors)
        .values(
            ts=ts,
            digest=digest,
            conversations=len(found),
            heads=orjson.dumps([[h.conv, h.seq, h.hash] for h in found]).decode(),
            key_id=key_id,
            signature=signature,
        )
        .returning(anchors.c.id)
    )
    return int(result.scalar_one())


async def recent(conn: AsyncConnection, limit: int) -> list[SignedAnchor]:
    rows = await conn.execute(select(anchors).order_by(anchors.c.id.desc()).limit(limit))
    return [
        SignedAnchor(
            r.id,
            r.ts,
            r.digest,
            r.conversations,
            [Head(c, s, h) for c, s, h in orjson.loads(r.heads)],
            r.key_id,
            r.signature,
        )
        for r in rows
    ]
