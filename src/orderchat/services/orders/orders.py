"""Orders: creating them, moving them through their workflow, inviting their customers.

Exceptions live in `order_issues.py`; loading and saving an order inside a
write in `order_access.py`.

Every write here is a group-commit operation: the order row, its messages in
the order's conversation and the role channels, and the durable `order` event
commit together, and are delivered only after the commit.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, replace
from typing import Any

from orderchat.core.audit import AuditAction, AuditEntry
from orderchat.core.errors import BadRequest, Conflict, Forbidden, NotFound
from orderchat.core.ids import ConversationId, IssueId, OrderId, UserId
from orderchat.core.model import Conversation, ConversationKind, Role, User, UserKind
from orderchat.core.order_requests import (
    AddressChange,
    IssueReport,
    OrderChanges,
    OrderSpec,
    Settlement,
    StatusChange,
)
from orderchat.core.orders import (
    Customer,
    InvoiceStatus,
    Issue,
    Order,
    PaymentStatus,
    format_amount,
    total_cents,
)
from orderchat.core.permissions import Action, check, require_staff
from orderchat.core.texts import say
from orderchat.core.workflows import GuardFacts, Workflow, check_actor, check_guards
from orderchat.services.accounts import token_hash
from orderchat.services.chat.conversations import open_conversation_txn
from orderchat.services.orders.access import (
    check_can_see,
    customer_language_txn,
    load_order_txn,
    save_order_txn,
)
from orderchat.services.orders.events import emit_order_txn, post_event_txn
from orderchat.services.orders.issues import ChangeAddress, RaiseIssue, SettleIssue
from orderchat.services.orders.photos import check_required, step_photos_txn
from orderchat.services.orders.workflows import Workflows
from orderchat.services.ports import Clock
from orderchat.services.stock import fulfilment
from orderchat.services.stock.fulfilment import Shortage
from orderchat.services.writer import GroupCommitWriter, WriteTxn
from orderchat.storage import accounts as account_store
from orderchat.storage import audit as audit_store
from orderchat.storage import confirmations as confirmation_store
from orderchat.storage import inventory as inventory_store
from orderchat.storage import orders as order_store
from orderchat.storage import staff as staff_store
from orderchat.storage.engine import Database

logger = logging.getLogger(__name__)


# --- creating an order ------------------------------------------------------------


async def _customer_txn(tx: WriteTxn, spec: OrderSpec) -> Customer:
    """The order's customer: an existing record, or a new one made now."""
    if spec.customer_id is not None:
        try:
            return await order_store.get_customer(tx.conn, spec.customer_id)
        except NotFound as exc:
            raise BadRequest(exc.text) from None
    assert spec.new_customer is not None
    new = spec.new_customer
    user = User(
        id=tx.ids.user(),
        username="",
        display_name=new.name,
        roles=(),
        kind=UserKind.CUSTOMER,
    )
    user = replace(user, username=f"customer-{user.id[2:]}")
    await account_store.insert_user_txn(tx.conn, user, None, tx.now_ms)
    customer = Customer(
        user.id, new.name, new.phone, new.email, new.company, new.segment, new.language
    )
    await order_store.insert_customer_txn(tx.conn, customer, tx.now_ms)
    return customer


@dataclass(frozen=True, slots=True)
class CreateOrder:
    user: User
    spec: OrderSpec
    workflows: Workflows

    async def apply(self, tx: WriteTxn) -> Order:
        check(self.user, Action.CREATE_ORDER)
        spec = self.spec
        workflow = self.workflows.get(spec.workflow)
        if await order_store.find_order_id(tx.conn, number=spec.number) is not None:
            raise Conflict(say("orders.order_number_exists_already", number=spec.number))
        unknown = {i.sku for i in spec.items} - await inventory_store.known_skus(
            tx.conn, [i.sku for i in spec.items]
        )
        if unknown:
            raise BadRequest(say("orders.unknown_skus", skus=", ".join(sorted(unknown))))
        customer = await _customer_txn(tx, spec)
        customer_id, language = customer.user_id, customer.language
        staff = await account_store.staff_with_roles(tx.conn, [*workflow.staff_roles, Role.ADMIN])
        members = list(dict.fromkeys([customer_id, *staff, self.user.id]))
        conv = await self._open_conversation_txn(tx, f"{spec.number} · {customer.name}", members)
        # Their roles put them there: losing the roles takes them out (services/onboarding.py).
        by_role = [u for u in staff if u != self.user.id]
        await staff_store.mark_by_role_txn(tx.conn, conv.id, by_role)
        order = self._order_row(tx, workflow, customer_id, conv.id)
        await order_store.insert_order_txn(tx.conn, order)
        texts = {
            "zh-CN": "订单 {number} 已创建，共 {count} 件商品，合计 {total}。",
            "en": "Order {number} was created: {count} item(s), {total} in total.",
        }
        details = {
            "count": sum(i.quantity for i in order.items),
            "total": format_amount(order.total_cents, order.currency),
        }
        await post_event_txn(
            tx,
            order,
            "order_created",
            details,
            self.user.id,
            language=language,
            roles=(),
            customer=True,
            texts=texts,
        )
        await emit_order_txn(tx, order, workflow)
        return order

    async def _open_conversation_txn(
        self, tx: WriteTxn, title: str, members: list[UserId]
    ) -> Conversation:
        """The order's conversation, with its members and the event that tells them."""
        return await open_conversation_txn(tx, ConversationKind.ORDER, title, self.user.id, members)

    def _order_row(
        self, tx: WriteTxn, workflow: Workflow, customer_id: UserId, conv_id: ConversationId
    ) -> Order:
        spec = self.spec
        return Order(
            id=tx.ids.order(),
            number=spec.number,
            customer_id=customer_id,
            conv_id=conv_id,
            workflow=workflow.name,
            status=workflow.initial,
            payment_status=PaymentStatus.UNPAID,
            invoice_status=InvoiceStatus.NONE,
            currency=spec.currency,
            total_cents=total_cents(spec.items),
            paid_cents=0,
            address=spec.address,
            note=spec.note,
            carrier=None,
            tracking_no=None,
            eta_ms=spec.eta_ms,
            sample_round=0,
            ship_approved_by=None,
            created_by=self.user.id,
            created_at_ms=tx.now_ms,
            updated_at_ms=tx.now_ms,
            shipped_at_ms=None,
            version=1,
            items=spec.items,
        )


