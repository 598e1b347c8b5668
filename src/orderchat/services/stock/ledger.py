"""Writing stock: new levels and their ledger entries, committed together, and low-stock alerts.

Every change to stock goes through `write_stock_txn`, inside a group-commit
transaction, because it may post a low-stock alert to #purchasing: the levels,
the ledger entries and the alert commit together, and the alert is delivered
only after the commit.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from orderchat.core.ids import OrderId, SkuCode, UserId
from orderchat.core.model import Conversation, MessageKind, Role
from orderchat.core.routing import ROUTES, render
from orderchat.core.stock import (
    Movement,
    MovementKind,
    Sku,
    StockLevel,
    crossed_low,
    total_available,
)
from orderchat.core.texts import DEFAULT_LANGUAGE, say, worded
from orderchat.services.orders.events import role_channel_txn
from orderchat.services.writer import WriteTxn
from orderchat.storage import inventory as store

logger = logging.getLogger(__name__)

# One write that sends many SKUs below their thresholds (a big import) posts
# this many alerts one by one and sums up the rest, so #purchasing stays readable.
LOW_STOCK_ALERTS_PER_WRITE = 20


@dataclass(frozen=True, slots=True)
class SkuStock:
    """A catalogue entry with its stock at every location that has a level."""

    sku: Sku
    levels: tuple[StockLevel, ...]

    @property
    def on_hand(self) -> int:
        return sum(level.on_hand for level in self.levels)

    @property
    def reserved(self) -> int:
        return sum(level.reserved for level in self.levels)

    @property
    def available(self) -> int:
        return total_available(self.levels)


Levels = Mapping[str, Mapping[str, StockLevel]]


def ledger_entry(
    tx: WriteTxn,
    sku: SkuCode,
    kind: MovementKind,
    quantity: int,
    by: UserId,
    *,
    reason: str,
    from_location: str | None = None,
    to_location: str | None = None,
    order_id: OrderId | None = None,
) -> Movement:
    """A ledger entry stamped with the transaction's time."""
    return Movement(
        id=tx.ids.movement(tx.now_ms),
        sku=sku,
        kind=kind,
        from_location=from_location,
        to_location=to_location,
        quantity=quantity,
        order_id=order_id,
        reason=reason,
        by=by,
        ts_ms=tx.now_ms,
    )


async def write_stock_txn(
    tx: WriteTxn,
    by: UserId,
    catalogue: Mapping[SkuCode, Sku],
    before: Levels,
    changed: Sequence[StockLevel],
    entries: Sequence[Movement],
) -> dict[str, dict[str, StockLevel]]:
    """Store new levels and their ledger entries, then alert on SKUs gone low.

    `before` must hold every level of each changed SKU, read under lock, so
    that the totals compared for the alert are the whole truth.
    """
    stored = {(level.sku, level.location) for per in before.values() for level in per.values()}
    await store.save_levels_txn(tx.conn, changed, stored)
    await store.insert_movements_txn(tx.conn, entries)
    after = {code: dict(levels) for code, levels in before.items()}
    for level in changed:
        after.setdefault(level.sku, {})[level.location] = level
    low: list[tuple[Sku, int]] = []
    for code in sorted({level.sku for level in changed}):
        was = total_available(before.get(code, {}).values())
        now = total_available(after[code].values())
        if crossed_low(was, now, catalogue[code].low_stock_threshold):
            low.append((catalogue[code], now))
    await _alert_low_stock_txn(tx, low, by)
    return after


async def _alert_low_stock_txn(tx: WriteTxn, low: Sequence[tuple[Sku, int]], by: UserId) -> None:
    """Post `low_stock` to the roles ROUTES names (#purchasing), mentioning them."""
    if not low:
        return
    route = ROUTES["low_stock"]
    for role in sorted(route.roles):
        channel = await role_channel_txn(tx, role)
        await tx.member_set(channel.id)
        for sku, available in low[:LOW_STOCK_ALERTS_PER_WRITE]:
            details: dict[str, object] = {
                "sku": sku.sku,
                "name": sku.name("zh-CN"),
                "name_en": sku.name("en"),
                "available": available,
                "threshold": sku.low_stock_threshold,
            }
            texts = {
                language: render(template, {**details, "name": sku.name(language)})
                for language, template in route.text.items()
            }
            meta: dict[str, object] = {
                "event": "low_stock",
                "by": by,
                "details": details,
                "text": texts,
            }
            await _post(tx, await tx.conversation(channel.id), by, texts["zh-CN"], role, meta)
        rest = low[LOW_STOCK_ALERTS_PER_WRITE:]
        if rest:
            codes = [sku.sku for sku, _ in rest]
            more = say("note.low_stock_more", count=len(rest), skus=codes)
            meta = {
                "event": "low_stock",
                "by": by,
                "details": {"skus": codes},
                "say": more.to_json(),
                "text": worded([more]),
            }
            text = more.render(DEFAULT_LANGUAGE)
            await _post(tx, await tx.conversation(channel.id), by, text, role, meta)
    logger.info("low stock alert for %d SKUs by %s", len(low), by)


async def _post(
    tx: WriteTxn,
    channel: Conversation,
    by: UserId,
    text: str,
    role: Role,
    meta: dict[str, object],
) -> None:
    mentions = (f"@{role.value}",)
    await tx.append_message(
        channel, by, MessageKind.ORDER_EVENT, text, mentions=mentions, meta=meta
    )


def sku_stock(sku: Sku, levels: Mapping[str, StockLevel]) -> SkuStock:
    return SkuStock(sku, tuple(levels[location] for location in sorted(levels)))
