"""Money recorded against orders, as values: payments and refunds, invoices.

Amounts are integer cents. A refund is a positive amount with kind `refund`,
so sums never mix signs and a wrong sign is visible.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from orderchat.core.ids import OrderId, PaymentId, UserId
from orderchat.core.model import text_field
from orderchat.core.orders import MAX_PRICE_CENTS, InvoiceStatus, positive_int

MAX_METHOD_CHARS = 32  # payments.method
MAX_REFERENCE_CHARS = 128  # payments.reference
MAX_INVOICE_TITLE_CHARS = 200  # invoices.title
MAX_INVOICE_CODE_CHARS = 64  # invoices.tax_id, invoices.number


class PaymentKind(StrEnum):
    PAYMENT = "payment"
    REFUND = "refund"


@dataclass(frozen=True, slots=True)
class Payment:
    """Money received for an order, or given back (a positive amount either way)."""

    id: PaymentId
    order_id: OrderId
    kind: PaymentKind
    amount_cents: int
    method: str
    reference: str
    by: UserId
    ts_ms: int


@dataclass(frozen=True, slots=True)
class Invoice:
    """The invoice a customer asked for on an order, and whether it was issued."""

    order_id: OrderId
    status: InvoiceStatus  # requested | issued, never none: no row means none
    title: str
    tax_id: str | None
    number: str | None
    requested_by: UserId
    requested_at_ms: int
    issued_by: UserId | None
    issued_at_ms: int | None


# --- requests -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Money:
    """A payment or refund as asked for, already checked for shape."""

    kind: PaymentKind
    amount_cents: int
    method: str
    reference: str


def parse_money(kind: PaymentKind, amount: object, method: object, reference: object) -> Money:
    return Money(
        kind,
        positive_int(amount, "amount_cents", MAX_PRICE_CENTS),
        text_field(method, "method", MAX_METHOD_CHARS),
        text_field(reference, "reference", MAX_REFERENCE_CHARS),
    )


@dataclass(frozen=True, slots=True)
class InvoiceRequest:
    """The invoice a customer asks for: the title it carries and, for a company, a tax id."""

    title: str
    tax_id: str | None


def parse_invoice_request(title: object, tax_id: object) -> InvoiceRequest:
    return InvoiceRequest(
        text_field(title, "title", MAX_INVOICE_TITLE_CHARS),
        None if tax_id is None else text_field(tax_id, "tax_id", MAX_INVOICE_CODE_CHARS),
    )


def invoice_number(raw: object) -> str:
    return text_field(raw, "number", MAX_INVOICE_CODE_CHARS)
