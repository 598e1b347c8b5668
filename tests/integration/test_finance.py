"""Money on a real server: payments, refunds, shipping approval, invoices, the digest.

Every refusal is checked the same way as bad chat input: the contract's error
body, and a snapshot of the real database file that is the same afterwards.
"""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import sys
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from orderchat.api.wiring import build_runtime
from orderchat.core.errors import BadRequest
from orderchat.settings import Settings
from tests.order_support import call, ok, step_photo, stock_sku
from tests.support import Account, Peer, ServerProcess

pytestmark = pytest.mark.timeout(120)

SKU = "FIN-TENT-2P"
PRICE_CENTS = 9_900
_numbers = itertools.count(1)


@dataclass(frozen=True)
class Staff:
    finance: Account
    sales: Account
    service: Account
    warehouse: Account
    logistics: Account


@pytest.fixture(scope="module")
def staff(server: ServerProcess) -> Staff:
    stock_sku(server, SKU, PRICE_CENTS)
    return Staff(
        finance=server.user("finance"),
        sales=server.user("sales"),
        service=server.user("customer_service"),
        warehouse=server.user("warehouse"),
        logistics=server.user("logistics"),
    )


def new_order(
    server: ServerProcess, staff: Staff, *, quantity: int = 2, language: str = "zh-CN"
) -> dict[str, Any]:
    """A retail order of `quantity` tents at ¥99.00 for a new customer."""
    number = f"FIN-{next(_numbers):04d}"
    body = {
        "number": number,
        "workflow": "retail",
        "customer": {"name": f"Customer {number}", "segment": "retail", "language": language},
        "items": [
            {"sku": SKU, "name": "Tent", "quantity": quantity, "unit_price_cents": PRICE_CENTS}
        ],
        "address": {"name": "Wang", "city": "Chengdu", "line1": "1 Road"},
        "currency": "CNY",
    }
    return ok(call(server, staff.sales.token, "POST", "/api/orders", body), 201)


def customer_token(server: ServerProcess, staff: Staff, order: dict[str, Any]) -> str:
    """The order's customer signs in through the invitation link."""
    invite = ok(
        call(server, staff.sales.token, "POST", f"/api/orders/{order['id']}/invitations"), 201
    )
    resp = httpx.post(
        f"{server.base_url}/api/auth/invitation",
        json={"token": invite["token"], "device": "phone"},
        timeout=10,
    )
    token: str = ok(resp)["token"]
    return token


def advance(server: ServerProcess, who: Account, order_id: str, to: str, **extra: str) -> Any:
    return call(server, who.token, "POST", f"/api/orders/{order_id}/status", {"to": to, **extra})


def pack(server: ServerProcess, staff: Staff, order: dict[str, Any]) -> None:
    steps = [
        (staff.service, "confirmed"),
        (staff.warehouse, "picking"),
        (staff.warehouse, "packed"),
    ]
    for who, to in steps:
        body: dict[str, Any] = {"to": to}
        if to == "packed":  # the workflow asks for the parcel's photo
            body["photos"] = [step_photo(server, who.token, order["conv"])]
        ok(call(server, who.token, "POST", f"/api/orders/{order['id']}/status", body))


def ship(server: ServerProcess, staff: Staff, order: dict[str, Any]) -> httpx.Response:
    resp: httpx.Response = advance(
        server, staff.warehouse, order["id"], "shipped", carrier="SF", tracking_no="SF123"
    )
    return resp


def pay(server: ServerProcess, who: Account, order_id: str, amount: int, ref: str) -> Any:
    body = {"amount_cents": amount, "method": "bank_transfer", "reference": ref}
    return call(server, who.token, "POST", f"/api/orders/{order_id}/payments", body)


def order_events(server: ServerProcess, conv: str) -> list[tuple[str, bool, dict[str, Any]]]:
    """(event, internal, meta) of every order event in the order's conversation."""
    rows = server.db_rows(
        "SELECT internal, meta FROM messages WHERE conv_id = ? AND kind = 'order_event'"
        " ORDER BY seq",
        conv,
    )
    return [(orjson.loads(m)["event"], bool(i), orjson.loads(m)) for i, m in rows]


