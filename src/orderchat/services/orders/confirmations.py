"""Confirmation items of factory orders: versions proposed, approved or rejected.

The rules, which the workflow guard `confirmations_approved` relies on:
- An item starts `open`. Proposing a version makes it `proposed`, whatever it
  was before: a new proposal re-opens an approved or rejected item, because
  what the customer approved is no longer what will be made.
- Only the newest version can be decided. An older undecided one is
  *superseded* and can no longer be approved or rejected.
- A decision is made once, by the order's customer (or an admin acting for
  them), on one named version, and is never overwritten: the version rows are
  the record of who decided what, and when.

Every write is a group-commit operation that checks everything before its
first write, so a refused request changes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from orderchat.core.confirmations import (
    ConfirmationItem,
    ConfirmationVersion,
    Decision,
    ItemStatus,
    NewItem,
    Verdict,
    VersionProposal,
)
from orderchat.core.errors import Conflict, NotFound
from orderchat.core.ids import ConfirmationItemId, OrderId
from orderchat.core.model import User
from orderchat.core.orders import Order
from orderchat.core.permissions import Action, check
from orderchat.core.routing import ROUTES
from orderchat.core.texts import say
from orderchat.core.workflows import Workflow
from orderchat.services.orders.access import check_can_see, customer_language_txn, load_order_txn
from orderchat.services.orders.events import post_event_txn
from orderchat.services.orders.workflows import Workflows
from orderchat.services.ports import Clock
from orderchat.services.writer import GroupCommitWriter, WriteTxn
from orderchat.storage import confirmations as store
from orderchat.storage import orders as order_store
from orderchat.storage.engine import Database

logger = logging.getLogger(__name__)

MAX_ITEMS_PER_ORDER = 100
MAX_VERSIONS_PER_ITEM = 200
# The guard that makes a workflow's production wait for its confirmations.
GUARD = "confirmations_approved"

_DECISION_WORDS = {
    Decision.APPROVED: {"zh-CN": "已确认", "en": "approved"},
    Decision.REJECTED: {"zh-CN": "已驳回", "en": "rejected"},
}


def version_state(item: ConfirmationItem, version: ConfirmationVersion) -> str:
    """pending, approved, rejected or superseded: what a client shows."""
    if version.decision is not None:
        return version.decision.value
    return "pending" if version.number == item.latest_version else "superseded"


def version_fields(item: ConfirmationItem, version: ConfirmationVersion) -> dict[str, Any]:
    return {
        "item": version.item_id,
        "number": version.number,
        "text": version.text,
        "attachments": version.attachments,
        "proposed_by": version.proposed_by,
        "proposed_ts": version.proposed_at_ms,
        "state": version_state(item, version),
        "decision": None if version.decision is None else version.decision.value,
        "comment": version.comment,
        "decided_by": version.decided_by,
        "decided_ts": version.decided_at_ms,
    }


def item_fields(item: ConfirmationItem) -> dict[str, Any]:
    return {
        "id": item.id,
        "order": item.order_id,
        "kind": item.kind,
        "title": item.title,
        "required": item.required,
        "status": item.status.value,
        "approved_version": item.approved_version,
        "created_by": item.created_by,
        "created_ts": item.created_at_ms,
        "versions": [version_fields(item, v) for v in item.versions],
    }


# The decision as a word in a sentence, in the reader's language.
_DECIDED = {"approved": "word.approved", "rejected": "word.rejected"}


def _check_open_order(order: Order, workflow: Workflow) -> None:
    if order.status in workflow.terminal:
        raise Conflict(
            say(
                "confirmations.order_confirmations_are_closed",
                number=order.number,
                status=workflow.state_words(order.status),
            )
        )


async def _load_item_txn(
    tx: WriteTxn, workflows: Workflows, item_id: ConfirmationItemId, user: User
) -> tuple[ConfirmationItem, Order, Workflow]:
    """The item, read again after its order is locked, so that two writes to one
    order's confirmations never interleave (the order row is the lock)."""
    found = await store.get_item(tx.conn, item_id)
    order, workflow = await load_order_txn(tx, workflows, found.order_id, user)
    return await store.get_item(tx.conn, item_id), order, workflow


