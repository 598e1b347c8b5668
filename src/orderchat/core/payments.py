"""Money recorded against orders, as values: payments and refunds, invoices.

Amounts are integer cents. A refund is a positive amount with kind `refund`,
so sums never mix signs and a wrong sign is visible.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from orderchat.core.ids import UserId
from orderchat.core.orders import InvoiceStatus


class PaymentKind(StrEnum):
    PAYMENT = "payment"
    REFUND = "refund"


@dataclass(frozen=True, slots=True)
class Payment:
    """Money received for an order, or given back (a positive amount either way)."""

    id: str
    order_id: str
    kind: PaymentKind
    amount_cents: int
    method: str
    reference: str
    by: UserId
    ts_ms: int


@dataclass(frozen=True, slots=True)
class Invoice:
    """The invoice a customer asked for on an order, and whether it was issued."""

    order_id: str
    status: InvoiceStatus  # requested | issued, never none: no row means none
    title: str
    tax_id: str | None
    number: str | None
    requested_by: UserId
    requested_at_ms: int
    issued_by: UserId | None
    issued_at_ms: int | None