def channel_texts(server: ServerProcess, role: str) -> list[tuple[str, dict[str, Any]]]:
    rows = server.db_rows(
        "SELECT m.text, m.meta FROM messages m JOIN conversations c ON c.id = m.conv_id"
        " WHERE c.role_channel = ? ORDER BY m.seq",
        role,
    )
    return [(text, orjson.loads(meta) if meta else {}) for text, meta in rows]


def seen_by_customer(server: ServerProcess, token: str, conv: str) -> list[str]:
    with server.http(token) as client:
        resp = client.get(f"/api/conversations/{conv}/messages", params={"limit": 200})
    return [(m.get("meta") or {}).get("event", "") for m in ok(resp)["messages"]]


def order_row(server: ServerProcess, order_id: str) -> tuple[Any, ...]:
    rows = server.db_rows(
        "SELECT paid_cents, payment_status, invoice_status, ship_approved_by FROM orders"
        " WHERE id = ?",
        order_id,
    )
    return rows[0]


def refused(
    server: ServerProcess,
    token: str,
    path: str,
    body: object,
    status: int,
    code: str,
    method: str = "POST",
) -> None:
    """The request gets the contract's error and the database is left as it was."""
    before = server.db_snapshot()
    resp = call(server, token, method, path, body)
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert error["code"] == code and error["message"]
    assert server.db_snapshot() == before


# --- payments and refunds -----------------------------------------------------------


def test_payment_updates_the_order_and_tells_finance_and_sales(
    server: ServerProcess, staff: Staff
) -> None:
    order = new_order(server, staff)
    assert order["total_cents"] == 2 * PRICE_CENTS
    customer = customer_token(server, staff, order)

    first = ok(pay(server, staff.finance, order["id"], 5_000, "BANK-001"), 201)
    assert first["payment"] | {"id": None, "ts": None} == {
        "id": None,
        "order": order["id"],
        "kind": "payment",
        "amount_cents": 5_000,
        "currency": "CNY",
        "method": "bank_transfer",
        "reference": "BANK-001",
        "by": staff.finance.id,
        "ts": None,
    }
    assert first["order"]["paid_cents"] == 5_000
    assert first["order"]["payment_status"] == "partial"
    assert order_row(server, order["id"])[:2] == (5_000, "partial")

    second = ok(pay(server, staff.finance, order["id"], 14_800, "BANK-002"), 201)
    assert second["order"]["payment_status"] == "paid"
    assert second["order"]["version"] > first["order"]["version"]
    assert server.db_rows(
        "SELECT kind, amount_cents, method, reference, by FROM payments WHERE order_id = ?"
        " ORDER BY ts, id",
        order["id"],
    ) == [
        ("payment", 5_000, "bank_transfer", "BANK-001", staff.finance.id),
        ("payment", 14_800, "bank_transfer", "BANK-002", staff.finance.id),
    ]

    events = [(e, internal) for e, internal, _ in order_events(server, order["conv"])]
    assert events.count(("payment_received", True)) == 2  # staff only
    _, _, meta = order_events(server, order["conv"])[-1]
    assert meta["details"]["amount"] == "¥148.00"
    assert meta["details"]["reference"] == "BANK-002"
    for role in ("finance", "sales"):
        assert any(
            meta.get("event") == "payment_received" and text.startswith(f"[{order['number']}]")
            for text, meta in channel_texts(server, role)
        ), role
    assert "payment_received" not in seen_by_customer(server, customer, order["conv"])

    listed = ok(call(server, customer, "GET", f"/api/orders/{order['id']}/payments"))
    assert [p["amount_cents"] for p in listed["payments"]] == [5_000, 14_800]
    assert listed["invoice"] is None


