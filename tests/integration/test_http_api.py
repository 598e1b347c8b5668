"""The HTTP API and the conversation features around it, against a real server."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.support import (
    Account,
    Frame,
    PeerPool,
    ServerProcess,
    barrier,
    collect_until,
    durable,
    messages,
)

pytestmark = pytest.mark.timeout(60)

MESSAGE_FIELDS = {
    "id", "conv", "seq", "ref", "sender", "kind", "text", "attachments", "mentions", "reply_to",
    "ts", "recalled",
}  # fmt: skip


def _is_message(ref: str) -> Callable[[Frame], bool]:
    return lambda f: f.get("op") == "message" and f.get("ref") == ref


def _member_event(action: str) -> Callable[[Frame], bool]:
    return lambda f: f.get("op") == "member" and f.get("action") == action


def _get(server: ServerProcess, token: str, path: str, **params: Any) -> Any:
    with server.http(token) as client:
        resp = client.get(path, params=params)
    assert resp.status_code == 200, resp.text
    return resp.json()


@pytest.fixture(scope="module")
def staff(server: ServerProcess) -> list[Account]:
    """Users shared by this module's tests: a sales clerk, a packer, and three more."""
    return [server.user("sales"), server.user("warehouse"), *(server.user() for _ in range(3))]


# --- creating conversations ---------------------------------------------------


def test_create_channel_returns_201_and_caller_is_always_a_member(
    server: ServerProcess,
    staff: list[Account],
) -> None:
    alice, bob = staff[0], staff[2]
    with server.http(alice.token) as client:
        without_self = client.post(
            "/api/conversations", json={"kind": "channel", "title": "Packing", "members": [bob.id]}
        )
        with_self = client.post(
            "/api/conversations",
            json={"kind": "channel", "title": "Packing 2", "members": [alice.id, bob.id, bob.id]},
        )
    for resp, title in ((without_self, "Packing"), (with_self, "Packing 2")):
        assert resp.status_code == 201, resp.text
        conv = resp.json()
        assert conv["id"].startswith("c_")
        assert (conv["kind"], conv["title"]) == ("channel", title)
        assert sorted(conv["members"]) == sorted([alice.id, bob.id])
        assert isinstance(conv["last_seq"], int)
        assert conv["created_by"] == alice.id
    assert without_self.json()["id"] != with_self.json()["id"]


def test_direct_pair_again_returns_200_with_the_same_conversation(
    server: ServerProcess,
    staff: list[Account],
) -> None:
    alice, bob = staff[3], staff[4]  # no other test makes this pair's direct
    with server.http(alice.token) as client:
        first = client.post("/api/conversations", json={"kind": "direct", "members": [bob.id]})
        again = client.post("/api/conversations", json={"kind": "direct", "members": [bob.id]})
    with server.http(bob.token) as client:
        reverse = client.post(
            "/api/conversations", json={"kind": "direct", "members": [bob.id, alice.id]}
        )
    assert first.status_code == 201, first.text
    assert (again.status_code, reverse.status_code) == (200, 200)
    conv_id = first.json()["id"]
    assert again.json()["id"] == conv_id
    assert reverse.json()["id"] == conv_id
    assert first.json()["kind"] == "direct"
    assert sorted(first.json()["members"]) == sorted([alice.id, bob.id])
    listed = [c["id"] for c in _get(server, bob.token, "/api/conversations")["conversations"]]
    assert listed.count(conv_id) == 1


async def test_creating_a_conversation_emits_one_member_added_event(
    server: ServerProcess,
    staff: list[Account],
) -> None:
    alice, bob = staff[0], staff[2]
    async with PeerPool(server) as pool:
        bob_conn = await pool.record(bob.token)
        conv = server.conversation(alice, "channel", [bob], title="welcome aboard")
        event = await bob_conn.wait_for(_member_event("added"))
        await bob_conn.barrier()
    assert event["conv"] == conv["id"]
    assert sorted(event["users"]) == sorted([alice.id, bob.id])
    assert event["by"] == alice.id
    assert event["conversation"]["id"] == conv["id"]
    assert isinstance(event["cursor"], str)
    added = [f for f in bob_conn.frames if _member_event("added")(f)]
    assert len(added) == 1, added