# --- moving an order ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AdvanceOrder:
    user: User
    order_id: OrderId
    change: StatusChange
    workflows: Workflows

    async def apply(self, tx: WriteTxn) -> Order:
        require_staff(self.user)
        order, workflow = await load_order_txn(tx, self.workflows, self.order_id, self.user)
        transition = workflow.transition(order.status, self.change.to)
        check_actor(transition, self.user.roles)
        updated = replace(
            order,
            status=transition.target,
            carrier=self.change.carrier or order.carrier,
            tracking_no=self.change.tracking_no or order.tracking_no,
        )
        facts = GuardFacts(
            paid=order.payment_status is PaymentStatus.PAID,
            ship_approved=order.ship_approved_by is not None,
            required_confirmations_open=await confirmation_store.count_required_open(
                tx.conn, order.id
            ),
            has_tracking=bool(updated.carrier and updated.tracking_no),
        )
        check_guards(transition, facts)
        check_required(workflow, transition, self.change.photos)
        photos = await step_photos_txn(
            tx, self.user, order.conv_id, self.change.photos, self.change.note
        )
        if "next_sample_round" in transition.effects:
            updated = replace(updated, sample_round=order.sample_round + 1)
        if "record_shipped" in transition.effects and order.shipped_at_ms is None:
            updated = replace(updated, shipped_at_ms=tx.now_ms)
        language = await customer_language_txn(tx, order)
        shortages = await _apply_effects(tx, transition.effects, updated, self.user.id)
        saved = await save_order_txn(tx, updated, workflow)
        details = {
            "from": order.status,
            "to": transition.target,
            "note": self.change.note,
            "photos": list(self.change.photos),
        }
        await post_event_txn(
            tx,
            saved,
            "status_changed",
            details,
            self.user.id,
            language=language,
            roles=transition.notify,
            customer=transition.customer,
            texts=transition.text,
            photos=photos,
        )
        await _post_shortages_txn(tx, saved, shortages, self.user.id, language)
        if transition.target == "picking" and saved.note:
            await post_event_txn(
                tx, saved, "customer_note", {"note": saved.note}, self.user.id, language=language
            )
        return saved


async def _post_shortages_txn(
    tx: WriteTxn, order: Order, shortages: list[Shortage], by: UserId, language: str
) -> None:
    """`out_of_stock` for each SKU the order could not reserve in full."""
    for shortage in shortages:
        await post_event_txn(
            tx,
            order,
            "out_of_stock",
            {
                "sku": shortage.sku,
                "name": shortage.name,
                "needed": shortage.needed,
                "available": shortage.available,
            },
            by,
            language=language,
        )


async def _apply_effects(
    tx: WriteTxn, effects: tuple[str, ...], order: Order, by: UserId
) -> list[Shortage]:
    shortages: list[Shortage] = []
    for effect in effects:
        if effect == "reserve_stock":
            shortages.extend(await fulfilment.reserve_for_order_txn(tx, order, by))
        elif effect == "release_stock":
            await fulfilment.release_for_order_txn(tx, order, by)
        elif effect == "ship_stock":
            await fulfilment.ship_for_order_txn(tx, order, by)
        elif effect == "return_stock":
            await fulfilment.return_for_order_txn(tx, order, by)
    return shortages