@dataclass(frozen=True, slots=True)
class AddItem:
    user: User
    order_id: OrderId
    item: NewItem
    workflows: Workflows

    async def apply(self, tx: WriteTxn) -> ConfirmationItem:
        check(self.user, Action.MANAGE_CONFIRMATIONS)
        order, workflow = await load_order_txn(tx, self.workflows, self.order_id, self.user)
        if not any(GUARD in t.guards for t in workflow.transitions):
            raise Conflict(
                say("confirmations.orders_have_no_confirmation_items", name=workflow.name)
            )
        _check_open_order(order, workflow)
        if len(await store.list_items(tx.conn, order.id)) >= MAX_ITEMS_PER_ORDER:
            raise Conflict(
                say(
                    "confirmations.order_has_at_most_confirmation",
                    max_items_per_order=MAX_ITEMS_PER_ORDER,
                )
            )
        item = ConfirmationItem(
            id=tx.ids.confirmation_item(tx.now_ms),
            order_id=order.id,
            kind=self.item.kind,
            title=self.item.title,
            required=self.item.required,
            status=ItemStatus.OPEN,
            approved_version=None,
            created_by=self.user.id,
            created_at_ms=tx.now_ms,
        )
        await store.insert_item_txn(tx.conn, item)
        return item


@dataclass(frozen=True, slots=True)
class ProposeVersion:
    user: User
    item_id: ConfirmationItemId
    text: str
    attachments: list[dict[str, Any]]
    workflows: Workflows

    async def apply(self, tx: WriteTxn) -> tuple[ConfirmationItem, ConfirmationVersion]:
        check(self.user, Action.PROPOSE_VERSION)
        item, order, workflow = await _load_item_txn(tx, self.workflows, self.item_id, self.user)
        _check_open_order(order, workflow)
        if len(item.versions) >= MAX_VERSIONS_PER_ITEM:
            raise Conflict(
                say(
                    "confirmations.item_has_at_most_versions",
                    max_versions_per_item=MAX_VERSIONS_PER_ITEM,
                )
            )
        language = await customer_language_txn(tx, order)
        version = ConfirmationVersion(
            item_id=item.id,
            number=item.latest_version + 1,
            text=self.text,
            attachments=self.attachments,
            proposed_by=self.user.id,
            proposed_at_ms=tx.now_ms,
            decision=None,
            comment=None,
            decided_by=None,
            decided_at_ms=None,
        )
        await store.insert_version_txn(tx.conn, version)
        await store.set_item_status_txn(tx.conn, item.id, ItemStatus.PROPOSED, None)
        details = {
            "item": item.id,
            "kind": item.kind,
            "title": item.title,
            "version": version.number,
            "text": version.text,
            "attachments": version.attachments,
        }
        await post_event_txn(
            tx, order, "confirmation_proposed", details, self.user.id, language=language
        )
        return await store.get_item(tx.conn, item.id), version


