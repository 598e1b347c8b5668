"""Confirmation items of factory orders, their versions and the decisions on them."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from orderchat.storage.schema import confirmation_items


async def count_required_open(conn: AsyncConnection, order_id: str) -> int:
    """Required items of the order that are not approved yet."""
    query = select(func.count()).where(
        confirmation_items.c.order_id == order_id,
        confirmation_items.c.required.is_(True),
        confirmation_items.c.status != "approved",
    )
    return int((await conn.execute(query)).scalar_one())
