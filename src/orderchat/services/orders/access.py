"""Reaching an order from inside a write: load it locked, check who may see it, save it.

Every service that changes an order (orders, finance, confirmations, webhooks)
goes through these, so the visibility rule and the durable `order` event are
applied the same way everywhere.
"""

from __future__ import annotations

from dataclasses import replace

from orderchat.core.errors import Forbidden
from orderchat.core.ids import OrderId
from orderchat.core.model import User, UserKind
from orderchat.core.orders import Order
from orderchat.core.texts import say
from orderchat.core.workflows import Workflow
from orderchat.services.orders.events import emit_order_txn
from orderchat.services.orders.workflows import Workflows
from orderchat.services.writer import WriteTxn
from orderchat.storage import orders as order_store


async def load_order_txn(
    tx: WriteTxn, workflows: Workflows, order_id: OrderId, user: User
) -> tuple[Order, Workflow]:
    """The order, locked for this transaction, if the user may see it.

    Raises:
        NotFound: no such order.
        Forbidden: a customer asking for someone else's order.
    """
    order = await order_store.get_order(tx.conn, order_id, lock=True)
    check_can_see(user, order)
    return order, workflows.get(order.workflow)


def check_can_see(user: User, order: Order) -> None:
    if user.kind is UserKind.CUSTOMER and order.customer_id != user.id:
        raise Forbidden(say("access.not_your_order"))


async def save_order_txn(tx: WriteTxn, order: Order, workflow: Workflow) -> Order:
    """Store the order's new state and send it to every member's devices."""
    saved = await order_store.update_order_txn(tx.conn, replace(order, updated_at_ms=tx.now_ms))
    await tx.member_set(saved.conv_id)
    await emit_order_txn(tx, saved, workflow)
    return saved


async def customer_language_txn(tx: WriteTxn, order: Order) -> str:
    customer = await order_store.get_customer(tx.conn, order.customer_id)
    return customer.language
