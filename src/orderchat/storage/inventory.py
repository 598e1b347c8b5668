"""The SKU catalogue, stock per location, and the movements that change it.

Only SQL lives here; what may change, and by how much, is decided in
`core/stock.py`. Writes are plain statements in the caller's transaction. Levels
read for a write are read with `lock=True`: SQLite leaves the `FOR UPDATE` out,
because its write transaction already holds the database lock, and that lock
is what keeps two server processes from both spending the same stock.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from collections.abc import Set as AbstractSet
from typing import Any

from sqlalchemy import ColumnElement, Row, and_, bindparam, case, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from orderchat.core.errors import Conflict, NotFound
from orderchat.core.ids import OrderId, SkuCode, UserId
from orderchat.core.stock import Movement, MovementKind, Sku, StockLevel
from orderchat.core.texts import say
from orderchat.storage.schema import orders, skus, stock_levels, stock_movements

# Long IN (...) lists are sent in pieces, well under every driver's parameter limit.
_CHUNK = 500
# A search looks at this many words of the query; more only slows the LIKEs down.
_MAX_TERMS = 5


def _chunks(items: Sequence[str]) -> Iterable[list[str]]:
    for start in range(0, len(items), _CHUNK):
        yield list(items[start : start + _CHUNK])


async def known_skus(conn: AsyncConnection, codes: Iterable[str]) -> set[str]:
    wanted = list(set(codes))
    if not wanted:
        return set()
    rows = await conn.execute(select(skus.c.sku).where(skus.c.sku.in_(wanted), skus.c.active))
    return {r.sku for r in rows}


# --- the catalogue ---------------------------------------------------------------


def _sku(row: Row[Any]) -> Sku:
    return Sku(
        sku=row.sku,
        name_zh=row.name_zh,
        name_en=row.name_en,
        category=row.category,
        unit_price_cents=row.unit_price_cents,
        low_stock_threshold=row.low_stock_threshold,
        active=row.active,
    )


def _sku_columns(sku: Sku) -> dict[str, Any]:
    return {
        "sku": sku.sku,
        "name_zh": sku.name_zh,
        "name_en": sku.name_en,
        "category": sku.category,
        "unit_price_cents": sku.unit_price_cents,
        "low_stock_threshold": sku.low_stock_threshold,
        "active": sku.active,
    }


async def get_sku(conn: AsyncConnection, code: SkuCode) -> Sku:
    row = (await conn.execute(select(skus).where(skus.c.sku == code))).first()
    if row is None:
        raise NotFound(say("inventory.no_sku", code=code))
    return _sku(row)


async def skus_by_code(conn: AsyncConnection, codes: Iterable[str]) -> dict[SkuCode, Sku]:
    found: dict[SkuCode, Sku] = {}
    for chunk in _chunks(sorted(set(codes))):
        for row in await conn.execute(select(skus).where(skus.c.sku.in_(chunk))):
            found[SkuCode(row.sku)] = _sku(row)
    return found


async def insert_sku_txn(conn: AsyncConnection, sku: Sku) -> None:
    """Raises Conflict when the code is taken."""
    try:
        async with conn.begin_nested():
            await conn.execute(skus.insert().values(**_sku_columns(sku)))
    except IntegrityError as exc:
        raise Conflict(say("inventory.sku_exists_already", sku=sku.sku)) from exc


async def update_sku_txn(conn: AsyncConnection, sku: Sku) -> None:
    await conn.execute(update(skus).where(skus.c.sku == sku.sku).values(**_sku_columns(sku)))


async def insert_skus_txn(conn: AsyncConnection, entries: Sequence[Sku]) -> None:
    """Many new SKUs in one executemany."""
    if entries:
        await conn.execute(skus.insert(), [_sku_columns(s) for s in entries])


async def update_skus_txn(conn: AsyncConnection, entries: Sequence[Sku]) -> None:
    """Rewrite many SKUs' catalogue fields in one executemany; `active` is left alone."""
    if not entries:
        return
    statement = (
        update(skus)
        .where(skus.c.sku == bindparam("k_sku"))
        .values(
            name_zh=bindparam("v_name_zh"),
            name_en=bindparam("v_name_en"),
            category=bindparam("v_category"),
            unit_price_cents=bindparam("v_price"),
            low_stock_threshold=bindparam("v_threshold"),
        )
    )
    await conn.execute(
        statement,
        [
            {
                "k_sku": s.sku,
                "v_name_zh": s.name_zh,
                "v_name_en": s.name_en,
                "v_category": s.category,
                "v_price": s.unit_price_cents,
                "v_threshold": s.low_stock_threshold,
            }
            for s in entries
        ],
    )


