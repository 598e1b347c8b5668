"""Stock: the catalogue, movements, reservations for open orders, low-stock alerts.

The order workflow's effects call the `*_for_order_txn` functions inside the
group-commit transaction that moves the order.
"""

from __future__ import annotations

from dataclasses import dataclass

from orderchat.core.ids import UserId
from orderchat.core.model import User
from orderchat.services.ports import Clock
from orderchat.services.writer import GroupCommitWriter, WriteTxn
from orderchat.storage.conversations import ConversationRow
from orderchat.storage.engine import Database
from orderchat.storage.orders import OrderRow

DEFAULT_LOCATION = "main"


@dataclass(frozen=True, slots=True)
class Shortage:
    sku: str
    name: str
    needed: int
    available: int


async def reserve_for_order_txn(tx: WriteTxn, order: OrderRow, by: UserId) -> list[Shortage]:
    """Reserve the order's items; return what could not be reserved in full."""
    return []


async def release_for_order_txn(tx: WriteTxn, order: OrderRow, by: UserId) -> None:
    """Give back what the order had reserved."""


async def ship_for_order_txn(tx: WriteTxn, order: OrderRow, by: UserId) -> None:
    """Turn the order's reservations into sale_out movements."""


async def return_for_order_txn(tx: WriteTxn, order: OrderRow, by: UserId) -> None:
    """Put the order's returned items back on the shelf (return_in movements)."""


async def answer_stock_query_txn(
    tx: WriteTxn, conv: ConversationRow, query: str, asker: User, reply_to: int
) -> None:
    """Answer `/stock QUERY` typed in a staff conversation with live numbers."""


class Inventory:
    def __init__(self, db: Database, writer: GroupCommitWriter, clock: Clock) -> None:
        self._db = db
        self._writer = writer
        self._clock = clock
