"""Bodies of pre-sales consults and product cards (api/routes/consults.py, products.py)."""

from __future__ import annotations

from typing import Literal

from orderchat.api.response_schemas._base import Body, omitted
from orderchat.api.response_schemas.people import Session


class ConsultAssignee(Body):
    id: str
    display_name: str


class ConsultOrderRef(Body):
    id: str
    number: str | None


class ConsultVisitor(Body):
    """The visitor; staff also see how to reach them and their standing."""

    id: str
    display_name: str
    language: str
    phone: str | None = omitted()
    email: str | None = omitted()
    verified: bool = omitted()
    blocked: bool = omitted()
    erased: bool = omitted()


class Consult(Body):
    """A consult as its reader may see it (docs/consults.md §7)."""

    id: str
    status: Literal["queued", "open", "closed"]
    assignee: ConsultAssignee | None
    position: int | None
    source: Literal["page", "widget", "qr"]
    tag: str | None
    page_url: str | None
    sku: str | None
    order: ConsultOrderRef | None
    created_ts: int
    waiting_since_ts: int | None
    first_response_ts: int | None
    closed_ts: int | None
    visitor: ConsultVisitor
    queue: str = omitted()
    roles: list[str] = omitted()
    escalated_ts: int | None = omitted()


class ConsultStarted(Session):
    """A visitor's first consult and the session of their device."""

    consult: Consult


class ConsultInbox(Body):
    consults: list[Consult]
    total: int
    counts: dict[str, int]  # each view's waiting and open consults


class OrderBrief(Body):
    id: str
    number: str
    status: str
    status_label: dict[str, str]
    conv: str
    created_ts: int


class MyConsults(Body):
    consults: list[Consult]
    orders: list[OrderBrief]


class HistoryCustomer(Body):
    id: str
    name: str
    phone: str | None
    email: str | None
    language: str
    verified: bool
    blocked: bool


class CustomerHistory(Body):
    customer: HistoryCustomer
    consults: list[Consult]
    orders: list[OrderBrief]


class ExportedPerson(Body):
    id: str
    name: str
    phone: str | None
    email: str | None
    company: str | None
    language: str


class ExportedConsult(Body):
    id: str
    status: str
    source: str
    page_url: str | None
    sku: str | None
    created_ts: int
    order: str | None


class ExportedOrder(Body):
    id: str
    number: str
    status: str


class ExportedMessage(Body):
    conv: str
    seq: int
    ts: int
    kind: str
    text: str


class VisitorExport(Body):
    exported_ts: int
    person: ExportedPerson
    consults: list[ExportedConsult]
    orders: list[ExportedOrder]
    messages: list[ExportedMessage]


class VisitorErased(Body):
    messages: int  # purged, their links kept
    files: int
    sessions: int  # signed out


class LinkSent(Body):
    sent_to: str


class ProductOption(Body):
    name: str
    values: list[str]


class ProductCard(Body):
    sku: str
    name: dict[str, str]
    category: str
    price_cents: int
    currency: str
    available: int
    options: list[ProductOption]
    picture: str | None


class SharedProduct(Body):
    conv: str
    seq: int
    id: str
