"""Money on orders: payments, refunds, shipping approvals, invoices; posting the digest.

Rules this module keeps:
- Money is integer cents. Payments and refunds are rows in the ledger
  (`payments`); the order's `paid_cents` is the net of that ledger (payments
  minus refunds) and its `payment_status` follows from it, both rewritten in
  the same transaction as the ledger row, so they never disagree.
- A refund can give back at most what the ledger says was paid. Paying more
  than the total is allowed (a deposit before the price is agreed, freight on
  top); the order is then simply paid.
- A cancelled order takes no new payments (refunds of what it took are fine).
- Shipping an order that is not paid needs finance's approval, recorded on
  the order (`ship_approved_by`); the workflow guard `paid_or_ship_approved`
  reads it.
- Every write is a group-commit operation that checks everything before its
  first write, so a refused request changes nothing.

The daily digest is read outside the writer (a large read must not hold up
everyone's writes) and only its message is posted through it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

from orderchat.core.errors import Conflict
from orderchat.core.ids import OrderId, UserId
from orderchat.core.model import Message, User
from orderchat.core.orders import (
    InvoiceStatus,
    Order,
    PaymentStatus,
    format_amount,
    payment_status,
)
from orderchat.core.payments import Invoice, InvoiceRequest, Money, Payment, PaymentKind
from orderchat.core.permissions import Action, check
from orderchat.core.texts import say
from orderchat.core.workflows import Workflow
from orderchat.services.leases import Leases
from orderchat.services.money.digest import (
    Digest,
    PostDigest,
    currency_totals,
    day_bounds_ms,
    local_day,
    next_run_ms,
    parse_hhmm,
    render_digest,
    stopped_within,
)
from orderchat.services.orders.access import (
    check_can_see,
    customer_language_txn,
    load_order_txn,
    save_order_txn,
)
from orderchat.services.orders.events import post_event_txn
from orderchat.services.orders.workflows import Workflows
from orderchat.services.ports import Clock
from orderchat.services.writer import GroupCommitWriter, WriteTxn
from orderchat.storage import orders as order_store
from orderchat.storage import payments as store
from orderchat.storage.engine import Database
from orderchat.storage.payments import (
    PaymentTotals,
)

logger = logging.getLogger(__name__)


# States where an order ended without a sale (the names both built-in workflows
# use): it takes no new payments and no invoice, but may still be refunded.
CLOSED_STATES = frozenset({"cancelled", "refunded"})
# Shipped orders in these states owe nothing any more: the goods came back.
NOT_RECEIVABLE_STATES = frozenset({"cancelled", "returned", "refunded"})
# The scheduler re-reads the wall clock at least this often, so a suspended
# machine or a clock that was set while it slept does not move the digest.
MAX_NAP_S = 60.0
# Posting the digest is one read and one write; longer means the database is stuck.
DIGEST_POST_TIMEOUT_S = 120.0
# The sender of messages nobody caused (the scheduled digest).
SYSTEM_SENDER = UserId("system")


def invoice_fields(invoice: Invoice) -> dict[str, Any]:
    return {
        "order": invoice.order_id,
        "status": invoice.status.value,
        "title": invoice.title,
        "tax_id": invoice.tax_id,
        "number": invoice.number,
        "requested_by": invoice.requested_by,
        "requested_ts": invoice.requested_at_ms,
        "issued_by": invoice.issued_by,
        "issued_ts": invoice.issued_at_ms,
    }


# An invoice's state as a word in a sentence, in the reader's language.
_INVOICE_WORDS = {"requested": "word.invoice_requested", "issued": "word.invoice_issued"}


def _check_takes_money(order: Order) -> None:
    if order.status in CLOSED_STATES:
        raise Conflict(
            say("finance.order_takes_no_payments", number=order.number, status=order.status)
        )


# --- writes ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Recorded:
    payment: Payment
    order: Order
    workflow: Workflow


@dataclass(frozen=True, slots=True)
class RecordMoney:
    """A payment in or a refund out, and the order's money state after it."""

    user: User
    order_id: OrderId
    money: Money
    workflows: Workflows

    async def apply(self, tx: WriteTxn) -> Recorded:
        refund = self.money.kind is PaymentKind.REFUND
        check(self.user, Action.RECORD_REFUND if refund else Action.RECORD_PAYMENT)
        order, workflow = await load_order_txn(tx, self.workflows, self.order_id, self.user)
        before = await store.payment_totals(tx.conn, order.id)
        amount = self.money.amount_cents
        if refund and amount > before.net_cents:
            raise Conflict(
                say(
                    "finance.refund_more_than_paid",
                    amount=format_amount(amount, order.currency),
                    paid=format_amount(before.net_cents, order.currency),
                )
            )
        if not refund:
            _check_takes_money(order)
        after = (
            PaymentTotals(before.paid_cents, before.refunded_cents + amount)
            if refund
            else PaymentTotals(before.paid_cents + amount, before.refunded_cents)
        )
        language = await customer_language_txn(tx, order)
        payment = Payment(
            id=tx.ids.payment(tx.now_ms),
            order_id=order.id,
            kind=self.money.kind,
            amount_cents=amount,
            method=self.money.method,
            reference=self.money.reference,
            by=self.user.id,
            ts_ms=tx.now_ms,
        )
        await store.insert_payment_txn(tx.conn, payment)
        status = payment_status(order.total_cents, after.paid_cents, after.refunded_cents)
        saved = await save_order_txn(
            tx, replace(order, paid_cents=after.net_cents, payment_status=status), workflow
        )
        details = {
            "payment": payment.id,
            "amount": format_amount(amount, order.currency),
            "amount_cents": amount,
            "currency": order.currency,
            "method": payment.method,
            "reference": payment.reference,
            "payment_status": status.value,
        }
        event = "refund_recorded" if refund else "payment_received"
        await post_event_txn(tx, saved, event, details, self.user.id, language=language)
        return Recorded(payment, saved, workflow)