@dataclass(frozen=True, slots=True)
class UpdateOrder:
    """Carrier, tracking number, ETA and note: facts that are not a status change."""

    user: User
    order_id: OrderId
    changes: OrderChanges
    workflows: Workflows

    async def apply(self, tx: WriteTxn) -> Order:
        check(self.user, Action.UPDATE_ORDER)
        order, workflow = await load_order_txn(tx, self.workflows, self.order_id, self.user)
        return await save_order_txn(tx, self.changes.applied_to(order), workflow)


# --- invitations ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Invitation:
    token: str
    order_id: OrderId
    expires_at_ms: int


@dataclass(frozen=True, slots=True)
class InviteCustomer:
    user: User
    order_id: OrderId
    ttl_ms: int
    workflows: Workflows

    async def apply(self, tx: WriteTxn) -> Invitation:
        check(self.user, Action.INVITE_CUSTOMER)
        order, _ = await load_order_txn(tx, self.workflows, self.order_id, self.user)
        token = secrets.token_urlsafe(32)
        expires = tx.now_ms + self.ttl_ms
        await order_store.insert_invitation_txn(
            tx.conn,
            token_hash(token),
            order.id,
            order.customer_id,
            self.user.id,
            tx.now_ms,
            expires,
        )
        details = {"number": order.number, "customer": order.customer_id, "expires": expires}
        entry = AuditEntry(
            AuditAction.CUSTOMER_INVITED, self.user.id, order.id, tx.now_ms, order.conv_id, details
        )
        await audit_store.record_txn(tx.conn, entry)
        return Invitation(token, order.id, expires)


# --- the facade the routes call -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrderDetail:
    order: Order
    workflow: Workflow
    issues: list[Issue]


class Orders:
    """Order use cases; writes go through the group-commit writer."""

    def __init__(
        self,
        db: Database,
        writer: GroupCommitWriter,
        clock: Clock,
        workflows: Workflows,
        invitation_ttl_s: float = 30 * 24 * 3600.0,
    ) -> None:
        self._db = db
        self._writer = writer
        self._clock = clock
        self.workflows = workflows
        self._invitation_ttl_ms = int(invitation_ttl_s * 1000)

    async def _submit(self, op: Any) -> Any:
        return await self._writer.submit(op)

    async def create(self, user: User, spec: OrderSpec) -> Order:
        """Raises BadRequest when the spec names a workflow this server does not run."""
        try:
            self.workflows.get(spec.workflow)
        except NotFound as exc:
            raise BadRequest(exc.text) from None
        order: Order = await self._submit(CreateOrder(user, spec, self.workflows))
        logger.info("order created id=%s workflow=%s by=%s", order.id, order.workflow, user.id)
        return order

    async def advance(self, user: User, order_id: OrderId, change: StatusChange) -> Order:
        order: Order = await self._submit(AdvanceOrder(user, order_id, change, self.workflows))
        logger.info("order %s is now %s (by %s)", order.id, order.status, user.id)
        return order

    async def update(self, user: User, order_id: OrderId, changes: OrderChanges) -> Order:
        order: Order = await self._submit(UpdateOrder(user, order_id, changes, self.workflows))
        return order

    async def raise_issue(self, user: User, order_id: OrderId, report: IssueReport) -> Issue:
        issue: Issue = await self._submit(RaiseIssue(user, order_id, report, self.workflows))
        return issue

    async def change_address(self, user: User, order_id: OrderId, change: AddressChange) -> Order:
        order: Order = await self._submit(ChangeAddress(user, order_id, change, self.workflows))
        return order

    async def settle_issue(
        self, user: User, order_id: OrderId, issue_id: IssueId, settlement: Settlement
    ) -> Issue:
        issue: Issue = await self._submit(
            SettleIssue(user, order_id, issue_id, settlement, self.workflows)
        )
        return issue

    async def invite(self, user: User, order_id: OrderId) -> Invitation:
        invitation: Invitation = await self._submit(
            InviteCustomer(user, order_id, self._invitation_ttl_ms, self.workflows)
        )
        return invitation

    async def get(self, user: User, order_id: OrderId) -> OrderDetail:
        async with self._db.read() as conn:
            order = await order_store.get_order(conn, order_id)
            check_can_see(user, order)
            staff = user.kind is UserKind.STAFF
            issues = await order_store.list_issues(conn, order.id) if staff else []
        return OrderDetail(order, self.workflows.get(order.workflow), issues)

    async def list(
        self, user: User, *, status: str | None, workflow: str | None, limit: int
    ) -> list[tuple[Order, Workflow]]:
        mine = user.id if user.kind is UserKind.CUSTOMER else None
        async with self._db.read() as conn:
            found = await order_store.list_orders(
                conn, customer_id=mine, status=status, workflow=workflow, limit=limit
            )
        return [(o, self.workflows.get(o.workflow)) for o in found]

    async def customer(self, user: User, customer_id: str) -> Customer:
        if user.kind is UserKind.CUSTOMER and user.id != customer_id:
            raise Forbidden(say("orders.you_may_only_see_your"))
        async with self._db.read() as conn:
            return await order_store.get_customer(conn, customer_id)
