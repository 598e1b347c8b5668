"""A shop's own workflow from TOML, order events across a reconnect, and the demo shop."""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path

import httpx
import pytest

from orderchat.client import Client, ClientOptions, MessageReceived, Session, User
from tests.support import Peer, ServerProcess, seed_skus

REPAIR_FLOW = """
name = "repair"
initial = "received"
staff_roles = ["customer_service", "production"]
title = { zh-CN = "维修", en = "Repair" }

[states]
received = { label = { zh-CN = "已收件", en = "Received" } }
repairing = { label = { zh-CN = "维修中", en = "Repairing" } }
returned = { label = { zh-CN = "已寄回", en = "Sent back" }, terminal = true }

[[transitions]]
from = "received"
to = "repairing"
roles = ["production"]
customer = true
text = { zh-CN = "师傅已开始维修 {number}。", en = "We have started repairing {number}." }

[[transitions]]
from = "repairing"
to = "returned"
roles = ["customer_service"]
customer = true
text = { zh-CN = "已修好寄回。", en = "Repaired and sent back." }
"""


def _order(server: ServerProcess, token: str, number: str, workflow: str) -> dict[str, object]:
    resp = httpx.post(
        f"{server.base_url}/api/orders",
        headers=server.auth(token),
        json={
            "number": number,
            "workflow": workflow,
            "customer": {"name": "Ana", "language": "en"},
            "items": [{"sku": "FIX-1", "name": "zip", "quantity": 1, "unit_price_cents": 500}],
        },
        timeout=10,
    )
    assert resp.status_code == 201, resp.text
    order: dict[str, object] = resp.json()
    return order


def test_a_shops_own_workflow_runs_from_a_toml_file(own_server: ServerProcess) -> None:
    (own_server.data_dir / "workflows").mkdir(parents=True)
    (own_server.data_dir / "workflows" / "repair.toml").write_text(REPAIR_FLOW, "utf-8")
    own_server.start()
    own_server.create_admin()
    seed_skus(own_server, "FIX-1")
    desk, workshop = own_server.user("customer_service"), own_server.user("production")

    listed = httpx.get(
        f"{own_server.base_url}/api/workflows", headers=own_server.auth(desk.token), timeout=10
    ).json()["workflows"]
    assert "repair" in {w["name"] for w in listed}

    order = _order(own_server, desk.token, "R-1", "repair")
    assert (order["status"], order["next"]) == ("received", ["repairing"])
    moved = httpx.post(
        f"{own_server.base_url}/api/orders/{order['id']}/status",
        headers=own_server.auth(workshop.token),
        json={"to": "repairing"},
        timeout=10,
    )
    assert moved.status_code == 200, moved.text
    history = httpx.get(
        f"{own_server.base_url}/api/conversations/{order['conv']}/messages",
        headers=own_server.auth(desk.token),
        timeout=10,
    ).json()["messages"]
    assert history[-1]["text"] == "We have started repairing R-1."


def test_a_broken_workflow_file_stops_the_server_with_its_reason(own_server: ServerProcess) -> None:
    (own_server.data_dir / "workflows").mkdir(parents=True)
    broken = REPAIR_FLOW.replace('to = "returned"', 'to = "nowhere"')
    (own_server.data_dir / "workflows" / "repair.toml").write_text(broken, "utf-8")
    with pytest.raises(RuntimeError, match="unknown state 'nowhere'"):
        own_server.start()


