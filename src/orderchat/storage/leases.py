"""The rows behind one-time claims (services/leases.py)."""

from __future__ import annotations

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from orderchat.storage.schema import leases


async def insert_txn(conn: AsyncConnection, name: str, holder: str, expires_ms: int) -> bool:
    """Create the claim's row; False if another node created it first."""
    try:
        async with conn.begin_nested():
            await conn.execute(
                insert(leases).values(name=name, holder=holder, expires_ms=expires_ms, fence=1)
            )
    except IntegrityError:
        return False
    return True
