"""The rows behind leases (services/leases.py)."""

from __future__ import annotations

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from orderchat.storage.schema import leases


async def hold_txn(
    conn: AsyncConnection, name: str, holder: str, now_ms: int, expires_ms: int
) -> tuple[int, bool] | None:
    """Take or renew `name` for `holder`: (fence, newly taken), or None if another holds it.

    The row is read FOR UPDATE (on SQLite the write lock is already held), so
    two nodes asking at once are served one after the other.
    """
    row = (
        await conn.execute(
            select(leases.c.holder, leases.c.expires_ms, leases.c.fence)
            .where(leases.c.name == name)
            .with_for_update()
        )
    ).first()
    if row is None:
        return (1, True) if await insert_txn(conn, name, holder, expires_ms) else None
    if row.holder != holder and row.expires_ms > now_ms:
        return None
    fence = int(row.fence) if row.holder == holder else int(row.fence) + 1
    await conn.execute(
        update(leases)
        .where(leases.c.name == name)
        .values(holder=holder, expires_ms=expires_ms, fence=fence)
    )
    return fence, row.holder != holder


async def insert_txn(conn: AsyncConnection, name: str, holder: str, expires_ms: int) -> bool:
    """Create the lease row; False if another node created it first."""
    try:
        async with conn.begin_nested():
            await conn.execute(
                insert(leases).values(name=name, holder=holder, expires_ms=expires_ms, fence=1)
            )
    except IntegrityError:
        return False
    return True


async def expire_txn(conn: AsyncConnection, name: str, holder: str) -> None:
    await conn.execute(
        update(leases).where(leases.c.name == name, leases.c.holder == holder).values(expires_ms=0)
    )
