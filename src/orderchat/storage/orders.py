"""Orders, their items, their open issues; customers and their invitation links."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import orjson
from sqlalchemy import Row, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from orderchat.core.errors import Conflict, NotFound
from orderchat.core.ids import ConversationId, IssueId, OrderId, UserId
from orderchat.core.orders import Customer, InvoiceStatus, Issue, Order, OrderItem, PaymentStatus
from orderchat.core.texts import say
from orderchat.storage.schema import customers, invitations, order_issues, order_items, orders


def _order(row: Row[Any], items: tuple[OrderItem, ...]) -> Order:
    return Order(
        id=row.id,
        number=row.number,
        customer_id=UserId(row.customer_id),
        conv_id=ConversationId(row.conv_id),
        workflow=row.workflow,
        status=row.status,
        payment_status=PaymentStatus(row.payment_status),
        invoice_status=InvoiceStatus(row.invoice_status),
        currency=row.currency,
        total_cents=row.total_cents,
        paid_cents=row.paid_cents,
        address=orjson.loads(row.address),
        note=row.note,
        carrier=row.carrier,
        tracking_no=row.tracking_no,
        eta_ms=row.eta_ms,
        sample_round=row.sample_round,
        ship_approved_by=None if row.ship_approved_by is None else UserId(row.ship_approved_by),
        created_by=UserId(row.created_by),
        created_at_ms=row.created_at_ms,
        updated_at_ms=row.updated_at_ms,
        shipped_at_ms=row.shipped_at_ms,
        version=row.version,
        items=items,
        legal_hold=bool(row.legal_hold),
    )


def _columns(order: Order) -> dict[str, Any]:
    return {
        "number": order.number,
        "customer_id": order.customer_id,
        "conv_id": order.conv_id,
        "workflow": order.workflow,
        "status": order.status,
        "payment_status": order.payment_status.value,
        "invoice_status": order.invoice_status.value,
        "currency": order.currency,
        "total_cents": order.total_cents,
        "paid_cents": order.paid_cents,
        "address": orjson.dumps(order.address).decode(),
        "note": order.note,
        "carrier": order.carrier,
        "tracking_no": order.tracking_no,
        "eta_ms": order.eta_ms,
        "sample_round": order.sample_round,
        "ship_approved_by": order.ship_approved_by,
        "created_by": order.created_by,
        "created_at_ms": order.created_at_ms,
        "updated_at_ms": order.updated_at_ms,
        "shipped_at_ms": order.shipped_at_ms,
        "version": order.version,
    }


async def insert_order_txn(conn: AsyncConnection, order: Order) -> None:
    """Raises Conflict when the shop's order number is taken."""
    try:
        async with conn.begin_nested():
            await conn.execute(orders.insert().values(id=order.id, **_columns(order)))
    except IntegrityError as exc:
        raise Conflict(say("orders.order_number_exists_already", number=order.number)) from exc
    await conn.execute(
        order_items.insert(),
        [
            {
                "order_id": order.id,
                "line": line,
                "sku": item.sku,
                "name": item.name,
                "quantity": item.quantity,
                "unit_price_cents": item.unit_price_cents,
            }
            for line, item in enumerate(order.items, start=1)
        ],
    )


async def update_order_txn(conn: AsyncConnection, order: Order) -> Order:
    """Write the order's new state; its version goes up by one."""
    saved = replace(order, version=order.version + 1)
    await conn.execute(update(orders).where(orders.c.id == order.id).values(**_columns(saved)))
    return saved


async def _items(conn: AsyncConnection, order_ids: Sequence[str]) -> dict[str, list[OrderItem]]:
    found: dict[str, list[OrderItem]] = {i: [] for i in order_ids}
    if order_ids:
        query = (
            select(order_items)
            .where(order_items.c.order_id.in_(list(order_ids)))
            .order_by(order_items.c.order_id, order_items.c.line)
        )
        for r in await conn.execute(query):
            found[r.order_id].append(OrderItem(r.sku, r.name, r.quantity, r.unit_price_cents))
    return found


async def get_order(conn: AsyncConnection, order_id: OrderId, *, lock: bool = False) -> Order:
    query = select(orders).where(orders.c.id == order_id)
    if lock:
        query = query.with_for_update()
    row = (await conn.execute(query)).first()
    if row is None:
        raise NotFound(say("inventory.no_order", order_id=order_id))
    return _order(row, tuple((await _items(conn, [row.id]))[row.id]))


async def order_ids_by_conversation(
    conn: AsyncConnection, conv_ids: Sequence[str]
) -> dict[str, OrderId]:
    """The order behind each of these conversations that is an order's thread."""
    if not conv_ids:
        return {}
    query = select(orders.c.conv_id, orders.c.id).where(orders.c.conv_id.in_(list(conv_ids)))
    return {str(r.conv_id): OrderId(r.id) for r in await conn.execute(query)}


async def find_order_id(
    conn: AsyncConnection, *, number: str | None = None, conv_id: str | None = None
) -> OrderId | None:
    query = select(orders.c.id)
    query = (
        query.where(orders.c.number == number)
        if number
        else query.where(orders.c.conv_id == conv_id)
    )
    row = (await conn.execute(query)).first()
    return None if row is None else OrderId(row.id)