def test_refunds_are_bounded_by_what_was_paid(server: ServerProcess, staff: Staff) -> None:
    order = new_order(server, staff)
    customer = customer_token(server, staff, order)
    path = f"/api/orders/{order['id']}/refunds"
    refund = {"amount_cents": 1, "method": "bank_transfer", "reference": "R-0"}
    refused(server, staff.finance.token, path, refund, 409, "conflict")  # nothing paid yet

    ok(pay(server, staff.finance, order["id"], 19_800, "BANK-010"), 201)
    too_much = {**refund, "amount_cents": 19_801}
    refused(server, staff.finance.token, path, too_much, 409, "conflict")

    part = ok(call(server, staff.finance.token, "POST", path, {**refund, "amount_cents": 800}), 201)
    assert part["payment"]["kind"] == "refund"
    assert part["order"]["paid_cents"] == 19_000
    assert part["order"]["payment_status"] == "partial"
    refused(server, staff.finance.token, path, {**refund, "amount_cents": 19_001}, 409, "conflict")

    rest = ok(
        call(server, staff.finance.token, "POST", path, {**refund, "amount_cents": 19_000}), 201
    )
    assert rest["order"]["paid_cents"] == 0
    assert rest["order"]["payment_status"] == "refunded"
    assert order_row(server, order["id"])[:2] == (0, "refunded")
    assert seen_by_customer(server, customer, order["conv"]).count("refund_recorded") == 2


@dataclass(frozen=True)
class MoneyCase:
    name: str
    who: str  # an attribute of Staff, or "customer", or "admin"
    path: str  # after /api/orders/{id}
    body: object
    status: int
    code: str
    order: str = "open"  # "open", "cancelled" or "missing"


PAY = {"amount_cents": 100, "method": "cash", "reference": "x"}
REFUND = {"amount_cents": 1, "method": "cash", "reference": "x"}


def _pay(**changes: object) -> dict[str, object]:
    return {**PAY, **changes}


MONEY_CASES = [
    MoneyCase("warehouse_pays", "warehouse", "/payments", PAY, 403, "forbidden"),
    MoneyCase("sales_pays", "sales", "/payments", PAY, 403, "forbidden"),
    MoneyCase("customer_pays", "customer", "/payments", PAY, 403, "forbidden"),
    MoneyCase("warehouse_refunds", "warehouse", "/refunds", REFUND, 403, "forbidden"),
    MoneyCase("zero", "finance", "/payments", _pay(amount_cents=0), 400, "bad_request"),
    MoneyCase("negative", "finance", "/payments", _pay(amount_cents=-500), 400, "bad_request"),
    MoneyCase("negative_refund", "finance", "/refunds", _pay(amount_cents=-1), 400, "bad_request"),
    MoneyCase("as_text", "finance", "/payments", _pay(amount_cents="100"), 400, "bad_request"),
    MoneyCase("as_float", "finance", "/payments", _pay(amount_cents=99.5), 400, "bad_request"),
    MoneyCase("as_bool", "finance", "/payments", _pay(amount_cents=True), 400, "bad_request"),
    MoneyCase("too_large", "finance", "/payments", _pay(amount_cents=10**15), 400, "bad_request"),
    MoneyCase(
        "no_method",
        "finance",
        "/payments",
        {"amount_cents": 100, "reference": "x"},
        400,
        "bad_request",
    ),
    MoneyCase("blank_method", "finance", "/payments", _pay(method="  "), 400, "bad_request"),
    MoneyCase(
        "long_reference", "finance", "/payments", _pay(reference="r" * 129), 413, "too_large"
    ),
    MoneyCase("unknown_field", "finance", "/payments", _pay(paid=True), 400, "bad_request"),
    MoneyCase("not_an_object", "finance", "/payments", [100], 400, "bad_request"),
    MoneyCase("unknown_order", "finance", "/payments", PAY, 404, "not_found", order="missing"),
    MoneyCase("cancelled_order", "finance", "/payments", PAY, 409, "conflict", order="cancelled"),
    MoneyCase(
        "approve_cancelled", "finance", "/ship-approval", {}, 409, "conflict", order="cancelled"
    ),
    MoneyCase(
        "invoice_cancelled",
        "service",
        "/invoice",
        {"title": "ACME"},
        409,
        "conflict",
        order="cancelled",
    ),
    MoneyCase("warehouse_approves", "warehouse", "/ship-approval", {}, 403, "forbidden"),
    MoneyCase("customer_approves", "customer", "/ship-approval", {}, 403, "forbidden"),
    MoneyCase("warehouse_invoice", "warehouse", "/invoice", {"title": "ACME"}, 403, "forbidden"),
    MoneyCase("blank_invoice_title", "service", "/invoice", {"title": " "}, 400, "bad_request"),
    MoneyCase("issue_unrequested", "finance", "/invoice/issue", {"number": "I-1"}, 409, "conflict"),
    MoneyCase("sales_issues", "sales", "/invoice/issue", {"number": "I-1"}, 403, "forbidden"),
]


