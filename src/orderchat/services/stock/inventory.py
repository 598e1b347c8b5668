"""Catalogue and stock use cases the routes call: SKUs, movements, CSV import and export.

Everything that changes stock is a group-commit operation (`RecordMovement`,
`ImportCatalogue`), written through `ledger.write_stock_txn`. Catalogue edits
that cannot touch stock use a plain write transaction.

The rules themselves (what may be taken, what an order holds) are in
`core/stock.py`; the stock package only gathers the facts and writes the
outcome. What orders do to stock is in `fulfilment.py`; `/stock` in the chat
is in `command.py`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from orderchat.core.catalogue_import import (
    CatalogueCsv,
    ImportPreview,
    counted_codes,
    first_error_message,
    plan_import,
    read_catalogue_csv,
)
from orderchat.core.errors import BadRequest, Conflict
from orderchat.core.ids import OrderId, SkuCode
from orderchat.core.model import User
from orderchat.core.permissions import Action, check
from orderchat.core.stock import (
    Movement,
    MovementKind,
    MovementRequest,
    Sku,
    SkuChanges,
    StockLevel,
    apply_movement,
    changed_sku,
    format_catalogue_csv,
    validate_sku_code,
)
from orderchat.core.texts import say
from orderchat.services.ports import Clock
from orderchat.services.stock.ledger import SkuStock, ledger_entry, sku_stock, write_stock_txn
from orderchat.services.writer import GroupCommitWriter, WriteTxn
from orderchat.storage import inventory as store
from orderchat.storage.engine import Connection, Database

logger = logging.getLogger(__name__)


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
            raise BadRequest(say("issues.unknown_sku", sku=request.sku))
        if request.order_id is not None and not await store.order_exists(tx.conn, request.order_id):
            raise BadRequest(say("inventory.no_order", order_id=request.order_id))
        before = await store.levels_for(tx.conn, [sku.sku], lock=True)
        changed = apply_movement(request, before[sku.sku])
        movement = ledger_entry(
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
        after = await write_stock_txn(tx, self.user.id, catalogue, before, changed, [movement])
        logger.info(
            "movement %s: %s %s x%d by %s",
            movement.id,
            movement.kind.value,
            sku.sku,
            movement.quantity,
            self.user.id,
        )
        return MovementResult(movement, sku_stock(sku, after[sku.sku]))


@dataclass(frozen=True, slots=True)
class ImportCatalogue:
    """A whole CSV in one transaction: new SKUs, changed SKUs, counted stock.

    The file is planned again from the state read here, so what is written is
    what a preview of this state showed; with a `token`, a state that differs
    from the preview's is refused. Counted stock differing from the books is
    recorded as an adjustment, so the ledger still explains every level.
    """

    user: User
    parsed: CatalogueCsv
    token: str | None = None

    async def apply(self, tx: WriteTxn) -> ImportResult:
        preview, before = await _plan_txn(tx.conn, self.parsed, lock=True)
        if self.token is not None and self.token != preview.token:
            raise Conflict(say("catalogue.changed_since_preview"))
        if not preview.valid:
            raise BadRequest(first_error_message(preview))
        plan = preview.plan
        adjustments = [
            ledger_entry(
                tx,
                level.sku,
                MovementKind.ADJUSTMENT,
                abs(delta),
                self.user.id,
                from_location=level.location if delta < 0 else None,
                to_location=level.location if delta > 0 else None,
                reason=f"CSV import: counted {level.on_hand}",
            )
            for level, delta in plan.levels
        ]
        entries = {row.sku.sku: row.sku for row in self.parsed.rows}
        existing = await store.skus_by_code(tx.conn, entries)
        await store.insert_skus_txn(tx.conn, plan.new)
        await store.update_skus_txn(tx.conn, plan.edited)
        await write_stock_txn(
            tx,
            self.user.id,
            {**existing, **entries},
            before,
            [level for level, _ in plan.levels],
            adjustments,
        )
        logger.info(
            "catalogue import by %s: %d rows, %d new, %d changed, %d stock adjustments",
            self.user.id,
            len(self.parsed.rows),
            len(plan.new),
            len(plan.edited),
            len(adjustments),
        )
        return ImportResult(
            len(self.parsed.rows), len(plan.new), len(plan.edited), len(adjustments)
        )


async def _plan_txn(
    conn: Connection, parsed: CatalogueCsv, *, lock: bool = False
) -> tuple[ImportPreview, dict[str, dict[str, StockLevel]]]:
    """The file compared with the SKUs it names and the levels it counts."""
    existing = await store.skus_by_code(conn, parsed.codes.values())
    levels = await store.levels_for(conn, counted_codes(parsed), lock=lock)
    return plan_import(parsed, existing, levels), levels


class Inventory:
    """Catalogue and stock use cases; each checks the caller's role first."""

    def __init__(self, db: Database, writer: GroupCommitWriter, clock: Clock) -> None:
        self._db = db
        self._writer = writer
        self._clock = clock

    async def create_sku(self, user: User, sku: Sku) -> SkuStock:
        """Raises Conflict when the code is taken."""
        check(user, Action.MANAGE_CATALOGUE)
        async with self._db.write("create_sku") as conn:
            await store.insert_sku_txn(conn, sku)
        logger.info("SKU %s created by %s", sku.sku, user.id)
        return SkuStock(sku, ())

    async def update_sku(self, user: User, code: SkuCode, changes: SkuChanges) -> SkuStock:
        """Change catalogue fields; stock changes only through movements."""
        check(user, Action.MANAGE_CATALOGUE)
        async with self._db.write("update_sku") as conn:
            sku = changed_sku(await store.get_sku(conn, code), changes)
            await store.update_sku_txn(conn, sku)
            levels = await store.levels_for(conn, [sku.sku])
        logger.info("SKU %s updated by %s", sku.sku, user.id)
        return sku_stock(sku, levels[sku.sku])

    async def catalogue_names(self, codes: Iterable[SkuCode]) -> dict[str, dict[str, str]]:
        """The catalogue's names of these SKUs in each language, for an order's page.

        No permission of its own: the caller has shown the order that lists the SKUs,
        and a name is not stock. SKUs no longer in the catalogue are left out.
        """
        async with self._db.read() as conn:
            found = await store.skus_by_code(conn, codes)
        return {code: {"zh-CN": sku.name_zh, "en": sku.name_en} for code, sku in found.items()}

    async def get_sku(self, user: User, code: SkuCode) -> SkuStock:
        check(user, Action.VIEW_STOCK)
        async with self._db.read() as conn:
            sku = await store.get_sku(conn, code)
            levels = await store.levels_for(conn, [sku.sku])
        return sku_stock(sku, levels[sku.sku])

    async def list_skus(
        self, user: User, query: str, category: str | None, limit: int, offset: int = 0
    ) -> tuple[list[SkuStock], int]:
        """A page of SKUs whose code or names contain every word of `query`, with their
        stock, and how many match in all."""
        check(user, Action.VIEW_STOCK)
        async with self._db.read() as conn:
            found = await store.search_skus(
                conn, query, category=category, limit=limit, offset=offset
            )
            total = await store.count_skus(conn, query, category=category)
            levels = await store.levels_for(conn, [s.sku for s in found])
        return [sku_stock(sku, levels[sku.sku]) for sku in found], total

    async def export_csv(self, user: User) -> str:
        check(user, Action.VIEW_STOCK)
        async with self._db.read() as conn:
            catalogue = await store.list_all_skus(conn)
            levels = await store.all_levels(conn)
        return format_catalogue_csv((sku, levels.get(sku.sku, [])) for sku in catalogue)

    async def preview_import(self, user: User, text: str) -> ImportPreview:
        """What importing `text` would do, row by row; writes nothing."""
        parsed = self._parse_import(user, text)
        async with self._db.read() as conn:
            preview, _ = await _plan_txn(conn, parsed)
        return preview

    async def import_csv(self, user: User, text: str, token: str | None = None) -> ImportResult:
        """Import a catalogue CSV: all of it, or nothing and a 400 naming the bad line.

        With the `token` of a preview, a catalogue changed since is a Conflict.
        """
        parsed = self._parse_import(user, text)
        result: ImportResult = await self._writer.submit(ImportCatalogue(user, parsed, token))
        return result

    def _parse_import(self, user: User, text: str) -> CatalogueCsv:
        check(user, Action.MANAGE_CATALOGUE)
        parsed = read_catalogue_csv(text)
        if any(row.location is not None for row in parsed.rows):
            check(user, Action.MOVE_STOCK)
        return parsed

    async def record_movement(self, user: User, request: MovementRequest) -> MovementResult:
        check(user, Action.MOVE_STOCK)
        result: MovementResult = await self._writer.submit(RecordMovement(user, request))
        return result

    async def list_levels(
        self, user: User, sku: SkuCode | None, location: str | None, limit: int
    ) -> list[StockLevel]:
        check(user, Action.VIEW_STOCK)
        async with self._db.read() as conn:
            return await store.list_levels(conn, sku=sku, location=location, limit=limit)

    async def list_movements(
        self,
        user: User,
        *,
        sku: SkuCode | None = None,
        order_id: OrderId | None = None,
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
            raise BadRequest(say("stock.kind_must_one", known=known)) from None
        if sku is not None:
            validate_sku_code(sku)
        async with self._db.read() as conn:
            return await store.list_movements(
                conn, sku=sku, order_id=order_id, kind=wanted, before=before, limit=limit
            )
