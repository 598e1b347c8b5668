"""The SKU catalogue, stock per location, and the movements that change it."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from orderchat.storage.schema import skus


async def known_skus(conn: AsyncConnection, codes: Iterable[str]) -> set[str]:
    wanted = list(set(codes))
    if not wanted:
        return set()
    rows = await conn.execute(select(skus.c.sku).where(skus.c.sku.in_(wanted), skus.c.active))
    return {r.sku for r in rows}
