"""Web push from a real server to a real push service on loopback, which checks the
VAPID token and opens the payload itself: a customer with the page closed hears of
their order within 2 s in their language; staff-only notes never reach them; an
unread urgent message climbs the ladder for exactly those who have not read it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from tests.order_support import Customer, Shop, expect_error, load_workflow, path_to
from tests.push_service import PushService, Subscription
from tests.support import Peer, ServerProcess

pytestmark = pytest.mark.timeout(90)

POLICY = """
[occasions.order_status]
push = 0
[occasions.direct]
push = 1
[occasions.urgent]
push = 0
[ladder]
escalate_after_s = 1
every_s = 1
reminders = 2
channels = ["push"]
"""


@pytest.fixture(scope="module")
def push_service() -> Iterator[PushService]:
    with PushService() as service:
        yield service


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory, store: str) -> Iterator[Shop]:
    root = tmp_path_factory.mktemp("push")
    (root / "workflows").mkdir()
    (root / "workflows" / "notify.toml").write_text(POLICY)
    server = ServerProcess(
        root,
        ("--rate-limits", "off", "--allow-private-targets", "--shop-name", "Sunny Outdoor"),
        store=store,
    )
    server.start()
    server.create_admin()
    opened = Shop.open(server)
    yield opened
    opened.close()
    server.stop()


def subscribe(shop: Shop, who: str | Customer, push_service: PushService) -> Subscription:
    key = shop.call(who, "GET", "/api/push/key").json()["public_key"]
    sub = push_service.subscribe(application_server_key=key)
    resp = shop.call(who, "POST", "/api/push/subscriptions", sub.to_json())
    assert resp.status_code == 201, resp.text
    return sub


def customer_of(shop: Shop, order: dict[str, Any]) -> Customer:
    link = shop.call("customer_service", "POST", f"/api/orders/{order['id']}/invitations")
    assert link.status_code == 201, link.text
    signed = httpx.post(
        f"{shop.server.base_url}/api/auth/invitation",
        json={"token": link.json()["token"]},
        timeout=10,
    )
    assert signed.status_code == 200, signed.text
    return Customer(order["customer"], signed.json()["token"], order["id"])


def payload(delivery: Any) -> dict[str, Any]:
    found: dict[str, Any] = orjson.loads(delivery.payload)
    return found


async def heard(push_service: PushService, sub: Subscription, words: str) -> dict[str, Any]:
    """The push to `sub` whose body holds `words`, once it is in (bounded)."""
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline:
        for delivery in push_service.deliveries:
            if delivery.subscription_id == sub.id and words in payload(delivery)["body"]:
                return payload(delivery)
        await asyncio.sleep(0.05)
    raise AssertionError(f"no push with {words!r}: {push_service.deliveries}")


async def test_a_customer_with_the_page_closed_hears_of_the_shipping_within_two_seconds(
    shop: Shop, push_service: PushService
) -> None:
    order = shop.drive(shop.create_order(language="en"), "packed")
    customer = customer_of(shop, order)
    sub = subscribe(shop, customer, push_service)
    ship = path_to(load_workflow("retail"), "shipped")[-1]
    started = time.monotonic()
    shipped = await asyncio.to_thread(shop.advance, order, ship)
    shown = await heard(push_service, sub, shipped["tracking_no"])
    assert time.monotonic() - started < 2.0
    assert order["number"] in shown["title"] and "Sunny Outdoor" in shown["title"]
    assert "has picked up your parcel" in shown["body"]  # in the customer's language
    assert shown["url"].startswith(f"/c?order={order['id']}&seq=")
    delivery = next(
        d for d in push_service.deliveries if shipped["tracking_no"] in payload(d)["body"]
    )
    assert delivery.urgency == "normal" and delivery.ttl > 0
    assert delivery.claims["sub"]


async def test_a_staff_only_note_never_reaches_the_customer(
    shop: Shop, push_service: PushService
) -> None:
    order = shop.create_order(language="zh-CN")
    customer = customer_of(shop, order)
    sub = subscribe(shop, customer, push_service)
    staff = await Peer.open(shop.server, shop.staff["customer_service"].token)
    try:
        note = await staff.send_text(order["conv"], "内部：客户很着急", ref="note-1", internal=True)
        assert note["op"] == "ack"
        public = await staff.send_text(order["conv"], "您好，已为您安排", ref="hello-1")
        assert public["op"] == "ack"
    finally:
        await staff.close()
    await heard(push_service, sub, "已为您安排")
    await asyncio.sleep(1.0)
    bodies = [payload(d)["body"] for d in push_service.deliveries if d.subscription_id == sub.id]
    assert not any("内部" in b for b in bodies)


async def test_an_unread_urgent_message_climbs_only_for_who_has_not_read_it(
    shop: Shop, push_service: PushService
) -> None:
    members = [shop.staff["warehouse"].id, shop.staff["qc"].id]
    resp = shop.call(
        "customer_service",
        "POST",
        "/api/conversations",
        {"kind": "channel", "title": f"urgent {time.monotonic_ns()}", "members": members},
    )
    assert resp.status_code == 201, resp.text
    conv = resp.json()["id"]
    wes = subscribe(shop, "warehouse", push_service)
    quinn = subscribe(shop, "qc", push_service)
    sender = await Peer.open(shop.server, shop.staff["customer_service"].token)
    reader = await Peer.open(shop.server, shop.staff["qc"].token)
    try:
        ack = await sender.send_text(conv, "@warehouse 断货了", ref="urgent-1", urgent=True)
        seq = ack["seq"]
        await reader.send({"op": "read", "conv": conv, "seq": seq})
        await reader.recv_op("read")
    finally:
        await sender.close()
        await reader.close()
    climbed = await push_service.wait_for(3, subscription_id=wes.id, timeout_s=8)
    assert [payload(d)["tag"] for d in climbed] == [payload(climbed[0])["tag"]] * 3
    assert all(d.urgency == "high" for d in climbed)
    await asyncio.sleep(1.5)
    heard_by_quinn = [d for d in push_service.deliveries if d.subscription_id == quinn.id]
    assert len(heard_by_quinn) <= 1  # at most the first word, sent before the read
    ladder = shop.call(
        "customer_service", "GET", f"/api/conversations/{conv}/messages/{seq}/reminders"
    )
    assert ladder.status_code == 200, ladder.text
    by_user = {r["user"]: r for r in ladder.json()["recipients"]}
    wes_steps = by_user[shop.staff["warehouse"].id]
    assert not wes_steps["read"]
    assert sorted((d["step"], d["state"]) for d in wes_steps["deliveries"]) == [
        (0, "sent"),
        (1, "sent"),
        (2, "sent"),
    ]
    quinn_steps = by_user[shop.staff["qc"].id]
    assert quinn_steps["read"]
    assert {d["state"] for d in quinn_steps["deliveries"] if d["step"] > 0} == {"cancelled"}
    expect_error(
        shop.call("warehouse", "GET", f"/api/conversations/{conv}/messages/{seq}/reminders"), 403
    )


async def test_a_gone_subscription_is_forgotten_and_sign_out_removes_the_device(
    shop: Shop, push_service: PushService
) -> None:
    server: ServerProcess = shop.server
    pat = shop.staff["purchasing"]
    second = server.login(pat.username, pat.password)["token"]
    sub = subscribe(shop, "purchasing", push_service)
    with server.http(second) as other:
        devices = other.get("/api/me/devices").json()["devices"]
        assert [d["push"] for d in devices if not d["current"]] == [True]
    push_service.make_gone(sub)
    conv = shop.call(
        "sales", "POST", "/api/conversations", {"kind": "direct", "members": [pat.id]}
    ).json()["id"]
    peer = await Peer.open(server, shop.staff["sales"].token)
    try:
        await peer.send_text(conv, "are the buckles in?", ref=f"gone-{time.monotonic_ns()}")
    finally:
        await peer.close()
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        with server.http(second) as other:
            devices = other.get("/api/me/devices").json()["devices"]
        if not any(d["push"] for d in devices):
            break
        await asyncio.sleep(0.2)
    assert not any(d["push"] for d in devices)

    again = subscribe(shop, "purchasing", push_service)
    assert shop.call("purchasing", "POST", "/api/auth/logout").status_code == 204
    with server.http(second) as other:
        devices = other.get("/api/me/devices").json()["devices"]
    assert [d["push"] for d in devices] == [False]
    assert again.id not in {d.subscription_id for d in push_service.deliveries}


def test_a_subscription_with_a_bad_key_is_refused_and_changes_nothing(
    shop: Shop, push_service: PushService
) -> None:
    before = shop.call("finance", "GET", "/api/me/devices").json()
    good = push_service.subscribe().to_json()
    for bad in (
        {**good, "keys": {**good["keys"], "p256dh": "AAAA"}},
        {**good, "keys": {**good["keys"], "auth": "c2hvcnQ"}},
        {**good, "endpoint": "not a url"},
        {**good, "keys": {"p256dh": good["keys"]["p256dh"]}},
        {"endpoint": good["endpoint"]},
    ):
        resp = shop.call("finance", "POST", "/api/push/subscriptions", bad)
        assert resp.status_code == 400, (bad, resp.text)
    expect_error(
        shop.call("finance", "DELETE", "/api/push/subscriptions", {"endpoint": good["endpoint"]}),
        404,
    )
    assert shop.call("finance", "GET", "/api/me/devices").json() == before


async def test_quiet_hours_hold_a_direct_message_but_not_an_urgent_one(
    shop: Shop, push_service: PushService
) -> None:
    # An offset that makes it about noon where this person is, inside 06:00-18:00.
    utc_minute = int(time.time() // 60) % 1440
    offset = (720 - utc_minute + 720) % 1440 - 720
    quiet = {"start": "06:00", "end": "18:00", "utc_offset_min": offset}
    resp = shop.call("production", "PUT", "/api/me/notifications", {"quiet": quiet})
    assert resp.status_code == 200, resp.text
    sub = subscribe(shop, "production", push_service)
    conv = shop.call(
        "sales",
        "POST",
        "/api/conversations",
        {"kind": "direct", "members": [shop.staff["production"].id]},
    ).json()["id"]
    peer = await Peer.open(shop.server, shop.staff["sales"].token)
    try:
        await peer.send_text(conv, "when is the sample ready?", ref=f"q-{time.monotonic_ns()}")
        await asyncio.sleep(2.5)  # its push was due after 1 s: held by the quiet hours
        assert not [d for d in push_service.deliveries if d.subscription_id == sub.id]
        await peer.send_text(
            conv, "the brand is waiting", ref=f"u-{time.monotonic_ns()}", urgent=True
        )
    finally:
        await peer.close()
    shown = await heard(push_service, sub, "the brand is waiting")
    assert shown["tag"].startswith("urgent-")
    bodies = [payload(d)["body"] for d in push_service.deliveries if d.subscription_id == sub.id]
    assert not any("sample ready" in b for b in bodies)


async def test_messages_to_someone_away_merge_into_one_push_and_a_read_cancels_it(
    shop: Shop, push_service: PushService
) -> None:
    """Three messages within the push's delay make one push that counts them; the
    outbox holds one row for them, and messages read before their push is due are
    never pushed at all."""
    sub = subscribe(shop, "logistics", push_service)
    conv = shop.call(
        "sales",
        "POST",
        "/api/conversations",
        {"kind": "direct", "members": [shop.staff["logistics"].id]},
    ).json()["id"]
    sender = await Peer.open(shop.server, shop.staff["sales"].token)
    reader = await Peer.open(shop.server, shop.staff["logistics"].token)
    try:
        for n, words in enumerate(("pallets at gate 3", "truck at 4 pm", "bring the forms")):
            assert (await sender.send_text(conv, words, ref=f"m-{n}"))["op"] == "ack"
        shown = await heard(push_service, sub, "bring the forms")
        assert "3 new messages" in shown["title"] or "3 条新消息" in shown["title"]
        await asyncio.sleep(1.5)  # anything else due would have come by now
        mine = [d for d in push_service.deliveries if d.subscription_id == sub.id]
        assert len(mine) == 1, [payload(d) for d in mine]

        for n, words in enumerate(("seen this one", "and this one")):
            last = await sender.send_text(conv, words, ref=f"r-{n}")
        await reader.send({"op": "read", "conv": conv, "seq": last["seq"]})
        await reader.recv_op("read")
    finally:
        await sender.close()
        await reader.close()
    await asyncio.sleep(2.0)  # their push was due 1 s after them
    mine = [d for d in push_service.deliveries if d.subscription_id == sub.id]
    assert len(mine) == 1, [payload(d) for d in mine]


async def test_a_call_rings_a_closed_page_by_push_and_the_ring_is_quieted_when_it_stops(
    shop: Shop, push_service: PushService
) -> None:
    order = shop.create_order(language="en")
    customer = customer_of(shop, order)
    sub = subscribe(shop, customer, push_service)
    seller = await Peer.open(shop.server, shop.staff["customer_service"].token)
    buyer = await Peer.open(shop.server, customer.token)
    try:
        invite = {"op": "call_invite", "ref": "ring-1", "conv": order["conv"], "media": "video"}
        await seller.send({**invite, "users": [customer.id]})
        call = (await seller.recv_op("call"))["call"]
        (ring,) = await push_service.wait_for(1, subscription_id=sub.id, timeout_s=6)
        shown = payload(ring)
        assert shown["ring"] is True and shown["tag"] == f"call-{call}"
        assert "is calling you (video)" in shown["title"]  # the customer's language
        assert order["number"] in shown["body"]
        assert shown["url"] == f"/c?order={order['id']}"
        assert ring.urgency == "high" and 0 < ring.ttl <= 30
        await buyer.send({"op": "call_decline", "ref": "no-1", "call": call})
        answer = await buyer.recv_op("call")
        while answer.get("ref") != "no-1":
            answer = await buyer.recv_op("call")
        assert answer["state"] == "ended"
        stopped = await push_service.wait_for(2, subscription_id=sub.id, timeout_s=6)
        quiet = payload(stopped[1])
        assert quiet["quiet"] is True and quiet["tag"] == f"call-{call}" and "ring" not in quiet
    finally:
        await seller.close()
        await buyer.close()