@dataclass(frozen=True)
class MoneyWorld:
    open: dict[str, Any]
    cancelled: dict[str, Any]
    customer: str  # the open order's customer


@pytest.fixture(scope="module")
def money_world(server: ServerProcess, staff: Staff) -> MoneyWorld:
    open_order = new_order(server, staff)
    cancelled = new_order(server, staff)
    ok(pay(server, staff.finance, cancelled["id"], 1_000, "BANK-C"), 201)
    ok(advance(server, staff.service, cancelled["id"], "cancelled", note="changed mind"))
    return MoneyWorld(open_order, cancelled, customer_token(server, staff, open_order))


@pytest.mark.parametrize("case", MONEY_CASES, ids=[c.name for c in MONEY_CASES])
def test_bad_money_requests_change_nothing(
    server: ServerProcess, staff: Staff, money_world: MoneyWorld, case: MoneyCase
) -> None:
    token = money_world.customer if case.who == "customer" else getattr(staff, case.who).token
    order_id = {
        "open": money_world.open["id"],
        "cancelled": money_world.cancelled["id"],
        "missing": "o_nothere",
    }[case.order]
    refused(server, token, f"/api/orders/{order_id}{case.path}", case.body, case.status, case.code)


def test_a_cancelled_order_can_still_be_refunded(
    server: ServerProcess, staff: Staff, money_world: MoneyWorld
) -> None:
    order = money_world.cancelled
    body = {"amount_cents": 1_000, "method": "bank_transfer", "reference": "R-C"}
    done = ok(
        call(server, staff.finance.token, "POST", f"/api/orders/{order['id']}/refunds", body), 201
    )
    assert done["order"]["payment_status"] == "refunded"


# --- shipping an unpaid order -------------------------------------------------------


def test_shipping_an_unpaid_order_needs_finance_approval(
    server: ServerProcess, staff: Staff
) -> None:
    order = new_order(server, staff)
    pack(server, staff, order)
    before = server.db_snapshot()
    blocked = ship(server, staff, order)
    assert blocked.status_code == 409, blocked.text
    assert blocked.json()["error"]["reason"] == "workflows.order_not_paid_finance_must"
    assert server.db_snapshot() == before

    path = f"/api/orders/{order['id']}/ship-approval"
    approved = ok(call(server, staff.finance.token, "POST", path, {"note": "trusted wholesaler"}))
    assert approved["ship_approved"] is True
    assert order_row(server, order["id"])[3] == staff.finance.id
    event, internal, meta = order_events(server, order["conv"])[-1]
    assert (event, internal) == ("ship_approved", True)
    assert meta["details"]["note"] == "trusted wholesaler"
    assert any(m.get("event") == "ship_approved" for _, m in channel_texts(server, "warehouse"))

    refused(server, staff.finance.token, path, {"note": "again"}, 409, "conflict")
    shipped = ok(ship(server, staff, order))
    assert shipped["status"] == "shipped"
    refused(server, staff.finance.token, path, {}, 409, "conflict")  # shipped already


