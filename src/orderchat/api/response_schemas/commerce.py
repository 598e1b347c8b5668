"""Bodies about goods and money: SKUs, stock, movements, payments, invoices, the digest."""

from __future__ import annotations

from datetime import date
from typing import Literal

from orderchat.api.response_schemas._base import Body, Texts
from orderchat.api.response_schemas.orders import Order
from orderchat.core.orders import InvoiceStatus
from orderchat.core.payments import PaymentKind
from orderchat.core.stock import MovementKind


class StockLevel(Body):
    sku: str
    location: str
    on_hand: int
    reserved: int
    available: int


class Sku(Body):
    """A catalogue entry with its stock summed over its locations."""

    sku: str
    name_zh: str
    name_en: str
    category: str
    unit_price_cents: int
    low_stock_threshold: int
    active: bool
    on_hand: int
    reserved: int
    available: int
    levels: list[StockLevel]


class SkuList(Body):
    skus: list[Sku]
    total: int  # how many SKUs match, over every page


class ImportRowError(Body):
    line: int
    column: str | None  # null: the row as a whole
    reason: str  # worded in the reader's language
    key: str  # the reason's stable catalogue key


class ImportFieldChange(Body):
    """One field a row changes; an `on_hand` change names its location."""

    field: Literal[
        "name_zh", "name_en", "category", "unit_price_cents", "low_stock_threshold", "on_hand"
    ]
    old: str | int | None  # null: a new SKU
    new: str | int
    location: str | None


class ImportPreviewRow(Body):
    line: int
    sku: str
    action: Literal["create", "update", "unchanged", "error"]
    changes: list[ImportFieldChange]
    errors: list[ImportRowError]


class ImportSummary(Body):
    rows: int
    create: int
    update: int
    unchanged: int
    error: int
    stock_changes: int


class ImportPreview(Body):
    """What an import would do; `token` goes to `POST /api/skus/import?token=…`."""

    token: str
    valid: bool
    summary: ImportSummary
    rows: list[ImportPreviewRow]
    errors: list[ImportRowError]


class SkuImport(Body):
    rows: int
    created: int
    updated: int
    stock_changes: int


class Movement(Body):
    id: str
    sku: str
    kind: MovementKind
    from_location: str | None
    to_location: str | None
    quantity: int
    order_id: str | None
    reason: str
    by: str
    ts: int


class MovementList(Body):
    movements: list[Movement]


class MovementRecorded(Body):
    movement: Movement
    sku: Sku
    levels: list[StockLevel]


class LevelList(Body):
    levels: list[StockLevel]


class Payment(Body):
    id: str
    order: str
    kind: PaymentKind
    amount_cents: int
    currency: str
    method: str
    reference: str
    by: str
    ts: int


class Invoice(Body):
    order: str
    # Never "none": an order without an invoice has no invoice object at all.
    status: InvoiceStatus
    title: str
    tax_id: str | None
    number: str | None
    requested_by: str
    requested_ts: int
    issued_by: str | None
    issued_ts: int | None


class PaymentRecorded(Body):
    payment: Payment
    order: Order


class InvoiceAnswer(Body):
    invoice: Invoice
    order: Order


class OrderMoney(Body):
    payments: list[Payment]
    invoice: Invoice | None
    order: Order


class Receipt(Payment):
    """A payment in the digest, with its order's number."""

    number: str


class Receivable(Body):
    order: str
    number: str
    customer: str
    status: str
    currency: str
    total_cents: int
    paid_cents: int
    due_cents: int
    shipped_ts: int
    age_days: int
    ship_approved: bool


class CurrencyTotals(Body):
    currency: str
    received_cents: int
    receipts: int
    refunded_cents: int
    refunds: int
    net_cents: int
    receivable_cents: int
    receivables: int


class Digest(Body):
    date: date
    from_ts: int
    to_ts: int
    receipts: list[Receipt]
    receivables: list[Receivable]
    totals: list[CurrencyTotals]
    text: Texts
