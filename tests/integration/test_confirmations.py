"""Confirmations on a real server: items, versions, the customer's decisions, and
production waiting for the required items.

Every refusal returns the contract's error body and leaves the database file
exactly as it was.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest

from tests.order_support import call, ok, stock_sku
from tests.support import Account, ServerProcess

pytestmark = pytest.mark.timeout(120)

SKU = "OEM-TOTE-01"
_numbers = itertools.count(1)


@dataclass(frozen=True)
class Staff:
    sales: Account
    production: Account
    purchasing: Account
    warehouse: Account
    qc: Account


@pytest.fixture(scope="module")
def staff(server: ServerProcess) -> Staff:
    stock_sku(server, SKU, 4_500)
    return Staff(
        sales=server.user("sales"),
        production=server.user("production"),
        purchasing=server.user("purchasing"),
        warehouse=server.user("warehouse"),
        qc=server.user("qc"),
    )


def refused(
    server: ServerProcess, token: str, path: str, body: object, status: int, code: str
) -> None:
    """The request gets the contract's error and the database is left as it was."""
    before = server.db_snapshot()
    resp = call(server, token, "POST", path, body)
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert error["code"] == code and error["message"]
    assert server.db_snapshot() == before


def new_order(
    server: ServerProcess, staff: Staff, workflow: str = "oem", language: str = "en"
) -> dict[str, Any]:
    number = f"CF-{next(_numbers):04d}"
    body = {
        "number": number,
        "workflow": workflow,
        "customer": {"name": f"Brand {number}", "segment": "brand", "language": language},
        "items": [{"sku": SKU, "name": "Tote", "quantity": 500, "unit_price_cents": 4_500}],
        "currency": "CNY",
    }
    return ok(call(server, staff.sales.token, "POST", "/api/orders", body), 201)


def customer_token(server: ServerProcess, staff: Staff, order: dict[str, Any]) -> str:
    invite = ok(
        call(server, staff.sales.token, "POST", f"/api/orders/{order['id']}/invitations"), 201
    )
    resp = httpx.post(
        f"{server.base_url}/api/auth/invitation",
        json={"token": invite["token"], "device": "laptop"},
        timeout=10,
    )
    token: str = ok(resp)["token"]
    return token


def advance(server: ServerProcess, who: Account, order_id: str, to: str) -> httpx.Response:
    return call(server, who.token, "POST", f"/api/orders/{order_id}/status", {"to": to})


def add_item(
    server: ServerProcess, who: Account, order_id: str, kind: str, title: str, required: bool
) -> dict[str, Any]:
    body = {"kind": kind, "title": title, "required": required}
    return ok(call(server, who.token, "POST", f"/api/orders/{order_id}/confirmations", body), 201)


def propose(
    server: ServerProcess, who: Account, item_id: str, text: str, attachments: object = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"text": text}
    if attachments is not None:
        body["attachments"] = attachments
    return ok(call(server, who.token, "POST", f"/api/confirmations/{item_id}/versions", body), 201)


def decision_path(item_id: str, number: int | str) -> str:
    return f"/api/confirmations/{item_id}/versions/{number}/decision"


def decide(
    server: ServerProcess, token: str, item_id: str, number: int, decision: str, comment: str
) -> httpx.Response:
    body = {"decision": decision, "comment": comment}
    return call(server, token, "POST", decision_path(item_id, number), body)


def listed(server: ServerProcess, token: str, order_id: str) -> dict[str, Any]:
    return ok(call(server, token, "GET", f"/api/orders/{order_id}/confirmations"))


def history(server: ServerProcess, token: str, conv: str) -> list[dict[str, Any]]:
    with server.http(token) as client:
        resp = client.get(f"/api/conversations/{conv}/messages", params={"limit": 200})
    found: list[dict[str, Any]] = ok(resp)["messages"]
    return found


def events_seen(server: ServerProcess, token: str, conv: str, event: str) -> list[dict[str, Any]]:
    """The order events of this kind that the token's user finds in the history."""
    return [m for m in history(server, token, conv) if (m.get("meta") or {}).get("event") == event]


