"""Inbound order webhooks against a real server: signed deliveries create and move
orders; forged, stale, replayed or malformed ones get a 4xx and change nothing."""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from orderchat.core.signatures import sign
from tests.order_support import expect_error
from tests.support import ServerProcess, seed_skus

pytestmark = pytest.mark.timeout(60)

SECRET = "whsec_7f3a9c-test-secret"
PATH = "/api/webhooks/orders"
SKU = "WH-TEE"
_numbers = itertools.count(1)
Json = dict[str, Any]


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory, store: str) -> Iterator[ServerProcess]:
    """A server that accepts webhooks signed with SECRET."""
    proc = ServerProcess(
        tmp_path_factory.mktemp("webhooks"),
        ("--rate-limits", "off", "--webhook-secret", SECRET),
        store=store,
    )
    proc.start()
    proc.create_admin()
    seed_skus(proc, SKU, stock=1000)
    yield proc
    proc.stop()


def _number() -> str:
    return f"PF-{next(_numbers)}-{time.monotonic_ns() % 1_000_000}"


def _order(number: str, sku: str = SKU) -> Json:
    return {
        "number": number,
        "workflow": "retail",
        "customer": {"name": "Zhou Lan", "phone": "13700000000", "language": "zh-CN"},
        "items": [{"sku": sku, "name": "T-shirt", "quantity": 2, "unit_price_cents": 5900}],
        "address": {"name": "Zhou Lan", "city": "Suzhou", "line1": "8 Renmin Road"},
        "currency": "CNY",
    }


def _created(number: str, sku: str = SKU) -> bytes:
    return orjson.dumps({"event": "order.created", "order": _order(number, sku)})


def _status(number: str, to: str, **extra: object) -> bytes:
    return orjson.dumps({"event": "order.status", "number": number, "to": to, **extra})


def _signed(body: bytes, *, secret: str = SECRET, at: int | None = None) -> dict[str, str]:
    return {
        **sign(secret, int(time.time()) if at is None else at, body),
        "Content-Type": "application/json",
    }


def _post(server: ServerProcess, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(server.base_url + PATH, content=body, headers=headers, timeout=10)


def _deliver(server: ServerProcess, body: bytes) -> httpx.Response:
    return _post(server, body, _signed(body))


def _order_row(server: ServerProcess, number: str) -> tuple[Any, ...] | None:
    rows = server.db_rows(
        "SELECT id, status, created_by, total_cents FROM orders WHERE number = ?", number
    )
    return rows[0] if rows else None


@pytest.fixture(scope="module")
def placed(shop: ServerProcess) -> Json:
    """One order made by a webhook; it also makes sure the platform account exists."""
    number = _number()
    resp = _deliver(shop, _created(number))
    assert resp.status_code == 201, resp.text
    order: Json = resp.json()["order"]
    return order


# --- what a valid delivery does -------------------------------------------------------


def test_order_created_delivery_creates_the_order_as_the_platform_account(
    shop: ServerProcess,
) -> None:
    number = _number()
    resp = _deliver(shop, _created(number))
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["event"] == "order.created"
    order = body["order"]
    assert (order["number"], order["status"], order["total_cents"]) == (number, "placed", 11800)
    actor = shop.db_rows("SELECT id, roles, kind FROM users WHERE username = 'platform-webhook'")
    assert actor == [(actor[0][0], "customer_service", "staff")]
    assert _order_row(shop, number) == (order["id"], "placed", actor[0][0], 11800)
    assert shop.db_rows("SELECT count(*) FROM webhook_deliveries")[0][0] >= 1
    assert shop.admin is not None
    with shop.http(shop.admin.token) as client:
        seen = client.get(f"/api/orders/{order['id']}")
    assert seen.status_code == 200, seen.text
    assert seen.json()["number"] == number


def test_order_status_delivery_advances_the_order(shop: ServerProcess) -> None:
    number = _number()
    assert _deliver(shop, _created(number)).status_code == 201
    resp = _deliver(shop, _status(number, "confirmed", note="paid on the platform"))
    assert resp.status_code == 200, resp.text
    assert resp.json()["event"] == "order.status"
    assert resp.json()["order"]["status"] == "confirmed"
    row = _order_row(shop, number)
    assert row is not None and row[1] == "confirmed"
    cancelled = _deliver(shop, _status(number, "cancelled", note="buyer cancelled"))
    assert cancelled.status_code == 200, cancelled.text
    row = _order_row(shop, number)
    assert row is not None and row[1] == "cancelled"


def test_the_idempotency_key_header_plays_no_part_in_webhooks(shop: ServerProcess) -> None:
    number = _number()
    body = _created(number)
    resp = _post(shop, body, {**_signed(body), "Idempotency-Key": "k-1"})
    assert resp.status_code == 201, resp.text
    assert shop.db_rows("SELECT count(*) FROM idempotency_keys")[0][0] == 0


# --- refused deliveries change nothing ------------------------------------------------


def _refused(
    server: ServerProcess, body: bytes, headers: dict[str, str], status: int, code: str
) -> Json:
    before = server.db_snapshot()
    resp = _post(server, body, headers)
    error = expect_error(resp, status, code)
    assert server.db_snapshot() == before
    return error


def test_replayed_delivery_is_refused_with_409_and_changes_nothing(shop: ServerProcess) -> None:
    number = _number()
    body = _created(number)
    headers = _signed(body)
    assert _post(shop, body, headers).status_code == 201
    _refused(shop, body, headers, 409, "conflict")
    assert shop.db_rows("SELECT count(*) FROM orders WHERE number = ?", number) == [(1,)]


def test_replayed_status_delivery_does_not_move_the_order_twice(shop: ServerProcess) -> None:
    number = _number()
    assert _deliver(shop, _created(number)).status_code == 201
    body = _status(number, "confirmed")
    headers = _signed(body)
    assert _post(shop, body, headers).status_code == 200
    _refused(shop, body, headers, 409, "conflict")


def test_forged_signature_is_refused_with_401(shop: ServerProcess, placed: Json) -> None:
    body = _created(_number())
    headers = {**_signed(body), "X-OrderChat-Signature": "sha256=" + "ab" * 32}
    _refused(shop, body, headers, 401, "unauthorized")


def test_wrong_secret_is_refused_with_401(shop: ServerProcess, placed: Json) -> None:
    body = _created(_number())
    _refused(shop, body, _signed(body, secret="guessed-secret"), 401, "unauthorized")


def test_body_changed_after_signing_is_refused(shop: ServerProcess, placed: Json) -> None:
    body = _status(placed["number"], "confirmed")
    headers = _signed(body)
    _refused(shop, _status(placed["number"], "cancelled"), headers, 401, "unauthorized")


# Ten seconds past the 300 s window: a loaded machine may take seconds to deliver it.
@pytest.mark.parametrize("offset_s", [-310, -3600, 310])
def test_stale_or_future_timestamp_is_refused_even_when_signed(
    shop: ServerProcess, placed: Json, offset_s: int
) -> None:
    body = _created(_number())
    headers = _signed(body, at=int(time.time()) + offset_s)
    error = _refused(shop, body, headers, 401, "unauthorized")
    assert error["reason"] == "signatures.timestamp_more_than_s_from"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-OrderChat-Timestamp": "1700000000"},
        {"X-OrderChat-Signature": "sha256=" + "0" * 64},
        {"X-OrderChat-Timestamp": "yesterday", "X-OrderChat-Signature": "sha256=" + "0" * 64},
        {"X-OrderChat-Timestamp": "1700000000", "X-OrderChat-Signature": "md5=abc"},
    ],
)
def test_missing_or_malformed_signature_headers_are_refused(
    shop: ServerProcess, placed: Json, headers: dict[str, str]
) -> None:
    _refused(shop, _created(_number()), headers, 401, "unauthorized")


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[]",
        b'{"event": "order.deleted", "number": "X-1"}',
        b'{"event": "order.created"}',
        b'{"event": "order.created", "order": {"number": "X-2", "items": []}}',
        b'{"event": "order.created", "order": {}, "extra": 1}',
        b'{"event": "order.status", "number": "X-3"}',
        b'{"event": "order.status", "number": "X-4", "to": "confirmed", "surprise": true}',
    ],
)
def test_malformed_body_with_a_valid_signature_is_refused_with_400(
    shop: ServerProcess, placed: Json, body: bytes
) -> None:
    _refused(shop, body, _signed(body), 400, "bad_request")


