"""Orders as values: the order, its items, customer and issues, addresses, money,
and what the order view shows.

Money is integer minor units (fen, cents) everywhere; floats never hold money.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from orderchat.core.errors import BadRequest, TooLarge
from orderchat.core.ids import ConversationId, IssueId, OrderId, SkuCode, UserId
from orderchat.core.model import text_field
from orderchat.core.texts import say

MAX_ITEMS = 500
MAX_QUANTITY = 1_000_000
MAX_PRICE_CENTS = 10**11
MAX_NOTE_CHARS = 2000
ADDRESS_FIELDS = (
    "name",
    "phone",
    "country",
    "region",
    "city",
    "district",
    "line1",
    "line2",
    "postcode",
)
CURRENCIES = frozenset({"CNY", "USD", "EUR", "HKD", "GBP", "JPY"})
_SYMBOLS = {"CNY": "¥", "USD": "$", "EUR": "€", "HKD": "HK$", "GBP": "£", "JPY": "¥"}


class PaymentStatus(StrEnum):
    UNPAID = "unpaid"
    PARTIAL = "partial"
    PAID = "paid"
    REFUNDED = "refunded"


class InvoiceStatus(StrEnum):
    NONE = "none"
    REQUESTED = "requested"
    ISSUED = "issued"


@dataclass(frozen=True, slots=True)
class OrderItem:
    sku: SkuCode
    name: str
    quantity: int
    unit_price_cents: int

    @property
    def amount_cents(self) -> int:
        return self.quantity * self.unit_price_cents


@dataclass(frozen=True, slots=True)
class Order:
    """An order as stored: its state, money and the conversation it lives in."""

    id: OrderId
    number: str
    customer_id: UserId
    conv_id: ConversationId
    workflow: str
    status: str
    payment_status: PaymentStatus
    invoice_status: InvoiceStatus
    currency: str
    total_cents: int
    paid_cents: int
    address: dict[str, str]
    note: str
    carrier: str | None
    tracking_no: str | None
    eta_ms: int | None
    sample_round: int
    ship_approved_by: UserId | None
    created_by: UserId
    created_at_ms: int
    updated_at_ms: int
    shipped_at_ms: int | None
    version: int
    items: tuple[OrderItem, ...] = ()
    legal_hold: bool = False  # never purged by retention (core/retention.py)


@dataclass(frozen=True, slots=True)
class Customer:
    """A customer's record, kept beside their user account."""

    user_id: UserId
    name: str
    phone: str | None
    email: str | None
    company: str | None
    segment: str
    language: str


@dataclass(frozen=True, slots=True)
class Issue:
    """Something raised on an order (a delay, a defect, an address change) and how it ended."""

    id: IssueId
    order_id: OrderId
    kind: str
    detail: dict[str, Any]
    raised_by: UserId
    raised_at_ms: int
    outcome: str | None
    outcome_detail: dict[str, Any] | None
    settled_by: UserId | None
    settled_at_ms: int | None


def positive_int(raw: object, what: str, maximum: int) -> int:
    if not isinstance(raw, int) or isinstance(raw, bool) or raw <= 0:
        raise BadRequest(say("orders.must_positive_whole_number", what=what))
    if raw > maximum:
        raise BadRequest(say("orders.larger_than", what=what, maximum=maximum))
    return raw


def cents(raw: object, what: str) -> int:
    if not isinstance(raw, int) or isinstance(raw, bool) or raw < 0 or raw > MAX_PRICE_CENTS:
        raise BadRequest(
            say("orders.must_whole_number_cents_from", what=what, max_price_cents=MAX_PRICE_CENTS)
        )
    return raw