async def test_order_events_missed_while_away_arrive_on_resume(server: ServerProcess) -> None:
    seed_skus(server, "FIX-1")
    desk, warehouse = server.user("customer_service"), server.user("warehouse")
    order = _order(server, desk.token, "RESUME-1", "retail")
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
        invite = (
            await http.post(
                f"/api/orders/{order['id']}/invitations", headers=server.auth(desk.token)
            )
        ).json()
        signed = await http.post("/api/auth/invitation", json={"token": invite["token"]})
        customer = signed.json()["token"]

        phone = await Peer.open(server, customer, "phone")
        cursor = phone.welcome["cursor"]
        await phone.close()
        for to, who in (("confirmed", desk), ("picking", warehouse)):
            resp = await http.post(
                f"/api/orders/{order['id']}/status", headers=server.auth(who.token), json={"to": to}
            )
            assert resp.status_code == 200, resp.text

    back = await Peer.open(server, customer, "phone", cursor)
    frames = []
    while (frame := await back.recv())["op"] != "synced":
        frames.append(frame)
    await back.close()
    statuses = [f["order"]["status"] for f in frames if f["op"] == "order"]
    texts = [f["text"] for f in frames if f["op"] == "message"]
    assert statuses == ["confirmed", "picking"]
    assert texts == [
        "Your order RESUME-1 is confirmed; we are getting it ready.",
        "The warehouse has started picking your items.",
    ]
    assert not any(f.get("internal") for f in frames)


def test_demo_seeds_the_store_and_the_factory(tmp_path: Path, store: str) -> None:
    demo = ServerProcess(tmp_path, ("--rate-limits", "off", "--demo"), store=store)
    demo.start()
    try:
        boss = demo.login("boss", "orderchat-demo")["token"]
        with demo.http(boss) as client:
            orders = client.get("/api/orders", params={"limit": 500}).json()["orders"]
            roles = {r for u in client.get("/api/users").json()["users"] for r in u["roles"]}
        retail = {o["status"] for o in orders if o["workflow"] == "retail"}
        factory = {o["status"] for o in orders if o["workflow"] == "oem"}
        skus = demo.db_rows("SELECT category, count(*) FROM skus GROUP BY category")
        items = demo.db_rows("SELECT count(*) FROM confirmation_items")
        lune = next(o for o in orders if o["number"] == "PO-2026-031")
        with demo.http(boss) as client:
            files = client.get(f"/api/orders/{lune['id']}/files").json()["files"]
            drawing = next(f for f in files if f["type"] == "application/pdf")
            drawing_bytes = client.get(drawing["url"]).content
        # The log offers a customer link to the factory's order that opens it.
        link = re.search(
            rf"customer page of PO-2026-031: {re.escape(demo.base_url)}/c#(\S+)",
            demo.log_path.read_text(),
        )
        assert link is not None
        with demo.http() as anonymous:
            signed = anonymous.post("/api/auth/invitation", json={"token": link[1]})
        assert signed.status_code == 200
        assert signed.json()["user"]["id"] == lune["customer"]
    finally:
        demo.stop()
    # The factory's order shows its sample photos and its drawing, in original quality.
    assert sorted(f["message_kind"] for f in files) == ["file", "image", "image"]
    assert drawing_bytes.startswith(b"%PDF")
    assert retail == {
        "placed",
        "confirmed",
        "picking",
        "packed",
        "shipped",
        "in_transit",
        "out_for_delivery",
        "delivered",
        "cancelled",
        "return_requested",
        "returned",
        "refunded",
    }
    assert {"sampling", "sewing"} <= factory
    assert roles == {
        "admin",
        "customer_service",
        "sales",
        "purchasing",
        "warehouse",
        "logistics",
        "finance",
        "production",
        "qc",
    }
    counts = dict(skus)
    assert sum(counts.values()) >= 1000
    assert {"tents", "backpacks", "footwear", "clothing", "climbing"} <= set(counts)
    assert items[0][0] >= 5


