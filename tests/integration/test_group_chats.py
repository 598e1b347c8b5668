"""Group chats: made with several people and a name, renamed, people added and
removed, every open connection told live; and each person's own pin and mute."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support import (
    Account,
    Peer,
    PeerPool,
    Recorder,
    ServerProcess,
    messages,
    seed_skus,
)

Json = dict[str, Any]
_EXTRA_TABLES = ("member_settings", "urgent_handled")


def _snapshot(server: ServerProcess) -> dict[str, list[tuple[Any, ...]]]:
    found = server.db_snapshot()
    for table in _EXTRA_TABLES:
        found[table] = sorted(server.db_rows(f"SELECT * FROM {table}"), key=repr)
    return found


def _listed(server: ServerProcess, who: Account, conv: str) -> Json | None:
    with server.http(who.token, language="en") as client:
        answer = client.get("/api/conversations")
    assert answer.status_code == 200, answer.text
    return next((c for c in answer.json()["conversations"] if c["id"] == conv), None)


def _member_event(action: str, conv: str) -> Any:
    return lambda f: f["op"] == "member" and f["action"] == action and f["conv"] == conv


def _error(resp: httpx.Response, status: int) -> str:
    assert resp.status_code == status, (resp.status_code, resp.text)
    message: str = resp.json()["error"]["message"]
    return message


async def test_a_group_of_three_with_a_name_appears_live_for_everyone(
    server: ServerProcess,
) -> None:
    amy, bob, cat = (server.user("customer_service") for _ in range(3))
    async with PeerPool(server) as pool:
        bob_conn, cat_conn = await pool.record(bob.token), await pool.record(cat.token)
        with server.http(amy.token, language="en") as client:
            made = client.post(
                "/api/conversations",
                json={"kind": "channel", "title": "售后小组", "members": [bob.id, cat.id]},
            )
        assert made.status_code == 201, made.text
        conv = made.json()["id"]
        assert made.json()["members"] == [amy.id, bob.id, cat.id]
        for conn in (bob_conn, cat_conn):
            event = await conn.wait_for(_member_event("added", conv))
            assert event["conversation"]["title"] == "售后小组"
            assert sorted(event["users"]) == sorted([amy.id, bob.id, cat.id])
        assert (_listed(server, cat, conv) or {})["title"] == "售后小组"


async def test_rename_add_and_remove_reach_every_member_and_the_removed_one_loses_access(
    server: ServerProcess,
) -> None:
    amy, bob, cat, dan = (server.user("sales") for _ in range(4))
    conv = server.conversation(amy, "channel", [bob, cat], title="Spring fair")["id"]
    path = f"/api/conversations/{conv}"
    async with PeerPool(server) as pool:
        conns = {a.id: await pool.record(a.token) for a in (amy, bob, cat)}
        # Any member renames (WeCom's default).
        with server.http(bob.token, language="en") as client:
            renamed = client.patch(path, json={"title": "  Autumn fair "})
        assert renamed.status_code == 200, renamed.text
        assert renamed.json()["title"] == "Autumn fair"
        for conn in conns.values():
            event = await conn.wait_for(_member_event("renamed", conv))
            assert (event["users"], event["by"]) == ([], bob.id)
            assert event["conversation"]["title"] == "Autumn fair"
        shown = messages(server, amy.token, conv)[-1]
        assert shown["kind"] == "system" and shown["meta"]["event"] == "renamed"
        assert shown["meta"]["previous"] == "Spring fair"

        # Any member adds people.
        with server.http(cat.token, language="en") as client:
            added = client.post(f"{path}/members", json={"members": [dan.id]})
        assert added.status_code == 200, added.text
        dan_conn = await pool.record(dan.token)
        for conn in conns.values():
            event = await conn.wait_for(_member_event("added", conv))
            assert event["users"] == [dan.id]

        # Only the creator (or an admin) removes; the removed one is told and then hears nothing.
        with server.http(bob.token, language="en") as client:
            refused = client.delete(f"{path}/members/{cat.id}")
        assert "creator" in _error(refused, 403)
        with server.http(amy.token, language="en") as client:
            removed = client.delete(f"{path}/members/{cat.id}")
        assert removed.status_code == 200, removed.text
        for conn in (*conns.values(), dan_conn):
            event = await conn.wait_for(_member_event("removed", conv))
            assert event["users"] == [cat.id]
        cat_seen = len(conns[cat.id].frames)
        sender = await pool.open(amy.token)
        after = await sender.send_text(conv, "cat should not see this", "gone-1")
        await dan_conn.wait_for(lambda f: f["op"] == "message" and f["seq"] == after["seq"])
        await conns[bob.id].wait_for(lambda f: f["op"] == "message" and f["seq"] == after["seq"])
        with server.http(cat.token, language="en") as client:
            assert client.get(f"{path}/messages").status_code == 403
            assert client.get(path).status_code == 403
            assert client.patch(path, json={"title": "mine now"}).status_code == 403
        assert _listed(server, cat, conv) is None
        later = [f for f in conns[cat.id].frames[cat_seen:] if f.get("conv") == conv]
        assert later == [], later
        # Nor on a resume from before the removal.
        replay = await Peer.open(server, cat.token, cursor=conns[cat.id].frames[0]["cursor"])
        try:
            frames = []
            while (frame := await replay.recv())["op"] != "synced":
                frames.append(frame)
            assert all(f.get("seq") != after["seq"] for f in frames if f.get("conv") == conv)
        finally:
            await replay.close()


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"kind": "channel", "title": "   ", "members": []}, 400, "title"),
        ({"kind": "channel", "title": "x" * 201, "members": []}, 413, "200"),
        ({"kind": "channel", "title": "t", "members": ["u_nobody0000000000000"]}, 400, "unknown"),
        ({"kind": "channel", "title": "t", "members": ["CUSTOMER"]}, 400, "customers"),
    ],
)
def test_a_bad_group_is_refused_and_nothing_changes(
    server: ServerProcess, body: Json, status: int, says: str
) -> None:
    amy, bob = server.user("sales"), server.user("sales")
    customer = _a_customer(server)
    body = {
        **body,
        "members": [
            {"DUP": bob.id, "CUSTOMER": customer}.get(m, m) for m in body.get("members", [])
        ],
    }
    before = _snapshot(server)
    with server.http(amy.token, language="en") as client:
        answer = client.post("/api/conversations", json=body)
    assert says in _error(answer, status)
    assert _snapshot(server) == before


def _a_customer(server: ServerProcess) -> str:
    """A customer's user id, made through an order and its invitation."""
    rows = server.db_rows("SELECT id FROM users WHERE kind = 'customer' LIMIT 1")
    if rows:
        return str(rows[0][0])
    seed_skus(server, "G-SKU-1", stock=10)
    assert server.admin is not None
    with server.http(server.admin.token, language="en") as client:
        order = client.post(
            "/api/orders",
            json={
                "number": "G-1",
                "workflow": "retail",
                "items": [{"sku": "G-SKU-1", "name": "x", "quantity": 1, "unit_price_cents": 9900}],
                "address": {
                    "name": "Lin",
                    "phone": "13800000000",
                    "country": "CN",
                    "region": "Zhejiang",
                    "city": "Hangzhou",
                    "district": "Xihu",
                    "line1": "1 Road",
                    "postcode": "310000",
                },
                "currency": "CNY",
                "customer": {"name": "Lin", "phone": "13900000000", "segment": "retail"},
            },
        )
    assert order.status_code == 201, order.text
    customer: str = order.json()["customer"]
    return customer