def parse_items(raw: object) -> tuple[OrderItem, ...]:
    if not isinstance(raw, list) or not raw:
        raise BadRequest(say("orders.order_needs_at_least_one"))
    if len(raw) > MAX_ITEMS:
        raise TooLarge(say("orders.order_has_at_most_items", max_items=MAX_ITEMS))
    items = []
    for i, entry in enumerate(raw):
        if not isinstance(entry, dict):
            raise BadRequest(say("orders.items_must_object", i=i))
        items.append(
            OrderItem(
                sku=SkuCode(text_field(entry.get("sku"), f"items[{i}].sku", 64)),
                name=text_field(entry.get("name", entry.get("sku")), f"items[{i}].name", 200),
                quantity=positive_int(entry.get("quantity"), f"items[{i}].quantity", MAX_QUANTITY),
                unit_price_cents=cents(
                    entry.get("unit_price_cents"), f"items[{i}].unit_price_cents"
                ),
            )
        )
    return tuple(items)


def parse_address(raw: object) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise BadRequest(say("orders.address_must_object"))
    unknown = sorted(set(raw) - set(ADDRESS_FIELDS))
    if unknown:
        raise BadRequest(
            say("orders.unknown_address_fields_known", unknown=unknown, known=list(ADDRESS_FIELDS))
        )
    return {k: text_field(v, f"address.{k}", 200) for k, v in raw.items() if v not in (None, "")}


def parse_note(raw: object) -> str:
    return text_field(raw, "note", MAX_NOTE_CHARS, required=False)


def parse_currency(raw: object) -> str:
    if not isinstance(raw, str) or raw not in CURRENCIES:
        raise BadRequest(say("orders.currency_must_one", currencies=sorted(CURRENCIES)))
    return raw


def order_number(raw: object) -> str:
    number = text_field(raw, "number", 64)
    if not all(ch.isalnum() or ch in "-_./#" for ch in number):
        raise BadRequest(say("orders.number_may_hold_letters_digits"))
    return number


def total_cents(items: tuple[OrderItem, ...]) -> int:
    return sum(item.amount_cents for item in items)


def payment_status(total: int, paid: int, refunded: int) -> PaymentStatus:
    net = paid - refunded
    if refunded and net <= 0:
        return PaymentStatus.REFUNDED
    if total > 0 and net >= total:
        return PaymentStatus.PAID
    return PaymentStatus.PARTIAL if net > 0 else PaymentStatus.UNPAID


def format_amount(amount_cents: int, currency: str) -> str:
    sign = "-" if amount_cents < 0 else ""
    whole, frac = divmod(abs(amount_cents), 100)
    return f"{sign}{_SYMBOLS.get(currency, currency + ' ')}{whole:,}.{frac:02d}"


def format_address(address: Mapping[str, str]) -> str:
    parts = [
        address.get(k, "") for k in ("country", "region", "city", "district", "line1", "line2")
    ]
    where = " ".join(p for p in parts if p)
    who = " ".join(p for p in (address.get("name", ""), address.get("phone", "")) if p)
    return f"{where} ({who})" if who else where


# What an order's customer sees of it: a list of what may be shown rather than
# of what must be hidden, so that a field added for staff stays with staff
# until someone decides otherwise. Not here: `ship_approved`, finance's
# decision to let an unpaid order ship, which staff hear of in a staff-only note.
CUSTOMER_ORDER_FIELDS = frozenset(
    {
        "id",
        "number",
        "customer",
        "conv",
        "workflow",
        "status",
        "status_label",
        "next",
        "payment_status",
        "invoice_status",
        "currency",
        "total_cents",
        "paid_cents",
        "items",
        "address",
        "note",
        "carrier",
        "tracking_no",
        "eta_ts",
        "sample_round",
        "created_ts",
        "updated_ts",
        "shipped_ts",
        "version",
        "issues",
        "allowed",
        "workflow_detail",
        "item_names",
    }
)


def customer_order_view(view: Mapping[str, object]) -> dict[str, object]:
    """The customer's projection of an order view: the one place it is defined."""
    return {name: value for name, value in view.items() if name in CUSTOMER_ORDER_FIELDS}