async def _order_frames_on_resume(server: ServerProcess, token: str, cursor: str) -> list[Any]:
    """The `order` events a device resuming from `cursor` is sent, up to `synced`."""
    peer = await Peer.open(server, token, cursor=cursor)
    try:
        frames = []
        while (frame := await peer.recv()).get("op") != "synced":
            frames.append(frame)
    finally:
        await peer.close()
    return [f["order"] for f in frames if f.get("op") == "order"]


async def test_the_customer_never_learns_of_the_ship_approval(
    server: ServerProcess, staff: Staff
) -> None:
    order = new_order(server, staff)
    customer = customer_token(server, staff, order)
    watcher = await Peer.open(server, customer)
    cursor = watcher.welcome["cursor"]
    path = f"/api/orders/{order['id']}/ship-approval"
    try:
        ok(call(server, staff.finance.token, "POST", path, {"note": "trusted"}))
        live = await watcher.recv_op("order")
    finally:
        await watcher.close()

    assert "ship_approved" not in live["order"] and live["order"]["id"] == order["id"]
    replayed = await _order_frames_on_resume(server, customer, cursor)
    assert replayed and all("ship_approved" not in o for o in replayed)
    seen = ok(call(server, customer, "GET", f"/api/orders/{order['id']}"))
    assert "ship_approved" not in seen and seen["number"] == order["number"]
    listed = ok(call(server, customer, "GET", "/api/orders"))["orders"]
    assert [o["id"] for o in listed] == [order["id"]] and "ship_approved" not in listed[0]
    # Staff see it everywhere, on resume as well.
    staff_replay = await _order_frames_on_resume(server, staff.sales.token, cursor)
    assert staff_replay[-1]["ship_approved"] is True
    assert ok(call(server, staff.sales.token, "GET", f"/api/orders/{order['id']}"))["ship_approved"]


def test_a_paid_order_needs_no_approval(server: ServerProcess, staff: Staff) -> None:
    order = new_order(server, staff, quantity=1)
    ok(pay(server, staff.finance, order["id"], PRICE_CENTS, "BANK-P"), 201)
    path = f"/api/orders/{order['id']}/ship-approval"
    refused(server, staff.finance.token, path, {"note": ""}, 409, "conflict")
    pack(server, staff, order)
    assert ok(ship(server, staff, order))["status"] == "shipped"


# --- invoices ------------------------------------------------------------------------------


def test_invoice_requested_by_the_customer_and_issued_by_finance(
    server: ServerProcess, staff: Staff
) -> None:
    order = new_order(server, staff, language="en")
    other = new_order(server, staff)
    customer = customer_token(server, staff, order)
    stranger = customer_token(server, staff, other)
    path = f"/api/orders/{order['id']}/invoice"

    refused(server, stranger, path, {"title": "Not mine"}, 403, "forbidden")
    requested = ok(
        call(server, customer, "POST", path, {"title": "ACME Ltd", "tax_id": "91310000X"}), 201
    )
    assert requested["invoice"]["status"] == "requested"
    assert requested["invoice"]["requested_by"] == requested["order"]["customer"]
    assert requested["order"]["invoice_status"] == "requested"
    assert any(
        m.get("event") == "invoice_requested" and "ACME Ltd" in text
        for text, m in channel_texts(server, "finance")
    )
    refused(server, staff.service.token, path, {"title": "Again"}, 409, "conflict")

    issue = f"{path}/issue"
    refused(server, staff.sales.token, issue, {"number": "INV-9"}, 403, "forbidden")
    refused(server, staff.finance.token, issue, {"number": ""}, 400, "bad_request")
    issued = ok(call(server, staff.finance.token, "POST", issue, {"number": "INV-2026-0001"}))
    assert issued["invoice"]["number"] == "INV-2026-0001"
    assert issued["invoice"]["issued_by"] == staff.finance.id
    assert issued["order"]["invoice_status"] == "issued"
    assert server.db_rows(
        "SELECT status, title, tax_id, number, issued_by FROM invoices WHERE order_id = ?",
        order["id"],
    ) == [("issued", "ACME Ltd", "91310000X", "INV-2026-0001", staff.finance.id)]
    assert order_row(server, order["id"])[2] == "issued"
    assert "invoice_issued" in seen_by_customer(server, customer, order["conv"])
    refused(server, staff.finance.token, issue, {"number": "INV-X"}, 409, "conflict")
    listed = ok(call(server, customer, "GET", f"/api/orders/{order['id']}/payments"))
    assert listed["invoice"]["status"] == "issued"
    denied = call(server, stranger, "GET", f"/api/orders/{order['id']}/payments")
    assert denied.status_code == 403


