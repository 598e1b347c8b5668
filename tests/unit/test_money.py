"""Money as values: payment status, amounts, and the digest's days and times.

No loop and no database: the digest's pure parts (day bounds, the schedule,
the rendered text) are tested here with hand-built rows.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date, datetime

import pytest

from orderchat.core.errors import BadRequest
from orderchat.core.ids import UserId
from orderchat.core.orders import (
    MAX_PRICE_CENTS,
    OrderItem,
    PaymentStatus,
    cents,
    format_amount,
    payment_status,
    positive_int,
    total_cents,
)
from orderchat.core.payments import Payment, PaymentKind
from orderchat.services.money.digest import (
    CurrencyTotals,
    currency_totals,
    day_bounds_ms,
    next_run_ms,
    parse_day,
    parse_hhmm,
    render_digest,
)
from orderchat.storage.payments import LedgerLine, Receivable

HOUR_MS = 3600 * 1000


@pytest.fixture
def berlin(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Local time with daylight saving: days of 23 and 25 hours exist."""
    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


# --- payment status --------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "paid", "refunded", "status"),
    [
        (10_000, 0, 0, PaymentStatus.UNPAID),
        (10_000, 1, 0, PaymentStatus.PARTIAL),
        (10_000, 9_999, 0, PaymentStatus.PARTIAL),
        (10_000, 10_000, 0, PaymentStatus.PAID),
        (10_000, 12_000, 0, PaymentStatus.PAID),  # overpaid is still paid
        (10_000, 10_000, 3_000, PaymentStatus.PARTIAL),
        (10_000, 10_000, 10_000, PaymentStatus.REFUNDED),
        (10_000, 4_000, 4_000, PaymentStatus.REFUNDED),
        (0, 0, 0, PaymentStatus.UNPAID),  # an order not priced yet owes nothing and paid nothing
        (0, 500, 0, PaymentStatus.PARTIAL),  # a deposit before the price is agreed
    ],
)
def test_payment_status_follows_net_paid(
    total: int, paid: int, refunded: int, status: PaymentStatus
) -> None:
    assert payment_status(total, paid, refunded) is status


def test_total_is_the_sum_of_lines_in_cents() -> None:
    items = (OrderItem("A", "a", 3, 1999), OrderItem("B", "b", 1, 1))
    assert total_cents(items) == 5998
    assert total_cents(()) == 0


# --- amounts ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (0, "CNY", "¥0.00"),
        (5, "CNY", "¥0.05"),
        (123_456_789, "CNY", "¥1,234,567.89"),
        (-1050, "USD", "-$10.50"),
        (100, "HKD", "HK$1.00"),
        (99, "CHF", "CHF 0.99"),  # unknown currencies show their code
    ],
)
def test_format_amount(amount: int, currency: str, shown: str) -> None:
    assert format_amount(amount, currency) == shown


@pytest.mark.parametrize("raw", [0, -1, True, False, 1.0, "100", None, MAX_PRICE_CENTS + 1])
def test_positive_amount_rejects_non_positive_and_non_integers(raw: object) -> None:
    with pytest.raises(BadRequest):
        positive_int(raw, "amount_cents", MAX_PRICE_CENTS)


def test_positive_amount_accepts_the_bounds() -> None:
    assert positive_int(1, "amount_cents", MAX_PRICE_CENTS) == 1
    assert positive_int(MAX_PRICE_CENTS, "amount_cents", MAX_PRICE_CENTS) == MAX_PRICE_CENTS


@pytest.mark.parametrize("raw", [-1, True, 0.5, "0", MAX_PRICE_CENTS + 1])
def test_cents_rejects_what_is_not_a_whole_amount(raw: object) -> None:
    with pytest.raises(BadRequest):
        cents(raw, "unit_price_cents")


def test_cents_allows_zero() -> None:
    assert cents(0, "unit_price_cents") == 0


# --- the digest's days and times --------------------------------------------------


@pytest.mark.parametrize("raw", ["2026-03-29", "2024-02-29"])
def test_parse_day_accepts_real_days(raw: str) -> None:
    assert parse_day(raw) == date.fromisoformat(raw)


@pytest.mark.parametrize(
    "raw", ["2026-02-30", "2026-13-01", "20260301", "2026-W01-1", "yesterday", "", None, 20260301]
)
def test_parse_day_refuses_anything_else(raw: object) -> None:
    with pytest.raises(BadRequest):
        parse_day(raw)


@pytest.mark.usefixtures("berlin")
def test_day_bounds_follow_daylight_saving() -> None:
    start, end = day_bounds_ms(date(2026, 3, 29))  # clocks go forward: 23 hours
    assert end - start == 23 * HOUR_MS
    start, end = day_bounds_ms(date(2026, 10, 25))  # clocks go back: 25 hours
    assert end - start == 25 * HOUR_MS
    start, end = day_bounds_ms(date(2026, 6, 1))
    assert end - start == 24 * HOUR_MS
    assert datetime.fromtimestamp(start / 1000).hour == 0