@dataclass(frozen=True, slots=True)
class DecideVersion:
    user: User
    item_id: ConfirmationItemId
    number: int
    decision: Decision
    comment: str
    workflows: Workflows

    async def apply(self, tx: WriteTxn) -> tuple[ConfirmationItem, ConfirmationVersion]:
        check(self.user, Action.DECIDE_VERSION)
        item, order, workflow = await _load_item_txn(tx, self.workflows, self.item_id, self.user)
        version = _decidable(item, self.number)
        _check_open_order(order, workflow)
        language = await customer_language_txn(tx, order)
        await store.decide_version_txn(
            tx.conn, item.id, version.number, self.decision, self.comment, self.user.id, tx.now_ms
        )
        approved = self.decision is Decision.APPROVED
        await store.set_item_status_txn(
            tx.conn,
            item.id,
            ItemStatus.APPROVED if approved else ItemStatus.REJECTED,
            version.number if approved else None,
        )
        details = {
            "item": item.id,
            "kind": item.kind,
            "title": item.title,
            "version": version.number,
            "decision": self.decision.value,
            "comment": self.comment,
        }
        # The decision word is translated per language; the details keep the code.
        words = _DECISION_WORDS[self.decision]
        texts = {
            lang: text.replace("{decision}", words.get(lang, self.decision.value))
            for lang, text in ROUTES["confirmation_decided"].text.items()
        }
        await post_event_txn(
            tx,
            order,
            "confirmation_decided",
            details,
            self.user.id,
            language=language,
            texts=texts,
        )
        decided = await store.get_item(tx.conn, item.id)
        return decided, next(v for v in decided.versions if v.number == version.number)


def _decidable(item: ConfirmationItem, number: int) -> ConfirmationVersion:
    """The version, if it is the newest one and nobody has decided it yet."""
    version = next((v for v in item.versions if v.number == number), None)
    if version is None:
        raise NotFound(say("confirmations.item_has_no_version", id=item.id, number=number))
    if version.decision is not None:
        raise Conflict(
            say(
                "confirmations.version_was_already_by",
                number=number,
                value=say(_DECIDED[version.decision.value]),
                decided_by=version.decided_by,
            )
        )
    if number != item.latest_version:
        raise Conflict(
            say(
                "confirmations.version_was_superseded_by_version",
                number=number,
                latest_version=item.latest_version,
            )
        )
    return version


@dataclass(frozen=True, slots=True)
class OrderConfirmations:
    items: list[ConfirmationItem]

    @property
    def required_open(self) -> int:
        """Counted like `storage.confirmations.count_required_open` (the guard)."""
        return sum(1 for i in self.items if i.required and i.status is not ItemStatus.APPROVED)


class Confirmations:
    """Confirmation use cases; writes go through the group-commit writer."""

    def __init__(
        self, db: Database, writer: GroupCommitWriter, clock: Clock, workflows: Workflows
    ) -> None:
        self._db = db
        self._writer = writer
        self._clock = clock
        self._workflows = workflows

    async def add_item(self, user: User, order_id: OrderId, new: NewItem) -> ConfirmationItem:
        item: ConfirmationItem = await self._writer.submit(
            AddItem(user, order_id, new, self._workflows)
        )
        logger.info("confirmation item %s added to order %s by %s", item.id, order_id, user.id)
        return item

    async def propose(
        self, user: User, item_id: ConfirmationItemId, proposal: VersionProposal
    ) -> tuple[ConfirmationItem, ConfirmationVersion]:
        op = ProposeVersion(
            user, item_id, proposal.text, list(proposal.attachments), self._workflows
        )
        result: tuple[ConfirmationItem, ConfirmationVersion] = await self._writer.submit(op)
        logger.info("version %d of item %s proposed by %s", result[1].number, item_id, user.id)
        return result

    async def decide(
        self, user: User, item_id: ConfirmationItemId, number: int, verdict: Verdict
    ) -> tuple[ConfirmationItem, ConfirmationVersion]:
        parsed = verdict.decision
        op = DecideVersion(user, item_id, number, parsed, verdict.comment, self._workflows)
        result: tuple[ConfirmationItem, ConfirmationVersion] = await self._writer.submit(op)
        logger.info("version %d of item %s %s by %s", number, item_id, parsed.value, user.id)
        return result

    async def list_for_order(self, user: User, order_id: OrderId) -> OrderConfirmations:
        async with self._db.read() as conn:
            order = await order_store.get_order(conn, order_id)
            check_can_see(user, order)
            return OrderConfirmations(await store.list_items(conn, order.id))