@dataclass(frozen=True, slots=True)
class ApproveShipping:
    user: User
    order_id: OrderId
    note: str
    workflows: Workflows

    async def apply(self, tx: WriteTxn) -> tuple[Order, Workflow]:
        check(self.user, Action.APPROVE_SHIPPING)
        order, workflow = await load_order_txn(tx, self.workflows, self.order_id, self.user)
        if order.status in workflow.terminal or order.status in CLOSED_STATES:
            raise Conflict(
                say(
                    "finance.order_will_not_ship",
                    number=order.number,
                    status=workflow.state_words(order.status),
                )
            )
        if order.shipped_at_ms is not None:
            raise Conflict(say("finance.order_has_shipped_already", number=order.number))
        if order.payment_status is PaymentStatus.PAID:
            raise Conflict(say("finance.order_paid_needs_no_approval", number=order.number))
        if order.ship_approved_by is not None:
            raise Conflict(say("finance.shipping_order_approved_already", number=order.number))
        language = await customer_language_txn(tx, order)
        saved = await save_order_txn(tx, replace(order, ship_approved_by=self.user.id), workflow)
        details = {
            "note": self.note,
            "due": format_amount(order.total_cents - order.paid_cents, order.currency),
        }
        await post_event_txn(tx, saved, "ship_approved", details, self.user.id, language=language)
        return saved, workflow


@dataclass(frozen=True, slots=True)
class InvoiceResult:
    invoice: Invoice
    order: Order
    workflow: Workflow


