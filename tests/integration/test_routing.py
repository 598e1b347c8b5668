"""The right people hear the right things: every routing rule the orders API can
trigger, checked in the database and from the customer's side.

A routed event is one `order_event` message in the order's conversation that
mentions exactly the rule's roles and is staff-only unless the customer is
meant to see it, plus one post in each of those roles' channels ("仓库 #warehouse"
…) and in no other. Status changes route by their transition's `notify`; the
cases are generated from the workflow files. Exceptions route by
`core.routing.ROUTES`, and only `EXCEPTION_REPORTERS` may raise them.
"""

from __future__ import annotations

from collections import Counter

import pytest

from orderchat.core.model import Role
from orderchat.core.routing import EXCEPTION_REPORTERS, ROLE_CHANNEL_TITLES, ROUTES, render
from orderchat.core.workflows import Transition
from tests.order_support import (
    SKU,
    STAFF_ROLES,
    Customer,
    Json,
    OrderPool,
    Shop,
    assert_unchanged,
    case_id,
    expect_error,
    expected_text,
    first_role,
    load_workflow,
    parallel,
    workflow_names,
)
from tests.support import seed_skus

pytestmark = pytest.mark.timeout(120)

NEW_ADDRESS = {"name": "Wu Fang", "city": "Lhasa", "line1": "3 Beijing Middle Road"}
NOTE = "hub: Shanghai Pudong"

# One case per transition, from its first source state.
TRANSITIONS: list[tuple[str, str, Transition]] = [
    (name, sorted(t.sources)[0], t)
    for name in workflow_names()
    for t in load_workflow(name).transitions
]


@pytest.fixture(scope="module")
def shop(order_shop: Shop) -> Shop:
    return order_shop


@pytest.fixture(scope="module")
def pool(shop: Shop) -> OrderPool:
    wants: Counter[tuple[str, str]] = Counter((name, source) for name, source, _ in TRANSITIONS)
    wants[("retail", "confirmed")] += 2
    wants[("retail", "packed")] += 1
    wants[("retail", "shipped")] += 1
    wants[("oem", "qc")] += 1
    return OrderPool(shop, wants)


# --- checks ---------------------------------------------------------------------------------


def _one_new(shop: Shop, order: Json, after_seq: int, event: str, **details: object) -> Json:
    """The single message for `event` posted in the order's conversation after `after_seq`."""
    found = [
        m
        for m in shop.order_events(order["conv"], after_seq)
        if m["meta"]["event"] == event
        and all(m["meta"]["details"].get(k) == v for k, v in details.items())
    ]
    assert len(found) == 1, f"{event}: {found}"
    assert found[0]["meta"]["order"] == order["id"]
    return found[0]


def _assert_routed(
    shop: Shop,
    order: Json,
    message: Json,
    roles: frozenset[Role],
    customer_sees: bool,
    customer: Customer,
) -> None:
    """Mentions, visibility, role channels and the customer's history all follow the rule."""
    event = message["meta"]["event"]
    assert message["mentions"] == [f"@{r.value}" for r in sorted(roles)], message
    assert message["internal"] is (not customer_sees), message

    same = message["meta"]["details"]
    channels = shop.role_channels()
    for role in [*STAFF_ROLES, "admin"]:
        posts = [
            p
            for p in shop.channel_posts(order["id"]).get(role, [])
            if p["meta"]["event"] == event and p["meta"]["details"] == same
        ]
        if Role(role) not in roles:
            assert posts == [], f"{event} reached #{role}, which the rule does not name"
            continue
        assert len(posts) == 1, f"{event} did not reach #{role} once: {posts}"
        post = posts[0]
        conv, title = channels[role]
        assert title == ROLE_CHANNEL_TITLES[Role(role)]
        assert post["mentions"] == [f"@{role}"]
        assert post["internal"] is False
        assert post["text"] == f"[{order['number']}] {message['meta']['text']['zh-CN']}"
        assert post["meta"]["order_conv"] == order["conv"]
        # Whoever holds the role reads it in their channel; others are not in it.
        holder = shop.call(role, "GET", f"/api/conversations/{conv}/messages")
        assert holder.status_code == 200, holder.text
        assert post["seq"] in [m["seq"] for m in holder.json()["messages"]]
        outsider = next(r for r in STAFF_ROLES if r != role)
        expect_error(shop.call(outsider, "GET", f"/api/conversations/{conv}/messages"), 403)

    resp = shop.call(customer, "GET", f"/api/conversations/{order['conv']}/messages")
    assert resp.status_code == 200, resp.text
    seen = [m["seq"] for m in resp.json()["messages"]]
    assert (message["seq"] in seen) is customer_sees, f"{event}: customer sees {seen}"