# --- listing and history ------------------------------------------------------


def _listing(server: ServerProcess, token: str) -> list[dict[str, Any]]:
    convs: list[dict[str, Any]] = _get(server, token, "/api/conversations")["conversations"]
    return convs


async def test_listing_shows_unread_and_last_message_newest_activity_first(
    server: ServerProcess,
    staff: list[Account],
) -> None:
    dave, erin, outsider = staff[2], staff[3], staff[4]
    first = server.conversation(erin, "channel", [dave], title="first")["id"]
    second = server.conversation(erin, "channel", [dave], title="second")["id"]
    hidden = server.conversation(erin, "channel", [outsider], title="not dave's")["id"]
    async with PeerPool(server) as pool:
        erin_conn = await pool.open(erin.token)
        dave_conn = await pool.open(dave.token)
        await erin_conn.send_text(first, "in first", "list-1")
        top = await erin_conn.send_text(second, "in second", "list-2")
        listing = _listing(server, dave.token)
        ids = [c["id"] for c in listing]
        assert hidden not in ids
        assert ids.index(second) < ids.index(first), "newest activity must come first"
        entry = listing[ids.index(second)]
        assert {"id", "kind", "title", "last_seq", "read_seq", "unread"} <= set(entry)
        assert entry["last_seq"] == top["seq"]
        assert entry["last_message"]["text"] == "in second"
        assert entry["last_message"]["seq"] == top["seq"]

        await dave_conn.send({"op": "read", "conv": first, "seq": _last_seq(server, dave, first)})
        await barrier(dave_conn)
        for i in range(2):
            await erin_conn.send_text(first, f"unread {i}", f"list-unread-{i}")
        listing = _listing(server, dave.token)
        ids = [c["id"] for c in listing]
        assert ids.index(first) < ids.index(second)
        entry = listing[ids.index(first)]
        assert (entry["unread"], entry["read_seq"]) == (2, entry["last_seq"] - 2)
        assert entry["last_message"]["text"] == "unread 1"

        own = await dave_conn.send_text(second, "my own words", "list-own")
        listing = _listing(server, dave.token)
        entry = next(c for c in listing if c["id"] == second)
        assert listing[0]["id"] == second
        assert (entry["read_seq"], entry["unread"]) == (own["seq"], 0)


def _last_seq(server: ServerProcess, who: Account, conv: str) -> int:
    return int(_get(server, who.token, f"/api/conversations/{conv}")["last_seq"])


async def test_history_pages_by_after_before_and_limit(
    server: ServerProcess,
    staff: list[Account],
) -> None:
    alice, bob = staff[0], staff[2]
    created = server.conversation(alice, "channel", [bob], title="pages")
    conv, base = created["id"], created["last_seq"]
    async with PeerPool(server) as pool:
        conn = await pool.open(alice.token)
        for i in range(7):
            await conn.send_text(conv, f"line {i}", f"page-{i}")
    path = f"/api/conversations/{conv}/messages"

    def seqs(**params: Any) -> list[int]:
        return [m["seq"] for m in _get(server, bob.token, path, **params)["messages"]]

    last = base + 7
    assert seqs(after=base, limit=3) == [base + 1, base + 2, base + 3]
    assert seqs(after=base + 3, limit=3) == [base + 4, base + 5, base + 6]
    assert seqs(after=last) == []
    assert seqs(before=base + 5, limit=2) == [base + 3, base + 4]
    assert seqs(before=1) == []
    assert seqs(limit=2) == [last - 1, last]
    newest = seqs()
    assert newest == list(range(newest[0], last + 1))
    assert len(newest) <= 50
    page = _get(server, bob.token, path, after=base, limit=1)["messages"][0]
    assert set(page) >= MESSAGE_FIELDS
    assert (page["text"], page["sender"], page["ref"], page["kind"]) == (
        "line 0",
        alice.id,
        "page-0",
        "text",
    )
    assert page["recalled"] is False


