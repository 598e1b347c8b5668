"""Money recorded against orders: payments and refunds, invoices, and the
queries the daily reconciliation digest reads.

Amounts are integer cents. A refund is stored as a positive amount with
`kind = "refund"`, so sums never mix signs and a wrong sign is visible.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from orderchat.core.ids import OrderId, UserId
from orderchat.core.orders import InvoiceStatus, PaymentStatus
from orderchat.core.payments import Invoice, Payment, PaymentKind
from orderchat.storage.schema import invoices, orders, payments


@dataclass(frozen=True, slots=True)
class PaymentTotals:
    """What an order has received and given back, before this write."""

    paid_cents: int
    refunded_cents: int

    @property
    def net_cents(self) -> int:
        return self.paid_cents - self.refunded_cents


@dataclass(frozen=True, slots=True)
class LedgerLine:
    """A payment or refund with the order facts a reconciliation needs."""

    payment: Payment
    order_number: str
    currency: str


@dataclass(frozen=True, slots=True)
class Receivable:
    """A shipped order that still owes money."""

    order_id: OrderId
    order_number: str
    customer_id: UserId
    currency: str
    total_cents: int
    paid_cents: int
    shipped_at_ms: int
    ship_approved_by: UserId | None
    status: str


def _payment(row: Row[Any]) -> Payment:
    return Payment(
        id=row.id,
        order_id=row.order_id,
        kind=PaymentKind(row.kind),
        amount_cents=row.amount_cents,
        method=row.method,
        reference=row.reference,
        by=UserId(row.by),
        ts_ms=row.ts,
    )


def _invoice(row: Row[Any]) -> Invoice:
    return Invoice(
        order_id=row.order_id,
        status=InvoiceStatus(row.status),
        title=row.title,
        tax_id=row.tax_id,
        number=row.number,
        requested_by=UserId(row.requested_by),
        requested_at_ms=row.requested_at_ms,
        issued_by=None if row.issued_by is None else UserId(row.issued_by),
        issued_at_ms=row.issued_at_ms,
    )


# --- payments and refunds ------------------------------------------------------------


async def insert_payment_txn(conn: AsyncConnection, payment: Payment) -> None:
    await conn.execute(
        payments.insert().values(
            id=payment.id,
            order_id=payment.order_id,
            kind=payment.kind.value,
            amount_cents=payment.amount_cents,
            method=payment.method,
            reference=payment.reference,
            by=payment.by,
            ts=payment.ts_ms,
        )
    )


async def payment_totals(conn: AsyncConnection, order_id: OrderId) -> PaymentTotals:
    """Sums per kind, from the ledger rather than the order row, so that a
    refund is checked against money that was really recorded."""
    query = (
        select(payments.c.kind, func.coalesce(func.sum(payments.c.amount_cents), 0))
        .where(payments.c.order_id == order_id)
        .group_by(payments.c.kind)
    )
    sums = {kind: int(total) for kind, total in await conn.execute(query)}
    return PaymentTotals(
        sums.get(PaymentKind.PAYMENT.value, 0), sums.get(PaymentKind.REFUND.value, 0)
    )


async def list_payments(conn: AsyncConnection, order_id: OrderId) -> list[Payment]:
    query = (
        select(payments)
        .where(payments.c.order_id == order_id)
        .order_by(payments.c.ts, payments.c.id)
    )
    return [_payment(r) for r in await conn.execute(query)]


async def list_ledger(conn: AsyncConnection, from_ms: int, to_ms: int) -> list[LedgerLine]:
    """Payments and refunds recorded in [from_ms, to_ms), oldest first."""
    query = (
        select(payments, orders.c.number, orders.c.currency)
        .join(orders, orders.c.id == payments.c.order_id)
        .where(payments.c.ts >= from_ms, payments.c.ts < to_ms)
        .order_by(payments.c.ts, payments.c.id)
    )
    return [LedgerLine(_payment(r), r.number, r.currency) for r in await conn.execute(query)]


async def list_receivables(
    conn: AsyncConnection, shipped_before_ms: int, excluded_statuses: frozenset[str]
) -> list[Receivable]:
    """Orders shipped before the given time whose net payments fall short of the total.

    Fully refunded orders are left out: their money went back on purpose.
    """
    query = (
        select(orders)
        .where(
            orders.c.shipped_at_ms.is_not(None),
            orders.c.shipped_at_ms < shipped_before_ms,
            orders.c.paid_cents < orders.c.total_cents,
            orders.c.payment_status != PaymentStatus.REFUNDED.value,
            orders.c.status.not_in(sorted(excluded_statuses)),
        )
        .order_by(orders.c.shipped_at_ms, orders.c.id)
    )
    return [
        Receivable(
            order_id=r.id,
            order_number=r.number,
            customer_id=UserId(r.customer_id),
            currency=r.currency,
            total_cents=r.total_cents,
            paid_cents=r.paid_cents,
            shipped_at_ms=r.shipped_at_ms,
            ship_approved_by=None if r.ship_approved_by is None else UserId(r.ship_approved_by),
            status=r.status,
        )
        for r in await conn.execute(query)
    ]


# --- invoices --------------------------------------------------------------------------


async def find_invoice(conn: AsyncConnection, order_id: OrderId) -> Invoice | None:
    row = (await conn.execute(select(invoices).where(invoices.c.order_id == order_id))).first()
    return None if row is None else _invoice(row)


async def insert_invoice_txn(conn: AsyncConnection, invoice: Invoice) -> None:
    await conn.execute(
        invoices.insert().values(
            order_id=invoice.order_id,
            status=invoice.status.value,
            title=invoice.title,
            tax_id=invoice.tax_id,
            number=invoice.number,
            requested_by=invoice.requested_by,
            requested_at_ms=invoice.requested_at_ms,
            issued_by=invoice.issued_by,
            issued_at_ms=invoice.issued_at_ms,
        )
    )


async def issue_invoice_txn(
    conn: AsyncConnection, order_id: OrderId, number: str, by: UserId, now_ms: int
) -> None:
    await conn.execute(
        update(invoices)
        .where(invoices.c.order_id == order_id)
        .values(status=InvoiceStatus.ISSUED.value, number=number, issued_by=by, issued_at_ms=now_ms)
    )
