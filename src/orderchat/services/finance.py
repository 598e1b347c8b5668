"""Money on orders: payments, refunds, shipping approvals, invoices, the daily digest.

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
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import Any

from orderchat.core.errors import BadRequest, Conflict, TooLarge
from orderchat.core.ids import UserId, new_id
from orderchat.core.model import Message, MessageKind, Role, User
from orderchat.core.orders import (
    MAX_PRICE_CENTS,
    InvoiceStatus,
    PaymentStatus,
    format_amount,
    parse_note,
    payment_status,
    positive_int,
)
from orderchat.core.permissions import Action, check
from orderchat.core.workflows import Workflow
from orderchat.services.order_access import (
    check_can_see,
    customer_language_txn,
    load_order_txn,
    save_order_txn,
)
from orderchat.services.order_events import post_event_txn, role_channel_txn
from orderchat.services.ports import Clock, Publication, SystemClock
from orderchat.services.workflows import Workflows
from orderchat.services.writer import GroupCommitWriter, WriteTxn
from orderchat.settings import Settings
from orderchat.storage import orders as order_store
from orderchat.storage import payments as store
from orderchat.storage.engine import Database
from orderchat.storage.orders import OrderRow
from orderchat.storage.payments import (
    InvoiceRow,
    LedgerLine,
    PaymentKind,
    PaymentRow,
    PaymentTotals,
    Receivable,
)

logger = logging.getLogger(__name__)

_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")

MAX_METHOD_CHARS = 32  # payments.method
MAX_REFERENCE_CHARS = 128  # payments.reference
MAX_INVOICE_TITLE_CHARS = 200  # invoices.title
MAX_INVOICE_CODE_CHARS = 64  # invoices.tax_id, invoices.number
# States where an order ended without a sale (the names both built-in workflows
# use): it takes no new payments and no invoice, but may still be refunded.
CLOSED_STATES = frozenset({"cancelled", "refunded"})
# Shipped orders in these states owe nothing any more: the goods came back.
NOT_RECEIVABLE_STATES = frozenset({"cancelled", "returned", "refunded"})
DAY_MS = 24 * 3600 * 1000
# A digest lists at most this many lines per section; the totals cover all.
DIGEST_LINES = 50
# The scheduler re-reads the wall clock at least this often, so a suspended
# machine or a clock that was set while it slept does not move the digest.
MAX_NAP_S = 60.0
# Posting the digest is one read and one write; longer means the database is stuck.
DIGEST_POST_TIMEOUT_S = 120.0
# The sender of messages nobody caused (the scheduled digest).
SYSTEM_SENDER = UserId("system")


def _text(raw: object, what: str, max_chars: int, *, required: bool = True) -> str:
    if not isinstance(raw, str):
        raise BadRequest(f"{what} must be a string")
    text = raw.strip()
    if required and not text:
        raise BadRequest(f"{what} must not be empty")
    if len(text) > max_chars:
        raise TooLarge(f"{what} is longer than {max_chars} characters")
    return text


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
        _text(method, "method", MAX_METHOD_CHARS),
        _text(reference, "reference", MAX_REFERENCE_CHARS),
    )


def payment_fields(payment: PaymentRow, currency: str) -> dict[str, Any]:
    return {
        "id": payment.id,
        "order": payment.order_id,
        "kind": payment.kind.value,
        "amount_cents": payment.amount_cents,
        "currency": currency,
        "method": payment.method,
        "reference": payment.reference,
        "by": payment.by,
        "ts": payment.ts_ms,
    }


def invoice_fields(invoice: InvoiceRow) -> dict[str, Any]:
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


def _check_takes_money(order: OrderRow) -> None:
    if order.status in CLOSED_STATES:
        raise Conflict(f"order {order.number} is {order.status}; it takes no payments")


# --- writes ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Recorded:
    payment: PaymentRow
    order: OrderRow
    workflow: Workflow


@dataclass(frozen=True, slots=True)
class RecordMoney:
    """A payment in or a refund out, and the order's money state after it."""

    user: User
    order_id: str
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
                f"a refund of {format_amount(amount, order.currency)} is more than the "
                f"{format_amount(before.net_cents, order.currency)} paid"
            )
        if not refund:
            _check_takes_money(order)
        after = (
            PaymentTotals(before.paid_cents, before.refunded_cents + amount)
            if refund
            else PaymentTotals(before.paid_cents + amount, before.refunded_cents)
        )
        language = await customer_language_txn(tx, order)
        payment = PaymentRow(
            id=new_id("pm", tx.now_ms),
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
    order_id: str
    note: str
    workflows: Workflows

    async def apply(self, tx: WriteTxn) -> tuple[OrderRow, Workflow]:
        check(self.user, Action.APPROVE_SHIPPING)
        order, workflow = await load_order_txn(tx, self.workflows, self.order_id, self.user)
        if order.status in workflow.terminal or order.status in CLOSED_STATES:
            raise Conflict(f"order {order.number} is {order.status}; it will not ship")
        if order.shipped_at_ms is not None:
            raise Conflict(f"order {order.number} has shipped already")
        if order.payment_status is PaymentStatus.PAID:
            raise Conflict(f"order {order.number} is paid; it needs no approval to ship")
        if order.ship_approved_by is not None:
            raise Conflict(f"shipping order {order.number} is approved already")
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
    invoice: InvoiceRow
    order: OrderRow
    workflow: Workflow


@dataclass(frozen=True, slots=True)
class RequestInvoice:
    user: User
    order_id: str
    title: str
    tax_id: str | None
    workflows: Workflows

    async def apply(self, tx: WriteTxn) -> InvoiceResult:
        check(self.user, Action.REQUEST_INVOICE)
        order, workflow = await load_order_txn(tx, self.workflows, self.order_id, self.user)
        if order.status in CLOSED_STATES:
            raise Conflict(f"order {order.number} is {order.status}; no invoice can be made")
        existing = await store.find_invoice(tx.conn, order.id)
        if existing is not None:
            raise Conflict(
                f"an invoice for order {order.number} is {existing.status.value} already"
            )
        language = await customer_language_txn(tx, order)
        invoice = InvoiceRow(
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
    order_id: str
    number: str
    workflows: Workflows

    async def apply(self, tx: WriteTxn) -> InvoiceResult:
        check(self.user, Action.ISSUE_INVOICE)
        order, workflow = await load_order_txn(tx, self.workflows, self.order_id, self.user)
        invoice = await store.find_invoice(tx.conn, order.id)
        if invoice is None:
            raise Conflict(f"no invoice was requested for order {order.number}")
        if invoice.status is not InvoiceStatus.REQUESTED:
            raise Conflict(f"the invoice for order {order.number} is issued already")
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


# --- the daily reconciliation digest ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class CurrencyTotals:
    currency: str
    received_cents: int
    receipts: int
    refunded_cents: int
    refunds: int
    receivable_cents: int
    receivables: int


@dataclass(frozen=True, slots=True)
class Digest:
    """One day's receipts and the receivables as of the day's end, in local time."""

    day: date
    from_ms: int
    to_ms: int
    ledger: tuple[LedgerLine, ...]
    receivables: tuple[Receivable, ...]
    totals: tuple[CurrencyTotals, ...]
    text: Mapping[str, str]


def day_bounds_ms(day: date) -> tuple[int, int]:
    """[start, end) of a local calendar day, in epoch milliseconds (DST-safe)."""
    start = datetime.combine(day, time()).astimezone()
    end = datetime.combine(day + timedelta(days=1), time()).astimezone()
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000)


def local_day(ms: int) -> date:
    return datetime.fromtimestamp(ms / 1000).date()


def parse_day(raw: object) -> date:
    """A `YYYY-MM-DD` day, as the API and the command take it."""
    if isinstance(raw, str) and _DAY.fullmatch(raw):
        try:
            return date.fromisoformat(raw)
        except ValueError:
            pass
    raise BadRequest("date must be a real day written YYYY-MM-DD")


def _age_days(receivable: Receivable, as_of_ms: int) -> int:
    return max(0, (as_of_ms - receivable.shipped_at_ms) // DAY_MS)


def _totals(
    ledger: Sequence[LedgerLine], receivables: Sequence[Receivable]
) -> tuple[CurrencyTotals, ...]:
    currencies = sorted({line.currency for line in ledger} | {r.currency for r in receivables})
    found = []
    for currency in currencies:
        paid = [
            line.payment.amount_cents
            for line in ledger
            if line.currency == currency and line.payment.kind is PaymentKind.PAYMENT
        ]
        refunded = [
            line.payment.amount_cents
            for line in ledger
            if line.currency == currency and line.payment.kind is PaymentKind.REFUND
        ]
        due = [r.total_cents - r.paid_cents for r in receivables if r.currency == currency]
        found.append(
            CurrencyTotals(
                currency, sum(paid), len(paid), sum(refunded), len(refunded), sum(due), len(due)
            )
        )
    return tuple(found)


_WORDS = {
    "zh-CN": {
        "title": "财务日报 {day}",
        "receipts": "收款 {count} 笔，合计 {amount}",
        "refunds": "退款 {count} 笔，合计 {amount}",
        "none_received": "当日无收款。",
        "receivables": "已发货未付清 {count} 单，应收 {amount}",
        "none_due": "没有已发货未付清的订单。",
        "receipt": "· {number} {amount}（{method}，{reference}）",
        "refund": "· {number} 退款 {amount}（{method}，{reference}）",
        "due": "· {number} 应收 {due}（总额 {total}，已付 {paid}），发货 {age} 天{approved}",
        "approved": "，财务已批准发货",
        "more": "… 另有 {count} 条",
    },
    "en": {
        "title": "Finance digest for {day}",
        "receipts": "{count} receipt(s), {amount} in total",
        "refunds": "{count} refund(s), {amount} in total",
        "none_received": "No money received that day.",
        "receivables": "{count} shipped order(s) not fully paid, {amount} due",
        "none_due": "No shipped order is waiting for payment.",
        "receipt": "· {number} {amount} ({method}, {reference})",
        "refund": "· {number} refund {amount} ({method}, {reference})",
        "due": "· {number} due {due} (total {total}, paid {paid}), shipped {age} day(s) ago"
        "{approved}",
        "approved": ", shipping approved by finance",
        "more": "… and {count} more",
    },
}


def _capped(lines: list[str], words: Mapping[str, str]) -> list[str]:
    if len(lines) <= DIGEST_LINES:
        return lines
    return [*lines[:DIGEST_LINES], words["more"].format(count=len(lines) - DIGEST_LINES)]


def render_digest(
    day: date,
    ledger: Sequence[LedgerLine],
    receivables: Sequence[Receivable],
    totals: Sequence[CurrencyTotals],
    as_of_ms: int,
    language: str,
) -> str:
    """The digest as the message finance reads, in one language."""
    w = _WORDS[language]
    out = [w["title"].format(day=day.isoformat())]
    received = [t for t in totals if t.receipts or t.refunds]
    for t in received:
        if t.receipts:
            amount = format_amount(t.received_cents, t.currency)
            out.append(w["receipts"].format(count=t.receipts, amount=amount))
        if t.refunds:
            amount = format_amount(t.refunded_cents, t.currency)
            out.append(w["refunds"].format(count=t.refunds, amount=amount))
    if not received:
        out.append(w["none_received"])
    lines = []
    for line in ledger:
        p = line.payment
        template = w["refund"] if p.kind is PaymentKind.REFUND else w["receipt"]
        lines.append(
            template.format(
                number=line.order_number,
                amount=format_amount(p.amount_cents, line.currency),
                method=p.method,
                reference=p.reference,
            )
        )
    out.extend(_capped(lines, w))
    owing = [t for t in totals if t.receivables]
    for t in owing:
        amount = format_amount(t.receivable_cents, t.currency)
        out.append(w["receivables"].format(count=t.receivables, amount=amount))
    if not owing:
        out.append(w["none_due"])
    lines = [
        w["due"].format(
            number=r.order_number,
            due=format_amount(r.total_cents - r.paid_cents, r.currency),
            total=format_amount(r.total_cents, r.currency),
            paid=format_amount(r.paid_cents, r.currency),
            age=_age_days(r, as_of_ms),
            approved=w["approved"] if r.ship_approved_by else "",
        )
        for r in receivables
    ]
    out.extend(_capped(lines, w))
    return "\n".join(out)


def digest_fields(digest: Digest) -> dict[str, Any]:
    """The digest as JSON: the API's answer and the CLI's `--json` output."""
    return {
        "date": digest.day.isoformat(),
        "from_ts": digest.from_ms,
        "to_ts": digest.to_ms,
        "receipts": [
            {
                **payment_fields(line.payment, line.currency),
                "number": line.order_number,
            }
            for line in digest.ledger
        ],
        "receivables": [
            {
                "order": r.order_id,
                "number": r.order_number,
                "customer": r.customer_id,
                "status": r.status,
                "currency": r.currency,
                "total_cents": r.total_cents,
                "paid_cents": r.paid_cents,
                "due_cents": r.total_cents - r.paid_cents,
                "shipped_ts": r.shipped_at_ms,
                "age_days": _age_days(r, digest.to_ms),
                "ship_approved": r.ship_approved_by is not None,
            }
            for r in digest.receivables
        ],
        "totals": [
            {
                "currency": t.currency,
                "received_cents": t.received_cents,
                "receipts": t.receipts,
                "refunded_cents": t.refunded_cents,
                "refunds": t.refunds,
                "net_cents": t.received_cents - t.refunded_cents,
                "receivable_cents": t.receivable_cents,
                "receivables": t.receivables,
            }
            for t in digest.totals
        ],
        "text": dict(digest.text),
    }


@dataclass(frozen=True, slots=True)
class PostDigest:
    """The digest as a system message in #finance (the channel is made on first use)."""

    digest: Digest
    by: UserId

    async def apply(self, tx: WriteTxn) -> Message:
        channel = await role_channel_txn(tx, Role.FINANCE)
        await tx.member_set(channel.id)
        fields = digest_fields(self.digest)
        meta: dict[str, object] = {
            "event": "finance_digest",
            "date": fields["date"],
            "totals": fields["totals"],
            "text": fields["text"],
        }
        return tx.append_message(
            channel,
            self.by,
            MessageKind.SYSTEM,
            self.digest.text.get("zh-CN", ""),
            mentions=(f"@{Role.FINANCE.value}",),
            meta=meta,
        )


def parse_hhmm(raw: str) -> tuple[int, int]:
    """`HH:MM` on a 24-hour clock, as the digest time is configured."""
    hours, sep, minutes = raw.partition(":")
    if not (sep and len(hours) == 2 and len(minutes) == 2 and (hours + minutes).isdigit()):
        raise BadRequest(f"digest time must be HH:MM, not {raw!r}")
    hour, minute = int(hours), int(minutes)
    if hour > 23 or minute > 59:
        raise BadRequest(f"digest time must be between 00:00 and 23:59, not {raw!r}")
    return hour, minute


def next_run_ms(now_ms: int, hour: int, minute: int) -> int:
    """The first local HH:MM strictly after `now_ms`."""
    now = datetime.fromtimestamp(now_ms / 1000)
    at = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if at <= now:
        at += timedelta(days=1)
    return int(at.astimezone().timestamp() * 1000)


async def _stopped_within(stop: asyncio.Event, timeout_s: float) -> bool:
    try:
        await asyncio.wait_for(stop.wait(), timeout_s)
    except TimeoutError:
        return False
    return True


# --- the service -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrderMoney:
    order: OrderRow
    workflow: Workflow
    payments: list[PaymentRow]
    invoice: InvoiceRow | None


class Finance:
    """Finance use cases; writes go through the group-commit writer."""

    def __init__(
        self, db: Database, writer: GroupCommitWriter, clock: Clock, workflows: Workflows
    ) -> None:
        self._db = db
        self._writer = writer
        self._clock = clock
        self._workflows = workflows

    async def record_payment(
        self, user: User, order_id: str, amount: object, method: object, reference: object
    ) -> Recorded:
        money = parse_money(PaymentKind.PAYMENT, amount, method, reference)
        return await self._record(user, order_id, money)

    async def record_refund(
        self, user: User, order_id: str, amount: object, method: object, reference: object
    ) -> Recorded:
        money = parse_money(PaymentKind.REFUND, amount, method, reference)
        return await self._record(user, order_id, money)

    async def _record(self, user: User, order_id: str, money: Money) -> Recorded:
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
        self, user: User, order_id: str, note: object
    ) -> tuple[OrderRow, Workflow]:
        op = ApproveShipping(user, order_id, parse_note(note), self._workflows)
        done: tuple[OrderRow, Workflow] = await self._writer.submit(op)
        logger.info("shipping unpaid order %s approved by %s", order_id, user.id)
        return done

    async def request_invoice(
        self, user: User, order_id: str, title: object, tax_id: object
    ) -> InvoiceResult:
        op = RequestInvoice(
            user,
            order_id,
            _text(title, "title", MAX_INVOICE_TITLE_CHARS),
            None if tax_id is None else _text(tax_id, "tax_id", MAX_INVOICE_CODE_CHARS),
            self._workflows,
        )
        done: InvoiceResult = await self._writer.submit(op)
        logger.info("invoice requested for order %s by %s", order_id, user.id)
        return done

    async def issue_invoice(self, user: User, order_id: str, number: object) -> InvoiceResult:
        op = IssueInvoice(
            user, order_id, _text(number, "number", MAX_INVOICE_CODE_CHARS), self._workflows
        )
        done: InvoiceResult = await self._writer.submit(op)
        logger.info("invoice issued for order %s by %s", order_id, user.id)
        return done

    async def money(self, user: User, order_id: str) -> OrderMoney:
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
        totals = _totals(ledger, receivables)
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

    async def run_daily_digest(self, at_hhmm: str, stop: asyncio.Event) -> None:
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
                if await _stopped_within(stop, min(wait_s, MAX_NAP_S)):
                    return
            day = local_day(due_ms) - timedelta(days=1)
            if day == last_day:  # the clock was set back after a post
                continue
            last_day = day
            try:
                async with asyncio.timeout(DIGEST_POST_TIMEOUT_S):
                    await self.post_digest(day)
            except Exception:
                logger.exception("posting the digest for %s failed", day)


# --- the `orderchat digest` command ---------------------------------------------------


class _NoLiveDelivery:
    """The command runs outside the server: its message is stored, and devices
    receive it from the database when they next resume, not pushed live."""

    def publish(self, items: Sequence[Publication]) -> None:
        pass


async def digest_command(
    settings: Settings, day: date | None, *, post: bool, clock: Clock | None = None
) -> Digest:
    """The digest read straight from the database; with `post`, also posted to #finance."""
    clock = clock or SystemClock()
    db = Database(settings.resolved_database_url)
    writer = GroupCommitWriter(db, _NoLiveDelivery(), clock)
    try:
        await db.migrate()
        finance = Finance(db, writer, clock, Workflows.load(settings.workflows_dir))
        if not post:
            return await finance.digest(day)
        writer.start()
        try:
            return await finance.post_digest(day)
        finally:
            await writer.stop()
    finally:
        await db.close()