async def test_conversation_detail_shows_every_members_read_position(
    server: ServerProcess,
    staff: list[Account],
) -> None:
    alice, bob = staff[0], staff[2]
    conv = server.conversation(alice, "channel", [bob], title="reads")["id"]
    async with PeerPool(server) as pool:
        alice_conn = await pool.open(alice.token)
        bob_conn = await pool.open(bob.token)
        acks = [await alice_conn.send_text(conv, f"r{i}", f"detail-{i}") for i in range(3)]
        await bob_conn.send({"op": "read", "conv": conv, "seq": acks[1]["seq"]})
        await barrier(bob_conn)
    detail = _get(server, bob.token, f"/api/conversations/{conv}")
    assert detail["member_reads"][bob.id] == acks[1]["seq"]
    assert detail["member_reads"][alice.id] == acks[2]["seq"]
    assert (detail["read_seq"], detail["unread"]) == (acks[1]["seq"], 1)


# --- membership ---------------------------------------------------------------


async def test_members_add_remove_leave_emit_member_events_and_system_messages(
    server: ServerProcess,
    staff: list[Account],
) -> None:
    alice, bob, carol = staff[0], staff[2], staff[3]
    created = server.conversation(alice, "channel", [bob], title="membership")
    conv = created["id"]
    path = f"/api/conversations/{conv}"

    def system_count() -> int:
        return sum(1 for m in messages(server, alice.token, conv) if m["kind"] == "system")

    systems = system_count()
    async with PeerPool(server) as pool:
        alice_conn = await pool.record(alice.token)
        bob_conn = await pool.record(bob.token)
        carol_conn = await pool.record(carol.token)

        with server.http(bob.token) as client:
            added = client.post(f"{path}/members", json={"members": [carol.id]})
        assert added.status_code == 200, added.text
        assert carol.id in added.json()["members"]
        for conn in (alice_conn, bob_conn, carol_conn):
            event = await conn.wait_for(_member_event("added"))
            assert (event["conv"], event["users"], event["by"]) == (conv, [carol.id], bob.id)
            assert carol.id in event["conversation"]["members"]
        assert system_count() == systems + 1

        with server.http(alice.token) as client:
            removed = client.delete(f"{path}/members/{bob.id}")
        assert removed.status_code == 200, removed.text
        assert bob.id not in removed.json()["members"]
        for conn in (alice_conn, bob_conn, carol_conn):
            event = await conn.wait_for(_member_event("removed"))
            assert (event["conv"], event["users"], event["by"]) == (conv, [bob.id], alice.id)
        assert system_count() == systems + 2

        with server.http(carol.token) as client:
            left = client.post(f"{path}/leave")
        assert left.status_code == 204, left.text
        for conn in (alice_conn, carol_conn):
            event = await conn.wait_for(_member_event("left"))
            assert (event["conv"], event["users"]) == (conv, [carol.id])
        assert system_count() == systems + 3

        await alice_conn.send(
            {
                "op": "send",
                "ref": "after-leave",
                "conv": conv,
                "kind": "text",
                "text": "still here?",
            }
        )
        await alice_conn.wait_for(_is_message("after-leave"))
        for gone in (bob_conn, carol_conn):
            await gone.barrier()
            assert not any(_is_message("after-leave")(f) for f in gone.frames)
        assert not any(_member_event("left")(f) for f in bob_conn.frames), (
            "a removed user still receives the conversation's events"
        )

    with server.http(bob.token) as client:
        assert client.get(f"{path}/messages").status_code == 403
    listed = [c["id"] for c in _listing(server, carol.token)]
    assert conv not in listed


