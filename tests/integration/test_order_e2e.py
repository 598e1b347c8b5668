"""End to end over real sockets: staff move an order from creation to delivery while
the customer's own client, signed in through the invitation link, watches.

The customer must receive every push, in order, and nothing staff-only: each
`order` event the server stored for the conversation, and each customer-visible
message, compared against the database file after the run. A second customer,
connected throughout, receives nothing of it.

The retail run uses the SDK (`orderchat.client`); the OEM run, with its sample
rounds and a QC rework the customer is not told about, uses a raw WebSocket.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from orderchat.client import (
    Client,
    ClientOptions,
    Message,
    MessageReceived,
    OrderChanged,
    Session,
    User,
)
from orderchat.client import Event as ClientEvent
from orderchat.core.workflows import Transition
from tests.order_support import (
    Customer,
    Json,
    Shop,
    expected_text,
    load_workflow,
)
from tests.support import PeerPool, Recorder

pytestmark = pytest.mark.timeout(90)

WAIT_S = 15.0
OPTIONS = ClientOptions(
    device="customer-phone",
    connect_timeout_s=10.0,
    heartbeat_interval_s=1.0,
    dead_after_s=5.0,
    backoff_initial_s=0.05,
    backoff_max_s=0.5,
)
# Events that only staff may ever see in an order's conversation.
STAFF_ONLY = {"customer_note", "delay_risk", "payment_received", "ship_approved", "out_of_stock"}


@pytest.fixture(scope="module")
def shop(order_shop: Shop) -> Shop:
    return order_shop


def _head(shop: Shop) -> int:
    return int(shop.server.db_rows("SELECT coalesce(max(pos), 0) FROM events")[0][0])


def _stored_order_events(shop: Shop, conv: str, after_pos: int) -> list[Json]:
    rows = shop.server.db_rows(
        "SELECT payload FROM events WHERE conv_id = ? AND kind = 'order' AND pos > ? ORDER BY pos",
        conv,
        after_pos,
    )
    return [json.loads(r[0])["order"] for r in rows]


# What the staff's view of an order has and the customer's has not: finance's
# decision to let it ship unpaid, and whether it is under legal hold.
STAFF_ORDER_FIELDS = {"ship_approved", "legal_hold"}


def _as_customer_sees(stored: list[Json]) -> list[Json]:
    """Stored order events are the staff view; the customer gets it without the staff's fields."""
    assert all(o.keys() >= STAFF_ORDER_FIELDS for o in stored)
    return [{k: v for k, v in o.items() if k not in STAFF_ORDER_FIELDS} for o in stored]


def _stored_public_seqs(shop: Shop, conv: str, after_seq: int) -> list[int]:
    return [m["seq"] for m in shop.messages_in(conv, after_seq) if not m["internal"]]


# A step that takes photos: the mover uploads one when the step comes.
PHOTO: Json = {"photos": "one of the mover's own"}


def _with_photos(shop: Shop, order: Json, role: str, extra: Json) -> Json:
    if extra.get("photos") != PHOTO["photos"]:
        return extra
    return {**extra, "photos": [shop.photo(order, role)]}


