"""Orders: creating them, moving them through their workflow, and their exceptions.

Every write here is a group-commit operation: the order row, its messages in
the order's conversation and the role channels, and the durable `order` event
commit together, and are delivered only after the commit.
"""

from __future__ import annotations

from dataclasses import replace

from orderchat.core.errors import Forbidden
from orderchat.core.model import User, UserKind
from orderchat.core.workflows import Workflow
from orderchat.services.order_events import emit_order_txn
from orderchat.services.ports import Clock
from orderchat.services.workflows import Workflows
from orderchat.services.writer import GroupCommitWriter, WriteTxn
from orderchat.storage import orders as order_store
from orderchat.storage.engine import Database
from orderchat.storage.orders import OrderRow


async def load_order_txn(
    tx: WriteTxn, workflows: Workflows, order_id: str, user: User
) -> tuple[OrderRow, Workflow]:
    """The order, locked for this transaction, if the user may see it.

    Raises:
        NotFound: no such order.
        Forbidden: a customer asking for someone else's order.
    """
    order = await order_store.get_order(tx.conn, order_id, lock=True)
    check_can_see(user, order)
    return order, workflows.get(order.workflow)


def check_can_see(user: User, order: OrderRow) -> None:
    if user.kind is UserKind.CUSTOMER and order.customer_id != user.id:
        raise Forbidden("this is not your order")


async def save_order_txn(tx: WriteTxn, order: OrderRow, workflow: Workflow) -> OrderRow:
    """Store the order's new state and send it to every member's devices."""
    saved = await order_store.update_order_txn(tx.conn, replace(order, updated_at_ms=tx.now_ms))
    await tx.member_set(saved.conv_id)
    emit_order_txn(tx, saved, workflow)
    return saved


async def customer_language_txn(tx: WriteTxn, order: OrderRow) -> str:
    customer = await order_store.get_customer(tx.conn, order.customer_id)
    return customer.language


class Orders:
    """Order use cases; writes go through the group-commit writer."""

    def __init__(
        self, db: Database, writer: GroupCommitWriter, clock: Clock, workflows: Workflows
    ) -> None:
        self._db = db
        self._writer = writer
        self._clock = clock
        self.workflows = workflows