# --- typing, mentions, replies ------------------------------------------------


async def test_typing_reaches_others_but_not_the_sender_connection(
    server: ServerProcess,
    staff: list[Account],
) -> None:
    alice, bob = staff[0], staff[2]
    conv = server.conversation(alice, "channel", [bob], title="typing")["id"]
    async with PeerPool(server) as pool:
        alice_conn = await pool.open(alice.token)
        bob_conn = await pool.open(bob.token)
        await alice_conn.send({"op": "typing", "conv": conv})
        typing = await bob_conn.recv()
        assert (typing["op"], typing.get("conv"), typing.get("user")) == ("typing", conv, alice.id)
        assert "cursor" not in typing
        assert await barrier(alice_conn) == []
        assert durable(await barrier(bob_conn)) == []


async def test_mentions_resolve_roles_users_and_all(
    server: ServerProcess,
    staff: list[Account],
) -> None:
    alice, packer = staff[0], staff[1]
    conv = server.conversation(alice, "channel", [packer], title="mentions")["id"]
    async with PeerPool(server) as pool:
        conn = await pool.open(alice.token)
        watcher = await pool.record(packer.token)
        await conn.send_text(conv, "@warehouse please pack order 1001", "mention-role")
        await conn.send_text(conv, "see above", "mention-explicit", mentions=[packer.id])
        await conn.send_text(conv, f"thanks @{packer.username}!", "mention-username")
        await conn.send_text(conv, "@all stocktake at five", "mention-all")
        await conn.send_text(conv, "mail me at a@warehouse.example", "mention-none")
        live = await watcher.wait_for(_is_message("mention-role"))
        await watcher.wait_for(_is_message("mention-none"))
    stored = {m["ref"]: m["mentions"] for m in messages(server, alice.token, conv)}
    assert "@warehouse" in live["mentions"]
    assert stored["mention-role"] == ["@warehouse"]
    assert stored["mention-explicit"] == [packer.id]
    assert stored["mention-username"] == [packer.id]
    assert stored["mention-all"] == ["@all"]
    assert stored["mention-none"] == []


async def test_reply_to_is_stored_and_delivered(
    server: ServerProcess,
    staff: list[Account],
) -> None:
    alice, bob = staff[0], staff[2]
    conv = server.conversation(alice, "channel", [bob], title="replies")["id"]
    async with PeerPool(server) as pool:
        alice_conn = await pool.open(alice.token)
        bob_conn = await pool.record(bob.token)
        question = await alice_conn.send_text(conv, "is 1001 packed?", "reply-q")
        answer = await alice_conn.send_text(conv, "never mind", "reply-a", reply_to=question["seq"])
        live = await bob_conn.wait_for(_is_message("reply-a"))
    assert live["reply_to"] == question["seq"]
    stored = {m["seq"]: m for m in messages(server, bob.token, conv)}
    assert stored[answer["seq"]]["reply_to"] == question["seq"]
    assert stored[question["seq"]]["reply_to"] is None


async def test_text_round_trips_exactly(server: ServerProcess, staff: list[Account]) -> None:
    alice, bob = staff[0], staff[2]
    conv = server.conversation(alice, "channel", [bob], title="unicode")["id"]
    text = '订单 #1001 已发货 🚚 — "ok"\n第二行\t\\ עברית  trailing  '
    async with PeerPool(server) as pool:
        conn = await pool.open(alice.token)
        bob_conn = await pool.record(bob.token)
        ack = await conn.send_text(conv, text, "unicode-1")
        live = await bob_conn.wait_for(_is_message("unicode-1"))
        nul = await conn.send_text(conv, "before\u0000after", "unicode-nul")
        assert nul["op"] == "ack" or nul.get("code") == "bad_request", nul
        await barrier(conn)  # still open either way
    assert abs(ack["ts"] - time.time() * 1000) < 60_000, "ts must be Unix milliseconds"
    assert live["text"] == text
    stored = {m["ref"]: m for m in messages(server, bob.token, conv)}
    assert stored["unicode-1"]["text"] == text
    assert stored["unicode-1"]["ts"] == ack["ts"]
    if nul["op"] == "ack":
        assert stored["unicode-nul"]["text"] == "before\u0000after"