async def _step(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """A blocking staff call, off the event loop so the customer's socket keeps reading."""
    return await asyncio.to_thread(fn, *args, **kwargs)


async def _wait(condition: Callable[[], bool], what: str, timeout_s: float = WAIT_S) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def _session(shop: Shop, customer: Customer) -> Session:
    me = shop.call(customer, "GET", "/api/me").json()
    user = User(id=me["id"], username=me["username"], display_name=me["display_name"], roles=())
    return Session(base_url=shop.server.base_url, token=customer.token, user=user)


async def test_retail_order_reaches_the_customers_client_step_by_step(shop: Shop) -> None:
    workflow = load_workflow("retail")
    order = await _step(shop.create_order, "retail", language="en", note="leave at the door")
    customer = await _step(shop.customer, order)
    bystander_order = await _step(shop.create_order, "retail")
    bystander = await _step(shop.customer, bystander_order)

    # (target, role, extra) — the whole road, including a second hub scan.
    road: list[tuple[str, str, Json]] = [
        ("confirmed", "customer_service", {}),
        ("picking", "warehouse", {}),
        ("packed", "warehouse", PHOTO),
        ("shipped", "logistics", {"carrier": "SF Express", "tracking_no": "SF1234567890"}),
        ("in_transit", "logistics", {"note": "arrived at the Shanghai hub"}),
        ("in_transit", "logistics", {"note": "left the Hangzhou hub"}),
        ("out_for_delivery", "logistics", {}),
        ("delivered", "logistics", PHOTO),
    ]

    received: list[ClientEvent] = []
    async with PeerPool(shop.server) as peers:
        watcher = await peers.record(bystander.token, "bystander")
        async with Client(_session(shop, customer), options=OPTIONS) as client:
            head = _head(shop)
            start_seq = shop.last_seq(order["conv"])

            async def read() -> None:
                async for event in client.events():
                    received.append(event)

            reader = asyncio.create_task(read())
            try:
                current = order
                for target, role, extra in road:
                    if target == "shipped":
                        await _step(shop.record_payment, order["id"])
                    if target == "in_transit" and current["status"] == "shipped":
                        # Staff-only: a delay risk for customer service …
                        resp = await _step(
                            shop.call,
                            "logistics",
                            "POST",
                            f"/api/orders/{order['id']}/issues",
                            {"kind": "delay_risk", "reason": "fog on the highway", "eta": "Fri"},
                        )
                        assert resp.status_code == 201, resp.text
                        # … who then tells the customer.
                        resp = await _step(
                            shop.call,
                            "customer_service",
                            "POST",
                            f"/api/orders/{order['id']}/issues",
                            {"kind": "delay_notice", "reason": "fog", "eta": "Friday"},
                        )
                        assert resp.status_code == 201, resp.text
                    body = await _step(_with_photos, shop, order, role, extra)
                    resp = await _step(shop.move, order["id"], target, role, **body)
                    assert resp.status_code == 200, f"{target}: {resp.text}"
                    current = resp.json()

                ack = await client.send(order["conv"], "Got it, thank you!")
                assert ack.seq > 0

                def delivered() -> bool:
                    changed = [e for e in received if isinstance(e, OrderChanged)]
                    texts = [
                        e.message
                        for e in received
                        if isinstance(e, MessageReceived) and e.message.seq == ack.seq
                    ]
                    return bool(changed) and changed[-1].status == "delivered" and bool(texts)

                await _wait(delivered, "the delivered push and the customer's own message")
            finally:
                reader.cancel()
                await asyncio.gather(reader, return_exceptions=True)
        # The bystander's own order moves last: once that reaches them, anything of the
        # other order that was going to reach them would have come before it.
        await _step(shop.move, bystander_order["id"], "confirmed", "customer_service")
        await watcher.wait_for(lambda f: f.get("op") == "order", WAIT_S)
        await watcher.barrier()
        bystander_frames = list(watcher.frames)

    # Every `order` event stored for the conversation reached the customer, in order.
    changes = [e for e in received if isinstance(e, OrderChanged)]
    stored = _stored_order_events(shop, order["conv"], head)
    assert [dict(e.order) for e in changes] == _as_customer_sees(stored)
    # A payment changes the order too, so a status may show more than once in a row.
    assert _collapse([e.status for e in changes]) == _collapse([t for t, _, _ in road])
    versions = [int(str(e.order["version"])) for e in changes]
    assert versions == sorted(set(versions)), "an order event came out of order or twice"
    assert all(e.conv == order["conv"] for e in changes)

    # Every message the customer may see, in seq order, and nothing staff-only.
    messages = [e.message for e in received if isinstance(e, MessageReceived)]
    assert all(m.conv == order["conv"] for m in messages), "another conversation leaked in"
    assert [m.seq for m in messages] == _stored_public_seqs(shop, order["conv"], start_seq)
    events = [_event(m) for m in messages]
    assert not STAFF_ONLY.intersection(events), events
    for m in messages:
        assert "fog on the highway" not in m.text and "leave at the door" not in m.text

    pushes = [m for m in messages if _event(m) == "status_changed"]
    assert [_details(m)["to"] for m in pushes] == [t for t, _, _ in road]
    final = shop.get_order(order["id"])
    for message, (target, _, extra) in zip(pushes, road, strict=True):
        transition = workflow.transition(str(_details(message)["from"]), target)
        assert transition.customer
        assert message.kind == "order_event"
        assert message.text == expected_text(transition, final, "en", str(extra.get("note", "")))
    texts = [m.text for m in pushes]
    assert "SF Express has picked up your parcel, tracking number SF1234567890." in texts
    assert "In transit: arrived at the Shanghai hub" in texts
    notices = [m for m in messages if _event(m) == "delay_notice"]
    assert [m.text for m in notices] == [
        "Sorry, your order is delayed: fog. New estimated date: Friday."
    ]

    # The customer's own words are in the thread, for staff to read.
    staff_view = shop.call(
        "customer_service", "GET", f"/api/conversations/{order['conv']}/messages"
    )
    assert "Got it, thank you!" in [m["text"] for m in staff_view.json()["messages"]]

    # The other customer, connected all along, saw none of it.
    assert {f.get("conv") for f in bystander_frames if "conv" in f} == {bystander_order["conv"]}
    assert order["conv"] not in json.dumps(bystander_frames)
    assert order["number"] not in json.dumps(bystander_frames, ensure_ascii=False)


def _oem_road() -> list[tuple[str, str, Json]]:
    return [
        ("quoting", "sales", {}),
        ("sampling", "sales", {}),
        ("sampling", "production", {"note": "softer collar"}),
        ("sample_approved", "sales", {}),
        ("material_arrived", "purchasing", {}),
        ("cutting", "production", {}),
        ("sewing", "production", PHOTO),
        ("qc", "production", {}),
        ("sewing", "qc", {"note": "uneven hems on 40 pieces", **PHOTO}),  # rework: staff only
        ("qc", "production", {}),
        ("packing", "qc", PHOTO),
        ("shipped", "warehouse", {"carrier": "COSCO", "tracking_no": "COSU7654321"}),
        ("delivered", "logistics", {}),
    ]


async def test_oem_order_through_sample_rounds_to_delivery_on_a_raw_socket(shop: Shop) -> None:
    workflow = load_workflow("oem")
    order = await _step(shop.create_order, "oem", language="zh-CN")
    customer = await _step(shop.customer, order)
    road = _oem_road()

    async with PeerPool(shop.server) as peers:
        peer: Recorder = await peers.record(customer.token, "brand-laptop")
        head = _head(shop)
        start_seq = shop.last_seq(order["conv"])
        item = await _step(shop.add_confirmation, order["id"])
        current = order
        for target, role, extra in road:
            if target == "sample_approved":
                # Production waits for the customer's approval of the sample.
                resp = await _step(shop.move, order["id"], target, role)
                assert resp.status_code == 409, resp.text
                await _step(shop.approve_confirmation, item, customer)
            if target == "shipped":
                await _step(shop.record_payment, order["id"])
            body = await _step(_with_photos, shop, order, role, extra)
            resp = await _step(shop.move, order["id"], target, role, **body)
            assert resp.status_code == 200, f"{current['status']} -> {target}: {resp.text}"
            current = resp.json()

        def done() -> bool:
            return any(
                f.get("op") == "message"
                and f.get("meta", {}).get("details", {}).get("to") == "delivered"
                for f in peer.frames
            )

        await _wait(done, "the delivered push")
        await peer.barrier()
        frames = list(peer.frames)

    assert current["status"] == "delivered"
    assert current["sample_round"] == 2
    assert not [f for f in frames if f.get("internal")], "a staff-only frame reached the customer"
    assert {f["conv"] for f in frames if "conv" in f} == {order["conv"]}

    orders = [f["order"] for f in frames if f.get("op") == "order"]
    assert orders == _as_customer_sees(_stored_order_events(shop, order["conv"], head))
    assert orders[-1]["status"] == "delivered"

    messages = [f for f in frames if f.get("op") == "message"]
    assert [m["seq"] for m in messages] == _stored_public_seqs(shop, order["conv"], start_seq)
    pushes = [m for m in messages if m["meta"]["event"] == "status_changed"]
    told: list[tuple[str, Transition, Json]] = []
    state = workflow.initial
    for target, _, extra in road:
        transition = workflow.transition(state, target)
        if transition.customer:
            told.append((state, transition, extra))
        state = target
    assert [(m["meta"]["details"]["from"], m["meta"]["details"]["to"]) for m in pushes] == [
        (source, t.target) for source, t, _ in told
    ]
    rounds = [m["text"] for m in pushes if m["meta"]["details"]["to"] == "sampling"]
    assert rounds == [
        "报价已确认，第 1 版样品开始制作。",
        "根据您的意见，第 2 版样品开始制作。softer collar",
    ]
    assert "货物已发出：COSCO，运单号 COSU7654321。" in [m["text"] for m in pushes]
    everything = json.dumps(frames, ensure_ascii=False)
    assert "uneven hems" not in everything, "the QC rework note reached the customer"
    assert all(m["text"] for m in messages)
    events = {m["meta"].get("event") for m in messages if m.get("meta")}
    assert not STAFF_ONLY & events, events


def _collapse(values: list[str]) -> list[str]:
    return [v for i, v in enumerate(values) if i == 0 or v != values[i - 1]]


def _event(message: Message) -> str:
    return str((message.meta or {}).get("event", ""))


def _details(message: Message) -> Mapping[str, Any]:
    details = (message.meta or {}).get("details")
    assert isinstance(details, dict), message
    return details
