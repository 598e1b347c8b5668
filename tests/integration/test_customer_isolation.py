"""A customer reaches nothing of anyone else's, through any route the server has.

The routes come from the server's own OpenAPI document, so a route added
later is covered without touching this test; one the test cannot fill in
fails it until someone decides what a customer may do there.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from tests import media_samples
from tests.media_support import metadata, raw_upload
from tests.order_support import SKU, Customer, Shop, assert_unchanged
from tests.support import Peer

Json = dict[str, Any]


@pytest.fixture(scope="module")
def shop(order_shop: Shop) -> Shop:
    return order_shop


# Routes a customer uses for themselves; checked below to answer only with their own data.
OWN = {
    ("GET", "/api/me"),
    ("GET", "/api/conversations"),
    ("GET", "/api/orders"),
    ("GET", "/api/users"),
    ("GET", "/api/workflows"),
    ("GET", "/healthz"),
}
# A person's own notification choices, devices and this device's push subscription:
# about nobody else (tests/integration/test_notify_*.py try them).
SELF = {
    ("GET", "/api/me/notifications"),
    ("PUT", "/api/me/notifications"),
    ("GET", "/api/me/devices"),
    ("GET", "/api/push/key"),
    ("POST", "/api/push/subscriptions"),
    ("DELETE", "/api/push/subscriptions"),
    # ICE servers with this person's own TURN credential; with `?call=` only for a call
    # they are in (tests/integration/test_calls.py asks for a staff-only one).
    ("GET", "/api/calls/ice-servers"),
    # Their own consults and orders, a consult of their own, a link to their own device
    # (tests/integration/test_consults.py tries each against other visitors').
    ("GET", "/api/me/consults"),
    ("POST", "/api/consults"),
    ("POST", "/api/consults/email-link"),
    # The shop's catalogue cards and product photos: the same for everyone.
    ("GET", "/api/products/{sku}"),
    ("GET", "/api/products/{sku}/picture"),
}
# Routes with no customer in play: signing in and out, and the platforms' signed webhook.
NOT_APPLICABLE = {
    ("POST", "/api/auth/cookie"),
    ("POST", "/api/auth/invitation"),
    ("POST", "/api/auth/login"),
    ("POST", "/api/auth/logout"),
    ("POST", "/api/auth/logout-all"),
    ("POST", "/api/webhooks/orders"),
    ("POST", "/api/staff-links/check"),  # opened by a person with no session yet
    ("POST", "/api/staff-links/accept"),
    ("OPTIONS", "/api/uploads"),  # what the upload protocol supports: the same for all
    ("POST", "/api/consults/start"),  # a new visitor, with no session yet
    ("POST", "/api/auth/visitor-link"),
}
# Plausible queries and bodies, so that a refusal comes from who is asking, not the shape.
QUERIES: dict[tuple[str, str], str] = {
    ("GET", "/api/presence"): "?users=u_someone",
    # Searching is everyone's own; narrowed to their order it is refused.
    ("GET", "/api/search"): "?q=order&order={order_id}",
    # An admin's check of their order's hash chain: the route is for admins alone.
    ("GET", "/api/admin/verify"): "?conv={conv_id}",
}
BODIES: dict[tuple[str, str], object] = {
    ("POST", "/api/conversations"): {"kind": "channel", "title": "mine", "members": []},
    ("POST", "/api/conversations/{conv_id}/members"): {"members": []},
    ("PATCH", "/api/conversations/{conv_id}"): {"title": "mine now"},
    ("POST", "/api/conversations/{conv_id}/settings"): {"pinned": True},
    ("PATCH", "/api/orders/{order_id}"): {"note": "mine now"},
    ("POST", "/api/admin/webhooks"): {"url": "https://hooks.example/x", "topics": ["order.status"]},
    ("PUT", "/api/admin/webhooks/{endpoint_id}"): {
        "url": "https://hooks.example/x",
        "topics": ["order.status"],
    },
    ("POST", "/api/orders/{order_id}/status"): {"to": "in_transit"},
    ("POST", "/api/orders/{order_id}/legal-hold"): {"hold": False},
    ("PUT", "/api/admin/retention"): {"kind": "order", "days": 1},
    ("POST", "/api/orders/{order_id}/issues"): {"kind": "delay_notice", "reason": "x"},
    ("POST", "/api/orders/{order_id}/issues/{issue_id}/settle"): {"outcome": "refund"},
    ("POST", "/api/orders/{order_id}/address"): {"address": {"city": "Nowhere", "line1": "1"}},
    ("POST", "/api/orders/{order_id}/payments"): {
        "amount_cents": 100,
        "method": "cash",
        "reference": "r",
    },
    ("POST", "/api/orders/{order_id}/refunds"): {
        "amount_cents": 100,
        "method": "cash",
        "reference": "r",
    },
    ("POST", "/api/orders/{order_id}/invoice"): {"title": "Mine Ltd"},
    ("POST", "/api/orders/{order_id}/invoice/issue"): {"number": "INV-1"},
    ("POST", "/api/orders/{order_id}/confirmations"): {"kind": "colour", "title": "c"},
    ("POST", "/api/confirmations/{item_id}/versions"): {"text": "v"},
    ("POST", "/api/confirmations/{item_id}/versions/{number}/decision"): {
        "decision": "approved",
        "comment": "ok",
    },
    ("POST", "/api/skus"): {
        "sku": "X-1",
        "name_zh": "x",
        "name_en": "x",
        "category": "x",
        "unit_price_cents": 1,
        "low_stock_threshold": 0,
    },
    ("PATCH", "/api/skus/{sku}"): {"name_en": "renamed"},
    ("POST", "/api/stock/movements"): {
        "sku": SKU,
        "kind": "purchase_in",
        "quantity": 1,
        "reason": "r",
    },
    ("POST", "/api/users"): {"username": "sneaky", "password": "pw", "roles": ["admin"]},
    ("POST", "/api/admin/staff"): {
        "username": "sneaky",
        "password": "sneaky-passphrase",
        "roles": ["admin"],
    },
    ("POST", "/api/admin/invitations"): {"username": "sneaky", "roles": ["admin"]},
    ("PUT", "/api/admin/staff/{username}/roles"): {"roles": ["qc"]},
    ("POST", "/api/consults/{consult_id}/transfer"): {"to_role": "sales"},
    ("POST", "/api/consults/{consult_id}/order"): {
        "number": "MINE-2",
        "items": [{"sku": SKU, "quantity": 1, "unit_price_cents": 1}],
    },
    ("POST", "/api/conversations/{conv_id}/products"): {"sku": SKU},
    ("PUT", "/api/products/{sku}/options"): {"options": []},
    ("POST", "/api/orders"): {
        "number": "MINE-1",
        "customer": {"name": "me"},
        "items": [{"sku": SKU, "quantity": 1, "unit_price_cents": 1}],
    },
}


def _routes(shop: Shop) -> list[tuple[str, str]]:
    spec = shop.call("admin", "GET", "/openapi.json").json()
    return sorted((m.upper(), p) for p, ops in spec["paths"].items() for m in ops)


def _someone_elses(shop: Shop) -> tuple[Json, dict[str, str]]:
    """An oem order of another customer's, with an issue and a confirmation item."""
    theirs = shop.create_order("oem")
    issue = shop.call(
        "production",
        "POST",
        f"/api/orders/{theirs['id']}/issues",
        {"kind": "delay_risk", "reason": "a late hide"},
    )
    item = shop.call(
        "sales",
        "POST",
        f"/api/orders/{theirs['id']}/confirmations",
        {"kind": "colour", "title": "colour"},
    )
    version = shop.call(
        "sales", "POST", f"/api/confirmations/{item.json()['id']}/versions", {"text": "caramel"}
    )
    assert {issue.status_code, item.status_code, version.status_code} == {201}, (
        issue.text,
        item.text,
        version.text,
    )
    with shop.server.http(shop.staff["sales"].token) as http:
        upload_id = raw_upload(http, theirs["conv"], media_samples.png(), "theirs.png", "image/png")
    hook = shop.call(
        "admin",
        "POST",
        "/api/admin/webhooks",
        {"url": "https://hooks.example/isolation", "topics": ["order.status"]},
    )
    assert hook.status_code == 201, hook.text
    started = shop.call(None, "POST", "/api/consults/start", {"name": "别人", "text": "在吗"})
    assert started.status_code == 201, started.text
    ids = {
        "consult_id": started.json()["consult"]["id"],
        "visitor_id": started.json()["user"]["id"],
        "call_id": _a_call_in(shop, theirs["conv"]),
        "endpoint_id": hook.json()["id"],
        "upload_id": upload_id,
        "media_id": upload_id,
        "made": "preview",
        "order_id": theirs["id"],
        "conv_id": theirs["conv"],
        "customer_id": theirs["customer"],
        "user_id": theirs["customer"],
        "issue_id": issue.json()["id"],
        "item_id": item.json()["id"],
        "number": "1",
        "seq": "1",
        "sku": SKU,
        "username": shop.staff["sales"].username,
    }
    return theirs, ids