# --- the digest ----------------------------------------------------------------------------


def _day_of(payment: dict[str, Any]) -> str:
    """The local day the server booked the payment on (safe across midnight)."""
    return date.fromtimestamp(payment["ts"] / 1000).isoformat()


def test_digest_lists_receipts_and_shipped_unpaid_orders(
    server: ServerProcess, staff: Staff
) -> None:
    paid = new_order(server, staff, quantity=1)
    receipt = ok(pay(server, staff.finance, paid["id"], 4_321, "DIGEST-1"), 201)["payment"]
    owing = new_order(server, staff, quantity=3)
    ok(pay(server, staff.finance, owing["id"], 700, "DIGEST-2"), 201)
    pack(server, staff, owing)
    ok(call(server, staff.finance.token, "POST", f"/api/orders/{owing['id']}/ship-approval", {}))
    ok(ship(server, staff, owing))

    day = _day_of(receipt)
    digest = ok(call(server, staff.finance.token, "GET", f"/api/finance/digest?date={day}"))
    assert digest["date"] == day
    assert receipt["id"] in [r["id"] for r in digest["receipts"]]
    line = next(r for r in digest["receipts"] if r["id"] == receipt["id"])
    assert (line["number"], line["amount_cents"], line["reference"]) == (
        paid["number"],
        4_321,
        "DIGEST-1",
    )
    due = next(r for r in digest["receivables"] if r["order"] == owing["id"])
    assert due["due_cents"] == 3 * PRICE_CENTS - 700
    assert due["age_days"] == 0 and due["ship_approved"] is True
    assert paid["id"] not in [r["order"] for r in digest["receivables"]]
    (cny,) = digest["totals"]
    assert cny["currency"] == "CNY"
    assert cny["received_cents"] == sum(
        r["amount_cents"] for r in digest["receipts"] if r["kind"] == "payment"
    )
    assert cny["receivable_cents"] == sum(r["due_cents"] for r in digest["receivables"])
    assert owing["number"] in digest["text"]["zh-CN"]
    assert f"{owing['number']} due ¥290.00" in digest["text"]["en"]

    before = date.today() - timedelta(days=1)
    yesterday = ok(call(server, staff.finance.token, "GET", "/api/finance/digest"))
    assert yesterday["date"] in {before.isoformat(), (date.today() - timedelta(days=1)).isoformat()}
    assert receipt["id"] not in [r["id"] for r in yesterday["receipts"]]


@pytest.mark.parametrize("bad", ["2026-13-01", "2026-02-30", "yesterday", "20260101", ""])
def test_digest_refuses_a_bad_date(server: ServerProcess, staff: Staff, bad: str) -> None:
    path = f"/api/finance/digest?date={bad}"
    refused(server, staff.finance.token, path, None, 400, "bad_request", method="GET")


@pytest.mark.parametrize("who", ["warehouse", "sales"])
def test_digest_is_for_finance(server: ServerProcess, staff: Staff, who: str) -> None:
    token = getattr(staff, who).token
    refused(server, token, "/api/finance/digest", None, 403, "forbidden", method="GET")


def _digest_cli(*args: str) -> subprocess.CompletedProcess[str]:
    code = "import sys; from orderchat.digest_cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60
    )


