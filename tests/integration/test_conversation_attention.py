"""What the conversation list tells a person beyond unread counts: the urgent
marker until someone handles it, and the flags of the list's filters."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.order_support import SKU, Json, Shop
from tests.support import Account, Peer, PeerPool, ServerProcess

_EXTRA_TABLES = ("member_settings", "urgent_handled")


def _snapshot(server: ServerProcess) -> dict[str, list[tuple[Any, ...]]]:
    found = server.db_snapshot()
    for table in _EXTRA_TABLES:
        found[table] = sorted(server.db_rows(f"SELECT * FROM {table}"), key=repr)
    return found


def _listed(server: ServerProcess, token: str, conv: str) -> Json:
    with server.http(token, language="en") as client:
        answer = client.get("/api/conversations")
    assert answer.status_code == 200, answer.text
    found: Json = next(c for c in answer.json()["conversations"] if c["id"] == conv)
    return found


def _flags(server: ServerProcess, token: str, conv: str) -> dict[str, bool]:
    flags: dict[str, bool] = _listed(server, token, conv)["flags"]
    return flags


def _handle(server: ServerProcess, who: Account, conv: str, seq: int) -> httpx.Response:
    with server.http(who.token, language="en") as client:
        return client.post(f"/api/conversations/{conv}/messages/{seq}/handled")


async def test_an_urgent_message_stays_marked_after_reading_until_someone_handles_it(
    server: ServerProcess,
) -> None:
    amy, wes = server.user("customer_service"), server.user("warehouse")
    conv = server.conversation(amy, "direct", [wes])["id"]
    async with PeerPool(server) as pool:
        sender = await pool.open(amy.token)
        amy_rec, wes_rec = await pool.record(amy.token), await pool.record(wes.token)
        urgent = await sender.send_text(conv, "客户在门口等！", "hu-1", urgent=True)
        start_cursor = (await wes_rec.wait_for(lambda f: f["op"] == "message"))["cursor"]
        await wes_rec.send({"op": "read", "conv": conv, "seq": urgent["seq"]})
        await wes_rec.wait_for(lambda f: f["op"] == "read" and f["user"] == wes.id)
        theirs = _listed(server, wes.token, conv)
        assert (theirs["unread"], theirs["unread_urgent"], theirs["urgent_open"]) == (0, 0, 1)
        assert theirs["flags"]["needs_me"] is True
        assert _listed(server, amy.token, conv)["urgent_open"] == 1
        assert _flags(server, amy.token, conv)["needs_me"] is False  # her own

        handled = _handle(server, wes, conv, urgent["seq"])
        assert handled.status_code == 200, handled.text
        body = handled.json()
        assert (body["conv"], body["seq"], body["by"]) == (conv, urgent["seq"], wes.id)
        for rec in (amy_rec, wes_rec):
            event = await rec.wait_for(lambda f: f["op"] == "handled")
            assert (event["seq"], event["by"], event["ts"]) == (urgent["seq"], wes.id, body["ts"])
            assert isinstance(event["cursor"], str)
        for who in (amy, wes):
            assert _listed(server, who.token, conv)["urgent_open"] == 0
            assert _flags(server, who.token, conv)["needs_me"] is False
        with server.http(amy.token, language="en") as client:
            listed = client.get(f"/api/conversations/{conv}/urgent").json()["urgent"]
        assert listed == [
            {
                "seq": urgent["seq"],
                "sender": amy.id,
                "ts": urgent["ts"],
                "handled": True,
                "handled_by": wes.id,
                "handled_ts": body["ts"],
            }
        ]
        # Durable: a device that was away gets it on resume.
        replay = await Peer.open(server, amy.token, cursor=start_cursor)
        try:
            seen = []
            while (frame := await replay.recv())["op"] != "synced":
                seen.append(frame)
            assert [f["by"] for f in seen if f["op"] == "handled"] == [wes.id]
        finally:
            await replay.close()

        # Handling it again is a conflict that changes nothing.
        before = _snapshot(server)
        again = _handle(server, amy, conv, urgent["seq"])
        assert again.status_code == 409, again.text
        assert "already" in again.json()["error"]["message"]
        assert _snapshot(server) == before


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("plain", 409),
        ("recalled", 409),
        ("beyond", 404),
        ("zero", 400),
        ("outsider", 403),
        ("no-conversation", 404),
    ],
)
async def test_bad_handled_requests_change_nothing(
    server: ServerProcess, case: str, status: int
) -> None:
    amy, wes, eve = (server.user("customer_service") for _ in range(3))
    conv = server.conversation(amy, "channel", [wes], title="Urgent desk")["id"]
    peer = await Peer.open(server, amy.token)
    try:
        plain = await peer.send_text(conv, "fyi", f"{case}-plain")
        urgent = await peer.send_text(conv, "now!", f"{case}-urgent", urgent=True)
        if case == "recalled":
            recall = {"op": "recall", "ref": f"{case}-r", "conv": conv, "seq": urgent["seq"]}
            await peer.send(recall)
            assert (await peer.recv_ack(f"{case}-r"))["op"] == "ack"
    finally:
        await peer.close()
    who, target, seq = {
        "plain": (wes, conv, plain["seq"]),
        "recalled": (wes, conv, urgent["seq"]),
        "beyond": (wes, conv, urgent["seq"] + 5),
        "zero": (wes, conv, 0),
        "outsider": (eve, conv, urgent["seq"]),
        "no-conversation": (wes, "c_nosuchthing", 1),
    }[case]
    before = _snapshot(server)
    answer = _handle(server, who, target, seq)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["message"]
    assert _snapshot(server) == before


async def test_mentions_of_me_or_my_role_need_me_until_read(server: ServerProcess) -> None:
    amy, wes, sam = server.user("sales"), server.user("warehouse"), server.user("sales")
    conv = server.conversation(amy, "channel", [wes, sam], title="Floor")["id"]
    peer = await Peer.open(server, amy.token)
    try:
        await peer.send_text(conv, "just chatting", "m-0")
        assert [_flags(server, u.token, conv)["needs_me"] for u in (amy, wes, sam)] == [
            False,
            False,
            False,
        ]
        asked = await peer.send_text(conv, "@warehouse is the tent in stock?", "m-1")
        assert [_flags(server, u.token, conv)["needs_me"] for u in (amy, wes, sam)] == [
            False,
            True,
            False,
        ]
        reader = await Peer.open(server, wes.token)
        try:
            await reader.send({"op": "read", "conv": conv, "seq": asked["seq"]})
            await reader.recv_op("read")
        finally:
            await reader.close()
        assert _flags(server, wes.token, conv)["needs_me"] is False
        await peer.send_text(conv, f"@{sam.username} call the client", "m-2")
        assert _flags(server, sam.token, conv)["needs_me"] is True
        assert _flags(server, wes.token, conv)["needs_me"] is False
    finally:
        await peer.close()


def _member_of(shop: Shop, order: Json) -> list[str]:
    """The roles (of the shop's staff) that are members of the order's thread."""
    rows = shop.server.db_rows(
        "SELECT user_id FROM members WHERE conv_id = ? AND left_pos IS NULL", order["conv"]
    )
    ids = {r[0] for r in rows}
    return [role for role, account in shop.staff.items() if account.id in ids]


async def test_an_open_exception_is_flagged_and_needs_the_roles_it_is_routed_to(
    order_shop: Shop,
) -> None:
    shop, server = order_shop, order_shop.server
    order = shop.create_order("retail", quantity=5)
    conv = order["conv"]
    raised = shop.call(
        "warehouse",
        "POST",
        f"/api/orders/{order['id']}/issues",
        {"kind": "out_of_stock", "sku": SKU, "needed": 5, "available": 1},
    )
    assert raised.status_code == 201, raised.text
    members = _member_of(shop, order)
    assert "customer_service" in members, members
    flags = _flags(server, shop.token("customer_service"), conv)
    assert flags["exception_open"] is True and flags["needs_me"] is True
    # Reading the routed message does not make the open exception go away.
    seq = shop.last_seq(conv)
    peer = await Peer.open(server, shop.token("customer_service"))
    try:
        await peer.send({"op": "read", "conv": conv, "seq": seq})
        await peer.recv_op("read")
    finally:
        await peer.close()
    flags = _flags(server, shop.token("customer_service"), conv)
    assert flags["exception_open"] is True and flags["needs_me"] is True
    settled = shop.call(
        "customer_service",
        "POST",
        f"/api/orders/{order['id']}/issues/{raised.json()['id']}/settle",
        {"outcome": "restocked", "note": "arrived"},
    )
    assert settled.status_code == 200, settled.text
    if shop.last_seq(conv) > seq:  # settling may post a note of its own
        peer = await Peer.open(server, shop.token("customer_service"))
        try:
            await peer.send({"op": "read", "conv": conv, "seq": shop.last_seq(conv)})
            await peer.recv_op("read")
        finally:
            await peer.close()
    flags = _flags(server, shop.token("customer_service"), conv)
    assert flags["exception_open"] is False
    # Out of stock is routed urgent: it needs someone to mark it handled as well.
    assert flags["needs_me"] is True
    (routed,) = [m for m in shop.order_events(conv) if m["meta"]["event"] == "out_of_stock"]
    assert _handle(server, shop.staff["customer_service"], conv, routed["seq"]).status_code == 200
    flags = _flags(server, shop.token("customer_service"), conv)
    assert flags == {"needs_me": False, "exception_open": False, "waiting_customer": False}


async def test_waiting_for_the_customer_follows_who_wrote_last(order_shop: Shop) -> None:
    shop, server = order_shop, order_shop.server
    order = shop.create_order("retail")
    conv = order["conv"]
    customer = shop.customer(order)
    cs = shop.token("customer_service")
    assert _flags(server, cs, conv)["waiting_customer"] is False  # nobody has written
    staff = await Peer.open(server, cs)
    buyer = await Peer.open(server, customer.token)
    try:
        await staff.send_text(conv, "Which colour would you like?", "w-1")
        assert _flags(server, cs, conv)["waiting_customer"] is True
        await staff.send_text(conv, "note: ask about the strap", "w-2", internal=True)
        assert _flags(server, cs, conv)["waiting_customer"] is True  # staff-only notes aside
        await buyer.send_text(conv, "Green please", "w-3")
        assert _flags(server, cs, conv)["waiting_customer"] is False
        await staff.send_text(conv, "Green it is, shall we ship today?", "w-4")
        assert _flags(server, cs, conv)["waiting_customer"] is True
        # The customer's own list carries no staff flags.
        assert _listed(server, customer.token, conv)["flags"] == {
            "needs_me": False,
            "exception_open": False,
            "waiting_customer": False,
        }
    finally:
        await staff.close()
        await buyer.close()


def test_a_proposed_version_waits_for_the_customers_decision(order_shop: Shop) -> None:
    shop, server = order_shop, order_shop.server
    order = shop.create_order("oem")
    sales = shop.token("sales")
    item = shop.add_confirmation(order["id"])
    assert _flags(server, sales, order["conv"])["waiting_customer"] is False
    proposed = shop.call("sales", "POST", f"/api/confirmations/{item}/versions", {"text": "v1"})
    assert proposed.status_code == 201, proposed.text
    assert _flags(server, sales, order["conv"])["waiting_customer"] is True
    number = proposed.json()["version"]["number"]
    decided = shop.call(
        "admin",
        "POST",
        f"/api/confirmations/{item}/versions/{number}/decision",
        {"decision": "approved", "comment": "ok"},
    )
    assert decided.status_code == 200, decided.text
    assert _flags(server, sales, order["conv"])["waiting_customer"] is False