@pytest.mark.parametrize(
    ("how", "status", "says"),
    [
        ("rename-empty", 400, ""),
        ("rename-long", 413, "200"),
        ("rename-direct", 409, "group"),
        ("rename-outsider", 403, "member"),
        ("add-existing", 409, "already"),
        ("add-unknown", 400, "unknown"),
        ("add-customer", 400, "customers"),
        ("add-twice", 400, "more than once"),
        ("add-nobody", 400, "at least one"),
        ("remove-non-member", 404, "not a member"),
    ],
)
def test_bad_changes_to_a_group_are_refused_and_nothing_changes(
    server: ServerProcess, how: str, status: int, says: str
) -> None:
    amy, bob, eve = server.user("sales"), server.user("sales"), server.user("sales")
    conv = server.conversation(amy, "channel", [bob], title="Team")["id"]
    direct = server.conversation(amy, "direct", [bob])["id"]
    customer = _a_customer(server)
    path = f"/api/conversations/{conv}"
    who, method, url, body = {
        "rename-empty": (amy, "PATCH", path, {"title": "  "}),
        "rename-long": (amy, "PATCH", path, {"title": "x" * 201}),
        "rename-direct": (amy, "PATCH", f"/api/conversations/{direct}", {"title": "Us"}),
        "rename-outsider": (eve, "PATCH", path, {"title": "Mine"}),
        "add-existing": (amy, "POST", f"{path}/members", {"members": [eve.id, bob.id]}),
        "add-unknown": (amy, "POST", f"{path}/members", {"members": ["u_nobody000000000000"]}),
        "add-customer": (amy, "POST", f"{path}/members", {"members": [customer]}),
        "add-twice": (amy, "POST", f"{path}/members", {"members": [eve.id, eve.id]}),
        "add-nobody": (amy, "POST", f"{path}/members", {"members": []}),
        "remove-non-member": (amy, "DELETE", f"{path}/members/{eve.id}", None),
    }[how]
    before = _snapshot(server)
    with server.http(who.token, language="en") as client:
        answer = client.request(method, url, json=body)
    assert says in _error(answer, status)
    assert _snapshot(server) == before