# --- status changes ---------------------------------------------------------------------------


@pytest.mark.parametrize("case", TRANSITIONS, ids=case_id)
def test_a_status_change_reaches_exactly_the_roles_it_notifies(
    shop: Shop, pool: OrderPool, case: tuple[str, str, Transition]
) -> None:
    name, source, transition = case
    order = pool.take(name, source)
    customer = shop.customer(order)
    after = shop.last_seq(order["conv"])
    moved = shop.advance(order, transition, role=first_role(transition), note=NOTE)
    message = _one_new(
        shop, moved, after, "status_changed", **{"from": source, "to": transition.target}
    )
    assert message["text"] == expected_text(transition, moved, "en", NOTE)
    _assert_routed(shop, moved, message, transition.notify, transition.customer, customer)


# --- exceptions ---------------------------------------------------------------------------------


def _raise(shop: Shop, who: str, order: Json, body: Json) -> Json:
    resp = shop.call(who, "POST", f"/api/orders/{order['id']}/issues", body)
    assert resp.status_code == 201, resp.text
    issue: Json = resp.json()
    assert issue["order"] == order["id"] and issue["kind"] == body["kind"]
    assert issue["outcome"] is None
    return issue


def _issue_row(shop: Shop, issue_id: str) -> tuple[str, str | None]:
    rows = shop.server.db_rows("SELECT kind, outcome FROM order_issues WHERE id = ?", issue_id)
    assert len(rows) == 1, rows
    return rows[0][0], rows[0][1]


def _route(event: str) -> tuple[frozenset[Role], bool]:
    return ROUTES[event].roles, ROUTES[event].customer


def test_out_of_stock_reported_by_the_warehouse(shop: Shop) -> None:
    order = shop.create_order("retail", quantity=5)
    customer = shop.customer(order)
    after = shop.last_seq(order["conv"])
    _raise(
        shop, "warehouse", order, {"kind": "out_of_stock", "sku": SKU, "needed": 5, "available": 1}
    )
    message = _one_new(shop, order, after, "out_of_stock")
    _assert_routed(shop, order, message, *_route("out_of_stock"), customer)
    assert (
        f"{SKU}" in message["text"] and "需要 5" in message["text"] and "可用 1" in message["text"]
    )
    # Its route makes it urgent: it climbs the notification ladder until someone reads it.
    rows = shop.server.db_rows(
        "SELECT urgent FROM messages WHERE conv_id = ? AND seq = ?", order["conv"], message["seq"]
    )
    assert [bool(r[0]) for r in rows] == [True]


def test_out_of_stock_names_the_item(shop: Shop) -> None:
    """The rule's text reads '{sku} {name} needs …': the name comes from the order's line
    (or the catalogue), not left blank."""
    order = shop.create_order("retail", quantity=5)
    after = shop.last_seq(order["conv"])
    _raise(
        shop, "warehouse", order, {"kind": "out_of_stock", "sku": SKU, "needed": 5, "available": 1}
    )
    message = _one_new(shop, order, after, "out_of_stock")
    names = (f"Item {SKU}", f"商品 {SKU}")
    assert any(n in message["text"] for n in names), message["text"]


def test_out_of_stock_for_a_sku_not_in_the_catalogue_is_refused(shop: Shop) -> None:
    order = shop.create_order("retail")
    before = shop.server.db_snapshot()
    resp = shop.call(
        "warehouse",
        "POST",
        f"/api/orders/{order['id']}/issues",
        {"kind": "out_of_stock", "sku": "NO-SUCH-SKU", "needed": 1, "available": 0},
    )
    expect_error(resp, 400, "bad_request")
    assert_unchanged(before, shop.server.db_snapshot())


def test_out_of_stock_when_confirming_more_than_is_on_hand(shop: Shop) -> None:
    seed_skus(shop.server, "SCARCE-1", stock=1)
    order = shop.create_order("retail", sku="SCARCE-1", quantity=5)
    customer = shop.customer(order)
    after = shop.last_seq(order["conv"])
    moved = shop.advance(order, load_workflow("retail").transition("placed", "confirmed"))
    assert moved["status"] == "confirmed"
    message = _one_new(shop, moved, after, "out_of_stock", sku="SCARCE-1")
    assert message["meta"]["details"]["needed"] == 5
    assert message["meta"]["details"]["available"] == 1
    _assert_routed(shop, moved, message, *_route("out_of_stock"), customer)


