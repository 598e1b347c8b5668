"""Retention, legal hold and the daily anchor, on a server whose clock the test moves.

A purge removes content and keeps every link: the chain still verifies (the
admin route and `orderchat verify` say so), nobody finds a purged message, its
files are gone from disk, and an order under legal hold keeps everything. An
anchor is checked as a receiver would: the signature with the public key
alone, the digest from the heads it names, the webhook with its HMAC.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orderchat.core import anchor as rules
from tests import media_samples
from tests.clocked_server import ClockedServer
from tests.media_support import send_media, tus_upload
from tests.order_support import Shop, assert_unchanged
from tests.support import Account, PeerPool, run_cli
from tests.webhook_receiver import receiving, signature_ok

# SQLite only: the server runs on a thread of this process (its clock is the test's),
# and on PostgreSQL an asyncpg connection of that server outlives the test and is
# reported when collected, failing whichever test runs then.
pytestmark = pytest.mark.sqlite_only

_refs = itertools.count(1)
Json = dict[str, Any]
DAY_S = 24 * 3600


def _ref() -> str:
    return f"keep-{next(_refs)}"


@pytest.fixture
def server(tmp_path: Path, store: str) -> Iterator[ClockedServer]:
    clocked = ClockedServer(
        tmp_path,
        store=store,
        # Sessions outlive the month the clock moves on.
        settings={"rate_limits": False, "allow_private_targets": True, "session_ttl_s": 1e9},
    )
    if store == "postgres":
        clocked.settings["database_url"] = clocked.db_url
    clocked.start()
    clocked.create_admin()
    yield clocked
    clocked.stop()


def _call(server: ClockedServer, who: Account, method: str, path: str, body: object = None) -> Any:
    with server.http(who.token) as http:
        resp = http.request(method, path, json=body)
    return resp


def _ok(resp: Any, status: int = 200) -> Json:
    assert resp.status_code == status, resp.text
    body: Json = resp.json()
    return body


async def _history(server: ClockedServer, who: Account, conv: str) -> list[Json]:
    resp = _call(server, who, "GET", f"/api/conversations/{conv}/messages?after=0&limit=100")
    messages: list[Json] = _ok(resp)["messages"]
    return messages


async def test_a_purge_removes_content_keeps_the_chain_and_spares_a_held_order(
    server: ClockedServer,
) -> None:
    admin = server.admin
    assert admin is not None
    shop = Shop.open(server)
    bob = shop.staff["warehouse"]
    chat = server.conversation(admin, "channel", [bob], title="旧闲聊")["id"]
    held = shop.create_order()
    upload = tus_upload(server, admin.token, chat, media_samples.png(), "样品.png", "image/png")
    async with PeerPool(server) as pool:
        peer = await pool.open(admin.token)
        old = await peer.send_text(chat, "旧报价 皮料 120 元", _ref())
        await peer.send(
            {
                "op": "edit",
                "ref": _ref(),
                "conv": chat,
                "seq": old["seq"],
                "text": "旧报价 皮料 125 元",
            }
        )
        await peer.recv_op("ack")
        picture = await send_media(peer, chat, "image", [upload], _ref(), text="样品图")
        assert picture["op"] == "ack", picture
        await peer.send_text(held["conv"], "争议中的订单 皮料", _ref())
    blob_files = sorted((server.data_dir / "blobs").rglob("*"))
    assert any(p.is_file() for p in blob_files)

    _ok(_call(server, admin, "POST", f"/api/orders/{held['id']}/legal-hold", {"hold": True}))
    for kind in ("channel", "order"):
        _ok(_call(server, admin, "PUT", "/api/admin/retention", {"kind": kind, "days": 30}))
    nothing_yet = _ok(_call(server, admin, "POST", "/api/admin/retention/run"))
    assert nothing_yet["messages"] == 0  # nothing is 30 days old yet

    server.clock.advance(31 * DAY_S)
    async with PeerPool(server) as pool:
        fresh = await (await pool.open(admin.token)).send_text(chat, "新消息 皮料", _ref())
    report = _ok(_call(server, admin, "POST", "/api/admin/retention/run"))
    assert report["messages"] >= 2 and report["files"] == 1, report

    kept = {m["seq"]: m for m in await _history(server, admin, chat)}
    assert kept[fresh["seq"]]["text"] == "新消息 皮料" and "purged" not in kept[fresh["seq"]]
    for seq in (old["seq"], picture["seq"]):
        assert kept[seq]["purged"] is True and kept[seq]["text"] == ""
        assert kept[seq]["attachments"] == []
    assert _call(server, admin, "GET", f"/api/media/{upload}").status_code == 404
    assert not any(p.is_file() for p in (server.data_dir / "blobs").rglob("*") if "png" in p.name)
    found = _ok(_call(server, admin, "GET", "/api/search?q=皮料&audit=true"))["results"]
    assert {r["message"]["conv"] for r in found} == {chat, held["conv"]}
    assert [r["message"]["seq"] for r in found if r["message"]["conv"] == chat] == [fresh["seq"]]
    assert "争议中的订单 皮料" in [m["text"] for m in await _history(server, admin, held["conv"])]
    server.check_search_index()

    # The chain still holds, checked by the server and by the command on the database.
    proof = _ok(_call(server, admin, "GET", f"/api/admin/verify?conv={chat}"))
    assert proof["holds"] is True, proof["broken"]
    where = ("--data-dir", str(server.data_dir), *server.database_args)
    checked = run_cli("verify", *where, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    overview = _ok(_call(server, admin, "GET", "/api/admin/retention"))
    assert overview["rules"] == {"channel": 30, "direct": None, "order": 30, "consult": None}
    assert overview["held"] == [{"id": held["id"], "number": held["number"]}]
    assert any(p["conv"] == chat for p in overview["purges"])
    logged = _ok(_call(server, admin, "GET", "/api/admin/audit?action=retention.*"))["entries"]
    assert {e["action"] for e in logged} >= {"retention.changed", "retention.purged"}
    hold = _ok(_call(server, admin, "GET", f"/api/admin/audit?target={held['id']}"))["entries"]
    assert "order.legal_hold_changed" in [e["action"] for e in hold]


def test_bad_retention_requests_get_a_clear_error_and_change_nothing(
    server: ClockedServer,
) -> None:
    admin = server.admin
    assert admin is not None
    clerk = server.user("sales")
    before = server.db_snapshot()
    refused = [
        (admin, "PUT", "/api/admin/retention", {"kind": "channel", "days": 0}, 400),
        (admin, "PUT", "/api/admin/retention", {"kind": "channel", "days": 36_501}, 400),
        (admin, "PUT", "/api/admin/retention", {"kind": "group", "days": 30}, 400),
        (admin, "PUT", "/api/admin/retention", {"kind": "channel", "days": "30"}, 400),
        (admin, "PUT", "/api/admin/retention", {"kind": "channel"}, 400),
        (clerk, "PUT", "/api/admin/retention", {"kind": "channel", "days": 30}, 403),
        (clerk, "GET", "/api/admin/retention", None, 403),
        (clerk, "POST", "/api/admin/retention/run", None, 403),
        (clerk, "POST", "/api/orders/o_none/legal-hold", {"hold": True}, 403),
        (admin, "POST", "/api/orders/o_none/legal-hold", {"hold": True}, 404),
        (admin, "POST", "/api/orders/o_none/legal-hold", {"hold": "yes"}, 400),
        (clerk, "GET", "/api/admin/anchors", None, 403),
        (clerk, "POST", "/api/admin/anchors", None, 403),
    ]
    for who, method, path, body, status in refused:
        resp = _call(server, who, method, path, body)
        assert resp.status_code == status, (path, body, resp.text)
        assert resp.json()["error"], resp.text
    assert_unchanged(before, server.db_snapshot())


async def test_the_anchor_is_signed_posted_to_audit_and_sent_to_webhooks(
    server: ClockedServer,
) -> None:
    admin = server.admin
    assert admin is not None
    with receiving() as receiver:
        hook = _ok(
            _call(
                server,
                admin,
                "POST",
                "/api/admin/webhooks",
                {"url": receiver.url, "topics": ["audit.anchor"]},
            ),
            201,
        )
        conv = server.conversation(admin, "channel", [], title="记录")["id"]
        async with PeerPool(server) as pool:
            await (await pool.open(admin.token)).send_text(conv, "签名之前", _ref())
        made = _ok(_call(server, admin, "POST", "/api/admin/anchors"), 201)
        listed = _ok(_call(server, admin, "GET", "/api/admin/anchors"))
        (delivery,) = receiver.wait_for(1, timeout_s=15)
    assert listed["anchors"][0] == made
    public = listed["public_key"]
    assert rules.key_id(public) == listed["key_id"] == made["key_id"]
    statement = rules.statement(made["ts"], made["digest"], made["conversations"])
    assert rules.verify(public, statement, made["signature"])
    assert not rules.verify(
        public, statement.replace(b"orderchat", b"orderchaT"), made["signature"]
    )
    # The digest is of the heads as they stood: the conversation's is among them.
    heads = server.db_rows("SELECT heads FROM anchors WHERE id = ?", made["id"])[0][0]
    import orjson

    named = [rules.Head(c, s, h) for c, s, h in orjson.loads(heads)]
    assert rules.digest(named) == made["digest"] and len(named) == made["conversations"]
    row = server.db_rows("SELECT last_seq, last_hash FROM conversations WHERE id = ?", conv)[0]
    assert rules.Head(conv, row[0], row[1]) in named
    # Posted where admins read it, and carried out by the webhook, signed.
    audit = server.db_rows("SELECT c.id FROM conversations c WHERE c.role_channel = ?", "audit")[0][
        0
    ]
    posted = (await _history(server, admin, audit))[-1]
    assert posted["meta"]["anchor"]["digest"] == made["digest"]
    assert signature_ok(hook["secret"], delivery, time.time())
    assert made["digest"] in delivery.body.decode()