async def test_pin_and_mute_belong_to_one_person_and_reach_all_their_devices(
    server: ServerProcess,
) -> None:
    amy, bob = server.user("warehouse"), server.user("warehouse")
    older = server.conversation(amy, "channel", [bob], title="Older")["id"]
    newer = server.conversation(amy, "channel", [bob], title="Newer")["id"]
    async with PeerPool(server) as pool:
        phone: Recorder = await pool.record(amy.token, device="phone")
        laptop: Recorder = await pool.record(amy.token, device="laptop")
        bobs: Recorder = await pool.record(bob.token)
        with server.http(amy.token, language="en") as client:
            pinned = client.post(f"/api/conversations/{older}/settings", json={"pinned": True})
            assert pinned.status_code == 200, pinned.text
            assert pinned.json()["pinned"] is True and pinned.json()["muted"] is False
            muted = client.post(f"/api/conversations/{newer}/settings", json={"muted": True})
            assert muted.json() == {
                "conv": newer,
                "pinned": False,
                "muted": True,
                "pinned_ts": None,
            }
        for device in (phone, laptop):
            frame = await device.wait_for(lambda f: f["op"] == "settings" and f["conv"] == older)
            assert frame["pinned"] is True and isinstance(frame["pinned_ts"], int)
            assert "cursor" not in frame
            frame = await device.wait_for(lambda f: f["op"] == "settings" and f["conv"] == newer)
            assert frame["muted"] is True
        mine = _listed(server, amy, older) or {}
        assert (mine["pinned"], mine["muted"]) == (True, False)
        assert (_listed(server, amy, newer) or {})["muted"] is True
        # Bob's view is his own: nothing pinned, nothing muted, no frame.
        for conv in (older, newer):
            theirs = _listed(server, bob, conv) or {}
            assert (theirs["pinned"], theirs["muted"]) == (False, False)
        sender = await pool.open(bob.token)
        ack = await sender.send_text(older, "barrier", "pin-barrier")
        await bobs.wait_for(lambda f: f["op"] == "message" and f["seq"] == ack["seq"])
        assert not [f for f in bobs.frames if f["op"] == "settings"]
        # Unpinning gives the place back.
        with server.http(amy.token, language="en") as client:
            client.post(f"/api/conversations/{older}/settings", json={"pinned": False})
        frame = await laptop.wait_for(
            lambda f: f["op"] == "settings" and f["conv"] == older and not f["pinned"]
        )
        assert "pinned_ts" not in frame  # left off while not pinned


@pytest.mark.parametrize(
    "body",
    [{}, {"pinned": "yes"}, {"muted": 1}, {"pinned": None}, {"starred": True}, []],
)
def test_bad_settings_are_refused_and_nothing_changes(server: ServerProcess, body: Any) -> None:
    amy, bob = server.user("finance"), server.user("finance")
    conv = server.conversation(amy, "channel", [bob], title="Money")["id"]
    before = _snapshot(server)
    with server.http(amy.token, language="en") as client:
        answer = client.post(f"/api/conversations/{conv}/settings", json=body)
    _error(answer, 400)
    assert _snapshot(server) == before


def test_settings_of_a_conversation_one_is_not_in_are_refused(server: ServerProcess) -> None:
    amy, bob, eve = server.user("qc"), server.user("qc"), server.user("qc")
    conv = server.conversation(amy, "channel", [bob], title="QC")["id"]
    before = _snapshot(server)
    with server.http(eve.token, language="en") as client:
        answer = client.post(f"/api/conversations/{conv}/settings", json={"pinned": True})
        _error(answer, 403)
        missing = client.post("/api/conversations/c_nothing/settings", json={"pinned": True})
        _error(missing, 404)
    assert _snapshot(server) == before