@dataclass(frozen=True, slots=True)
class RequestInvoice:
    user: User
    order_id: OrderId
    title: str
    tax_id: str | None
    workflows: Workflows

    async def apply(self, tx: WriteTxn) -> InvoiceResult:
        check(self.user, Action.REQUEST_INVOICE)
        order, workflow = await load_order_txn(tx, self.workflows, self.order_id, self.user)
        if order.status in CLOSED_STATES:
            raise Conflict(
                say(
                    "finance.order_no_invoice_can_made",
                    number=order.number,
                    status=workflow.state_words(order.status),
                )
            )
        existing = await store.find_invoice(tx.conn, order.id)
        if existing is not None:
            raise Conflict(
                say(
                    "finance.invoice_for_order_already",
                    number=order.number,
                    value=say(_INVOICE_WORDS.get(existing.status.value, "word.invoice_requested")),
                )
            )
        language = await customer_language_txn(tx, order)
        invoice = Invoice(
            order_id=order.id,
            status=InvoiceStatus.REQUESTED,
            title=self.title,
            tax_id=self.tax_id,
            number=None,
            requested_by=self.user.id,
            requested_at_ms=tx.now_ms,
            issued_by=None,
            issued_at_ms=None,
        )
        await store.insert_invoice_txn(tx.conn, invoice)
        saved = await save_order_txn(
            tx, replace(order, invoice_status=InvoiceStatus.REQUESTED), workflow
        )
        details = {"title": self.title, "tax_id": self.tax_id or ""}
        await post_event_txn(
            tx, saved, "invoice_requested", details, self.user.id, language=language
        )
        return InvoiceResult(invoice, saved, workflow)


@dataclass(frozen=True, slots=True)
class IssueInvoice:
    user: User
    order_id: OrderId
    number: str
    workflows: Workflows

    async def apply(self, tx: WriteTxn) -> InvoiceResult:
        check(self.user, Action.ISSUE_INVOICE)
        order, workflow = await load_order_txn(tx, self.workflows, self.order_id, self.user)
        invoice = await store.find_invoice(tx.conn, order.id)
        if invoice is None:
            raise Conflict(say("finance.no_invoice_was_requested_for", number=order.number))
        if invoice.status is not InvoiceStatus.REQUESTED:
            raise Conflict(say("finance.invoice_for_order_issued_already", number=order.number))
        language = await customer_language_txn(tx, order)
        await store.issue_invoice_txn(tx.conn, order.id, self.number, self.user.id, tx.now_ms)
        saved = await save_order_txn(
            tx, replace(order, invoice_status=InvoiceStatus.ISSUED), workflow
        )
        details = {"invoice_number": self.number, "title": invoice.title}
        await post_event_txn(tx, saved, "invoice_issued", details, self.user.id, language=language)
        issued = replace(
            invoice,
            status=InvoiceStatus.ISSUED,
            number=self.number,
            issued_by=self.user.id,
            issued_at_ms=tx.now_ms,
        )
        return InvoiceResult(issued, saved, workflow)


# --- the service -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrderMoney:
    order: Order
    workflow: Workflow
    payments: list[Payment]
    invoice: Invoice | None


