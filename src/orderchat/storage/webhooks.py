"""Inbound webhook deliveries already accepted (table `webhook_deliveries`).

A delivery is known by its signature's digest. It is recorded in the same
transaction as the work it caused, so a delivery is either done and
remembered, or neither.
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from orderchat.storage.schema import webhook_deliveries as deliveries


async def is_delivery_seen(conn: AsyncConnection, digest: str) -> bool:
    found = await conn.execute(
        select(deliveries.c.signature).where(deliveries.c.signature == digest)
    )
    return found.first() is not None


async def insert_delivery_txn(conn: AsyncConnection, digest: str, now_ms: int) -> None:
    await conn.execute(deliveries.insert().values(signature=digest, received_at_ms=now_ms))


async def prune_deliveries_txn(conn: AsyncConnection, received_before_ms: int) -> int:
    """Forget deliveries received before the cutoff; returns how many."""
    result = await conn.execute(
        delete(deliveries).where(deliveries.c.received_at_ms < received_before_ms)
    )
    return int(result.rowcount)