def test_address_change_before_shipping_is_made_by_logistics(shop: Shop, pool: OrderPool) -> None:
    order = pool.take("retail", "packed")
    customer = shop.customer(order)
    after = shop.last_seq(order["conv"])
    issue = _raise(
        shop,
        "customer_service",
        order,
        {"kind": "address_change_requested", "address": NEW_ADDRESS},
    )
    assert issue["detail"]["shipped"] is False
    message = _one_new(shop, order, after, "address_change_requested")
    _assert_routed(shop, order, message, *_route("address_change_requested"), customer)
    assert "Lhasa" in message["text"] and "未发货" in message["meta"]["text"]["zh-CN"]
    assert "not shipped" in message["meta"]["text"]["en"], message
    assert "未发货" not in message["meta"]["text"]["en"], message

    path = f"/api/orders/{order['id']}/address"
    before = shop.server.db_snapshot()
    body = {"address": NEW_ADDRESS, "issue": issue["id"]}
    expect_error(shop.call("customer_service", "POST", path, body), 403, "forbidden")
    expect_error(shop.call("logistics", "POST", path, {"address": {}}), 400, "bad_request")
    expect_error(shop.call("logistics", "POST", path, {"address": {"moon": "x"}}), 400)
    assert_unchanged(before, shop.server.db_snapshot())

    after = shop.last_seq(order["conv"])
    resp = shop.call("logistics", "POST", path, body)
    assert resp.status_code == 200, resp.text
    assert resp.json()["address"] == NEW_ADDRESS
    row = shop.order_row(order["id"])
    assert "Lhasa" in row["address"]
    assert _issue_row(shop, issue["id"]) == ("address_change_requested", "changed")
    message = _one_new(shop, order, after, "address_changed")
    _assert_routed(shop, order, message, *_route("address_changed"), customer)
    assert message["text"].startswith("The delivery address is now:"), message["text"]

    before = shop.server.db_snapshot()
    expect_error(shop.call("logistics", "POST", path, body), 409, "conflict")
    assert_unchanged(before, shop.server.db_snapshot())


def test_only_logistics_settles_an_address_change(shop: Shop) -> None:
    """An address change is closed by logistics changing the address (or intercepting the
    parcel); no other role may mark the request settled while the address stays as it was."""
    order = shop.create_order("retail")
    issue = _raise(
        shop,
        "customer_service",
        order,
        {"kind": "address_change_requested", "address": NEW_ADDRESS},
    )
    settle = f"/api/orders/{order['id']}/issues/{issue['id']}/settle"
    customer = shop.customer(order)
    before = shop.server.db_snapshot()
    for role in [r for r in STAFF_ROLES if r != "logistics"]:
        resp = shop.call(role, "POST", settle, {"outcome": "changed"})
        expect_error(resp, 403, "forbidden")
    expect_error(shop.call(customer, "POST", settle, {"outcome": "changed"}), 403)
    assert_unchanged(before, shop.server.db_snapshot())
    assert _issue_row(shop, issue["id"]) == ("address_change_requested", None)


