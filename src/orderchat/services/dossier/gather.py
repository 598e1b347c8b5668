"""Everything one order's dossier holds, read in one snapshot, as its reader may see it.

One read transaction for all of it, so the chains, the order, its money and
its confirmations are of the same moment. What the reader may not see is
left out here, once: the document and the PDF are built from what this
returns and never read the store themselves.

Two kinds of history: the order's conversation, and the conversation of each
consult the order came from (docs/consults.md), what was said before it. The
same rules decide what the reader sees of either.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from orderchat.core import anchor as anchor_rules
from orderchat.core.confirmations import ConfirmationItem
from orderchat.core.dossier import is_withheld
from orderchat.core.ids import ConversationId, OrderId, UserId
from orderchat.core.model import Message
from orderchat.core.orders import Customer, Issue, Order
from orderchat.core.payments import Invoice, Payment
from orderchat.core.proof import ChainReport, ChainWalk, Link
from orderchat.core.workflows import Workflow
from orderchat.services.orders.workflows import Workflows
from orderchat.services.proof import Progress, feed_txn
from orderchat.storage import confirmations as confirmation_store
from orderchat.storage import consults as consult_store
from orderchat.storage import media as media_store
from orderchat.storage import notify_people as keys_store
from orderchat.storage import orders as order_store
from orderchat.storage import payments as payment_store
from orderchat.storage import proof as proof_store
from orderchat.storage.consults import ConsultRow
from orderchat.storage.engine import Connection
from orderchat.storage.media import UploadRow
from orderchat.storage.messages import StoredMessage
from orderchat.storage.proof import ChainHead, ChainRow, Person


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who the dossier is for: what they may see, and how they are named on it."""

    name: str
    staff_only: bool  # staff-only notes, exceptions and staff-only order fields
    recalled: bool  # the original content of recalled messages (the audit's view)
    language: str


@dataclass(frozen=True, slots=True)
class History:
    """One conversation's chain as the reader may see it."""

    head: ChainHead
    report: ChainReport
    links: list[Link]  # in chain order; a withheld link has no body
    stored: dict[int, StoredMessage]  # the messages shown, by seq
    reads: list[tuple[UserId, int, bool]]  # (member, read_seq, still a member)

    @property
    def conv(self) -> ConversationId:
        return self.head.conv_id

    @property
    def withheld(self) -> int:
        return sum(1 for link in self.links if link.withheld)

    def shown(self) -> list[Message]:
        return [self.stored[seq].message for seq in sorted(self.stored)]


@dataclass(frozen=True, slots=True)
class ConsultHistory:
    """A consult the order came from, and its conversation as the reader may see it."""

    consult: ConsultRow
    history: History


@dataclass(slots=True)
class Gathered:
    viewer: Viewer
    exported_at_ms: int
    order: Order
    workflow: Workflow
    customer: Customer
    history: History  # the order's conversation
    confirmations: list[ConfirmationItem]
    payments: list[Payment]
    invoice: Invoice | None
    issues: list[Issue]
    consults: list[ConsultHistory] = field(default_factory=list)  # oldest first
    people: dict[UserId, Person] = field(default_factory=dict)
    uploads: dict[str, UploadRow] = field(default_factory=dict)
    # The server's anchor key (core/anchor.py), whose signed daily digests cover this
    # chain's head: base64 public key; None before the first anchor made one.
    anchor_key: str | None = None

    def histories(self) -> list[History]:
        """The order's conversation, then each consult's."""
        return [self.history, *(c.history for c in self.consults)]

    def is_consult(self, history: History) -> bool:
        return history.conv != self.history.conv


async def gather_txn(
    conn: Connection,
    workflows: Workflows,
    order_id: OrderId,
    viewer: Viewer,
    now_ms: int,
    on_links: Progress,
) -> Gathered:
    """The dossier of `order_id` for `viewer`, read through `conn` (one snapshot)."""
    order = await order_store.get_order(conn, order_id)
    found = Gathered(
        viewer=viewer,
        exported_at_ms=now_ms,
        order=order,
        workflow=workflows.get(order.workflow),
        customer=await order_store.get_customer(conn, order.customer_id),
        history=await history_txn(conn, order.conv_id, viewer, on_links),
        confirmations=await confirmation_store.list_items(conn, order.id),
        payments=await payment_store.list_payments(conn, order.id),
        invoice=await payment_store.find_invoice(conn, order.id),
        issues=await order_store.list_issues(conn, order.id) if viewer.staff_only else [],
    )
    for consult in await consult_store.consults_of_order(conn, order.id):
        if not viewer.staff_only and consult.visitor_id != order.customer_id:
            continue  # the customer's own words only (a consult's visitor becomes its customer)
        history = await history_txn(conn, consult.conv_id, viewer, on_links)
        found.consults.append(ConsultHistory(consult, history))
    shown = [m for history in found.histories() for m in history.shown()]
    found.uploads = await media_store.get_uploads(conn, sorted(_media_ids(shown)))
    found.people = await proof_store.people(conn, sorted(_people_named(found)))
    private = await keys_store.server_key(conn, anchor_rules.KEY_NAME)
    found.anchor_key = None if private is None else anchor_rules.public_key(private)
    return found


async def history_txn(
    conn: Connection, conv_id: str, viewer: Viewer, on_links: Progress
) -> History:
    """One conversation's chain walked in `conn`'s snapshot, keeping what `viewer` may see."""
    head = await proof_store.get_chain_head(conn, conv_id)
    stored: dict[int, StoredMessage] = {}

    def keep(row: ChainRow) -> None:
        message = row.message
        if not row.purged and not is_withheld(
            message.message, staff_only=viewer.staff_only, recalled=viewer.recalled
        ):
            stored[message.message.seq] = message

    walk = ChainWalk(keep=True)
    report = await feed_txn(conn, head, walk, on_links=on_links, on_row=keep)
    assert walk.order is not None
    links = [_as_seen(link, stored) for link in walk.order]
    reads = await proof_store.member_reads(conn, conv_id)
    return History(head, report, links, stored, reads)


def _as_seen(link: Link, shown: dict[int, StoredMessage]) -> Link:
    """The link as this reader gets it: whole if its message is shown, else its hash alone."""
    return link if link.ref.seq in shown else Link(link.ref, link.hash, None)


def _media_ids(messages: list[Message]) -> set[str]:
    found = set()
    for message in messages:
        for item in message.attachments:
            if isinstance(item, dict) and isinstance(item.get("id"), str):
                found.add(item["id"])
    return found


def _people_named(found: Gathered) -> set[str]:
    """Everyone the dossier names: members, senders, editors, deciders, payers …"""
    names: set[str] = {found.order.customer_id, found.order.created_by}
    for history in found.histories():
        names.update(_named_in(history))
    for item in found.confirmations:
        names.add(item.created_by)
        for version in item.versions:
            names.add(version.proposed_by)
            names.update([version.decided_by] if version.decided_by else [])
    names.update(p.by for p in found.payments)
    if found.invoice is not None:
        names.update(u for u in (found.invoice.requested_by, found.invoice.issued_by) if u)
    for issue in found.issues:
        names.update(u for u in (issue.raised_by, issue.settled_by) if u)
    return names


def _named_in(history: History) -> set[str]:
    """A conversation's members, senders, recallers and editors."""
    names: set[str] = {user for user, _, _ in history.reads}
    for message in history.shown():
        names.add(message.sender)
        recalled_by = history.stored[message.seq].recalled_by
        if recalled_by is not None:
            names.add(str(recalled_by))
    for link in history.links:
        if link.body is not None and not isinstance(link.body, Message):
            names.add(link.body.by)
    return names