# --- recall -------------------------------------------------------------------


async def test_recall_hides_content_in_history_and_resume_but_audit_keeps_original(
    server: ServerProcess,
    staff: list[Account],
) -> None:
    assert server.admin is not None
    alice, bob = staff[0], staff[1]
    conv = server.conversation(alice, "channel", [bob], title="recall")["id"]
    async with PeerPool(server) as pool:
        alice_conn = await pool.open(alice.token)
        bob_conn = await pool.record(bob.token)
        cursor = bob_conn.peer.welcome["cursor"]
        sent = await alice_conn.send_text(conv, "price is SECRET-QZX @warehouse", "recall-me")
        recall = {"op": "recall", "ref": "recall-1", "conv": conv, "seq": sent["seq"]}
        await alice_conn.send(recall)
        ack = await alice_conn.recv_ack("recall-1")
        assert ack["op"] == "ack", ack
        assert (ack["conv"], ack["seq"]) == (conv, sent["seq"])
        await alice_conn.send({**recall, "ref": "recall-1"})
        again = await alice_conn.recv_ack("recall-1")
        assert {k: again.get(k) for k in ("ref", "conv", "seq", "id", "ts")} == {
            k: ack.get(k) for k in ("ref", "conv", "seq", "id", "ts")
        }

        event = await bob_conn.wait_for(lambda f: f.get("op") == "recalled")
        assert (event["conv"], event["seq"], event["by"]) == (conv, sent["seq"], alice.id)
        assert isinstance(event["cursor"], str)
        await bob_conn.barrier()
        assert sum(1 for f in bob_conn.frames if f.get("op") == "recalled") == 1

        resumed = await pool.open(bob.token, "tablet", cursor)
        replay = durable(await collect_until(resumed, lambda f: f.get("op") == "synced"))

    stored = next(m for m in messages(server, bob.token, conv) if m["seq"] == sent["seq"])
    assert stored["recalled"] is True
    assert not stored["text"]
    assert not stored["mentions"]
    assert not stored["attachments"]
    assert "SECRET" not in str(stored)

    replayed = next(f for f in replay if f["op"] == "message" and f["seq"] == sent["seq"])
    assert replayed["recalled"] is True
    assert "SECRET" not in str(replayed), "resume replays a recalled message's content"
    assert [f["op"] for f in replay if f.get("seq") == sent["seq"]] == ["message", "recalled"]

    audit = _get(
        server, server.admin.token, f"/api/conversations/{conv}/messages/{sent['seq']}/audit"
    )
    assert audit["message"]["text"] == "price is SECRET-QZX @warehouse"
    assert audit["recalled_by"] == alice.id
    assert isinstance(audit["recalled_ts"], int)


async def test_admin_may_recall_a_members_message(
    server: ServerProcess,
    staff: list[Account],
) -> None:
    assert server.admin is not None
    bob = staff[2]
    conv = server.conversation(server.admin, "channel", [bob], title="moderated")["id"]
    async with PeerPool(server) as pool:
        bob_conn = await pool.open(bob.token)
        sent = await bob_conn.send_text(conv, "off-topic", "admin-recall-target")
        admin_conn = await pool.open(server.admin.token)
        await admin_conn.send({"op": "recall", "ref": "admin-rc", "conv": conv, "seq": sent["seq"]})
        ack = await admin_conn.recv_ack("admin-rc")
        assert ack["op"] == "ack", ack
        event = await bob_conn.recv_op("recalled")
    assert event["by"] == server.admin.id