@pytest.mark.parametrize(
    ("raw", "parsed"), [("08:00", (8, 0)), ("00:00", (0, 0)), ("23:59", (23, 59))]
)
def test_parse_hhmm(raw: str, parsed: tuple[int, int]) -> None:
    assert parse_hhmm(raw) == parsed


@pytest.mark.parametrize(
    "raw", ["8:00", "24:00", "12:60", "0800", "ab:cd", "", "08:00:00", "-1:00"]
)
def test_parse_hhmm_refuses_malformed_times(raw: str) -> None:
    with pytest.raises(BadRequest):
        parse_hhmm(raw)


def _local_ms(year: int, month: int, day: int, hour: int, minute: int, second: int = 0) -> int:
    local = datetime(year, month, day, hour, minute, second).astimezone()
    return int(local.timestamp() * 1000)


@pytest.mark.usefixtures("berlin")
def test_next_run_is_today_when_the_time_is_still_ahead() -> None:
    assert next_run_ms(_local_ms(2026, 6, 1, 7, 59, 59), 8, 0) == _local_ms(2026, 6, 1, 8, 0)


@pytest.mark.usefixtures("berlin")
def test_next_run_is_tomorrow_at_or_after_the_time() -> None:
    tomorrow = _local_ms(2026, 6, 2, 8, 0)
    assert next_run_ms(_local_ms(2026, 6, 1, 8, 0), 8, 0) == tomorrow
    assert next_run_ms(_local_ms(2026, 6, 1, 23, 30), 8, 0) == tomorrow


@pytest.mark.usefixtures("berlin")
def test_next_run_keeps_local_time_across_daylight_saving() -> None:
    # The night the clocks go forward is an hour short; 08:00 stays 08:00.
    after = next_run_ms(_local_ms(2026, 3, 28, 9, 0), 8, 0)
    assert after == _local_ms(2026, 3, 29, 8, 0)
    assert after - _local_ms(2026, 3, 28, 8, 0) == 23 * HOUR_MS


def _line(number: str, kind: PaymentKind, amount: int, currency: str = "CNY") -> LedgerLine:
    payment = Payment(
        f"pm_{number}", f"o_{number}", kind, amount, "bank", f"ref-{number}", UserId("u_f"), 0
    )
    return LedgerLine(payment, number, currency)


def _due(number: str, total: int, paid: int, shipped_ms: int, approved: bool) -> Receivable:
    return Receivable(
        f"o_{number}",
        number,
        UserId("u_c"),
        "CNY",
        total,
        paid,
        shipped_ms,
        UserId("u_f") if approved else None,
        "shipped",
    )


def test_digest_totals_and_text_in_both_languages() -> None:
    day_ms = 24 * HOUR_MS
    ledger = [
        _line("SO-1", PaymentKind.PAYMENT, 10_000),
        _line("SO-2", PaymentKind.PAYMENT, 2_550),
        _line("SO-3", PaymentKind.REFUND, 500),
        _line("US-1", PaymentKind.PAYMENT, 700, "USD"),
    ]
    receivables = [_due("SO-9", 30_000, 10_000, 0, approved=True)]
    totals = currency_totals(ledger, receivables)
    assert totals == (
        CurrencyTotals("CNY", 12_550, 2, 500, 1, 20_000, 1),
        CurrencyTotals("USD", 700, 1, 0, 0, 0, 0),
    )
    zh = render_digest(date(2026, 6, 1), ledger, receivables, totals, 3 * day_ms, "zh-CN")
    en = render_digest(date(2026, 6, 1), ledger, receivables, totals, 3 * day_ms, "en")
    assert zh.splitlines()[0] == "财务日报 2026-06-01"
    assert "收款 2 笔，合计 ¥125.50" in zh
    assert "SO-9 应收 ¥200.00" in zh and "发货 3 天" in zh and "财务已批准发货" in zh
    assert en.splitlines()[0] == "Finance digest for 2026-06-01"
    assert "2 receipt(s), ¥125.50 in total" in en
    assert "1 refund(s), ¥5.00 in total" in en
    assert "1 receipt(s), $7.00 in total" in en
    assert "SO-3 refund ¥5.00 (bank, ref-SO-3)" in en
    assert "SO-9 due ¥200.00 (total ¥300.00, paid ¥100.00), shipped 3 day(s) ago" in en


def test_an_empty_digest_says_so() -> None:
    text = render_digest(date(2026, 6, 1), [], [], (), 0, "en")
    assert "No money received that day." in text
    assert "No shipped order is waiting for payment." in text


def test_a_long_digest_is_capped_but_its_totals_are_not() -> None:
    ledger = [_line(f"SO-{i}", PaymentKind.PAYMENT, 100) for i in range(120)]
    totals = currency_totals(ledger, [])
    text = render_digest(date(2026, 6, 1), ledger, [], totals, 0, "en")
    assert "120 receipt(s), ¥120.00 in total" in text
    assert "… and 70 more" in text
    assert "SO-49 " in text and "SO-50 " not in text
