"""What a product card shows beyond the catalogue's fields: its picture and options."""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from orderchat.core.errors import NotFound
from orderchat.core.ids import SkuCode
from orderchat.core.stock import Sku
from orderchat.core.texts import say
from orderchat.storage.inventory import get_sku
from orderchat.storage.schema import skus, stock_levels


@dataclass(frozen=True, slots=True)
class Product:
    sku: Sku
    available: int
    picture_sha256: str | None
    options: list[dict[str, object]]


async def get_product(conn: AsyncConnection, code: str) -> Product:
    """The SKU with its stock available over every location, now."""
    sku = await get_sku(conn, SkuCode(code))
    if not sku.active:
        raise NotFound(say("inventory.no_sku", code=code))
    extras = (
        await conn.execute(select(skus.c.picture_sha256, skus.c.options).where(skus.c.sku == code))
    ).one()
    available = (
        await conn.execute(
            select(
                func.coalesce(func.sum(stock_levels.c.on_hand - stock_levels.c.reserved), 0)
            ).where(stock_levels.c.sku == code)
        )
    ).scalar_one()
    options = orjson.loads(extras.options) if extras.options else []
    return Product(sku, int(available), extras.picture_sha256, options)


async def picture_of(conn: AsyncConnection, code: str) -> str | None:
    query = select(skus.c.picture_sha256).where(skus.c.sku == code, skus.c.active)
    return (await conn.execute(query)).scalar_one_or_none()


async def set_extras_txn(
    conn: AsyncConnection,
    code: str,
    *,
    picture_sha256: str | None = None,
    options: list[dict[str, object]] | None = None,
) -> None:
    values: dict[str, object] = {}
    if picture_sha256 is not None:
        values["picture_sha256"] = picture_sha256
    if options is not None:
        values["options"] = orjson.dumps(options).decode()
    if values:
        done = await conn.execute(update(skus).where(skus.c.sku == code).values(**values))
        if done.rowcount == 0:
            raise NotFound(say("inventory.no_sku", code=code))