def _a_call_in(shop: Shop, conv: str) -> str:
    """A call in their order: started by its staff over the WebSocket, then cancelled."""

    async def call() -> str:
        staff = await Peer.open(shop.server, shop.staff["sales"].token)
        try:
            await staff.send({"op": "call_invite", "ref": "i1", "conv": conv, "media": "audio"})
            started = await staff.recv_op("call")
            await staff.send({"op": "call_hangup", "ref": "h1", "call": started["call"]})
            await staff.recv_op("call")
            return str(started["call"])
        finally:
            await staff.close()

    return asyncio.run(call())


def _fill(path: str, ids: dict[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name in ids, f"no value for {{{name}}} in {path}: teach this test about it"
        return ids[name]

    return re.sub(r"\{(\w+)\}", one, path)


def _upload_headers(method: str, conv: str) -> dict[str, str]:
    """Well-formed upload requests, so that a refusal is about whose upload it is."""
    headers = {"Tus-Resumable": "1.0.0"}
    if method == "POST":
        headers["Upload-Length"] = "10"
        headers["Upload-Metadata"] = metadata(conv=conv, filename="mine.txt")
    if method == "PATCH":
        headers["Upload-Offset"] = "0"
        headers["Content-Type"] = "application/offset+octet-stream"
    return headers


def test_every_route_refuses_a_customer_anything_of_someone_elses(shop: Shop) -> None:
    mine = shop.create_order("retail")
    me: Customer = shop.customer(mine)
    theirs, ids = _someone_elses(shop)
    routes = _routes(shop)
    unknown = [
        r
        for r in routes
        if r not in OWN | SELF | NOT_APPLICABLE
        and r[0] not in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
    ]
    assert unknown == []

    before = shop.server.db_snapshot()
    answered: dict[tuple[str, str], int] = {}
    for method, path in routes:
        if (method, path) in OWN | SELF | NOT_APPLICABLE:
            continue
        if path.startswith("/api/uploads"):  # the upload protocol speaks in headers
            headers = _upload_headers(method, theirs["conv"])
            resp = shop.client(me).request(method, _fill(path, ids), headers=headers)
        else:
            body = BODIES.get((method, path), {} if method not in ("GET", "HEAD") else None)
            target = _fill(path + QUERIES.get((method, path), ""), ids)
            resp = shop.call(me, method, target, body)
        answered[(method, path)] = resp.status_code
        assert theirs["number"] not in resp.text, f"{method} {path} leaked: {resp.text[:200]}"
    assert_unchanged(before, shop.server.db_snapshot())
    # Refused for who is asking, not for the shape of the request.
    wrong = {k: v for k, v in answered.items() if v not in (403, 404)}
    assert wrong == {}, f"routes that did not refuse a customer outright: {wrong}"
    assert len(answered) >= 30


def test_a_customers_own_routes_show_only_their_own(shop: Shop) -> None:
    mine = shop.create_order("retail")
    me = shop.customer(mine)
    theirs, _ = _someone_elses(shop)
    for method, path in sorted(OWN):
        resp = shop.call(me, method, path)
        assert resp.status_code == 200, (path, resp.text)
        assert theirs["number"] not in resp.text, f"{path} leaked another customer's order"
        assert theirs["conv"] not in resp.text
    listed = shop.call(me, "GET", "/api/orders").json()["orders"]
    assert [o["id"] for o in listed] == [mine["id"]]


def test_a_customer_knows_the_names_of_the_people_they_talk_to_only(shop: Shop) -> None:
    mine = shop.create_order("retail")
    me = shop.customer(mine)
    theirs, _ = _someone_elses(shop)
    conv = shop.call("admin", "GET", f"/api/conversations/{mine['conv']}").json()
    listed = shop.call(me, "GET", "/api/users").json()["users"]
    assert {u["id"] for u in listed} == set(conv["members"])
    assert theirs["customer"] not in {u["id"] for u in listed}
    assert all("username" not in u and u["display_name"] for u in listed)
    staff = shop.call("sales", "GET", "/api/users").json()["users"]
    assert all(u["kind"] == "staff" and u["username"] for u in staff)