def test_status_of_an_unknown_order_is_404(shop: ServerProcess, placed: Json) -> None:
    body = _status("NO-SUCH-ORDER", "confirmed")
    _refused(shop, body, _signed(body), 404, "not_found")


def test_transition_the_platform_may_not_make_is_403(shop: ServerProcess) -> None:
    number = _number()
    assert _deliver(shop, _created(number)).status_code == 201
    assert _deliver(shop, _status(number, "confirmed")).status_code == 200
    body = _status(number, "picking")  # the warehouse's step, not customer service's
    _refused(shop, body, _signed(body), 403, "forbidden")


def test_order_number_taken_is_409(shop: ServerProcess, placed: Json) -> None:
    body = _created(placed["number"])
    _refused(shop, body, _signed(body), 409, "conflict")


def test_refused_delivery_is_not_remembered_so_it_may_succeed_later(
    shop: ServerProcess, placed: Json
) -> None:
    number = _number()
    body = _created(number, sku="WH-LATER")
    headers = _signed(body)
    assert "WH-LATER" in _refused(shop, body, headers, 400, "bad_request")["message"]
    seed_skus(shop, "WH-LATER")
    resp = _post(shop, body, headers)
    assert resp.status_code == 201, resp.text
    assert _order_row(shop, number) is not None


def test_oversized_body_is_refused_with_413(shop: ServerProcess, placed: Json) -> None:
    body = b'{"event": "order.created", "order": {"note": "' + b"x" * (1024 * 1024) + b'"}}'
    _refused(shop, body, _signed(body), 413, "too_large")


# --- switched on by a secret only ----------------------------------------------------


def test_without_a_secret_the_endpoint_answers_404(server: ServerProcess) -> None:
    body = _created(_number())
    before = server.db_snapshot()
    resp = _post(server, body, _signed(body))
    expect_error(resp, 404, "not_found")
    assert server.db_snapshot() == before


def test_secret_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(os.environ, "ORDERCHAT_WEBHOOK_SECRET", "from-the-env")
    proc = ServerProcess(tmp_path, ("--rate-limits", "off"))
    proc.start()
    try:
        proc.create_admin()
        seed_skus(proc, SKU)
        body = _created(_number())
        assert _post(proc, body, _signed(body, secret="from-the-env")).status_code == 201
        expect_error(_post(proc, body, _signed(body, secret=SECRET)), 401, "unauthorized")
    finally:
        proc.stop()