def test_digest_command_prints_and_posts_to_finance(
    server: ServerProcess, staff: Staff, tmp_path: Path
) -> None:
    order = new_order(server, staff, quantity=1)
    day = _day_of(ok(pay(server, staff.finance, order["id"], 1_234, "CLI-1"), 201)["payment"])
    # The digest takes one or the other: a data dir (its SQLite file) or a database URL.
    where = server.database_args or ("--data-dir", str(server.data_dir))

    printed = _digest_cli("--date", day, *where, "--lang", "en")
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.startswith(f"Finance digest for {day}")
    assert f"{order['number']} ¥12.34 (bank_transfer, CLI-1)" in printed.stdout

    as_json = _digest_cli("--date", day, *where, "--json")
    assert as_json.returncode == 0, as_json.stderr
    assert "CLI-1" in [r["reference"] for r in orjson.loads(as_json.stdout)["receipts"]]

    before = len(channel_texts(server, "finance"))
    posted = _digest_cli("--date", day, *where, "--post")
    assert posted.returncode == 0, posted.stderr
    assert posted.stdout.startswith(f"财务日报 {day}")
    text, meta = channel_texts(server, "finance")[-1]
    assert len(channel_texts(server, "finance")) == before + 1
    assert meta["event"] == "finance_digest" and meta["date"] == day
    assert text == posted.stdout.rstrip("\n")
    # The server keeps serving the channel the command wrote to.
    history = call(server, staff.finance.token, "GET", "/api/conversations")
    assert ok(history)["conversations"]

    bad = _digest_cli("--date", "2026-02-30", *where)
    assert bad.returncode == 2 and "YYYY-MM-DD" in bad.stderr
    missing = _digest_cli("--data-dir", str(tmp_path / "nothing-here"))
    assert missing.returncode == 2 and "no database" in missing.stderr


# --- the scheduler ---------------------------------------------------------------------------


class _SteppedClock:
    """Wall time that jumps to where the test says and then runs at real speed."""

    def __init__(self) -> None:
        self._offset_ms = 0

    def jump_to(self, ms: int) -> None:
        self._offset_ms = ms - int(datetime.now().timestamp() * 1000)

    def now_ms(self) -> int:
        return int(datetime.now().timestamp() * 1000) + self._offset_ms

    def monotonic_s(self) -> float:
        return asyncio.get_running_loop().time()


async def test_scheduler_posts_the_digest_at_the_configured_time(
    tmp_path: Path, store: str
) -> None:
    clock = _SteppedClock()
    database = ServerProcess(tmp_path, store=store)  # never started: its database alone
    runtime = build_runtime(Settings(data_dir=tmp_path, database_url=database.db_url), clock)
    await runtime.db.migrate()
    runtime.writer.start()
    stop = asyncio.Event()
    due = datetime(2026, 6, 2, 8, 0).astimezone()
    clock.jump_to(int(due.timestamp() * 1000) - 1_000)  # a second before 08:00
    task = asyncio.create_task(runtime.finance.run_daily_digest("08:00", stop))
    try:
        async with asyncio.timeout(10):
            while runtime.writer.ops == 0:  # noqa: ASYNC110 - the writer has nothing to await
                await asyncio.sleep(0.05)
        stop.set()
        async with asyncio.timeout(5):
            await task  # ends on `stop` while waiting for the next day
    finally:
        task.cancel()
        await runtime.writer.stop()
        await runtime.db.close()
    assert runtime.writer.ops == 1  # posted once, not again on the same morning
    rows = database.db_rows(
        "SELECT m.kind, m.sender_id, m.meta FROM messages m"
        " JOIN conversations c ON c.id = m.conv_id WHERE c.role_channel = 'finance'",
    )
    ((kind, sender, meta),) = rows
    assert (kind, sender) == ("system", "system")
    assert orjson.loads(meta)["date"] == "2026-06-01"


async def test_scheduler_stops_when_cancelled_and_refuses_a_bad_time(tmp_path: Path) -> None:
    runtime = build_runtime(Settings(data_dir=tmp_path))
    with pytest.raises(BadRequest):
        await runtime.finance.run_daily_digest("25:00", asyncio.Event())
    task = asyncio.create_task(runtime.finance.run_daily_digest("08:00", asyncio.Event()))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await runtime.db.close()
