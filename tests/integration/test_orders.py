"""Orders over HTTP against a real server: create, list, read, update; who may do what
(the permission matrix, role by action); what a customer can and cannot see; and
the invitation links customers sign in with.

Every refused request is checked twice: the contract's error body, and the
database file read back unchanged.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest

from orderchat.core.model import Role
from orderchat.core.permissions import CUSTOMER_ACTIONS, MATRIX, Action
from tests.order_support import (
    SKU,
    SKU_OTHER,
    STAFF_ROLES,
    Customer,
    Json,
    Shop,
    assert_unchanged,
    expect_error,
    load_workflow,
    parallel,
)
from tests.support import Frame, PeerPool, seed_skus

pytestmark = pytest.mark.timeout(120)

ADDRESS = {"name": "Zhou Li", "city": "Chengdu", "line1": "8 Renmin Road", "phone": "13700000000"}


@pytest.fixture(scope="module")
def shop(order_shop: Shop) -> Shop:
    seed_skus(order_shop.server, "RETIRED-SKU")
    order_shop.server.db_execute("UPDATE skus SET active = FALSE WHERE sku = 'RETIRED-SKU'")
    return order_shop


# --- creating --------------------------------------------------------------------------


def test_create_stores_the_order_its_customer_and_its_conversation(shop: Shop) -> None:
    body = shop.order_body("retail", language="en", note="please gift wrap")
    body["items"].append(
        {"sku": SKU_OTHER, "name": "Backpack", "quantity": 1, "unit_price_cents": 25900}
    )
    resp = shop.call("customer_service", "POST", "/api/orders", body)
    assert resp.status_code == 201, resp.text
    order = resp.json()
    assert order["number"] == body["number"]
    assert order["workflow"] == "retail"
    assert order["status"] == "placed"
    assert order["next"] == ["confirmed", "cancelled"]
    assert order["payment_status"] == "unpaid"
    assert order["invoice_status"] == "none"
    assert order["total_cents"] == 2 * 9900 + 25900
    assert order["paid_cents"] == 0
    assert order["note"] == "please gift wrap"
    assert order["address"] == body["address"]
    assert [(i["sku"], i["quantity"]) for i in order["items"]] == [(SKU, 2), (SKU_OTHER, 1)]
    assert order["version"] == 1
    assert order["sample_round"] == 0

    rows = shop.server.db_rows(
        "SELECT number, customer_id, conv_id, workflow, status, total_cents, currency"
        " FROM orders WHERE id = ?",
        order["id"],
    )
    assert rows == [
        (body["number"], order["customer"], order["conv"], "retail", "placed", 45700, "CNY")
    ]
    items = shop.server.db_rows(
        "SELECT line, sku, quantity, unit_price_cents FROM order_items WHERE order_id = ?"
        " ORDER BY line",
        order["id"],
    )
    assert [(s, q, p) for _, s, q, p in items] == [(SKU, 2, 9900), (SKU_OTHER, 1, 25900)]
    customer = shop.server.db_rows(
        "SELECT c.name, c.language, c.segment, u.kind FROM customers c"
        " JOIN users u ON u.id = c.user_id WHERE c.user_id = ?",
        order["customer"],
    )
    assert customer == [(body["customer"]["name"], "en", "retail", "customer")]

    # The order's conversation: the customer, and the staff of the workflow's roles only.
    conv = shop.server.db_rows("SELECT kind FROM conversations WHERE id = ?", order["conv"])
    assert conv == [("order",)]
    members = {
        r[0]
        for r in shop.server.db_rows(
            "SELECT user_id FROM members WHERE conv_id = ? AND left_pos IS NULL", order["conv"]
        )
    }
    workflow = load_workflow("retail")
    for role, account in shop.staff.items():
        inside = role == "admin" or Role(role) in workflow.staff_roles
        assert (account.id in members) is inside, role
    assert order["customer"] in members

    first = shop.messages_in(order["conv"])[0]
    assert first["kind"] == "order_event"
    assert first["meta"]["event"] == "order_created"
    assert not first["internal"]
    assert first["text"] == f"Order {order['number']} was created: 3 item(s), ¥457.00 in total."


def test_an_existing_customer_places_another_order(shop: Shop) -> None:
    first = shop.create_order("retail", language="zh-CN")
    second = shop.create_order("oem", customer_id=first["customer"])
    assert second["customer"] == first["customer"]
    assert second["conv"] != first["conv"]
    assert second["status"] == "inquiry"
    message = shop.messages_in(second["conv"])[0]
    assert message["text"].startswith(f"订单 {second['number']} 已创建"), message
    customer = shop.customer(second)
    listed = shop.call(customer, "GET", "/api/orders").json()["orders"]
    assert {o["id"] for o in listed} == {first["id"], second["id"]}


def _bad_order_bodies(shop: Shop) -> list[tuple[str, object, int]]:
    def body(**changes: object) -> Json:
        found = shop.order_body("retail")
        found.update(changes)
        return found

    def item(**changes: object) -> Json:
        line: Json = {"sku": SKU, "name": "Tee", "quantity": 1, "unit_price_cents": 9900}
        line.update(changes)
        return body(items=[line])

    customer = shop.order_body("retail")["customer"]
    return [
        ("negative quantity", item(quantity=-2), 400),
        ("zero quantity", item(quantity=0), 400),
        ("fractional quantity", item(quantity=1.5), 400),
        ("quantity as text", item(quantity="2"), 400),
        ("quantity as boolean", item(quantity=True), 400),
        ("unknown SKU", item(sku="NO-SUCH-SKU"), 400),
        ("inactive SKU", item(sku="RETIRED-SKU"), 400),
        ("negative price", item(unit_price_cents=-1), 400),
        ("price as a float", item(unit_price_cents=99.5), 400),
        ("no items", body(items=[]), 400),
        ("items not a list", body(items={"sku": SKU}), 400),
        ("an item not an object", body(items=["TEE"]), 400),
        ("unknown order field", body(discount=5), 400),
        ("unknown customer field", body(customer={**customer, "vip": True}), 400),
        ("unknown language", body(customer={**customer, "language": "fr"}), 400),
        ("unknown segment", body(customer={**customer, "segment": "vip"}), 400),
        ("empty customer name", body(customer={**customer, "name": " "}), 400),
        ("customer and customer_id", body(customer_id=shop.staff["sales"].id), 400),
        ("neither customer nor customer_id", {**body(), "customer": None}, 400),
        ("unknown currency", body(currency="XYZ"), 400),
        ("number with spaces", body(number="A 1"), 400),
        ("no number", {k: v for k, v in body().items() if k != "number"}, 400),
        ("unknown address field", body(address={"planet": "Mars"}), 400),
        ("negative eta", body(eta_ts=-1), 400),
        ("an eta past any date", body(eta_ts=2**64), 400),
        ("a list, not an object", [body()], 400),
        ("a string, not an object", "order", 400),
    ]


def test_bad_orders_get_400_and_change_nothing(shop: Shop) -> None:
    cases = _bad_order_bodies(shop)
    before = shop.server.db_snapshot()
    wrong = []
    for label, body, status in cases:
        resp = shop.call("customer_service", "POST", "/api/orders", body)
        if resp.status_code != status:
            wrong.append(f"{label}: {resp.status_code} {resp.text}")
        else:
            expect_error(resp, status, "bad_request")
    resp = shop.client("customer_service").post("/api/orders", content=b"{oops")
    expect_error(resp, 400, "bad_request")
    long_note = shop.order_body("retail")
    long_note["note"] = "n" * 2001
    expect_error(shop.call("customer_service", "POST", "/api/orders", long_note), {400, 413})
    assert not wrong, "\n".join(wrong)
    assert_unchanged(before, shop.server.db_snapshot())


def test_a_duplicate_number_is_a_conflict(shop: Shop) -> None:
    order = shop.create_order("retail")
    before = shop.server.db_snapshot()
    body = shop.order_body("retail", number=order["number"])
    expect_error(shop.call("sales", "POST", "/api/orders", body), 409, "conflict")
    assert_unchanged(before, shop.server.db_snapshot())


def test_unknown_references_in_the_body_are_bad_requests(shop: Shop) -> None:
    """A workflow or customer named in the body that does not exist is bad input (400),
    like an unknown SKU; the URL named nothing missing, so 404 would mislead."""
    before = shop.server.db_snapshot()
    body = shop.order_body("retail")
    body["workflow"] = "no_such_workflow"
    expect_error(shop.call("sales", "POST", "/api/orders", body), 400, "bad_request")
    body = shop.order_body("retail", customer_id="u_nosuchcustomer000000")
    expect_error(shop.call("sales", "POST", "/api/orders", body), 400, "bad_request")
    body = shop.order_body("retail", customer_id=shop.staff["warehouse"].id)
    expect_error(shop.call("sales", "POST", "/api/orders", body), 400, "bad_request")
    assert_unchanged(before, shop.server.db_snapshot())


# --- the permission matrix ----------------------------------------------------------------


@dataclass(frozen=True)
class Subject:
    """One order the matrix acts on, and the issue or confirmation item the action needs."""

    order: Json
    ref: str | None = None


def _address_issue(shop: Shop, order: Json) -> str:
    resp = shop.call(
        "logistics",
        "POST",
        f"/api/orders/{order['id']}/issues",
        {"kind": "address_change_requested", "address": ADDRESS},
    )
    assert resp.status_code == 201, resp.text
    issue: str = resp.json()["id"]
    return issue


def _defect_issue(shop: Shop, order: Json) -> str:
    resp = shop.call(
        "qc",
        "POST",
        f"/api/orders/{order['id']}/issues",
        {"kind": "defect_found", "description": "a torn seam"},
    )
    assert resp.status_code == 201, resp.text
    issue: str = resp.json()["id"]
    return issue


_codes = itertools.count(1)


def _fresh(shop: Shop) -> Subject:
    return Subject(shop.create_order("retail"))


def _paid(shop: Shop) -> Subject:
    order = shop.create_order("retail")
    shop.record_payment(order["id"])
    return Subject(order)


def _invoice_requested(shop: Shop) -> Subject:
    order = shop.create_order("retail")
    resp = shop.call(
        "customer_service", "POST", f"/api/orders/{order['id']}/invoice", {"title": "Acme Ltd"}
    )
    assert resp.status_code == 201, resp.text
    return Subject(order)


def _with_item(shop: Shop) -> Subject:
    order = shop.create_order("oem")
    return Subject(order, shop.add_confirmation(order["id"]))


def _with_proposal(shop: Shop) -> Subject:
    subject = _with_item(shop)
    resp = shop.call(
        "sales", "POST", f"/api/confirmations/{subject.ref}/versions", {"text": "Cotton 220g"}
    )
    assert resp.status_code == 201, resp.text
    return subject


def _money(amount: int) -> Json:
    return {"amount_cents": amount, "method": "bank_transfer", "reference": "M-1"}


# How each action of the matrix is reached over HTTP: a subject made for it, and the call.
Setup = Callable[[Shop], Subject]
Call = Callable[[Shop, "str | Customer", Subject], httpx.Response]
ACTIONS: dict[Action, tuple[Setup, Call]] = {
    Action.CREATE_ORDER: (
        _fresh,
        lambda shop, who, s: shop.call(
            who, "POST", "/api/orders", shop.order_body("retail", customer_id=s.order["customer"])
        ),
    ),
    Action.UPDATE_ORDER: (
        _fresh,
        lambda shop, who, s: shop.call(
            who, "PATCH", f"/api/orders/{s.order['id']}", {"eta_ts": 1_900_000_000_000}
        ),
    ),
    Action.INVITE_CUSTOMER: (
        _fresh,
        lambda shop, who, s: shop.call(who, "POST", f"/api/orders/{s.order['id']}/invitations"),
    ),
    Action.CHANGE_ADDRESS: (
        _fresh,
        lambda shop, who, s: shop.call(
            who, "POST", f"/api/orders/{s.order['id']}/address", {"address": ADDRESS}
        ),
    ),
    Action.SETTLE_INTERCEPTION: (
        lambda shop: _shipped_with_address_issue(shop),
        lambda shop, who, s: shop.call(
            who,
            "POST",
            f"/api/orders/{s.order['id']}/issues/{s.ref}/settle",
            {"outcome": "intercepted", "note": "held at the hub"},
        ),
    ),
    Action.CHOOSE_DEFECT_REMEDY: (
        lambda shop: _with_defect(shop),
        lambda shop, who, s: shop.call(
            who,
            "POST",
            f"/api/orders/{s.order['id']}/issues/{s.ref}/settle",
            {"outcome": "exchange"},
        ),
    ),
    Action.MANAGE_CATALOGUE: (
        _fresh,
        lambda shop, who, s: shop.call(
            who,
            "POST",
            "/api/skus",
            {
                "sku": f"MATRIX-{next(_codes)}",
                "name_zh": "帐篷",
                "name_en": "Tent",
                "category": "tents",
                "unit_price_cents": 59900,
                "low_stock_threshold": 2,
            },
        ),
    ),
    Action.MOVE_STOCK: (
        _fresh,
        lambda shop, who, s: shop.call(
            who,
            "POST",
            "/api/stock/movements",
            {
                "sku": SKU,
                "kind": "purchase_in",
                "to_location": "main",
                "quantity": 1,
                "reason": "supplier delivery",
            },
        ),
    ),
    Action.VIEW_STOCK: (
        _fresh,
        lambda shop, who, s: shop.call(who, "GET", f"/api/stock?sku={SKU}"),
    ),
    Action.RECORD_PAYMENT: (
        _fresh,
        lambda shop, who, s: shop.call(
            who, "POST", f"/api/orders/{s.order['id']}/payments", _money(100)
        ),
    ),
    Action.RECORD_REFUND: (
        _paid,
        lambda shop, who, s: shop.call(
            who, "POST", f"/api/orders/{s.order['id']}/refunds", _money(100)
        ),
    ),
    Action.APPROVE_SHIPPING: (
        _fresh,
        lambda shop, who, s: shop.call(
            who, "POST", f"/api/orders/{s.order['id']}/ship-approval", {"note": "ok"}
        ),
    ),
    Action.REQUEST_INVOICE: (
        _fresh,
        lambda shop, who, s: shop.call(
            who, "POST", f"/api/orders/{s.order['id']}/invoice", {"title": "Acme Ltd"}
        ),
    ),
    Action.ISSUE_INVOICE: (
        _invoice_requested,
        lambda shop, who, s: shop.call(
            who, "POST", f"/api/orders/{s.order['id']}/invoice/issue", {"number": "INV-9"}
        ),
    ),
    Action.READ_DIGEST: (
        _fresh,
        lambda shop, who, s: shop.call(who, "GET", "/api/finance/digest"),
    ),
    Action.MANAGE_CONFIRMATIONS: (
        lambda shop: Subject(shop.create_order("oem")),
        lambda shop, who, s: shop.call(
            who,
            "POST",
            f"/api/orders/{s.order['id']}/confirmations",
            {"kind": "colour", "title": "Body colour", "required": True},
        ),
    ),
    Action.PROPOSE_VERSION: (
        _with_item,
        lambda shop, who, s: shop.call(
            who, "POST", f"/api/confirmations/{s.ref}/versions", {"text": "Navy blue"}
        ),
    ),
    Action.DECIDE_VERSION: (
        _with_proposal,
        lambda shop, who, s: shop.call(
            who,
            "POST",
            f"/api/confirmations/{s.ref}/versions/1/decision",
            {"decision": "approved", "comment": "looks right"},
        ),
    ),
}


def test_the_matrix_test_covers_every_action() -> None:
    assert set(ACTIONS) == set(Action) == set(MATRIX)


def _shipped_with_address_issue(shop: Shop) -> Subject:
    order = shop.order_at("retail", "shipped")
    return Subject(order, _address_issue(shop, order))


def _with_defect(shop: Shop) -> Subject:
    order = shop.create_order("retail")
    return Subject(order, _defect_issue(shop, order))


def _allowed(action: Action, role: str) -> bool:
    return role == "admin" or Role(role) in MATRIX[action]


@pytest.mark.parametrize("action", list(ACTIONS), ids=lambda a: a.value)
def test_permission_matrix(shop: Shop, action: Action) -> None:
    """Every staff role and the admin against one action: MATRIX decides, and a refusal
    is a 403 that changes nothing. The order's own customer may do only what
    CUSTOMER_ACTIONS lists; another customer, nothing on this order."""
    setup, call = ACTIONS[action]
    roles = [*STAFF_ROLES, "admin"]
    allowed = [r for r in roles if _allowed(action, r)]
    refused = [r for r in roles if not _allowed(action, r)]
    assert allowed, f"no role may {action.value}"

    subject = setup(shop)
    own = shop.customer(subject.order)
    stranger = shop.customer(shop.create_order("retail"))
    before = shop.server.db_snapshot()
    for role in refused:
        error = expect_error(call(shop, role, subject), 403, "forbidden")
        assert error["message"], role
    expect_error(call(shop, stranger, subject), {403, 404})
    if action not in CUSTOMER_ACTIONS:
        expect_error(call(shop, own, subject), 403, "forbidden")
    assert_unchanged(before, shop.server.db_snapshot())

    subjects = [subject, *parallel(lambda _: setup(shop), allowed[1:])]
    for role, target in zip(allowed, subjects, strict=True):
        resp = call(shop, role, target)
        assert resp.status_code in (200, 201), f"{role}: {resp.text}"
    if action in CUSTOMER_ACTIONS:
        target = setup(shop)
        customer = shop.customer(target.order)
        resp = call(shop, customer, target)
        assert resp.status_code in (200, 201), f"the order's customer: {resp.text}"


def test_customers_act_on_no_one_elses_order(shop: Shop) -> None:
    mine = shop.create_order("retail")
    theirs = shop.order_at("retail", "shipped")
    me = shop.customer(mine)
    issue = _defect_issue(shop, theirs)
    address_issue = _address_issue(shop, theirs)
    oid = theirs["id"]
    calls: list[tuple[str, str, object]] = [
        ("GET", f"/api/orders/{oid}", None),
        ("PATCH", f"/api/orders/{oid}", {"note": "mine now"}),
        ("POST", f"/api/orders/{oid}/status", {"to": "in_transit"}),
        ("POST", f"/api/orders/{oid}/issues", {"kind": "delay_notice", "reason": "x"}),
        ("POST", f"/api/orders/{oid}/issues/{issue}/settle", {"outcome": "refund"}),
        ("POST", f"/api/orders/{oid}/issues/{address_issue}/settle", {"outcome": "intercepted"}),
        ("POST", f"/api/orders/{oid}/address", {"address": ADDRESS}),
        ("POST", f"/api/orders/{oid}/invitations", {}),
        ("GET", f"/api/customers/{theirs['customer']}", None),
        ("GET", f"/api/conversations/{theirs['conv']}", None),
        ("GET", f"/api/conversations/{theirs['conv']}/messages", None),
    ]
    before = shop.server.db_snapshot()
    for method, path, body in calls:
        resp = shop.call(me, method, path, body)
        expect_error(resp, {403, 404})
        assert theirs["number"] not in resp.text, f"{method} {path} leaked: {resp.text}"
    assert_unchanged(before, shop.server.db_snapshot())
    assert shop.call(me, "GET", f"/api/customers/{mine['customer']}").status_code == 200


# --- reading and updating ------------------------------------------------------------------


def test_list_and_get_orders(shop: Shop) -> None:
    retail = shop.order_at("retail", "confirmed")
    oem = shop.create_order("oem")
    other = shop.create_order("retail", customer_id=retail["customer"])

    def listed(who: str | Customer, query: str = "") -> set[str]:
        resp = shop.call(who, "GET", f"/api/orders{query}")
        assert resp.status_code == 200, resp.text
        return {o["id"] for o in resp.json()["orders"]}

    assert {retail["id"], oem["id"], other["id"]} <= listed("warehouse")
    confirmed = listed("sales", "?status=confirmed")
    assert retail["id"] in confirmed and other["id"] not in confirmed
    oems = listed("sales", "?workflow=oem")
    assert oem["id"] in oems and retail["id"] not in oems
    assert listed("sales", "?status=no_such_status") == set()

    customer = shop.customer(retail)
    assert listed(customer) == {retail["id"], other["id"]}
    stranger = shop.customer(oem)
    assert listed(stranger) == {oem["id"]}

    view = shop.get_order(retail["id"], "finance")
    assert view["status"] == "confirmed" and view["id"] == retail["id"]
    assert shop.get_order(retail["id"], customer)["status"] == "confirmed"
    expect_error(shop.call("sales", "GET", "/api/orders/o_nosuchorder000000000"), 404)
    for query in ("?limit=0", "?limit=501", "?limit=many"):
        expect_error(shop.call("sales", "GET", f"/api/orders{query}"), 400, "bad_request")


def test_issues_show_to_staff_only(shop: Shop) -> None:
    order = shop.create_order("retail")
    resp = shop.call(
        "logistics",
        "POST",
        f"/api/orders/{order['id']}/issues",
        {"kind": "delay_risk", "reason": "typhoon", "eta": "2026-08-03"},
    )
    assert resp.status_code == 201, resp.text
    staff_view = shop.get_order(order["id"], "customer_service")
    assert [i["kind"] for i in staff_view["issues"]] == ["delay_risk"]
    customer = shop.customer(order)
    customer_view = shop.get_order(order["id"], customer)
    assert "issues" not in customer_view
    assert "typhoon" not in str(customer_view)


def test_update_order_facts(shop: Shop) -> None:
    order = shop.create_order("retail")
    path = f"/api/orders/{order['id']}"
    resp = shop.call(
        "logistics",
        "PATCH",
        path,
        {"carrier": "ZTO", "tracking_no": "ZT123", "eta_ts": 1_900_000_000_000, "note": "fragile"},
    )
    assert resp.status_code == 200, resp.text
    view = resp.json()
    assert (view["carrier"], view["tracking_no"], view["eta_ts"], view["note"]) == (
        "ZTO",
        "ZT123",
        1_900_000_000_000,
        "fragile",
    )
    assert view["version"] == order["version"] + 1
    assert view["status"] == "placed"
    row = shop.order_row(order["id"])
    assert (row["carrier"], row["tracking_no"], row["note"], row["version"]) == (
        "ZTO",
        "ZT123",
        "fragile",
        order["version"] + 1,
    )
    resp = shop.call("logistics", "PATCH", path, {"carrier": None, "tracking_no": None})
    assert resp.status_code == 200 and resp.json()["carrier"] is None, resp.text

    before = shop.server.db_snapshot()
    bad: list[object] = [
        {},
        {"status": "shipped"},
        {"eta_ts": -5},
        {"eta_ts": "tomorrow"},
        {"eta_ts": 102341266537191604224},  # past every store's BIGINT
        {"carrier": ""},
        {"carrier": "x" * 65},
        {"tracking_no": 12},
        {"note": ["a"]},
        [],
    ]
    for body in bad:
        expect_error(shop.call("logistics", "PATCH", path, body), 400, "bad_request")
    expect_error(
        shop.call("logistics", "PATCH", "/api/orders/o_nosuchorder000000000", {"note": "x"}),
        404,
        "not_found",
    )
    assert_unchanged(before, shop.server.db_snapshot())


# --- what a customer sees --------------------------------------------------------------------


def test_customer_history_and_listing_hide_staff_only_notes(shop: Shop) -> None:
    order = shop.create_order("retail", note="check the waterproofing")
    order = shop.drive(order, "picking")  # posts the customer's note for the warehouse
    resp = shop.call(
        "warehouse",
        "POST",
        f"/api/orders/{order['id']}/issues",
        {"kind": "delay_risk", "reason": "supplier late", "eta": "next week"},
    )
    assert resp.status_code == 201, resp.text
    stored = shop.messages_in(order["conv"])
    internal = [m for m in stored if m["internal"]]
    assert {m["meta"]["event"] for m in internal} >= {"customer_note", "delay_risk"}

    customer = shop.customer(order)
    resp = shop.call(customer, "GET", f"/api/conversations/{order['conv']}/messages")
    assert resp.status_code == 200, resp.text
    seen = resp.json()["messages"]
    assert [m["seq"] for m in seen] == [m["seq"] for m in stored if not m["internal"]]
    assert not any(m.get("internal") for m in seen)
    assert "supplier late" not in resp.text and "waterproofing" not in resp.text
    staff = shop.call("warehouse", "GET", f"/api/conversations/{order['conv']}/messages")
    assert [m["seq"] for m in staff.json()["messages"]] == [m["seq"] for m in stored]

    resp = shop.call(customer, "GET", "/api/conversations")
    assert resp.status_code == 200, resp.text
    convs = resp.json()["conversations"]
    assert [c["id"] for c in convs] == [order["conv"]], "a customer sees only their orders"
    summary = convs[0]
    assert not summary["last_message"].get("internal"), summary
    assert summary["last_message"]["seq"] == max(m["seq"] for m in stored if not m["internal"])
    assert summary["unread"] == len([m for m in stored if not m["internal"]])


def test_customer_cannot_make_conversations_or_read_the_staff_directory(shop: Shop) -> None:
    customer = shop.customer(shop.create_order("retail"))
    before = shop.server.db_snapshot()
    directory = {u["id"] for u in shop.call("admin", "GET", "/api/users").json()["users"]}
    contacts = {u["id"] for u in shop.call(customer, "GET", "/api/users").json()["users"]}
    assert contacts - {customer.id} < directory
    sales = shop.staff["sales"].id
    for body in (
        {"kind": "direct", "members": [sales]},
        {"kind": "channel", "members": [sales], "title": "just us"},
        {"kind": "order", "members": [sales], "title": "an order"},
    ):
        expect_error(shop.call(customer, "POST", "/api/conversations", body), {400, 403})
    expect_error(
        shop.call(customer, "POST", "/api/users", {"username": "x", "password": "y", "roles": []}),
        403,
        "forbidden",
    )
    assert_unchanged(before, shop.server.db_snapshot())


def test_customer_socket_never_carries_staff_notes_or_other_orders(shop: Shop) -> None:
    mine = shop.create_order("retail", language="en")
    theirs = shop.create_order("retail")
    me = shop.customer(mine)
    them = shop.customer(theirs)

    async def run() -> tuple[list[Frame], list[Frame], list[Frame]]:
        async with PeerPool(shop.server) as peers:
            my_peer = await peers.record(me.token, "my-phone")
            their_peer = await peers.record(them.token, "their-phone")
            staff_peer = await peers.record(shop.token("customer_service"), "desk")
            # Staff-only: an exception routed to staff, and a note typed as internal.
            resp = shop.call(
                "logistics",
                "POST",
                f"/api/orders/{mine['id']}/issues",
                {"kind": "delay_risk", "reason": "customs check", "eta": "Friday"},
            )
            assert resp.status_code == 201, resp.text
            await staff_peer.send(
                {
                    "op": "send",
                    "ref": "staff-note",
                    "conv": mine["conv"],
                    "kind": "text",
                    "text": "customer looks like a reseller",
                    "internal": True,
                }
            )
            ack = await staff_peer.wait_for(
                lambda f: f.get("ref") == "staff-note" and f["op"] in ("ack", "error")
            )
            assert ack["op"] == "ack", ack
            # Public: someone else's order moves, then mine, then theirs gets a notice.
            confirm = load_workflow("retail").transition("placed", "confirmed")
            shop.advance(theirs, confirm)
            shop.advance(mine, confirm)
            resp = shop.call(
                "customer_service",
                "POST",
                f"/api/orders/{theirs['id']}/issues",
                {"kind": "delay_notice", "reason": "rain", "eta": "Monday"},
            )
            assert resp.status_code == 201, resp.text
            # Each socket delivers in commit order: once a customer has the last event
            # meant for them, whatever was committed before it has come (or never will).
            await my_peer.wait_for(lambda f: _event(f) == "status_changed")
            await their_peer.wait_for(lambda f: _event(f) == "delay_notice")
            for peer in (my_peer, their_peer, staff_peer):
                await peer.barrier()
            return my_peer.frames, their_peer.frames, staff_peer.frames

    mine_frames, their_frames, staff_frames = asyncio.run(run())
    assert _texts(staff_frames, mine["conv"]) >= {"customer looks like a reseller"}

    for frames, own, other in ((mine_frames, mine, theirs), (their_frames, theirs, mine)):
        convs = {f.get("conv") for f in frames if f.get("op") not in ("pong", None)}
        assert convs <= {own["conv"], None}, f"a customer got another conversation: {convs}"
        assert other["number"] not in str(frames)
        assert not [f for f in frames if f.get("internal")], frames
        texts = str(frames)
        for secret in ("customs check", "reseller", "延误风险"):
            assert secret not in texts, f"{secret!r} reached a customer"
        statuses = [f["order"]["status"] for f in frames if f.get("op") == "order"]
        assert statuses == ["confirmed"], frames
    assert [_event(f) for f in mine_frames if f.get("op") == "message"] == ["status_changed"]
    assert [_event(f) for f in their_frames if f.get("op") == "message"] == [
        "status_changed",
        "delay_notice",
    ]
    assert "Your order" in _texts(mine_frames, mine["conv"]).pop()


def test_customer_cannot_write_staff_only_notes(shop: Shop) -> None:
    order = shop.create_order("retail")
    customer = shop.customer(order)

    async def run() -> Frame:
        async with PeerPool(shop.server) as peers:
            peer = await peers.record(customer.token)
            await peer.send(
                {
                    "op": "send",
                    "ref": "sneaky",
                    "conv": order["conv"],
                    "kind": "text",
                    "text": "internal from a customer",
                    "internal": True,
                }
            )
            return await peer.wait_for(
                lambda f: f.get("ref") == "sneaky" and f["op"] in ("ack", "error")
            )

    before = shop.server.db_snapshot()
    answer = asyncio.run(run())
    assert answer["op"] == "error" and answer["code"] == "forbidden", answer
    assert_unchanged(before, shop.server.db_snapshot())


def _event(frame: Frame) -> str | None:
    if frame.get("op") != "message":
        return None
    return (frame.get("meta") or {}).get("event")


def _texts(frames: list[Frame], conv: str) -> set[str]:
    return {str(f["text"]) for f in frames if f.get("op") == "message" and f["conv"] == conv}


# --- invitations -------------------------------------------------------------------------------


def _sign_in(shop: Shop, body: object) -> httpx.Response:
    return shop.call(None, "POST", "/api/auth/invitation", body)


def _sessions(shop: Shop) -> int:
    return int(shop.server.db_rows("SELECT count(*) FROM sessions")[0][0])


def test_an_invitation_signs_the_customer_in(shop: Shop) -> None:
    order = shop.create_order("retail")
    resp = shop.call("sales", "POST", f"/api/orders/{order['id']}/invitations")
    assert resp.status_code == 201, resp.text
    invitation = resp.json()
    assert invitation["order"] == order["id"]
    assert invitation["token"] in invitation["url"]
    rows = shop.server.db_rows(
        "SELECT customer_id, expires_at_ms, revoked_at_ms FROM invitations WHERE order_id = ?",
        order["id"],
    )
    assert rows == [(order["customer"], invitation["expires_ts"], None)]
    assert invitation["token"] not in str(shop.server.db_rows("SELECT * FROM invitations"))

    resp = _sign_in(shop, {"token": invitation["token"], "device": "phone"})
    assert resp.status_code == 200, resp.text
    signed = resp.json()
    assert signed["user"]["id"] == order["customer"]
    assert signed["user"]["kind"] == "customer"
    assert signed["user"]["roles"] == []
    me = shop.server.http(signed["token"])
    try:
        assert me.get("/api/me").json()["id"] == order["customer"]
        assert {o["id"] for o in me.get("/api/orders").json()["orders"]} == {order["id"]}
    finally:
        me.close()


def test_bad_invitation_tokens_are_refused_and_change_nothing(shop: Shop) -> None:
    order = shop.create_order("retail")
    expired_token = shop.invite(order)
    revoked_order = shop.create_order("retail")
    revoked_token = shop.invite(revoked_order)
    shop.server.db_execute(
        "UPDATE invitations SET expires_at_ms = 1 WHERE order_id = ?", order["id"]
    )
    shop.server.db_execute(
        "UPDATE invitations SET revoked_at_ms = 1 WHERE order_id = ?", revoked_order["id"]
    )
    sessions = _sessions(shop)
    before = shop.server.db_snapshot()
    unauthorized: list[object] = [
        {"token": "A" * 43},
        {"token": "not-a-real-invitation"},
        {"token": expired_token},
        {"token": revoked_token},
        {"token": shop.token("sales")},  # a session token is not an invitation
    ]
    for body in unauthorized:
        resp = _sign_in(shop, body)
        expect_error(resp, 401, "unauthorized")
    error = expect_error(_sign_in(shop, {"token": expired_token}), 401)
    assert error["reason"] == "accounts.invitation_link_has_expired_ask", error
    bad: list[object] = [
        {},
        {"token": ""},
        {"token": 12345},
        {"token": None},
        {"token": "x" * 300},
        {"token": "A" * 43, "device": ""},
        {"token": "A" * 43, "device": "d" * 65},
        {"token": "A" * 43, "customer": order["customer"]},
        ["token"],
    ]
    for body in bad:
        expect_error(_sign_in(shop, body), 400, "bad_request")
    assert_unchanged(before, shop.server.db_snapshot())
    assert _sessions(shop) == sessions


def test_invitations_for_a_missing_order(shop: Shop) -> None:
    before = shop.server.db_snapshot()
    resp = shop.call("sales", "POST", "/api/orders/o_nosuchorder000000000/invitations")
    expect_error(resp, 404, "not_found")
    assert_unchanged(before, shop.server.db_snapshot())


def test_an_orders_thread_names_its_order(shop: Shop) -> None:
    order = shop.create_order("retail")
    customer = shop.customer(order)
    for who in ("customer_service", customer):
        summary = shop.call(who, "GET", f"/api/conversations/{order['conv']}").json()
        assert summary["order"] == order["id"]
        listed = shop.call(who, "GET", "/api/conversations").json()["conversations"]
        assert next(c for c in listed if c["id"] == order["conv"])["order"] == order["id"]
        assert all("order" not in c for c in listed if c["kind"] != "order")
