"""Stock moved by the order workflow: reserved, released, shipped, returned.

The order workflow's effects call these functions inside the group-commit
transaction that moves the order. Each one reads and checks everything before
its first write, so a refusal (a Conflict from `ship_for_order_txn`) leaves
nothing half-done, provided the caller runs it before its own writes.

An order's own ledger entries say what it holds and what went out with it, so
calling one again does only what is not done yet.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from orderchat.core.ids import SkuCode, UserId
from orderchat.core.orders import Order
from orderchat.core.stock import (
    DEFAULT_LOCATION,
    Movement,
    MovementKind,
    StockLevel,
    held_by_order,
    level_at,
    order_needs,
    out_with_order,
    released,
    reservable,
    shipped,
)
from orderchat.services.stock.ledger import ledger_entry, write_stock_txn
from orderchat.services.writer import WriteTxn
from orderchat.storage import inventory as store

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Shortage:
    sku: SkuCode
    name: str
    needed: int
    available: int


async def reserve_for_order_txn(tx: WriteTxn, order: Order, by: UserId) -> list[Shortage]:
    """Reserve the order's items at DEFAULT_LOCATION; return what could not be reserved in full.

    What is available is held even when it is not enough, so the stock that
    exists is not promised to someone else while purchasing restocks. Calling
    it again reserves only what the order does not hold yet.
    """
    needs = order_needs(order.items)
    if not needs:
        return []
    held = held_by_order(await store.order_ledger(tx.conn, order.id))
    catalogue = await store.skus_by_code(tx.conn, needs)
    before = await store.levels_for(tx.conn, catalogue, lock=True)
    names = {item.sku: item.name for item in order.items}
    shortages: list[Shortage] = []
    changed: list[StockLevel] = []
    entries: list[Movement] = []
    for code, total in needs.items():
        wanted = total - held.get(code, 0)
        if wanted <= 0:
            continue
        level = level_at(before.get(code, {}), code, DEFAULT_LOCATION)
        taken = reservable(level, wanted) if code in catalogue else 0
        if taken:
            changed.append(replace(level, reserved=level.reserved + taken))
            entries.append(_order_entry(tx, order, code, MovementKind.RESERVE, taken, by))
        if taken < wanted:
            shortages.append(Shortage(code, names[code], wanted, max(level.available, 0)))
    await write_stock_txn(tx, by, catalogue, before, changed, entries)
    logger.info("order %s: reserved %d SKUs, %d short", order.id, len(entries), len(shortages))
    return shortages


async def release_for_order_txn(tx: WriteTxn, order: Order, by: UserId) -> None:
    """Give back what the order had reserved (it was cancelled)."""
    held = held_by_order(await store.order_ledger(tx.conn, order.id))
    if not held:
        return
    before = await store.levels_for(tx.conn, held, lock=True)
    changed = [
        released(level_at(before[code], code, DEFAULT_LOCATION), n) for code, n in held.items()
    ]
    entries = [
        _order_entry(tx, order, code, MovementKind.RELEASE, n, by) for code, n in held.items()
    ]
    catalogue = await store.skus_by_code(tx.conn, held)
    await write_stock_txn(tx, by, catalogue, before, changed, entries)
    logger.info("order %s: released %d SKUs", order.id, len(held))


async def ship_for_order_txn(tx: WriteTxn, order: Order, by: UserId) -> None:
    """Turn the order's reservations into sale_out movements from DEFAULT_LOCATION.

    Ships what the order has not shipped yet; what it did not manage to reserve
    must be available now.

    Raises:
        Conflict: not enough stock; raised before anything is written.
    """
    ledger = await store.order_ledger(tx.conn, order.id)
    held, out = held_by_order(ledger), out_with_order(ledger)
    needs = order_needs(order.items)
    catalogue = await store.skus_by_code(tx.conn, [*needs, *held])
    codes = sorted(code for code in {*needs, *held} if code in catalogue)
    before = await store.levels_for(tx.conn, codes, lock=True)
    changed: list[StockLevel] = []
    entries: list[Movement] = []
    for code in codes:
        wanted = max(needs.get(code, 0) - out.get(code, 0), 0)
        holding = held.get(code, 0)
        if not wanted and not holding:
            continue
        level = level_at(before[code], code, DEFAULT_LOCATION)
        changed.append(shipped(level, wanted, holding))
        if holding:
            entries.append(_order_entry(tx, order, code, MovementKind.RELEASE, holding, by))
        if wanted:
            entries.append(_order_entry(tx, order, code, MovementKind.SALE_OUT, wanted, by))
    await write_stock_txn(tx, by, catalogue, before, changed, entries)
    logger.info("order %s: shipped %d SKUs", order.id, len(changed))


async def return_for_order_txn(tx: WriteTxn, order: Order, by: UserId) -> None:
    """Put the order's returned items back on the shelf (return_in movements)."""
    out = out_with_order(await store.order_ledger(tx.conn, order.id))
    if not out:
        return
    before = await store.levels_for(tx.conn, out, lock=True)
    changed: list[StockLevel] = []
    entries: list[Movement] = []
    for code, n in out.items():
        level = level_at(before[code], code, DEFAULT_LOCATION)
        changed.append(replace(level, on_hand=level.on_hand + n))
        entries.append(_order_entry(tx, order, code, MovementKind.RETURN_IN, n, by))
    catalogue = await store.skus_by_code(tx.conn, out)
    await write_stock_txn(tx, by, catalogue, before, changed, entries)
    logger.info("order %s: %d SKUs returned", order.id, len(out))


def _order_entry(
    tx: WriteTxn, order: Order, sku: SkuCode, kind: MovementKind, quantity: int, by: UserId
) -> Movement:
    inward = kind is MovementKind.RETURN_IN
    return ledger_entry(
        tx,
        sku,
        kind,
        quantity,
        by,
        from_location=None if inward else DEFAULT_LOCATION,
        to_location=DEFAULT_LOCATION if inward else None,
        order_id=order.id,
        reason=f"order {order.number}",
    )