class Finance:
    """Finance use cases; writes go through the group-commit writer."""

    def __init__(
        self, db: Database, writer: GroupCommitWriter, clock: Clock, workflows: Workflows
    ) -> None:
        self._db = db
        self._writer = writer
        self._clock = clock
        self._workflows = workflows

    async def record_money(self, user: User, order_id: OrderId, money: Money) -> Recorded:
        """Record a payment or a refund, as `money.kind` says."""
        done: Recorded = await self._writer.submit(
            RecordMoney(user, order_id, money, self._workflows)
        )
        logger.info(
            "%s %s recorded on order %s by %s",
            money.kind.value,
            done.payment.id,
            order_id,
            user.id,
        )
        return done

    async def approve_shipping(
        self, user: User, order_id: OrderId, note: str
    ) -> tuple[Order, Workflow]:
        op = ApproveShipping(user, order_id, note, self._workflows)
        done: tuple[Order, Workflow] = await self._writer.submit(op)
        logger.info("shipping unpaid order %s approved by %s", order_id, user.id)
        return done

    async def request_invoice(
        self, user: User, order_id: OrderId, request: InvoiceRequest
    ) -> InvoiceResult:
        op = RequestInvoice(user, order_id, request.title, request.tax_id, self._workflows)
        done: InvoiceResult = await self._writer.submit(op)
        logger.info("invoice requested for order %s by %s", order_id, user.id)
        return done

    async def issue_invoice(self, user: User, order_id: OrderId, number: str) -> InvoiceResult:
        """`number` is the invoice's number, checked by `core.payments.invoice_number`."""
        op = IssueInvoice(user, order_id, number, self._workflows)
        done: InvoiceResult = await self._writer.submit(op)
        logger.info("invoice issued for order %s by %s", order_id, user.id)
        return done

    async def money(self, user: User, order_id: OrderId) -> OrderMoney:
        """An order's ledger and invoice: staff, or the order's own customer."""
        async with self._db.read() as conn:
            order = await order_store.get_order(conn, order_id)
            check_can_see(user, order)
            payments = await store.list_payments(conn, order.id)
            invoice = await store.find_invoice(conn, order.id)
        return OrderMoney(order, self._workflows.get(order.workflow), payments, invoice)

    def yesterday(self) -> date:
        return local_day(self._clock.now_ms()) - timedelta(days=1)

    async def digest(self, day: date | None = None, *, user: User | None = None) -> Digest:
        """The reconciliation digest of `day` (default: yesterday, local time).

        `user` is checked when given; the CLI and the scheduler run as the
        operator of the machine and pass none.
        """
        if user is not None:
            check(user, Action.READ_DIGEST)
        day = day or self.yesterday()
        from_ms, to_ms = day_bounds_ms(day)
        async with self._db.read() as conn:
            ledger = await store.list_ledger(conn, from_ms, to_ms)
            receivables = await store.list_receivables(conn, to_ms, NOT_RECEIVABLE_STATES)
        totals = currency_totals(ledger, receivables)
        text = {
            lang: render_digest(day, ledger, receivables, totals, to_ms, lang)
            for lang in ("zh-CN", "en")
        }
        return Digest(day, from_ms, to_ms, tuple(ledger), tuple(receivables), totals, text)

    async def post_digest(self, day: date | None = None, by: UserId | None = None) -> Digest:
        """Compute the digest and post it into #finance."""
        digest = await self.digest(day)
        message: Message = await self._writer.submit(PostDigest(digest, by or SYSTEM_SENDER))
        logger.info("digest for %s posted to #finance as %s", digest.day, message.id)
        return digest

    async def run_daily_digest(
        self, at_hhmm: str, stop: asyncio.Event, leases: Leases | None = None
    ) -> None:
        """Post yesterday's digest every day at local HH:MM until `stop` is set.

        Runs as one owned task for the server's lifetime. A failed post is
        logged and the next day's is still attempted; cancelling the task or
        setting `stop` ends it promptly.

        Raises:
            BadRequest: `at_hhmm` is not a time of day.
        """
        hour, minute = parse_hhmm(at_hhmm)
        logger.info("daily digest scheduled at %02d:%02d local time", hour, minute)
        last_day: date | None = None
        while not stop.is_set():
            due_ms = next_run_ms(self._clock.now_ms(), hour, minute)
            while (wait_s := (due_ms - self._clock.now_ms()) / 1000) > 0:
                if await stopped_within(stop, min(wait_s, MAX_NAP_S)):
                    return
            day = local_day(due_ms) - timedelta(days=1)
            if day == last_day:  # the clock was set back after a post
                continue
            last_day = day
            try:
                # Every node wakes at the same time; one posts (services/leases.py).
                if leases is not None and not await leases.claim_once(f"daily-digest:{day}"):
                    logger.info("the digest for %s is posted by another node", day)
                    continue
                async with asyncio.timeout(DIGEST_POST_TIMEOUT_S):
                    await self.post_digest(day)
            except Exception:
                logger.exception("posting the digest for %s failed", day)
