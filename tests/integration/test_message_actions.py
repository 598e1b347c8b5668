"""Editing one's own message, forwarding into another conversation, and `/stock`
answered to the asker alone: over a real server and real WebSockets.

Every refusal is checked to change nothing: the database is read back before
and after, and the other members' connections receive nothing.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from orderchat.core.chain import GENESIS, chain_hash, edit_hash
from orderchat.core.edits import MessageEdit
from orderchat.core.model import MAX_TEXT_CHARS, Message, MessageKind
from tests.media_support import send_media, tus_upload
from tests.order_support import Customer, Shop, assert_unchanged
from tests.support import Account, Frame, PeerPool, ServerProcess, seed_skus

_refs = itertools.count(1)


def _ref(what: str) -> str:
    return f"{what}-{next(_refs)}"


def _op(op: str, **fields: Any) -> Any:
    return lambda f: f.get("op") == op and all(f.get(k) == v for k, v in fields.items())


@pytest.fixture
def shop(order_shop: Shop) -> Shop:
    return order_shop


@pytest.fixture
def pair(shop: Shop) -> tuple[Account, Account, str]:
    """Two staff members and a channel of theirs."""
    ann, bob = shop.staff["sales"], shop.staff["warehouse"]
    conv = shop.server.conversation(ann, "channel", [bob], title=_ref("供应商群"))["id"]
    return ann, bob, conv


def _history(shop: Shop, who: str | Account | Customer, conv: str) -> list[Frame]:
    resp = shop.call(who, "GET", f"/api/conversations/{conv}/messages?after=0&limit=200")
    assert resp.status_code == 200, resp.text
    found: list[Frame] = resp.json()["messages"]
    return found


# --- edit --------------------------------------------------------------------------------


async def _edit(peer: Any, conv: str, seq: int, text: str, ref: str | None = None) -> Frame:
    ref = ref or _ref("edit")
    await peer.send({"op": "edit", "ref": ref, "conv": conv, "seq": seq, "text": text})
    answer: Frame = await peer.recv_ack(ref)
    return answer


async def test_an_edit_reaches_the_other_member_live_and_history_shows_the_new_text(
    shop: Shop, pair: tuple[Account, Account, str]
) -> None:
    ann, bob, conv = pair
    async with PeerPool(shop.server) as pool:
        writer = await pool.open(ann.token)
        reader = await pool.record(bob.token)
        sent = await writer.send_text(conv, "明天发货", _ref("m"))
        ack = await _edit(writer, conv, sent["seq"], "后天发货")
        assert ack["op"] == "ack" and ack["seq"] == sent["seq"] and ack["id"] == sent["id"]
        edited = await reader.wait_for(_op("message_edited", seq=sent["seq"]))
    assert (edited["conv"], edited["text"], edited["by"], edited["version"]) == (
        conv,
        "后天发货",
        ann.id,
        1,
    )
    assert isinstance(edited["cursor"], str) and edited["edited_at"] == ack["ts"]
    (message,) = [m for m in _history(shop, bob, conv) if m["seq"] == sent["seq"]]
    assert message["text"] == "后天发货" and message["edited_ts"] == ack["ts"]
    listed = shop.call(bob, "GET", "/api/conversations").json()["conversations"]
    (summary,) = [c for c in listed if c["id"] == conv]
    assert summary["last_message"]["text"] == "后天发货"


async def test_resume_replays_the_edit(shop: Shop, pair: tuple[Account, Account, str]) -> None:
    ann, bob, conv = pair
    async with PeerPool(shop.server) as pool:
        writer = await pool.open(ann.token)
        away = await pool.record(bob.token)
        sent = await writer.send_text(conv, "first", _ref("m"))
        seen = await away.wait_for(_op("message", seq=sent["seq"]))
        await away.stop()
        await away.peer.close()
        assert (await _edit(writer, conv, sent["seq"], "second"))["op"] == "ack"
        back = await pool.record(bob.token, cursor=seen["cursor"])
        await back.wait_for(_op("synced"))
    replayed = [f for f in back.frames if f.get("op") == "message_edited"]
    assert [(f["seq"], f["text"]) for f in replayed] == [(sent["seq"], "second")]


async def test_the_audit_trail_lists_every_version_and_the_chain_verifies(
    shop: Shop, pair: tuple[Account, Account, str]
) -> None:
    ann, _, conv = pair
    async with PeerPool(shop.server) as pool:
        writer = await pool.open(ann.token)
        sent = await writer.send_text(conv, "v0", _ref("m"))
        for text in ("v1", "v2"):
            assert (await _edit(writer, conv, sent["seq"], text))["op"] == "ack"
        await writer.send_text(conv, "after the edits", _ref("m"))
    audit = shop.call("admin", "GET", f"/api/conversations/{conv}/messages/{sent['seq']}/audit")
    assert audit.status_code == 200, audit.text
    body = audit.json()
    assert body["message"]["text"] == "v0"
    assert [(e["version"], e["text"], e["by"]) for e in body["edits"]] == [
        (1, "v1", ann.id),
        (2, "v2", ann.id),
    ]
    _verify_chain(shop.server, conv)


def _stored_message(fields: dict[str, Any]) -> Message:
    """A message row read straight from the file, as the chain hashed it."""
    return Message(
        id=fields["id"],
        conv=fields["conv_id"],
        seq=fields["seq"],
        ref=fields["ref"],
        sender=fields["sender_id"],
        kind=MessageKind(fields["kind"]),
        text=fields["text"],
        attachments=tuple(orjson.loads(fields["attachments"])),
        mentions=tuple(orjson.loads(fields["mentions"])),
        reply_to=fields["reply_to"],
        ts=fields["ts"],
        recalled=fields["recalled_at_ms"] is not None,
        meta=None if fields["meta"] is None else orjson.loads(fields["meta"]),
        internal=bool(fields["internal"]),
        urgent=bool(fields["urgent"]),
        forwarded_from=(
            None if fields["forwarded_from"] is None else orjson.loads(fields["forwarded_from"])
        ),
    )


def _verify_chain(server: ServerProcess, conv: str) -> None:
    """Re-derive every link, messages and edits in stream order, from the stored rows."""
    links = server.db_rows(
        "SELECT kind, message_id FROM events WHERE conv_id = ?"
        " AND kind IN ('message', 'message_edited') ORDER BY pos",
        conv,
    )
    columns = server.db_columns("messages")
    previous = GENESIS
    versions: dict[str, int] = {}
    for kind, message_id in links:
        if kind == "message":
            (row,) = server.db_rows("SELECT * FROM messages WHERE id = ?", message_id)
            fields = dict(zip(columns, row, strict=True))
            assert fields["hash"] == chain_hash(previous, _stored_message(fields))
            previous = fields["hash"]
            continue
        versions[message_id] = version = versions.get(message_id, 0) + 1
        ((by, text, ts, seq, stored),) = server.db_rows(
            "SELECT by_id, text, ts, seq, hash FROM message_edits"
            " WHERE message_id = ? AND version = ?",
            message_id,
            version,
        )
        edit = MessageEdit(message_id, conv, seq, version, by, text, ts)
        assert stored == edit_hash(previous, edit)
        previous = stored
    head = server.db_rows("SELECT last_hash FROM conversations WHERE id = ?", conv)
    assert head == [(previous,)]


async def test_every_bad_edit_is_refused_and_changes_nothing(
    shop: Shop, pair: tuple[Account, Account, str]
) -> None:
    ann, bob, conv = pair
    outsider = shop.staff["finance"]
    async with PeerPool(shop.server) as pool:
        writer = await pool.open(ann.token)
        other = await pool.open(bob.token)
        stranger = await pool.open(outsider.token)
        mine = await writer.send_text(conv, "mine", _ref("m"))
        gone = await writer.send_text(conv, "to be recalled", _ref("m"))
        ref = _ref("recall")
        await writer.send({"op": "recall", "ref": ref, "conv": conv, "seq": gone["seq"]})
        assert (await writer.recv_ack(ref))["op"] == "ack"
        watcher = await pool.record(bob.token, device="watch")
        await watcher.barrier()
        before = shop.server.db_snapshot()
        cases = [
            (other, mine["seq"], "not yours", "forbidden"),
            (stranger, mine["seq"], "not a member", "forbidden"),
            (writer, gone["seq"], "recalled", "conflict"),
            (writer, 10_000, "unknown", "not_found"),
            (writer, mine["seq"], "", "bad_request"),
            (writer, mine["seq"], "   ", "bad_request"),
            (writer, mine["seq"], "mine", "bad_request"),
            (writer, mine["seq"], "x" * (MAX_TEXT_CHARS + 1), "too_large"),
        ]
        for peer, seq, text, code in cases:
            answer = await _edit(peer, conv, seq, text)
            assert (answer["op"], answer["code"]) == ("error", code), (text[:20], answer)
        for frame in (
            {"op": "edit", "ref": _ref("e"), "conv": conv, "seq": mine["seq"]},
            {"op": "edit", "ref": _ref("e"), "conv": conv, "seq": 0, "text": "x"},
            {"op": "edit", "ref": _ref("e"), "conv": conv, "seq": mine["seq"], "text": 5},
            {"op": "edit", "ref": _ref("e"), "conv": "nope", "seq": 1, "text": "x"},
        ):
            await writer.send(frame)
            answer = await writer.recv_ack(frame["ref"])
            assert answer["op"] == "error", answer
        assert not [f for f in await watcher.barrier() if f.get("op") == "message_edited"]
    assert_unchanged(before, shop.server.db_snapshot())


async def test_a_repeated_edit_ref_answers_like_the_first_time(
    shop: Shop, pair: tuple[Account, Account, str]
) -> None:
    ann, _, conv = pair
    async with PeerPool(shop.server) as pool:
        writer = await pool.open(ann.token)
        sent = await writer.send_text(conv, "once", _ref("m"))
        ref = _ref("edit")
        first = await _edit(writer, conv, sent["seq"], "twice", ref)
        again = await _edit(writer, conv, sent["seq"], "twice", ref)
    assert first == again and first["op"] == "ack"
    edits = shop.server.db_rows("SELECT COUNT(*) FROM message_edits WHERE ref = ?", ref)
    assert edits == [(1,)]


async def test_a_staff_note_edit_reaches_staff_only(shop: Shop) -> None:
    order = shop.create_order()
    clerk = shop.staff["customer_service"]
    customer = shop.customer(order)
    async with PeerPool(shop.server) as pool:
        writer = await pool.open(clerk.token)
        watcher = await pool.record(customer.token)
        note = await writer.send_text(order["conv"], "内部备注", _ref("m"), internal=True)
        assert (await _edit(writer, order["conv"], note["seq"], "内部备注（改）"))["op"] == "ack"
        await watcher.barrier()
        await asyncio.sleep(0.2)  # the edit's delivery, had it been addressed to them
        await watcher.barrier()
        assert not [f for f in watcher.frames if f.get("seq") == note["seq"]]
        # Nor does a resume from before it replay it.
        again = await pool.record(customer.token, cursor=watcher.peer.welcome["cursor"])
        await again.wait_for(_op("synced"))
    assert not [f for f in again.frames if f.get("op") == "message_edited"]


@pytest.fixture
def short_window(tmp_path: Path, store: str) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path, ("--rate-limits", "off", "--recall-window-s", "1"), store=store)
    proc.start()
    proc.create_admin()
    yield proc
    proc.stop()


async def test_an_edit_after_the_window_is_refused(short_window: ServerProcess) -> None:
    ann, bob = short_window.user("sales"), short_window.user("warehouse")
    conv = short_window.conversation(ann, "channel", [bob], title="window")["id"]
    async with PeerPool(short_window) as pool:
        writer = await pool.open(ann.token)
        sent = await writer.send_text(conv, "quick", _ref("m"))
        assert (await _edit(writer, conv, sent["seq"], "quick!"))["op"] == "ack"
        await asyncio.sleep(1.3)
        before = short_window.db_snapshot()
        late = await _edit(writer, conv, sent["seq"], "too late")
    assert (late["op"], late["code"]) == ("error", "forbidden")
    assert late["reason"] == "edits.window_passed"
    assert_unchanged(before, short_window.db_snapshot())


# --- forward -------------------------------------------------------------------------------


async def _forward(peer: Any, conv: str, source: str, seq: int, **extra: Any) -> Frame:
    ref = _ref("fwd")
    await peer.send(
        {"op": "send", "ref": ref, "conv": conv, "forward": {"conv": source, "seq": seq}, **extra}
    )
    answer: Frame = await peer.recv_ack(ref)
    return answer


async def test_a_forwarded_file_keeps_its_link_and_opens_for_the_customer(shop: Shop) -> None:
    clerk, buyer = shop.staff["customer_service"], shop.staff["purchasing"]
    supplier = shop.server.conversation(clerk, "channel", [buyer], title=_ref("面料供应商"))["id"]
    order = shop.create_order()
    customer = shop.customer(order)
    data = b"QC report " + _ref("bytes").encode() * 50
    media_id = tus_upload(shop.server, buyer.token, supplier, data, "qc.bin")
    async with PeerPool(shop.server) as pool:
        sender = await pool.open(buyer.token)
        sent = await send_media(sender, supplier, "file", [media_id], _ref("f"), text="质检报告")
        assert sent["op"] == "ack", sent
        forwarder = await pool.open(clerk.token)
        watcher = await pool.record(customer.token)
        ack = await _forward(forwarder, order["conv"], supplier, sent["seq"])
        assert ack["op"] == "ack", ack
        seen = await watcher.wait_for(_op("message", seq=ack["seq"]))
    assert (seen["kind"], seen["text"], seen["sender"]) == ("file", "质检报告", clerk.id)
    assert [a["id"] for a in seen["attachments"]] == [media_id]
    link = seen["forwarded_from"]
    assert (link["conv"], link["seq"], link["sender"]) == (supplier, sent["seq"], buyer.id)
    assert link["sender_name"] and link["sent_at"] == sent["ts"]
    assert "title" not in link  # the supplier chat's name is not the customer's to learn
    with shop.server.http(customer.token) as client:
        opened = client.get(f"/api/media/{media_id}")
        assert opened.status_code == 200 and opened.content == data
        # The link names the original; opening it is for its own members alone.
        original = client.get(f"/api/conversations/{supplier}/messages")
        assert original.status_code == 403
    # Between staff, the link carries the title of where it came from.
    (staff_view,) = [m for m in _history(shop, clerk, order["conv"]) if m["seq"] == ack["seq"]]
    assert staff_view["forwarded_from"]["conv"] == supplier


async def test_a_forward_between_staff_names_the_source_conversation(
    shop: Shop, pair: tuple[Account, Account, str]
) -> None:
    ann, bob, conv = pair
    target = shop.server.conversation(ann, "channel", [bob], title=_ref("仓库群"))["id"]
    async with PeerPool(shop.server) as pool:
        peer = await pool.open(ann.token)
        watcher = await pool.record(bob.token)
        sent = await peer.send_text(conv, "转给仓库", _ref("m"))
        ack = await _forward(peer, target, conv, sent["seq"])
        seen = await watcher.wait_for(_op("message", conv=target, seq=ack["seq"]))
    titles = dict(shop.server.db_rows("SELECT id, title FROM conversations WHERE id = ?", conv))
    assert seen["text"] == "转给仓库" and seen["forwarded_from"]["title"] == titles[conv]
    _verify_chain(shop.server, target)  # a forward's link is part of what its hash covers


async def test_forbidden_forwards_are_refused_and_change_nothing(shop: Shop) -> None:
    clerk, buyer = shop.staff["customer_service"], shop.staff["purchasing"]
    supplier = shop.server.conversation(clerk, "channel", [buyer], title=_ref("内部"))["id"]
    order = shop.create_order()
    other_order = shop.create_order()
    customer = shop.customer(order)
    data = b"secret drawing " + _ref("bytes").encode() * 20
    media_id = tus_upload(shop.server, buyer.token, supplier, data, "d.bin")
    async with PeerPool(shop.server) as pool:
        staff = await pool.open(clerk.token)
        buyer_peer = await pool.open(buyer.token)
        them = await pool.open(customer.token)
        file_msg = await send_media(buyer_peer, supplier, "file", [media_id], _ref("f"))
        note = await staff.send_text(order["conv"], "staff only", _ref("m"), internal=True)
        hello = await staff.send_text(order["conv"], "hello", _ref("m"))
        system = [m for m in _history(shop, clerk, order["conv"]) if m["kind"] != "text"]
        watcher = await pool.record(customer.token, device="watch")
        await watcher.barrier()
        before = shop.server.db_snapshot()
        refusals = [
            # A customer cannot reach a file of a conversation they cannot see.
            (them, order["conv"], supplier, file_msg["seq"], {}, "not_found"),
            # ...nor a staff note of their own order's conversation.
            (them, order["conv"], order["conv"], note["seq"], {}, "not_found"),
            # A staff note goes where customers are only as a staff note.
            (staff, order["conv"], order["conv"], note["seq"], {}, "forbidden"),
            # Into a conversation one is not in.
            (them, other_order["conv"], order["conv"], hello["seq"], {}, "forbidden"),
            (staff, order["conv"], order["conv"], 10_000, {}, "not_found"),
            (staff, order["conv"], "c_nope", 1, {}, "not_found"),
            (staff, order["conv"], order["conv"], hello["seq"], {"text": "x"}, "bad_request"),
            (staff, order["conv"], order["conv"], hello["seq"], {"kind": "file"}, "bad_request"),
        ]
        if system:
            refusals.append(
                (staff, order["conv"], order["conv"], system[0]["seq"], {}, "forbidden")
            )
        for peer, target, source, seq, extra, code in refusals:
            answer = await _forward(peer, target, source, seq, **extra)
            assert (answer["op"], answer["code"]) == ("error", code), (source, seq, answer)
        assert not [f for f in await watcher.barrier() if f.get("op") == "message"]
        assert_unchanged(before, shop.server.db_snapshot())
        with shop.server.http(customer.token) as client:
            assert client.get(f"/api/media/{media_id}").status_code == 404
        # As a staff note it may go, and still reaches no customer, nor opens for one.
        media_note = await _forward(staff, order["conv"], supplier, file_msg["seq"], internal=True)
        assert media_note["op"] == "ack", media_note
        await asyncio.sleep(0.2)
        assert not [f for f in await watcher.barrier() if f.get("op") == "message"]
    with shop.server.http(customer.token) as client:
        assert client.get(f"/api/media/{media_id}").status_code == 404


# --- /stock ---------------------------------------------------------------------------------


@pytest.fixture
def catalogue(shop: Shop) -> tuple[str, list[str]]:
    """23 SKUs sharing a tag nothing else has: three pages of ten."""
    tag = f"PG{next(_refs):04d}{abs(hash(str(Path.cwd()))) % 1000:03d}"
    codes = [f"{tag}-{i:02d}" for i in range(23)]
    seed_skus(shop.server, *codes, stock=7)
    return tag, codes


async def test_stock_answers_only_the_askers_connections_and_pages_reach_every_match(
    shop: Shop, pair: tuple[Account, Account, str], catalogue: tuple[str, list[str]]
) -> None:
    ann, bob, conv = pair
    tag, codes = catalogue
    async with PeerPool(shop.server) as pool:
        asker = await pool.record(ann.token)
        phone = await pool.record(ann.token, device="phone")
        other = await pool.record(bob.token)
        before = shop.server.db_snapshot()
        found: list[str] = []
        pages = []
        for n, text in enumerate((f"/stock {tag}", f"/stock {tag} 2", f"/库存{tag} 3")):
            ref = _ref("ask")
            await asker.send({"op": "send", "ref": ref, "conv": conv, "kind": "text", "text": text})
            reply = await asker.wait_for(_op("command_reply", ref=ref))
            assert await phone.wait_for(_op("command_reply", ref=ref)) == reply
            assert (reply["conv"], reply["command"], reply["query"]) == (conv, "stock", tag)
            assert (reply["page"], reply["pages"], reply["total"]) == (n + 1, 3, 23)
            found += [item["sku"] for item in reply["items"]]
            assert all(item["on_hand"] == 7 for item in reply["items"])
            pages.append(reply)
        assert sorted(found) == codes
        assert pages[0]["next"] == f"/stock {tag} 2" and "prev" not in pages[0]
        assert pages[2]["prev"] == f"/stock {tag} 2" and "next" not in pages[2]
        assert any(tag in line for line in pages[0]["lines"])
        assert not [f for f in asker.frames if f.get("op") in ("ack", "message")]
        await other.barrier()
        assert not [f for f in other.frames if f.get("op") in ("message", "command_reply")]
    assert_unchanged(before, shop.server.db_snapshot())


async def test_stock_in_an_order_conversation_never_reaches_the_customer(
    shop: Shop, catalogue: tuple[str, list[str]]
) -> None:
    tag, _ = catalogue
    order = shop.create_order()
    clerk = shop.staff["customer_service"]
    customer = shop.customer(order)
    async with PeerPool(shop.server) as pool:
        asker = await pool.open(clerk.token)
        watcher = await pool.record(customer.token)
        ref = _ref("ask")
        text = f"/stock {tag}-05"
        await asker.send({"op": "send", "ref": ref, "conv": order["conv"], "text": text})
        reply = await asker.recv_op("command_reply")
        assert reply["ref"] == ref and [i["sku"] for i in reply["items"]] == [f"{tag}-05"]
        await watcher.barrier()
    assert not [f for f in watcher.frames if f.get("op") in ("message", "command_reply")]
    assert all("/stock" not in m["text"] for m in _history(shop, clerk, order["conv"]))


async def test_stock_where_one_is_no_member_is_refused(
    shop: Shop, pair: tuple[Account, Account, str]
) -> None:
    _, _, conv = pair
    outsider = shop.staff["finance"]
    before = shop.server.db_snapshot()
    async with PeerPool(shop.server) as pool:
        peer = await pool.open(outsider.token)
        answer = await peer.send_text(conv, "/stock tent", _ref("ask"))
    assert (answer["op"], answer["code"]) == ("error", "forbidden")
    assert_unchanged(before, shop.server.db_snapshot())


def test_old_frames_keep_their_bytes() -> None:
    """A message that is neither forwarded nor edited is encoded as before."""
    from orderchat.protocol.events import Message
    from orderchat.protocol.server_codec import message_json

    message = Message("m", "c", 1, "r", "u", "text", "t", (), (), None, 5, False)  # type: ignore[arg-type]
    assert orjson.dumps(message_json(message)) == (
        b'{"id":"m","conv":"c","seq":1,"ref":"r","sender":"u","kind":"text","text":"t",'
        b'"attachments":[],"mentions":[],"reply_to":null,"ts":5,"recalled":false}'
    )


# --- the SDK --------------------------------------------------------------------------------


async def test_the_sdk_edits_forwards_and_asks(
    shop: Shop, pair: tuple[Account, Account, str], catalogue: tuple[str, list[str]]
) -> None:
    from orderchat.client import (
        Client,
        ClientOptions,
        CommandReply,
        ForbiddenError,
        MessageEdited,
        MessageReceived,
        login,
    )

    ann, bob, conv = pair
    tag, codes = catalogue
    target = shop.server.conversation(ann, "channel", [bob], title=_ref("sdk"))["id"]
    options = ClientOptions(device="sdk", connect_timeout_s=10.0, ack_timeout_s=30.0)
    ann_session = await login(shop.server.base_url, ann.username, ann.password)
    bob_session = await login(shop.server.base_url, bob.username, bob.password)
    async with (
        Client(ann_session, options=options) as writer,
        Client(bob_session, options=options) as reader,
    ):
        sent = await writer.send(conv, "sdk first")
        assert not isinstance(sent, CommandReply)
        edited = await writer.edit(conv, sent.seq, "sdk second")
        assert (edited.seq, edited.id) == (sent.seq, sent.id)
        with pytest.raises(ForbiddenError):
            await reader.edit(conv, sent.seq, "not mine")
        forwarded = await writer.forward(target, conv, sent.seq)
        reply = await writer.ask(conv, f"/stock {tag} 3")
        assert (reply.page, reply.pages, reply.total) == (3, 3, 23)
        assert [item["sku"] for item in reply.items] == codes[20:]
        seen: list[object] = []
        async with asyncio.timeout(10):
            async for event in reader.events():
                seen.append(event)
                if isinstance(event, MessageReceived) and event.message.id == forwarded.id:
                    break
    edits = [e for e in seen if isinstance(e, MessageEdited)]
    assert [(e.seq, e.text, e.version) for e in edits] == [(sent.seq, "sdk second", 1)]
    (copy,) = [
        e.message for e in seen if isinstance(e, MessageReceived) and e.message.id == forwarded.id
    ]
    assert copy.text == "sdk second" and copy.forwarded_from is not None
    assert copy.forwarded_from["seq"] == sent.seq
    assert not [e for e in seen if isinstance(e, CommandReply)]


async def test_edits_sent_back_to_back_each_become_a_version(
    shop: Shop, pair: tuple[Account, Account, str]
) -> None:
    """Edits that reach one group commit together still get versions 1, 2, 3 in order."""
    ann, _, conv = pair
    async with PeerPool(shop.server) as pool:
        writer = await pool.open(ann.token)
        sent = await writer.send_text(conv, "v0", _ref("m"))
        refs = [_ref("edit") for _ in range(3)]
        for n, ref in enumerate(refs, start=1):
            await writer.send(
                {"op": "edit", "ref": ref, "conv": conv, "seq": sent["seq"], "text": f"v{n}"}
            )
        await writer.send(
            {"op": "edit", "ref": refs[0], "conv": conv, "seq": sent["seq"], "text": "v1"}
        )
        answers = [await writer.recv_ack(ref) for ref in refs]
        again = await writer.recv_ack(refs[0])
    assert [a["op"] for a in answers] == ["ack"] * 3 and again == answers[0]
    rows = shop.server.db_rows(
        "SELECT version, text FROM message_edits WHERE message_id = ? ORDER BY version", sent["id"]
    )
    assert rows == [(1, "v1"), (2, "v2"), (3, "v3")]
    _verify_chain(shop.server, conv)