async def test_recalling_a_staff_note_is_never_replayed_to_the_customer(
    server: ServerProcess,
) -> None:
    seed_skus(server, "FIX-1")
    desk = server.user("customer_service")
    order = _order(server, desk.token, "RECALL-1", "retail")
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
        invite = (
            await http.post(
                f"/api/orders/{order['id']}/invitations", headers=server.auth(desk.token)
            )
        ).json()
        signed = await http.post("/api/auth/invitation", json={"token": invite["token"]})
    customer = signed.json()["token"]
    phone = await Peer.open(server, customer, "phone")
    customer_cursor = phone.welcome["cursor"]
    await phone.close()

    staff = await Peer.open(server, desk.token, "desk")
    staff_cursor = staff.welcome["cursor"]
    note = await staff.send_text(str(order["conv"]), "margin is thin", "note-1", internal=True)
    await staff.send({"op": "recall", "ref": "recall-1", "conv": order["conv"], "seq": note["seq"]})
    assert (await staff.recv_ack("recall-1"))["op"] == "ack"
    await staff.close()

    async def replay(token: str, cursor: str) -> list[dict[str, object]]:
        peer = await Peer.open(server, token, "again", cursor)
        frames = []
        while (frame := await peer.recv())["op"] != "synced":
            frames.append(frame)
        await peer.close()
        return frames

    seen_by_staff = await replay(desk.token, staff_cursor)
    assert [f["op"] for f in seen_by_staff] == ["message", "recalled"]
    assert await replay(customer, customer_cursor) == []


async def test_a_customers_client_does_not_chase_gaps_left_by_staff_notes(
    server: ServerProcess, caplog: pytest.LogCaptureFixture
) -> None:
    seed_skus(server, "FIX-1")
    desk = server.user("customer_service")
    order = _order(server, desk.token, "GAPS-1", "retail")
    conv = str(order["conv"])
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
        invite = (
            await http.post(
                f"/api/orders/{order['id']}/invitations", headers=server.auth(desk.token)
            )
        ).json()
        signed = (await http.post("/api/auth/invitation", json={"token": invite["token"]})).json()
    me = signed["user"]
    session = Session(
        server.base_url,
        signed["token"],
        User(me["id"], me["username"], me["display_name"], (), me["kind"]),
    )
    staff = await Peer.open(server, desk.token, "desk")
    caplog.set_level(logging.WARNING, logger="orderchat.client")
    async with Client(session, options=ClientOptions(device="phone")) as client:
        for i in range(3):
            await staff.send_text(conv, f"note {i}", f"gap-note-{i}", internal=True)
            await staff.send_text(conv, f"reply {i}", f"gap-reply-{i}")
        seen: list[str] = []
        async with asyncio.timeout(10):
            async for event in client.events():
                if isinstance(event, MessageReceived) and event.message.conv == conv:
                    seen.append(event.message.text)
                    if len(seen) == 3:
                        break
    await staff.close()
    assert seen == ["reply 0", "reply 1", "reply 2"]
    assert "skipped from seq" not in caplog.text


async def test_a_customers_unread_count_skips_staff_notes_past_their_read_mark(
    server: ServerProcess,
) -> None:
    seed_skus(server, "FIX-1")
    desk = server.user("customer_service")
    order = _order(server, desk.token, "UNREAD-1", "retail")
    conv = str(order["conv"])
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
        invite = (
            await http.post(
                f"/api/orders/{order['id']}/invitations", headers=server.auth(desk.token)
            )
        ).json()
        signed = (await http.post("/api/auth/invitation", json={"token": invite["token"]})).json()
        customer = signed["token"]
        staff = await Peer.open(server, desk.token, "desk")
        first = await staff.send_text(conv, "hello", "unread-1")
        await staff.send_text(conv, "staff only", "unread-2", internal=True)
        await staff.send_text(conv, "your parcel", "unread-3")
        await staff.send_text(conv, "staff only again", "unread-4", internal=True)
        await staff.close()

        phone = await Peer.open(server, customer, "phone")
        await phone.send({"op": "read", "conv": conv, "seq": first["seq"]})
        await phone.recv_op("read")  # delivered only once the read mark is committed
        listed = (await http.get("/api/conversations", headers=server.auth(customer))).json()
        await phone.close()
    [summary] = listed["conversations"]
    assert summary["read_seq"] == first["seq"]
    assert summary["unread"] == 1  # "your parcel"; the two staff notes do not count