def channel_events(server: ServerProcess, role: str) -> list[dict[str, Any]]:
    rows = server.db_rows(
        "SELECT m.meta FROM messages m JOIN conversations c ON c.id = m.conv_id"
        " WHERE c.role_channel = ? ORDER BY m.seq",
        role,
    )
    return [orjson.loads(meta) for (meta,) in rows if meta]


# --- the life of an item ---------------------------------------------------------------


def test_versions_and_decisions_are_a_record(server: ServerProcess, staff: Staff) -> None:
    order = new_order(server, staff)
    customer = customer_token(server, staff, order)
    material = add_item(server, staff.sales, order["id"], "material", "Canvas weight", True)
    add_item(server, staff.production, order["id"], "colour", "Pantone", True)
    add_item(server, staff.sales, order["id"], "packaging", "Poly bag", False)
    assert (material["status"], material["versions"], material["required"]) == ("open", [], True)
    seen = listed(server, customer, order["id"])
    assert [i["kind"] for i in seen["items"]] == ["material", "colour", "packaging"]
    assert seen["required_open"] == 2

    swatch = [{"blob": "sha256:abc", "name": "swatch.jpg", "type": "image/jpeg"}]
    first = propose(server, staff.sales, material["id"], "12 oz canvas, natural", swatch)
    assert first["version"]["number"] == 1 and first["version"]["state"] == "pending"
    assert first["version"]["attachments"] == swatch
    assert first["item"]["status"] == "proposed"
    proposed = events_seen(server, customer, order["conv"], "confirmation_proposed")
    assert len(proposed) == 1
    assert proposed[0]["text"] == "Please review 'Canvas weight', version 1: 12 oz canvas, natural"
    assert proposed[0]["meta"]["details"]["attachments"] == swatch

    rejected = ok(decide(server, customer, material["id"], 1, "rejected", "Too thin"))
    assert rejected["version"]["state"] == "rejected"
    assert rejected["item"]["status"] == "rejected"

    propose(server, staff.production, material["id"], "14 oz canvas")
    third = propose(server, staff.sales, material["id"], "16 oz canvas")
    assert [v["state"] for v in third["item"]["versions"]] == ["rejected", "superseded", "pending"]
    superseded = decision_path(material["id"], 2)
    refused(server, customer, superseded, {"decision": "approved", "comment": ""}, 409, "conflict")
    late = {"decision": "approved", "comment": "changed my mind"}
    refused(server, customer, decision_path(material["id"], 1), late, 409, "conflict")

    approved = ok(decide(server, customer, material["id"], 3, "approved", "Good"))
    assert approved["item"]["status"] == "approved"
    assert approved["item"]["approved_version"] == 3
    twice = {"decision": "rejected", "comment": "no"}
    refused(server, customer, decision_path(material["id"], 3), twice, 409, "conflict")

    customer_id = order["customer"]
    rows = server.db_rows(
        "SELECT number, proposed_by, decision, comment, decided_by, decided_at_ms IS NOT NULL"
        " FROM confirmation_versions WHERE item_id = ? ORDER BY number",
        material["id"],
    )
    assert rows == [
        (1, staff.sales.id, "rejected", "Too thin", customer_id, 1),
        (2, staff.production.id, None, None, None, 0),
        (3, staff.sales.id, "approved", "Good", customer_id, 1),
    ]
    assert server.db_rows(
        "SELECT status, approved_version FROM confirmation_items WHERE id = ?", material["id"]
    ) == [("approved", 3)]
    assert listed(server, staff.warehouse.token, order["id"])["required_open"] == 1

    decided = [
        m["text"] for m in events_seen(server, customer, order["conv"], "confirmation_decided")
    ]
    assert decided == [
        "'Canvas weight' version 1: rejected. Too thin",
        "'Canvas weight' version 3: approved. Good",
    ]
    told = [e for e in channel_events(server, "production") if e.get("order") == order["id"]]
    assert [e["details"]["decision"] for e in told] == ["rejected", "approved"]
    assert all(e["event"] == "confirmation_decided" for e in told)