async def list_orders(
    conn: AsyncConnection,
    *,
    customer_id: UserId | None = None,
    status: str | None = None,
    workflow: str | None = None,
    limit: int = 100,
    before_ms: int | None = None,
) -> list[Order]:
    query = select(orders).order_by(orders.c.updated_at_ms.desc(), orders.c.id).limit(limit)
    if customer_id is not None:
        query = query.where(orders.c.customer_id == customer_id)
    if status is not None:
        query = query.where(orders.c.status == status)
    if workflow is not None:
        query = query.where(orders.c.workflow == workflow)
    if before_ms is not None:
        query = query.where(orders.c.updated_at_ms < before_ms)
    rows = list(await conn.execute(query))
    items = await _items(conn, [r.id for r in rows])
    return [_order(r, tuple(items[r.id])) for r in rows]


# --- issues ------------------------------------------------------------------------


def _issue(row: Row[Any]) -> Issue:
    return Issue(
        id=row.id,
        order_id=row.order_id,
        kind=row.kind,
        detail=orjson.loads(row.detail),
        raised_by=UserId(row.raised_by),
        raised_at_ms=row.raised_at_ms,
        outcome=row.outcome,
        outcome_detail=None if row.outcome_detail is None else orjson.loads(row.outcome_detail),
        settled_by=None if row.settled_by is None else UserId(row.settled_by),
        settled_at_ms=row.settled_at_ms,
    )


async def insert_issue_txn(conn: AsyncConnection, issue: Issue) -> None:
    await conn.execute(
        order_issues.insert().values(
            id=issue.id,
            order_id=issue.order_id,
            kind=issue.kind,
            detail=orjson.dumps(issue.detail).decode(),
            raised_by=issue.raised_by,
            raised_at_ms=issue.raised_at_ms,
        )
    )


async def settle_issue_txn(
    conn: AsyncConnection,
    issue_id: IssueId,
    outcome: str,
    detail: dict[str, Any],
    by: UserId,
    now_ms: int,
) -> None:
    await conn.execute(
        update(order_issues)
        .where(order_issues.c.id == issue_id)
        .values(
            outcome=outcome,
            outcome_detail=orjson.dumps(detail).decode(),
            settled_by=by,
            settled_at_ms=now_ms,
        )
    )


async def get_issue(conn: AsyncConnection, issue_id: IssueId) -> Issue:
    row = (await conn.execute(select(order_issues).where(order_issues.c.id == issue_id))).first()
    if row is None:
        raise NotFound(say("orders.no_issue", issue_id=issue_id))
    return _issue(row)


async def list_issues(conn: AsyncConnection, order_id: OrderId) -> list[Issue]:
    query = (
        select(order_issues)
        .where(order_issues.c.order_id == order_id)
        .order_by(order_issues.c.raised_at_ms, order_issues.c.id)
    )
    return [_issue(r) for r in await conn.execute(query)]


# --- customers and invitations ---------------------------------------------------


def _customer(row: Row[Any]) -> Customer:
    return Customer(
        user_id=UserId(row.user_id),
        name=row.name,
        phone=row.phone,
        email=row.email,
        company=row.company,
        segment=row.segment,
        language=row.language,
    )


async def insert_customer_txn(conn: AsyncConnection, customer: Customer, now_ms: int) -> None:
    await conn.execute(
        customers.insert().values(
            user_id=customer.user_id,
            name=customer.name,
            phone=customer.phone,
            email=customer.email,
            company=customer.company,
            segment=customer.segment,
            language=customer.language,
            created_at_ms=now_ms,
        )
    )


async def get_customer(conn: AsyncConnection, user_id: str) -> Customer:
    row = (await conn.execute(select(customers).where(customers.c.user_id == user_id))).first()
    if row is None:
        raise NotFound(say("orders.no_customer", user_id=user_id))
    return _customer(row)


async def list_customers(conn: AsyncConnection, limit: int = 200) -> list[Customer]:
    query = select(customers).order_by(customers.c.created_at_ms.desc()).limit(limit)
    return [_customer(r) for r in await conn.execute(query)]


async def insert_invitation_txn(
    conn: AsyncConnection,
    token_hash: str,
    order_id: OrderId,
    customer_id: UserId,
    by: UserId,
    now_ms: int,
    expires_at_ms: int,
) -> None:
    await conn.execute(
        invitations.insert().values(
            token_hash=token_hash,
            order_id=order_id,
            customer_id=customer_id,
            created_by=by,
            created_at_ms=now_ms,
            expires_at_ms=expires_at_ms,
            revoked_at_ms=None,
        )
    )


@dataclass(frozen=True, slots=True)
class InvitationRow:
    order_id: OrderId
    customer_id: UserId
    expires_at_ms: int
    revoked_at_ms: int | None


async def find_invitation(conn: AsyncConnection, token_hash: str) -> InvitationRow | None:
    row = (
        await conn.execute(select(invitations).where(invitations.c.token_hash == token_hash))
    ).first()
    if row is None:
        return None
    return InvitationRow(
        OrderId(row.order_id), UserId(row.customer_id), row.expires_at_ms, row.revoked_at_ms
    )
