"""Order exceptions: out of stock, address changes and interceptions, delays, defects.

Each is raised by the roles that may report it, routed to the roles that must
act (core/routing.py), and settled with a recorded outcome.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from orderchat.core.errors import BadRequest, Conflict, Forbidden, NotFound
from orderchat.core.ids import IssueId, OrderId, SkuCode
from orderchat.core.model import Role, User
from orderchat.core.order_requests import (
    INTERCEPTION_OUTCOMES,
    REMEDIES,
    AddressChange,
    IssueReport,
    Settlement,
)
from orderchat.core.orders import Issue, Order, format_address
from orderchat.core.permissions import Action, check, require_staff
from orderchat.core.routing import ISSUE_SETTLERS, may_report
from orderchat.core.texts import Text, say
from orderchat.services.orders.access import customer_language_txn, load_order_txn, save_order_txn
from orderchat.services.orders.events import post_event_txn
from orderchat.services.orders.photos import step_photos_txn
from orderchat.services.orders.workflows import Workflows
from orderchat.services.writer import WriteTxn
from orderchat.storage import inventory as inventory_store
from orderchat.storage import orders as order_store


@dataclass(frozen=True, slots=True)
class RaiseIssue:
    user: User
    order_id: OrderId
    report: IssueReport
    workflows: Workflows

    @property
    def kind(self) -> str:
        return self.report.kind

    async def apply(self, tx: WriteTxn) -> Issue:
        require_staff(self.user)
        details = dict(self.report.details)
        if not may_report(self.kind, self.user.roles):
            raise Forbidden(say("issues.your_roles_may_not_report", kind=self.kind))
        order, workflow = await load_order_txn(tx, self.workflows, self.order_id, self.user)
        if order.status in workflow.terminal:
            status = workflow.state_words(order.status)
            raise Conflict(say("issues.order_nothing_more_can_reported", status=status))
        language = await customer_language_txn(tx, order)
        photos = await step_photos_txn(
            tx, self.user, order.conv_id, details.get("photos", []), details.get("description", "")
        )
        shown = dict(details)
        if self.kind == "out_of_stock":
            shown["name"] = await _item_name_txn(tx, order, details["sku"])
        if self.kind == "address_change_requested":
            shipped = order.shipped_at_ms is not None
            shown["stage"] = say("note.stage_shipped" if shipped else "note.stage_not_shipped")
            shown["address"] = format_address(details["address"])
            details["shipped"] = shipped
        issue = Issue(
            id=tx.ids.issue(),
            order_id=order.id,
            kind=self.kind,
            detail=details,
            raised_by=self.user.id,
            raised_at_ms=tx.now_ms,
            outcome=None,
            outcome_detail=None,
            settled_by=None,
            settled_at_ms=None,
        )
        await order_store.insert_issue_txn(tx.conn, issue)
        shown["issue"] = issue.id
        await post_event_txn(
            tx, order, self.kind, shown, self.user.id, language=language, photos=photos
        )
        return issue


async def _item_name_txn(tx: WriteTxn, order: Order, sku: SkuCode) -> str:
    """The name the alert shows: the order's own line, else the catalogue's."""
    for item in order.items:
        if item.sku == sku:
            return item.name
    found = await inventory_store.skus_by_code(tx.conn, [sku])
    if sku not in found:
        raise BadRequest(say("issues.unknown_sku", sku=sku))
    return found[sku].name_zh


@dataclass(frozen=True, slots=True)
class ChangeAddress:
    """Logistics changes the address of an order not yet shipped."""

    user: User
    order_id: OrderId
    change: AddressChange
    workflows: Workflows

    async def apply(self, tx: WriteTxn) -> Order:
        check(self.user, Action.CHANGE_ADDRESS)
        address = self.change.address
        order, workflow = await load_order_txn(tx, self.workflows, self.order_id, self.user)
        if order.shipped_at_ms is not None or order.status in workflow.terminal:
            raise Conflict(say("issues.order_has_shipped_request_interception"))
        issue = await self._issue(tx, order.id)
        language = await customer_language_txn(tx, order)
        saved = await save_order_txn(tx, replace(order, address=address), workflow)
        if issue is not None:
            await order_store.settle_issue_txn(
                tx.conn, issue.id, "changed", {"address": address}, self.user.id, tx.now_ms
            )
        await post_event_txn(
            tx,
            saved,
            "address_changed",
            {"address": format_address(address)},
            self.user.id,
            language=language,
        )
        return saved

    async def _issue(self, tx: WriteTxn, order_id: OrderId) -> Issue | None:
        if self.change.issue_id is None:
            return None
        issue = await order_store.get_issue(tx.conn, self.change.issue_id)
        if issue.order_id != order_id or issue.kind != "address_change_requested":
            raise BadRequest(say("issues.issue_not_address_change_order"))
        if issue.outcome is not None:
            raise Conflict(say("issues.address_change_was_settled_already"))
        return issue


@dataclass(frozen=True, slots=True)
class SettleIssue:
    """Record how an exception ended: an interception's outcome, a defect's remedy."""

    user: User
    order_id: OrderId
    issue_id: IssueId
    settlement: Settlement
    workflows: Workflows

    @property
    def outcome(self) -> str | None:
        return self.settlement.outcome

    async def apply(self, tx: WriteTxn) -> Issue:
        order, _ = await load_order_txn(tx, self.workflows, self.order_id, self.user)
        issue = await order_store.get_issue(tx.conn, self.issue_id)
        if issue.order_id != order.id:
            raise NotFound(say("issues.no_such_issue_on_order"))
        if issue.outcome is not None:
            raise Conflict(say("issues.issue_was_settled_already", outcome=issue.outcome))
        note = self.settlement.note
        if issue.kind == "defect_found":
            check(self.user, Action.CHOOSE_DEFECT_REMEDY)
            if not isinstance(self.outcome, str) or self.outcome not in REMEDIES:
                raise BadRequest(say("issues.choose_one", choices=sorted(REMEDIES)))
            details: dict[str, object] = {"choice": _remedy_label(str(self.outcome))}
            event = "defect_resolved"
        elif issue.kind == "address_change_requested" and issue.detail.get("shipped"):
            check(self.user, Action.SETTLE_INTERCEPTION)
            if not isinstance(self.outcome, str) or self.outcome not in INTERCEPTION_OUTCOMES:
                raise BadRequest(
                    say("issues.outcome_must_one", outcomes=sorted(INTERCEPTION_OUTCOMES))
                )
            event, details = (
                "interception_settled",
                {"outcome": _interception_label(str(self.outcome)), "note": note},
            )
        else:
            require_staff(self.user)
            settlers = ISSUE_SETTLERS[issue.kind]
            if Role.ADMIN not in self.user.roles and not settlers.intersection(self.user.roles):
                needed = ", ".join(sorted(r.value for r in settlers))
                raise Forbidden(say("issues.closing_needs_one", kind=issue.kind, needed=needed))
            if not isinstance(self.outcome, str) or not 1 <= len(self.outcome) <= 32:
                raise BadRequest(say("issues.outcome_must_1_32_characters"))
            event, details = "", {}
        outcome = str(self.outcome)
        await order_store.settle_issue_txn(
            tx.conn, issue.id, outcome, {"note": note}, self.user.id, tx.now_ms
        )
        if event:
            language = await customer_language_txn(tx, order)
            await post_event_txn(
                tx, order, event, {**details, "issue": issue.id}, self.user.id, language=language
            )
        return await order_store.get_issue(tx.conn, issue.id)


def _remedy_label(choice: str) -> Text:
    return say({"exchange": "note.remedy_exchange", "refund": "note.remedy_refund"}[choice])


def _interception_label(outcome: str) -> Text:
    keys = {"intercepted": "note.intercepted", "not_intercepted": "note.not_intercepted"}
    return say(keys[outcome])