def test_a_new_proposal_reopens_an_approved_item(server: ServerProcess, staff: Staff) -> None:
    order = new_order(server, staff, language="zh-CN")
    customer = customer_token(server, staff, order)
    item = add_item(server, staff.sales, order["id"], "logo_process", "Logo", True)
    propose(server, staff.sales, item["id"], "Embroidery")
    ok(decide(server, customer, item["id"], 1, "approved", ""))
    assert listed(server, customer, order["id"])["required_open"] == 0

    again = propose(server, staff.qc, item["id"], "Screen print instead")
    assert again["item"]["status"] == "proposed"
    assert again["item"]["approved_version"] is None
    assert [v["state"] for v in again["item"]["versions"]] == ["approved", "pending"]
    assert listed(server, customer, order["id"])["required_open"] == 1
    texts = [m["text"] for m in history(server, customer, order["conv"])]
    assert "「Logo」第 1 版：已确认。" in texts


# --- production waits for the required items --------------------------------------------


def test_production_cannot_start_until_required_items_are_approved(
    server: ServerProcess, staff: Staff
) -> None:
    order = new_order(server, staff)
    customer = customer_token(server, staff, order)
    ok(advance(server, staff.sales, order["id"], "quoting"))
    ok(advance(server, staff.sales, order["id"], "sampling"))
    item = add_item(server, staff.sales, order["id"], "size", "Dimensions", True)
    add_item(server, staff.sales, order["id"], "custom", "Hang tag wording", False)

    before = server.db_snapshot()
    blocked = advance(server, staff.sales, order["id"], "sample_approved")
    assert blocked.status_code == 409, blocked.text
    assert blocked.json()["error"]["reason"] == "workflows.required_confirmations_open"
    assert server.db_snapshot() == before

    propose(server, staff.sales, item["id"], "40 x 35 x 12 cm")
    ok(decide(server, customer, item["id"], 1, "approved", "OK"))
    ok(advance(server, staff.sales, order["id"], "sample_approved"))  # the optional item waits
    ok(advance(server, staff.purchasing, order["id"], "material_arrived"))

    propose(server, staff.production, item["id"], "41 x 35 x 12 cm: the lining needs 1 cm")
    before = server.db_snapshot()
    assert advance(server, staff.production, order["id"], "cutting").status_code == 409
    assert server.db_snapshot() == before
    assert server.admin is not None
    on_behalf = ok(decide(server, server.admin.token, item["id"], 2, "approved", "By phone"))
    assert on_behalf["version"]["decided_by"] == server.admin.id
    assert ok(advance(server, staff.production, order["id"], "cutting"))["status"] == "cutting"


# --- bad input changes nothing ---------------------------------------------------------------


@dataclass(frozen=True)
class World:
    order: dict[str, Any]
    item: dict[str, Any]  # version 1 pending
    customer: str
    stranger: str  # the customer of another order
    retail: dict[str, Any]
    cancelled_item: dict[str, Any]  # version 1 pending, on a cancelled order
    cancelled_customer: str


@pytest.fixture(scope="module")
def world(server: ServerProcess, staff: Staff) -> World:
    order = new_order(server, staff)
    item = add_item(server, staff.sales, order["id"], "lead_time", "Lead time", True)
    propose(server, staff.sales, item["id"], "45 days")
    other = new_order(server, staff)
    cancelled = new_order(server, staff)
    cancelled_item = add_item(server, staff.sales, cancelled["id"], "shipping_method", "Sea", True)
    propose(server, staff.sales, cancelled_item["id"], "FOB Ningbo")
    ok(advance(server, staff.sales, cancelled["id"], "cancelled"))
    return World(
        order=order,
        item=item,
        customer=customer_token(server, staff, order),
        stranger=customer_token(server, staff, other),
        retail=new_order(server, staff, workflow="retail"),
        cancelled_item=cancelled_item,
        cancelled_customer=customer_token(server, staff, cancelled),
    )


@dataclass(frozen=True)
class Case:
    name: str
    who: str  # a Staff attribute, "customer", "stranger", "cancelled_customer" or "admin"
    path: str  # {order}, {item}, {retail} and {cancelled_item} are filled in
    body: object
    status: int
    code: str


ITEM = {"kind": "material", "title": "Zip", "required": True}
DECIDE = {"decision": "approved", "comment": ""}
ITEMS = "/api/orders/{order}/confirmations"
VERSIONS = "/api/confirmations/{item}/versions"
V1 = "/api/confirmations/{item}/versions/1/decision"

