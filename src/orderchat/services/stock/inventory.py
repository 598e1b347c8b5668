"""Stock: the catalogue, movements, reservations for open orders, low-stock alerts.

Everything that changes stock is a group-commit operation, because it may post
a low-stock alert to #purchasing: the levels, the ledger entries and the alert
commit together, and the alert is delivered only after the commit. Catalogue
edits that cannot touch stock use a plain write transaction.

The order workflow's effects call the `*_for_order_txn` functions inside the
group-commit transaction that moves the order. Each one reads and checks
everything before its first write, so a refusal (a Conflict from
`ship_for_order_txn`) leaves nothing half-done, provided the caller runs it
before its own writes.

The rules themselves (what may be taken, what an order holds) are in
`core/stock.py`; this module only gathers the facts and writes the outcome.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from orderchat.core.errors import BadRequest
from orderchat.core.ids import UserId, new_id
from orderchat.core.model import MessageKind, Role, User
from orderchat.core.permissions import Action, can, check
from orderchat.core.routing import ROUTES, render
from orderchat.core.stock import (
    DEFAULT_LOCATION,
    ImportRow,
    Movement,
    MovementKind,
    MovementRequest,
    Sku,
    StockLevel,
    apply_movement,
    changed_sku,
    crossed_low,
    format_catalogue_csv,
    held_by_order,
    level_at,
    order_needs,
    out_with_order,
    parse_catalogue_csv,
    parse_movement,
    released,
    reservable,
    shipped,
    total_available,
    validate_sku,
    validate_sku_code,
)
from orderchat.services.orders.events import role_channel_txn
from orderchat.services.ports import Clock
from orderchat.services.writer import GroupCommitWriter, WriteTxn
from orderchat.storage import inventory as store
from orderchat.storage.conversations import ConversationRow
from orderchat.storage.engine import Database
from orderchat.storage.orders import OrderRow

__all__ = [
    "DEFAULT_LOCATION",
    "ImportResult",
    "Inventory",
    "MovementResult",
    "Shortage",
    "SkuStock",
    "answer_stock_query_txn",
    "release_for_order_txn",
    "reserve_for_order_txn",
    "return_for_order_txn",
    "ship_for_order_txn",
]

logger = logging.getLogger(__name__)

# One write that sends many SKUs below their thresholds (a big import) posts
# this many alerts one by one and sums up the rest, so #purchasing stays readable.
LOW_STOCK_ALERTS_PER_WRITE = 20
# `/stock` answers list this many SKUs: enough to choose from, short enough to read.
STOCK_ANSWER_LIMIT = 10
MAX_QUERY_CHARS = 100


@dataclass(frozen=True, slots=True)
class Shortage:
    sku: str
    name: str
    needed: int
    available: int


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


@dataclass(frozen=True, slots=True)
class MovementResult:
    movement: Movement
    stock: SkuStock


@dataclass(frozen=True, slots=True)
class ImportResult:
    rows: int
    created: int
    updated: int
    stock_changes: int


# --- writing stock ---------------------------------------------------------------

Levels = Mapping[str, Mapping[str, StockLevel]]


def _entry(
    tx: WriteTxn,
    sku: str,
    kind: MovementKind,
    quantity: int,
    by: UserId,
    *,
    reason: str,
    from_location: str | None = None,
    to_location: str | None = None,
    order_id: str | None = None,
) -> Movement:
    """A ledger entry stamped with the transaction's time."""
    return Movement(
        id=new_id("mv", tx.now_ms),
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


async def _write_stock_txn(
    tx: WriteTxn,
    by: UserId,
    catalogue: Mapping[str, Sku],
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
            _post(tx, await tx.conversation(channel.id), by, texts["zh-CN"], role, meta)
        rest = low[LOW_STOCK_ALERTS_PER_WRITE:]
        if rest:
            codes = [sku.sku for sku, _ in rest]
            text = (
                f"另有 {len(rest)} 个 SKU 低于阈值 ({len(rest)} more below threshold)："
                f"{', '.join(codes)}"
            )
            meta = {"event": "low_stock", "by": by, "details": {"skus": codes}}
            _post(tx, await tx.conversation(channel.id), by, text, role, meta)
    logger.info("low stock alert for %d SKUs by %s", len(low), by)


def _post(
    tx: WriteTxn,
    channel: ConversationRow,
    by: UserId,
    text: str,
    role: Role,
    meta: dict[str, object],
) -> None:
    mentions = (f"@{role.value}",)
    tx.append_message(channel, by, MessageKind.ORDER_EVENT, text, mentions=mentions, meta=meta)


@dataclass(frozen=True, slots=True)
class RecordMovement:
    """A movement someone recorded (receipt, sale, transfer, stock count).

    A sale_out or return_in that names an order counts in that order's ledger,
    so a shipment a shop's own system reported is not shipped again by the
    order workflow, and a return recorded by hand is not returned twice.
    """

    user: User
    request: MovementRequest

    async def apply(self, tx: WriteTxn) -> MovementResult:
        request = self.request
        catalogue = await store.skus_by_code(tx.conn, [request.sku])
        sku = catalogue.get(request.sku)
        if sku is None:
            raise BadRequest(f"unknown SKU {request.sku!r}")
        if request.order_id is not None and not await store.order_exists(tx.conn, request.order_id):
            raise BadRequest(f"no order {request.order_id!r}")
        before = await store.levels_for(tx.conn, [sku.sku], lock=True)
        changed = apply_movement(request, before[sku.sku])
        movement = _entry(
            tx,
            sku.sku,
            request.kind,
            request.quantity,
            self.user.id,
            from_location=request.from_location,
            to_location=request.to_location,
            order_id=request.order_id,
            reason=request.reason,
        )
        after = await _write_stock_txn(tx, self.user.id, catalogue, before, changed, [movement])
        logger.info(
            "movement %s: %s %s x%d by %s",
            movement.id,
            movement.kind.value,
            sku.sku,
            movement.quantity,
            self.user.id,
        )
        return MovementResult(movement, _stock(sku, after[sku.sku]))


def _stock(sku: Sku, levels: Mapping[str, StockLevel]) -> SkuStock:
    return SkuStock(sku, tuple(levels[location] for location in sorted(levels)))


@dataclass(frozen=True, slots=True)
class ImportCatalogue:
    """A whole CSV in one transaction: new SKUs, changed SKUs, counted stock.

    Counted stock differing from the books is recorded as an adjustment, so
    the ledger still explains every level.
    """

    user: User
    rows: tuple[ImportRow, ...]

    async def apply(self, tx: WriteTxn) -> ImportResult:
        entries = {row.sku.sku: row.sku for row in self.rows}
        existing = await store.skus_by_code(tx.conn, entries)
        counted = [row for row in self.rows if row.location is not None]
        before = await store.levels_for(tx.conn, {row.sku.sku for row in counted}, lock=True)
        changed: list[StockLevel] = []
        adjustments: list[Movement] = []
        for row in counted:
            assert row.location is not None and row.on_hand is not None
            level = level_at(before[row.sku.sku], row.sku.sku, row.location)
            delta = row.on_hand - level.on_hand
            if delta == 0:
                continue
            if level.reserved and row.on_hand < level.reserved:
                raise BadRequest(
                    f"line {row.line}: on_hand {row.on_hand} is below the {level.reserved} "
                    f"of {row.sku.sku} reserved for open orders at {row.location}"
                )
            changed.append(replace(level, on_hand=row.on_hand))
            adjustments.append(
                _entry(
                    tx,
                    row.sku.sku,
                    MovementKind.ADJUSTMENT,
                    abs(delta),
                    self.user.id,
                    from_location=row.location if delta < 0 else None,
                    to_location=row.location if delta > 0 else None,
                    reason=f"CSV import: counted {row.on_hand}",
                )
            )
        new = [sku for code, sku in entries.items() if code not in existing]
        edited = [
            sku
            for code, sku in entries.items()
            if code in existing and replace(sku, active=existing[code].active) != existing[code]
        ]
        await store.insert_skus_txn(tx.conn, new)
        await store.update_skus_txn(tx.conn, edited)
        await _write_stock_txn(
            tx, self.user.id, {**existing, **entries}, before, changed, adjustments
        )
        logger.info(
            "catalogue import by %s: %d rows, %d new, %d changed, %d stock adjustments",
            self.user.id,
            len(self.rows),
            len(new),
            len(edited),
            len(adjustments),
        )
        return ImportResult(len(self.rows), len(new), len(edited), len(adjustments))


# --- effects of the order workflow ---------------------------------------------------


async def reserve_for_order_txn(tx: WriteTxn, order: OrderRow, by: UserId) -> list[Shortage]:
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
    await _write_stock_txn(tx, by, catalogue, before, changed, entries)
    logger.info("order %s: reserved %d SKUs, %d short", order.id, len(entries), len(shortages))
    return shortages


async def release_for_order_txn(tx: WriteTxn, order: OrderRow, by: UserId) -> None:
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
    await _write_stock_txn(tx, by, catalogue, before, changed, entries)
    logger.info("order %s: released %d SKUs", order.id, len(held))


async def ship_for_order_txn(tx: WriteTxn, order: OrderRow, by: UserId) -> None:
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
    await _write_stock_txn(tx, by, catalogue, before, changed, entries)
    logger.info("order %s: shipped %d SKUs", order.id, len(changed))


async def return_for_order_txn(tx: WriteTxn, order: OrderRow, by: UserId) -> None:
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
    await _write_stock_txn(tx, by, catalogue, before, changed, entries)
    logger.info("order %s: %d SKUs returned", order.id, len(out))


def _order_entry(
    tx: WriteTxn, order: OrderRow, sku: str, kind: MovementKind, quantity: int, by: UserId
) -> Movement:
    inward = kind is MovementKind.RETURN_IN
    return _entry(
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


# --- /stock in the chat ------------------------------------------------------------------


async def answer_stock_query_txn(
    tx: WriteTxn, conv: ConversationRow, query: str, asker: User, reply_to: int
) -> None:
    """Answer `/stock QUERY` typed in a staff conversation with live numbers.

    The answer is a system message replying to the question, in Chinese with
    the English names beside, and carries the numbers in `meta` for clients.
    In a conversation with a customer in it, it is a staff-only note: stock
    numbers are not for customers. It never raises: the question itself has
    already been accepted in this transaction.
    """
    if not can(asker, Action.VIEW_STOCK):
        return
    query = " ".join(query.split())[:MAX_QUERY_CHARS]
    found: list[SkuStock] = []
    total = 0
    if query:
        skus = await store.search_skus(tx.conn, query, limit=STOCK_ANSWER_LIMIT)
        total = len(skus)
        if total == STOCK_ANSWER_LIMIT:
            total = await store.count_skus(tx.conn, query)
        levels = await store.levels_for(tx.conn, [s.sku for s in skus])
        found = [_stock(sku, levels[sku.sku]) for sku in skus]
    members = await tx.member_set(conv.id)
    tx.append_message(
        await tx.conversation(conv.id),
        asker.id,
        MessageKind.SYSTEM,
        stock_answer_text(query, found, total),
        reply_to=reply_to,
        meta={
            "event": "stock_answer",
            "query": query,
            "total": total,
            "results": [_result_fields(s) for s in found],
        },
        internal=bool(members.customers),
    )
    logger.info("stock query in %s by %s: %d matches", conv.id, asker.id, total)


def stock_answer_text(query: str, found: Sequence[SkuStock], total: int) -> str:
    if not query:
        return "用法：/库存 编号或名称，例如「/库存 帐篷」。Usage: /stock SKU or name"
    if not found:
        return f"库存查询「{query}」：没有找到匹配的商品。No SKU matches “{query}”."
    more = f"，显示前 {len(found)} 个" if total > len(found) else ""
    more_en = f", first {len(found)} shown" if total > len(found) else ""
    lines = [
        f"库存查询「{query}」：找到 {total} 个商品{more}（在库/预留/可用）"
        f" Stock for “{query}”: {total} SKU(s){more_en} (on hand/reserved/available)"
    ]
    for stock in found:
        sku = stock.sku
        english = f" / {sku.name_en}" if sku.name_en and sku.name_en != sku.name_zh else ""
        lines.append(f"• {sku.sku} {sku.name('zh-CN')}{english}")
        if not stock.levels:
            lines.append("    无库存记录 no stock recorded")
        for level in stock.levels:
            lines.append(
                f"    {level.location}：在库 {level.on_hand}，预留 {level.reserved}，"
                f"可用 {level.available}"
            )
    return "\n".join(lines)


def _result_fields(stock: SkuStock) -> dict[str, object]:
    return {
        "sku": stock.sku.sku,
        "name_zh": stock.sku.name_zh,
        "name_en": stock.sku.name_en,
        "on_hand": stock.on_hand,
        "reserved": stock.reserved,
        "available": stock.available,
        "levels": [
            {
                "location": level.location,
                "on_hand": level.on_hand,
                "reserved": level.reserved,
                "available": level.available,
            }
            for level in stock.levels
        ],
    }


# --- use cases the routes call -------------------------------------------------------------


class Inventory:
    """Catalogue and stock use cases; each checks the caller's role first."""

    def __init__(self, db: Database, writer: GroupCommitWriter, clock: Clock) -> None:
        self._db = db
        self._writer = writer
        self._clock = clock

    async def create_sku(self, user: User, fields: Mapping[str, object]) -> SkuStock:
        """Raises Conflict when the code is taken."""
        check(user, Action.MANAGE_CATALOGUE)
        sku = validate_sku(fields)
        async with self._db.write("create_sku") as conn:
            await store.insert_sku_txn(conn, sku)
        logger.info("SKU %s created by %s", sku.sku, user.id)
        return SkuStock(sku, ())

    async def update_sku(self, user: User, code: str, changes: Mapping[str, object]) -> SkuStock:
        """Change catalogue fields; stock changes only through movements."""
        check(user, Action.MANAGE_CATALOGUE)
        async with self._db.write("update_sku") as conn:
            sku = changed_sku(await store.get_sku(conn, code), changes)
            await store.update_sku_txn(conn, sku)
            levels = await store.levels_for(conn, [sku.sku])
        logger.info("SKU %s updated by %s", sku.sku, user.id)
        return _stock(sku, levels[sku.sku])

    async def get_sku(self, user: User, code: str) -> SkuStock:
        check(user, Action.VIEW_STOCK)
        async with self._db.read() as conn:
            sku = await store.get_sku(conn, code)
            levels = await store.levels_for(conn, [sku.sku])
        return _stock(sku, levels[sku.sku])

    async def list_skus(
        self, user: User, query: str, category: str | None, limit: int
    ) -> list[SkuStock]:
        """SKUs whose code or names contain every word of `query`, with their stock."""
        check(user, Action.VIEW_STOCK)
        async with self._db.read() as conn:
            found = await store.search_skus(conn, query, category=category, limit=limit)
            levels = await store.levels_for(conn, [s.sku for s in found])
        return [_stock(sku, levels[sku.sku]) for sku in found]

    async def export_csv(self, user: User) -> str:
        check(user, Action.VIEW_STOCK)
        async with self._db.read() as conn:
            catalogue = await store.list_all_skus(conn)
            levels = await store.all_levels(conn)
        return format_catalogue_csv((sku, levels.get(sku.sku, [])) for sku in catalogue)

    async def import_csv(self, user: User, text: str) -> ImportResult:
        """Import a catalogue CSV: all of it, or nothing and a 400 naming the bad line."""
        check(user, Action.MANAGE_CATALOGUE)
        rows = parse_catalogue_csv(text)
        if any(row.location is not None for row in rows):
            check(user, Action.MOVE_STOCK)
        result: ImportResult = await self._writer.submit(ImportCatalogue(user, tuple(rows)))
        return result

    async def record_movement(self, user: User, fields: Mapping[str, object]) -> MovementResult:
        check(user, Action.MOVE_STOCK)
        request = parse_movement(fields)
        result: MovementResult = await self._writer.submit(RecordMovement(user, request))
        return result

    async def list_levels(
        self, user: User, sku: str | None, location: str | None, limit: int
    ) -> list[StockLevel]:
        check(user, Action.VIEW_STOCK)
        async with self._db.read() as conn:
            return await store.list_levels(conn, sku=sku, location=location, limit=limit)

    async def list_movements(
        self,
        user: User,
        *,
        sku: str | None = None,
        order_id: str | None = None,
        kind: str | None = None,
        before: str | None = None,
        limit: int = 100,
    ) -> list[Movement]:
        """The ledger, newest first, including the reserve/release entries orders make."""
        check(user, Action.VIEW_STOCK)
        try:
            wanted = None if kind is None else MovementKind(kind)
        except ValueError:
            known = ", ".join(k.value for k in MovementKind)
            raise BadRequest(f"kind must be one of: {known}") from None
        if sku is not None:
            validate_sku_code(sku)
        async with self._db.read() as conn:
            return await store.list_movements(
                conn, sku=sku, order_id=order_id, kind=wanted, before=before, limit=limit
            )