def test_address_change_after_shipping_needs_an_interception(shop: Shop, pool: OrderPool) -> None:
    order = pool.take("retail", "shipped")
    customer = shop.customer(order)
    after = shop.last_seq(order["conv"])
    issue = _raise(
        shop, "logistics", order, {"kind": "address_change_requested", "address": NEW_ADDRESS}
    )
    assert issue["detail"]["shipped"] is True
    message = _one_new(shop, order, after, "address_change_requested")
    _assert_routed(shop, order, message, *_route("address_change_requested"), customer)
    assert "需拦截" in message["text"] and "interception" in message["meta"]["text"]["en"]

    settle = f"/api/orders/{order['id']}/issues/{issue['id']}/settle"
    before = shop.server.db_snapshot()
    address = {"address": NEW_ADDRESS, "issue": issue["id"]}
    path = f"/api/orders/{order['id']}/address"
    expect_error(shop.call("logistics", "POST", path, address), 409, "conflict")
    expect_error(shop.call("logistics", "POST", settle, {"outcome": "maybe"}), 400, "bad_request")
    expect_error(
        shop.call("customer_service", "POST", settle, {"outcome": "intercepted"}), 403, "forbidden"
    )
    expect_error(shop.call(customer, "POST", settle, {"outcome": "intercepted"}), 403)
    assert_unchanged(before, shop.server.db_snapshot())

    after = shop.last_seq(order["conv"])
    resp = shop.call("logistics", "POST", settle, {"outcome": "intercepted", "note": "held at hub"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["outcome"] == "intercepted"
    assert _issue_row(shop, issue["id"]) == ("address_change_requested", "intercepted")
    message = _one_new(shop, order, after, "interception_settled")
    _assert_routed(shop, order, message, *_route("interception_settled"), customer)
    assert "held at hub" in message["text"]
    worded = message["meta"]["text"]
    assert "已拦截" in worded["zh-CN"] and "intercepted" not in worded["zh-CN"], worded
    assert "intercepted" in worded["en"] and "已拦截" not in worded["en"], worded

    before = shop.server.db_snapshot()
    again = shop.call("logistics", "POST", settle, {"outcome": "not_intercepted"})
    expect_error(again, 409, "conflict")
    assert_unchanged(before, shop.server.db_snapshot())


def test_delay_risk_goes_to_customer_service_only(shop: Shop, pool: OrderPool) -> None:
    order = pool.take("retail", "confirmed")
    customer = shop.customer(order)
    after = shop.last_seq(order["conv"])
    body = {"kind": "delay_risk", "reason": "typhoon at the port", "eta": "2026-08-03"}
    _raise(shop, "logistics", order, body)
    message = _one_new(shop, order, after, "delay_risk")
    _assert_routed(shop, order, message, *_route("delay_risk"), customer)
    assert message["text"] == render(ROUTES["delay_risk"].text["zh-CN"], body)


def test_delay_notice_tells_the_customer_in_their_language(shop: Shop, pool: OrderPool) -> None:
    order = pool.take("retail", "confirmed")
    customer = shop.customer(order)
    after = shop.last_seq(order["conv"])
    body = {"kind": "delay_notice", "reason": "a typhoon at the port", "eta": "3 August"}
    _raise(shop, "customer_service", order, body)
    message = _one_new(shop, order, after, "delay_notice")
    _assert_routed(shop, order, message, *_route("delay_notice"), customer)
    assert message["text"] == render(ROUTES["delay_notice"].text["en"], body)
    assert message["mentions"] == []


def test_defect_found_and_the_customer_chooses_a_remedy(shop: Shop, pool: OrderPool) -> None:
    order = pool.take("oem", "qc")
    customer = shop.customer(order)
    after = shop.last_seq(order["conv"])
    issue = _raise(
        shop,
        "qc",
        order,
        {"kind": "defect_found", "description": "loose stitching on 12 pieces", "photos": []},
    )
    message = _one_new(shop, order, after, "defect_found")
    _assert_routed(shop, order, message, *_route("defect_found"), customer)
    assert "loose stitching" in message["text"] and "exchange or a refund" in message["text"]

    settle = f"/api/orders/{order['id']}/issues/{issue['id']}/settle"
    stranger = shop.customer(shop.create_order("retail"))
    before = shop.server.db_snapshot()
    expect_error(shop.call(customer, "POST", settle, {"outcome": "discount"}), 400, "bad_request")
    expect_error(shop.call(customer, "POST", settle, {}), 400, "bad_request")
    expect_error(shop.call("warehouse", "POST", settle, {"outcome": "refund"}), 403, "forbidden")
    expect_error(shop.call(stranger, "POST", settle, {"outcome": "refund"}), {403, 404})
    wrong_order = f"/api/orders/{stranger.order_id}/issues/{issue['id']}/settle"
    expect_error(shop.call("customer_service", "POST", wrong_order, {"outcome": "refund"}), 404)
    assert_unchanged(before, shop.server.db_snapshot())

    after = shop.last_seq(order["conv"])
    resp = shop.call(customer, "POST", settle, {"outcome": "refund"})
    assert resp.status_code == 200, resp.text
    assert _issue_row(shop, issue["id"]) == ("defect_found", "refund")
    message = _one_new(shop, order, after, "defect_resolved")
    _assert_routed(shop, order, message, *_route("defect_resolved"), customer)
    assert "refund" in message["text"]
    before = shop.server.db_snapshot()
    expect_error(shop.call(customer, "POST", settle, {"outcome": "exchange"}), 409, "conflict")
    assert_unchanged(before, shop.server.db_snapshot())


def test_the_customers_note_reaches_the_warehouse_when_picking_starts(shop: Shop) -> None:
    workflow = load_workflow("retail")
    note = "check the waterproofing, it goes to Tibet"
    order = shop.order_at("retail", "confirmed", note=note)
    plain = shop.order_at("retail", "confirmed")
    customer = shop.customer(order)
    after = shop.last_seq(order["conv"])
    shop.advance(order, workflow.transition("confirmed", "picking"))
    message = _one_new(shop, order, after, "customer_note")
    _assert_routed(shop, order, message, *_route("customer_note"), customer)
    assert message["text"] == f"拣货提醒，客户备注：{note}"

    after = shop.last_seq(plain["conv"])
    shop.advance(plain, workflow.transition("confirmed", "picking"))
    events = [m["meta"]["event"] for m in shop.order_events(plain["conv"], after)]
    assert "customer_note" not in events, "an order without a note posts no picking reminder"


# --- who may raise what --------------------------------------------------------------------------

ISSUE_BODIES: dict[str, Json] = {
    "out_of_stock": {"kind": "out_of_stock", "sku": SKU, "needed": 2, "available": 0},
    "address_change_requested": {"kind": "address_change_requested", "address": NEW_ADDRESS},
    "delay_risk": {"kind": "delay_risk", "reason": "rain", "eta": "Monday"},
    "delay_notice": {"kind": "delay_notice", "reason": "rain", "eta": "Monday"},
    "defect_found": {"kind": "defect_found", "description": "a stain"},
}


def test_every_exception_kind_has_a_body_here() -> None:
    assert set(ISSUE_BODIES) == set(EXCEPTION_REPORTERS)
    assert set(EXCEPTION_REPORTERS) <= set(ROUTES)


@pytest.mark.parametrize("kind", sorted(EXCEPTION_REPORTERS))
def test_only_the_reporters_of_a_kind_may_raise_it(shop: Shop, kind: str) -> None:
    order = shop.create_order("retail")
    customer = shop.customer(order)
    reporters = EXCEPTION_REPORTERS[kind]
    refused = [r for r in STAFF_ROLES if Role(r) not in reporters]
    allowed = [r for r in STAFF_ROLES if Role(r) in reporters] + ["admin"]
    body = ISSUE_BODIES[kind]
    before = shop.server.db_snapshot()
    for role in refused:
        resp = shop.call(role, "POST", f"/api/orders/{order['id']}/issues", body)
        expect_error(resp, 403, "forbidden")
    expect_error(shop.call(customer, "POST", f"/api/orders/{order['id']}/issues", body), 403)
    assert_unchanged(before, shop.server.db_snapshot())

    def raise_as(role: str) -> int:
        resp = shop.call(role, "POST", f"/api/orders/{order['id']}/issues", body)
        return resp.status_code

    assert parallel(raise_as, allowed) == [201] * len(allowed)
    kinds = shop.server.db_rows(
        "SELECT kind, count(*) FROM order_issues WHERE order_id = ? GROUP BY kind", order["id"]
    )
    assert kinds == [(kind, len(allowed))]


def test_bad_exception_reports_change_nothing(shop: Shop) -> None:
    order = shop.create_order("retail")
    closed = shop.order_at("retail", "cancelled")
    path = f"/api/orders/{order['id']}/issues"
    before = shop.server.db_snapshot()
    bad: list[object] = [
        {},
        {"kind": "fire"},
        {"kind": 7},
        {"kind": "delay_risk"},
        {"kind": "delay_risk", "reason": "x", "colour": "red"},
        {"kind": "out_of_stock"},
        {"kind": "out_of_stock", "sku": SKU, "needed": -1},
        {"kind": "out_of_stock", "sku": SKU, "available": "lots"},
        {"kind": "address_change_requested"},
        {"kind": "address_change_requested", "address": "somewhere"},
        {"kind": "address_change_requested", "address": {"planet": "Mars"}},
        {"kind": "defect_found"},
        {"kind": "defect_found", "description": "x", "photos": "a.jpg"},
        [],
    ]
    for body in bad:
        expect_error(shop.call("customer_service", "POST", path, body), 400, "bad_request")
    resp = shop.call(
        "customer_service",
        "POST",
        f"/api/orders/{closed['id']}/issues",
        ISSUE_BODIES["delay_notice"],
    )
    expect_error(resp, 409, "conflict")
    resp = shop.call(
        "customer_service",
        "POST",
        "/api/orders/o_nosuchorder000000000/issues",
        ISSUE_BODIES["delay_notice"],
    )
    expect_error(resp, 404, "not_found")
    assert_unchanged(before, shop.server.db_snapshot())


# --- money, confirmations and stock: routed by the same rules ------------------------------------


def test_money_events_reach_finance_and_whom_else_the_rules_name(shop: Shop) -> None:
    order = shop.create_order("retail", quantity=1)
    customer = shop.customer(order)
    oid = order["id"]
    steps: list[tuple[str, str, str, Json, str]] = [
        (
            "payment_received",
            "finance",
            "payments",
            {"amount_cents": 5000, "method": "alipay", "reference": "AP-77"},
            "¥50.00",
        ),
        (
            "ship_approved",
            "finance",
            "ship-approval",
            {"note": "regular customer"},
            "regular customer",
        ),
        (
            "invoice_requested",
            "customer_service",
            "invoice",
            {"title": "Acme Trading Ltd"},
            "Acme Trading Ltd",
        ),
        (
            "invoice_issued",
            "finance",
            "invoice/issue",
            {"number": "INV-2026-0042"},
            "INV-2026-0042",
        ),
        (
            "refund_recorded",
            "finance",
            "refunds",
            {"amount_cents": 1000, "method": "alipay", "reference": "RF-1"},
            "10.00",
        ),
    ]
    for event, role, path, body, shown in steps:
        after = shop.last_seq(order["conv"])
        resp = shop.call(role, "POST", f"/api/orders/{oid}/{path}", body)
        assert resp.status_code in (200, 201), f"{event}: {resp.text}"
        message = _one_new(shop, order, after, event)
        _assert_routed(shop, order, message, *_route(event), customer)
        assert shown in message["text"], message["text"]


def test_confirmation_events_reach_sales_production_and_the_customer(shop: Shop) -> None:
    order = shop.create_order("oem", language="en")
    customer = shop.customer(order)
    item = shop.add_confirmation(order["id"])
    after = shop.last_seq(order["conv"])
    resp = shop.call(
        "sales", "POST", f"/api/confirmations/{item}/versions", {"text": "Pantone 19-4052"}
    )
    assert resp.status_code == 201, resp.text
    message = _one_new(shop, order, after, "confirmation_proposed")
    _assert_routed(shop, order, message, *_route("confirmation_proposed"), customer)
    assert "Pantone 19-4052" in message["text"]

    after = shop.last_seq(order["conv"])
    resp = shop.call(
        customer,
        "POST",
        f"/api/confirmations/{item}/versions/1/decision",
        {"decision": "rejected", "comment": "a shade darker please"},
    )
    assert resp.status_code == 200, resp.text
    message = _one_new(shop, order, after, "confirmation_decided")
    _assert_routed(shop, order, message, *_route("confirmation_decided"), customer)
    assert "a shade darker please" in message["text"]


def test_low_stock_alerts_purchasing_in_its_channel_only(shop: Shop) -> None:
    sku = "LOW-ALERT-1"
    seed_skus(shop.server, sku, stock=5, low_stock_threshold=3)
    order = shop.create_order("retail", sku=sku, quantity=3)
    shop.drive(order, "shipped")
    alerts = {
        role: [
            m
            for m in shop.messages_in(conv)
            if (m["meta"] or {}).get("event") == "low_stock"
            and m["meta"]["details"].get("sku") == sku
        ]
        for role, (conv, _) in shop.role_channels().items()
    }
    roles, customer_sees = _route("low_stock")
    assert not customer_sees
    for role, found in alerts.items():
        if Role(role) in roles:
            assert len(found) == 1, f"#{role}: {found}"
            assert found[0]["mentions"] == [f"@{role}"]
            assert sku in found[0]["text"] and "阈值 3" in found[0]["text"]
        else:
            assert found == [], f"low stock reached #{role}"
    events = [m["meta"]["event"] for m in shop.order_events(order["conv"])]
    assert "low_stock" not in events, "stock levels are not the customer's order thread's business"


# Each rule in ROUTES is triggered by a test above; a new rule needs a test here too.
EXERCISED = {
    "out_of_stock",
    "address_change_requested",
    "address_changed",
    "interception_settled",
    "delay_risk",
    "delay_notice",
    "defect_found",
    "defect_resolved",
    "customer_note",
    "payment_received",
    "refund_recorded",
    "ship_approved",
    "invoice_requested",
    "invoice_issued",
    "confirmation_proposed",
    "confirmation_decided",
    "low_stock",
}


def test_every_routing_rule_is_exercised() -> None:
    assert set(ROUTES) == EXERCISED