CASES = [
    Case("warehouse_adds_item", "warehouse", ITEMS, ITEM, 403, "forbidden"),
    Case("customer_adds_item", "customer", ITEMS, ITEM, 403, "forbidden"),
    Case("unknown_kind", "sales", ITEMS, {**ITEM, "kind": "smell"}, 400, "bad_request"),
    Case("blank_title", "sales", ITEMS, {**ITEM, "title": "   "}, 400, "bad_request"),
    Case("long_title", "sales", ITEMS, {**ITEM, "title": "t" * 201}, 413, "too_large"),
    Case("required_as_text", "sales", ITEMS, {**ITEM, "required": "yes"}, 400, "bad_request"),
    Case("unknown_field", "sales", ITEMS, {**ITEM, "due": 3}, 400, "bad_request"),
    Case("retail_order", "sales", "/api/orders/{retail}/confirmations", ITEM, 409, "conflict"),
    Case("missing_order", "sales", "/api/orders/o_no/confirmations", ITEM, 404, "not_found"),
    Case("customer_proposes", "customer", VERSIONS, {"text": "mine"}, 403, "forbidden"),
    Case("warehouse_proposes", "warehouse", VERSIONS, {"text": "x"}, 403, "forbidden"),
    Case("blank_text", "sales", VERSIONS, {"text": " "}, 400, "bad_request"),
    Case(
        "attachment_not_object",
        "sales",
        VERSIONS,
        {"text": "x", "attachments": ["a.jpg"]},
        400,
        "bad_request",
    ),
    Case(
        "too_many_attachments",
        "sales",
        VERSIONS,
        {"text": "x", "attachments": [{"n": i} for i in range(21)]},
        413,
        "too_large",
    ),
    Case(
        "missing_item",
        "sales",
        "/api/confirmations/cf_no/versions",
        {"text": "x"},
        404,
        "not_found",
    ),
    Case(
        "propose_on_cancelled",
        "sales",
        "/api/confirmations/{cancelled_item}/versions",
        {"text": "x"},
        409,
        "conflict",
    ),
    Case("sales_decides", "sales", V1, DECIDE, 403, "forbidden"),
    Case("production_decides", "production", V1, DECIDE, 403, "forbidden"),
    Case("stranger_decides", "stranger", V1, DECIDE, 403, "forbidden"),
    Case("unknown_decision", "customer", V1, {**DECIDE, "decision": "maybe"}, 400, "bad_request"),
    Case(
        "reject_without_comment",
        "customer",
        V1,
        {"decision": "rejected", "comment": "  "},
        400,
        "bad_request",
    ),
    Case("no_comment_field", "customer", V1, {"decision": "approved"}, 400, "bad_request"),
    Case("missing_version", "customer", V1.replace("/1/", "/9/"), DECIDE, 404, "not_found"),
    Case(
        "version_not_a_number", "customer", V1.replace("/1/", "/one/"), DECIDE, 400, "bad_request"
    ),
    Case(
        "decide_on_cancelled",
        "cancelled_customer",
        "/api/confirmations/{cancelled_item}/versions/1/decision",
        DECIDE,
        409,
        "conflict",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_confirmation_requests_change_nothing(
    server: ServerProcess, staff: Staff, world: World, case: Case
) -> None:
    tokens = {
        "customer": world.customer,
        "stranger": world.stranger,
        "cancelled_customer": world.cancelled_customer,
    }
    token = tokens[case.who] if case.who in tokens else getattr(staff, case.who).token
    path = case.path.format(
        order=world.order["id"],
        item=world.item["id"],
        retail=world.retail["id"],
        cancelled_item=world.cancelled_item["id"],
    )
    refused(server, token, path, case.body, case.status, case.code)


def test_customers_list_only_their_own_items(
    server: ServerProcess, staff: Staff, world: World
) -> None:
    path = f"/api/orders/{world.order['id']}/confirmations"
    assert call(server, world.stranger, "GET", path).status_code == 403
    mine = listed(server, world.customer, world.order["id"])
    assert [i["id"] for i in mine["items"]] == [world.item["id"]]
