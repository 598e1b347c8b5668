"""Bodies about orders: the order view, its workflow, issues, customers and confirmations."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field

from orderchat.api.response_schemas._base import Body, Texts, omitted
from orderchat.core.confirmations import ItemStatus
from orderchat.core.model import Role
from orderchat.core.orders import ADDRESS_FIELDS, InvoiceStatus, PaymentStatus


class OrderItem(Body):
    sku: str
    name: str
    quantity: int
    unit_price_cents: int


class Address(Body):
    """Only the fields `core.orders` accepts, each one only when given."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "properties": {name: {"type": "string"} for name in ADDRESS_FIELDS},
        },
    )


class Order(Body):
    """An order (`services.orders.events.order_fields`).

    `ship_approved` is staff-only: a customer's projection leaves it out
    (`core.orders.CUSTOMER_ORDER_FIELDS`).
    """

    id: str
    number: str
    customer: str
    conv: str
    workflow: str
    status: str
    status_label: Texts
    next: list[str]
    payment_status: PaymentStatus
    invoice_status: InvoiceStatus
    currency: str
    total_cents: int
    paid_cents: int
    items: list[OrderItem]
    address: Address
    note: str
    carrier: str | None
    tracking_no: str | None
    eta_ts: int | None
    sample_round: int
    ship_approved: bool = omitted()
    created_ts: int
    updated_ts: int
    shipped_ts: int | None
    version: int
    # Staff only: retention never purges the order's conversation.
    legal_hold: bool = omitted()


class OrderList(Body):
    orders: list[Order]


class Issue(Body):
    """An exception raised on an order; `detail` and `outcome_detail` differ by kind."""

    id: str
    order: str
    kind: str
    detail: dict[str, Any]
    raised_by: str
    raised_ts: int
    outcome: str | None
    outcome_detail: dict[str, Any] | None
    settled_by: str | None
    settled_ts: int | None


class WorkflowState(Body):
    name: str
    label: Texts
    terminal: bool


class WorkflowTransition(Body):
    from_: list[str] = Field(alias="from")
    to: str
    roles: list[Role]
    notify: list[Role]
    customer: bool
    photos: bool
    photos_required: bool
    guards: list[str]
    text: Texts
    action: Texts


class Workflow(Body):
    name: str
    title: Texts
    initial: str
    states: list[WorkflowState]
    transitions: list[WorkflowTransition]


class WorkflowList(Body):
    workflows: list[Workflow]


class AllowedMove(Body):
    to: str
    label: Texts
    photos: bool
    photos_required: bool
    action: Texts


class Allowed(Body):
    """What the caller may do with the order now (`core.affordances`)."""

    transitions: list[AllowedMove]
    issue_kinds: list[str]
    actions: list[str]


class ConsultLink(Body):
    id: str  # the consult's conversation
    created_ts: int
    source: str


class OrderDetail(Order):
    """One order with its open issues (when it has any), the caller's moves and its workflow."""

    issues: list[Issue] = omitted()
    allowed: Allowed
    workflow_detail: Workflow
    # The catalogue's names of the order's SKUs, by SKU, in each language.
    item_names: dict[str, Texts]
    # The pre-sales consults the order came from (docs/consults.md §5).
    consults: list[ConsultLink]


class Customer(Body):
    id: str
    name: str
    phone: str | None
    email: str | None
    company: str | None
    segment: str
    language: str


class Invitation(Body):
    """A link that signs the customer in; `url` is the page with the token."""

    token: str
    url: str
    order: str
    expires_ts: int


class WebhookAnswer(Body):
    event: Literal["order.created", "order.status"]
    order: Order


class ConfirmationVersion(Body):
    item: str
    number: int
    text: str
    # Attachment descriptors are kept as the proposer sent them (any objects).
    attachments: list[dict[str, Any]]
    proposed_by: str
    proposed_ts: int
    state: Literal["pending", "approved", "rejected", "superseded"]
    decision: Literal["approved", "rejected"] | None
    comment: str | None
    decided_by: str | None
    decided_ts: int | None


class ConfirmationItem(Body):
    id: str
    order: str
    kind: str
    title: str
    required: bool
    status: ItemStatus
    approved_version: int | None
    created_by: str
    created_ts: int
    versions: list[ConfirmationVersion]


class ConfirmationList(Body):
    items: list[ConfirmationItem]
    required_open: int


class ItemAndVersion(Body):
    item: ConfirmationItem
    version: ConfirmationVersion
