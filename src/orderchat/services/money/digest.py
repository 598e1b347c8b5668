"""The daily reconciliation digest for finance: yesterday's receipts, and shipped orders
still unpaid with their amount and age.

Posted to #finance every day at the configured local time by the server, and
printed (or posted) on demand by `orderchat digest`.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from orderchat.core.errors import BadRequest
from orderchat.core.ids import UserId
from orderchat.core.model import Message, MessageKind, Role
from orderchat.core.orders import (
    format_amount,
)
from orderchat.core.payments import Payment, PaymentKind
from orderchat.core.texts import say
from orderchat.services.orders.events import role_channel_txn
from orderchat.services.writer import WriteTxn
from orderchat.storage.payments import (
    LedgerLine,
    Receivable,
)

logger = logging.getLogger(__name__)

_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")

DAY_MS = 24 * 3600 * 1000
# A digest lists at most this many lines per section; the totals cover all.
DIGEST_LINES = 50


def payment_fields(payment: Payment, currency: str) -> dict[str, Any]:
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
    raise BadRequest(say("digest.date_must_real_day_written"))


def _age_days(receivable: Receivable, as_of_ms: int) -> int:
    return max(0, (as_of_ms - receivable.shipped_at_ms) // DAY_MS)


def currency_totals(
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
        return await tx.append_message(
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
        raise BadRequest(say("digest.digest_time_must_hh_mm", raw=raw))
    hour, minute = int(hours), int(minutes)
    if hour > 23 or minute > 59:
        raise BadRequest(say("digest.digest_time_must_between_00", raw=raw))
    return hour, minute


def next_run_ms(now_ms: int, hour: int, minute: int) -> int:
    """The first local HH:MM strictly after `now_ms`."""
    now = datetime.fromtimestamp(now_ms / 1000)
    at = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if at <= now:
        at += timedelta(days=1)
    return int(at.astimezone().timestamp() * 1000)


async def stopped_within(stop: asyncio.Event, timeout_s: float) -> bool:
    try:
        async with asyncio.timeout(timeout_s):
            await stop.wait()
    except TimeoutError:
        return False
    return True