def _like(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _matching(query: str, category: str | None) -> list[ColumnElement[bool]]:
    """Every word of the query in the code or either name, case-insensitively."""
    conditions: list[ColumnElement[bool]] = []
    for term in query.split()[:_MAX_TERMS]:
        pattern = _like(term)
        conditions.append(
            or_(
                *(
                    func.lower(column).like(pattern, escape="\\")
                    for column in (skus.c.sku, skus.c.name_zh, skus.c.name_en)
                )
            )
        )
    if category:
        conditions.append(skus.c.category == category)
    return conditions


async def search_skus(
    conn: AsyncConnection,
    query: str,
    *,
    category: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[Sku]:
    """SKUs matching `query` (all SKUs for an empty one); an exact code comes first."""
    exact = case((func.lower(skus.c.sku) == query.strip().lower(), 0), else_=1)
    statement = (
        select(skus)
        .where(*_matching(query, category))
        .order_by(exact, skus.c.sku)
        .limit(limit)
        .offset(offset)
    )
    return [_sku(r) for r in await conn.execute(statement)]


async def count_skus(conn: AsyncConnection, query: str, *, category: str | None = None) -> int:
    statement = select(func.count()).select_from(skus).where(*_matching(query, category))
    return int((await conn.execute(statement)).scalar_one())


async def list_all_skus(conn: AsyncConnection) -> list[Sku]:
    return [_sku(r) for r in await conn.execute(select(skus).order_by(skus.c.sku))]


# --- levels ------------------------------------------------------------------------


def _level(row: Row[Any]) -> StockLevel:
    return StockLevel(row.sku, row.location, row.on_hand, row.reserved)


async def levels_for(
    conn: AsyncConnection, codes: Iterable[str], *, lock: bool = False
) -> dict[str, dict[str, StockLevel]]:
    """Levels per SKU, then per location; SKUs never stocked map to `{}`."""
    wanted = sorted(set(codes))
    found: dict[str, dict[str, StockLevel]] = {code: {} for code in wanted}
    for chunk in _chunks(wanted):
        statement = (
            select(stock_levels)
            .where(stock_levels.c.sku.in_(chunk))
            .order_by(stock_levels.c.sku, stock_levels.c.location)
        )
        if lock:
            statement = statement.with_for_update()
        for row in await conn.execute(statement):
            found[row.sku][row.location] = _level(row)
    return found


async def list_levels(
    conn: AsyncConnection,
    *,
    sku: SkuCode | None = None,
    location: str | None = None,
    limit: int = 200,
) -> list[StockLevel]:
    statement = (
        select(stock_levels).order_by(stock_levels.c.sku, stock_levels.c.location).limit(limit)
    )
    if sku is not None:
        statement = statement.where(stock_levels.c.sku == sku)
    if location is not None:
        statement = statement.where(stock_levels.c.location == location)
    return [_level(r) for r in await conn.execute(statement)]


async def all_levels(conn: AsyncConnection) -> dict[str, list[StockLevel]]:
    statement = select(stock_levels).order_by(stock_levels.c.sku, stock_levels.c.location)
    found: dict[str, list[StockLevel]] = {}
    for row in await conn.execute(statement):
        found.setdefault(row.sku, []).append(_level(row))
    return found


async def save_levels_txn(
    conn: AsyncConnection, levels: Iterable[StockLevel], stored: AbstractSet[tuple[str, str]]
) -> None:
    """Write levels' new values; `stored` names the (sku, location) rows that exist."""
    updates: list[dict[str, Any]] = []
    inserts: list[dict[str, Any]] = []
    for level in levels:
        if (level.sku, level.location) in stored:
            updates.append(
                {
                    "k_sku": level.sku,
                    "k_location": level.location,
                    "v_on_hand": level.on_hand,
                    "v_reserved": level.reserved,
                }
            )
        else:
            inserts.append(
                {
                    "sku": level.sku,
                    "location": level.location,
                    "on_hand": level.on_hand,
                    "reserved": level.reserved,
                }
            )
    if inserts:
        await conn.execute(stock_levels.insert(), inserts)
    if updates:
        statement = (
            update(stock_levels)
            .where(
                and_(
                    stock_levels.c.sku == bindparam("k_sku"),
                    stock_levels.c.location == bindparam("k_location"),
                )
            )
            .values(on_hand=bindparam("v_on_hand"), reserved=bindparam("v_reserved"))
        )
        await conn.execute(statement, updates)


# --- movements ---------------------------------------------------------------------


def _movement(row: Row[Any]) -> Movement:
    return Movement(
        id=row.id,
        sku=row.sku,
        kind=MovementKind(row.kind),
        from_location=row.from_location,
        to_location=row.to_location,
        quantity=row.quantity,
        order_id=row.order_id,
        reason=row.reason,
        by=UserId(row.by),
        ts_ms=row.ts,
    )


async def insert_movements_txn(conn: AsyncConnection, movements: Sequence[Movement]) -> None:
    if not movements:
        return
    await conn.execute(
        stock_movements.insert(),
        [
            {
                "id": m.id,
                "sku": m.sku,
                "kind": m.kind.value,
                "from_location": m.from_location,
                "to_location": m.to_location,
                "quantity": m.quantity,
                "order_id": m.order_id,
                "reason": m.reason,
                "by": m.by,
                "ts": m.ts_ms,
            }
            for m in movements
        ],
    )


async def list_movements(
    conn: AsyncConnection,
    *,
    sku: SkuCode | None = None,
    order_id: OrderId | None = None,
    kind: MovementKind | None = None,
    before: str | None = None,
    limit: int = 100,
) -> list[Movement]:
    """Newest first; `before` is a movement id to page back from (ids sort by time)."""
    statement = select(stock_movements).order_by(stock_movements.c.id.desc()).limit(limit)
    if sku is not None:
        statement = statement.where(stock_movements.c.sku == sku)
    if order_id is not None:
        statement = statement.where(stock_movements.c.order_id == order_id)
    if kind is not None:
        statement = statement.where(stock_movements.c.kind == kind.value)
    if before is not None:
        statement = statement.where(stock_movements.c.id < before)
    return [_movement(r) for r in await conn.execute(statement)]


async def order_ledger(conn: AsyncConnection, order_id: OrderId) -> list[Movement]:
    """Every entry an order made: reservations, releases, shipments, returns."""
    statement = (
        select(stock_movements)
        .where(stock_movements.c.order_id == order_id)
        .order_by(stock_movements.c.id)
    )
    return [_movement(r) for r in await conn.execute(statement)]


async def order_exists(conn: AsyncConnection, order_id: OrderId) -> bool:
    found = await conn.execute(select(orders.c.id).where(orders.c.id == order_id))
    return found.first() is not None
