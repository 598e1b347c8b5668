"""Pre-sales consults over a real server, on SQLite and on PostgreSQL (docs/consults.md).

The module's server runs the shop's own `consults.toml` (two agents' queue for
Chinese, sales for English, two open consults per agent) and a real SMTP server
for the continue-on-another-device mail. Tests that count the queue first close
every consult still open, so what earlier tests left does not change an answer.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from orderchat.core.consults import DAYS
from tests import media_samples
from tests.clocked_server import ClockedServer
from tests.mail_support import Recorder, smtp_server
from tests.media_support import raw_upload, send_media, tus_create, wait_preview
from tests.order_support import SKU, Shop, assert_unchanged
from tests.support import Account, Peer, ServerProcess, run_cli

Json = dict[str, Any]
_refs = itertools.count(1)

RULES = """
first_response_s = 86400
max_open_per_agent = 2

[[queue]]
name = "brands"
languages = ["en"]
roles = ["sales"]
strategy = "fewest_open"

[[queue]]
name = "shop"
roles = ["customer_service"]
strategy = "round_robin"
"""


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (40, 120, 60)).save(out, format="PNG")
    return out.getvalue()


PNG = _png()
PDF = media_samples.pdf()


class Visitor:
    """A visitor as the API signed them in: their token, id and first consult."""

    def __init__(self, answer: Json) -> None:
        self.token: str = answer["token"]
        self.id: str = answer["user"]["id"]
        self.consult: Json = answer["consult"]

    @property
    def conv(self) -> str:
        return str(self.consult["id"])


@pytest.fixture(scope="module")
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture(scope="module")
def shop(
    tmp_path_factory: pytest.TempPathFactory, store: str, recorder: Recorder
) -> Iterator[Shop]:
    root = tmp_path_factory.mktemp("consults")
    (root / "workflows").mkdir()
    (root / "workflows" / "consults.toml").write_text(RULES)
    with smtp_server(recorder) as port:
        server = ServerProcess(
            root,
            ("--rate-limits", "off"),
            store=store,
            env={
                "ORDERCHAT_SMTP_HOST": "127.0.0.1",
                "ORDERCHAT_SMTP_PORT": str(port),
                "ORDERCHAT_SMTP_SECURITY": "none",
                "ORDERCHAT_SMTP_FROM": "Sunny Outdoor <shop@shop.example>",
            },
        )
        server.start()
        server.create_admin()
        opened = Shop.open(server)
        opened.staff["cs2"] = server.user("customer_service", name="cs-second")
        yield opened
        opened.close()
        server.stop()


def start(shop: Shop, name: str = "张先生", **fields: Any) -> Visitor:
    resp = shop.call(None, "POST", "/api/consults/start", {"name": name, **fields})
    assert resp.status_code == 201, resp.text
    return Visitor(resp.json())


def as_visitor(shop: Shop, visitor: Visitor, method: str, path: str, body: object = None) -> Any:
    with shop.server.http(visitor.token) as client:
        if body is None and method in ("GET", "DELETE"):
            return client.request(method, path)
        return client.request(method, path, json=body if body is not None else {})


def ok(resp: httpx.Response, status: int = 200) -> Json:
    assert resp.status_code == status, resp.text
    body: Json = resp.json()
    return body


def close_everything(shop: Shop) -> None:
    """Close every consult still waiting or open, so a test starts with empty queues."""
    while True:
        page = ok(shop.call("admin", "GET", "/api/consults?view=all&limit=200"))
        if not page["consults"]:
            return
        for consult in page["consults"]:
            ok(shop.call("admin", "POST", f"/api/consults/{consult['id']}/close"))


def messages_as(shop: Shop, token: str, conv: str) -> list[Json]:
    with shop.server.http(token) as client:
        resp = client.get(f"/api/conversations/{conv}/messages?limit=200")
    assert resp.status_code == 200, resp.text
    found: list[Json] = resp.json()["messages"]
    return found


def events(found: list[Json]) -> list[str]:
    return [str((m.get("meta") or {}).get("event")) for m in found if m["kind"] == "system"]


def agents(shop: Shop) -> dict[str, str]:
    return {shop.staff["customer_service"].id: "cs1", shop.staff["cs2"].id: "cs2"}


# --- ways in and routing -------------------------------------------------------------


def test_a_visitor_starts_a_consult_that_an_agent_of_its_queue_gets(shop: Shop) -> None:
    close_everything(shop)
    visitor = start(
        shop,
        text="这款帐篷防水吗？",
        source="widget",
        page_url="https://shop.example/tents/tnt-2p",
        sku=SKU,
        phone="13800000000",
    )
    consult = visitor.consult
    assert consult["status"] == "open"
    assert consult["assignee"]["id"] in agents(shop)
    # A visitor's own view leaves the routing out; staff see the visitor's details.
    assert "queue" not in consult and "phone" not in consult["visitor"]
    staff_view = ok(shop.call("admin", "GET", f"/api/consults/{visitor.conv}"))
    assert staff_view["queue"] == "shop" and staff_view["roles"] == ["customer_service"]
    assert staff_view["visitor"]["phone"] == "13800000000"
    assert staff_view["visitor"]["verified"] is False
    assert (staff_view["page_url"], staff_view["sku"], staff_view["source"]) == (
        "https://shop.example/tents/tnt-2p",
        SKU,
        "widget",
    )
    assert staff_view["waiting_since_ts"] is not None
    history = messages_as(shop, visitor.token, visitor.conv)
    assert events(history) == ["consult_opened", "consult_assigned"]
    assert [m["text"] for m in history if m["kind"] == "text"] == ["这款帐篷防水吗？"]
    assigned = next(m for m in history if (m.get("meta") or {}).get("event") == "consult_assigned")
    assert assigned["mentions"] == [consult["assignee"]["id"]]
    assert assigned["meta"]["say"]["key"] == "note.consult_assigned"


def test_round_robin_gives_the_queue_s_consults_in_turn(shop: Shop) -> None:
    close_everything(shop)
    given = [start(shop, name=f"访客{i}").consult["assignee"]["id"] for i in range(4)]
    assert sorted(given) == sorted([*agents(shop)] * 2)
    assert given[0] != given[1] and given[2] != given[3]


def test_an_english_visitor_goes_to_the_sales_queue(shop: Shop) -> None:
    close_everything(shop)
    visitor = start(shop, name="Ms Brown", language="en", text="Do you make OEM bags?")
    assert visitor.consult["assignee"]["id"] == shop.staff["sales"].id
    staff_view = ok(shop.call("sales", "GET", f"/api/consults/{visitor.conv}"))
    assert staff_view["queue"] == "brands"
    # Customer service serves another queue: not its consult to take or close.
    resp = shop.call("customer_service", "POST", f"/api/consults/{visitor.conv}/close")
    assert resp.status_code == 403, resp.text


def test_when_every_agent_is_busy_visitors_queue_and_a_close_lets_the_next_in(
    shop: Shop,
) -> None:
    close_everything(shop)
    served = [start(shop, name=f"忙{i}") for i in range(4)]  # two agents, two each
    assert all(v.consult["status"] == "open" for v in served)
    waiting = [start(shop, name=f"等{i}") for i in range(3)]
    assert [v.consult["status"] for v in waiting] == ["queued"] * 3
    assert [v.consult["position"] for v in waiting] == [1, 2, 3]
    assert events(messages_as(shop, waiting[1].token, waiting[1].conv))[-1] == "consult_queued"
    mine = ok(shop.call("customer_service", "GET", "/api/consults?view=unassigned"))
    assert [c["id"] for c in mine["consults"]][:3] == [v.conv for v in waiting]
    # An agent closes one: the visitor waiting longest is theirs now.
    freed = next(v for v in served if v.consult["assignee"]["id"] == shop.staff["cs2"].id)
    ok(shop.call("cs2", "POST", f"/api/consults/{freed.conv}/close"))
    first = ok(as_visitor(shop, waiting[0], "GET", f"/api/consults/{waiting[0].conv}"))
    assert first["status"] == "open" and first["assignee"]["id"] == shop.staff["cs2"].id
    second = ok(as_visitor(shop, waiting[1], "GET", f"/api/consults/{waiting[1].conv}"))
    assert second["position"] == 1


def test_take_transfer_with_a_note_close_and_reopen(shop: Shop) -> None:
    close_everything(shop)
    visitor = start(shop, text="鞋子要大一码吗？")
    agent = visitor.consult["assignee"]["id"]
    other = next(key for uid, key in agents(shop).items() if uid != agent)
    current = "customer_service" if agents(shop)[agent] == "cs1" else "cs2"
    moved = ok(
        shop.call(
            current,
            "POST",
            f"/api/consults/{visitor.conv}/transfer",
            {
                "to_user": shop.staff[other if other == "cs2" else "customer_service"].id,
                "note": "客户脚宽，推荐宽楦",
            },
        )
    )
    assert moved["assignee"]["id"] != agent
    # The note is for staff: the visitor never gets it.
    seen = messages_as(shop, visitor.token, visitor.conv)
    assert "consult_transfer_note" not in events(seen)
    assert not any("宽楦" in m["text"] for m in seen)
    staff_seen = messages_as(shop, shop.staff["admin"].token, visitor.conv)
    note = next(
        m for m in staff_seen if (m.get("meta") or {}).get("event") == "consult_transfer_note"
    )
    assert note["internal"] is True and "宽楦" in note["meta"]["say"]["params"]["note"]
    # To a role's queue: the sales agent gets it.
    to_sales = ok(
        shop.call("admin", "POST", f"/api/consults/{visitor.conv}/transfer", {"to_role": "sales"})
    )
    assert to_sales["roles"] == ["sales"] and to_sales["assignee"]["id"] == shop.staff["sales"].id
    closed = ok(shop.call("sales", "POST", f"/api/consults/{visitor.conv}/close"))
    assert closed["status"] == "closed"
    asyncio.run(_visitor_writes_again(shop, visitor))
    again = ok(shop.call("admin", "GET", f"/api/consults/{visitor.conv}"))
    assert again["status"] == "open" and again["closed_ts"] is None
    assert "consult_reopened" in events(messages_as(shop, visitor.token, visitor.conv))


async def _visitor_writes_again(shop: Shop, visitor: Visitor) -> None:
    peer = await Peer.open(shop.server, visitor.token, "phone")
    try:
        ack = await peer.send_text(visitor.conv, "还有一个问题", f"again-{next(_refs)}")
        assert ack["op"] == "ack", ack
    finally:
        await peer.close()


def test_a_staff_answer_sets_the_first_response_and_an_unassigned_answer_takes_it(
    shop: Shop,
) -> None:
    close_everything(shop)
    busy = [start(shop, name=f"满{i}") for i in range(4)]
    waiting = start(shop, name="排队的人", text="有人吗")
    assert waiting.consult["status"] == "queued"
    asyncio.run(_staff_answers(shop, shop.staff["admin"], waiting.conv))
    view = ok(shop.call("admin", "GET", f"/api/consults/{waiting.conv}"))
    assert view["first_response_ts"] is not None and view["waiting_since_ts"] is None
    assert view["status"] == "open" and view["assignee"]["id"] == shop.staff["admin"].id
    # The other consults stay with the agents who had them.
    for one in busy:
        still = ok(shop.call("admin", "GET", f"/api/consults/{one.conv}"))
        assert still["assignee"]["id"] == one.consult["assignee"]["id"], still


async def _staff_answers(shop: Shop, who: Account, conv: str) -> None:
    peer = await Peer.open(shop.server, who.token, "desk")
    try:
        ack = await peer.send_text(conv, "您好，我来帮您", f"answer-{next(_refs)}")
        assert ack["op"] == "ack", ack
    finally:
        await peer.close()


# --- product cards and orders ----------------------------------------------------


def test_a_shared_product_card_shows_live_stock_picture_and_options(shop: Shop) -> None:
    visitor = start(shop)
    ok(
        shop.call(
            "purchasing",
            "PUT",
            f"/api/products/{SKU}/options",
            {"options": [{"name": "颜色", "values": ["军绿", "橙色"]}]},
        )
    )
    with shop.server.http(shop.staff["purchasing"].token) as client:
        resp = client.put(
            f"/api/products/{SKU}/picture", content=PNG, headers={"content-type": "image/png"}
        )
    card = ok(resp)
    assert card["picture"] == f"/api/products/{SKU}/picture"
    picture = httpx.get(f"{shop.server.base_url}{card['picture']}", timeout=10)
    assert picture.status_code == 200 and picture.headers["content-type"] == "image/jpeg"
    assert picture.content[:2] == b"\xff\xd8"
    shared = ok(
        shop.call("admin", "POST", f"/api/conversations/{visitor.conv}/products", {"sku": SKU}), 201
    )
    product = next(
        m for m in messages_as(shop, visitor.token, visitor.conv) if m["seq"] == shared["seq"]
    )
    assert product["kind"] == "product"
    meta = product["meta"]["product"]
    assert meta["sku"] == SKU and meta["options"][0]["values"] == ["军绿", "橙色"]
    live = ok(as_visitor(shop, visitor, "GET", f"/api/products/{SKU}"))
    assert live["available"] == meta["available"] and live["price_cents"] == 9900
    # Only staff share cards, a bad picture is refused, an unknown SKU is 404.
    refused = as_visitor(
        shop, visitor, "POST", f"/api/conversations/{visitor.conv}/products", {"sku": SKU}
    )
    assert refused.status_code == 403, refused.text
    with shop.server.http(shop.staff["purchasing"].token) as client:
        bad = client.put(f"/api/products/{SKU}/picture", content=b"not a picture")
        broken = client.put(f"/api/products/{SKU}/picture", content=PNG[:40] + b"x" * 40)
    assert bad.status_code == 400 and broken.status_code == 400, (bad.text, broken.text)
    unknown = shop.call(
        "admin", "POST", f"/api/conversations/{visitor.conv}/products", {"sku": "NO-SUCH-SKU"}
    )
    assert unknown.status_code == 404, unknown.text


def test_a_consult_becomes_an_order_of_the_same_visitor(shop: Shop) -> None:
    visitor = start(shop, text="我要两顶")
    body = shop.order_body()
    del body["customer"]
    order = ok(
        shop.call("customer_service", "POST", f"/api/consults/{visitor.conv}/order", body), 201
    )
    assert order["customer"] == visitor.id
    # The visitor's own session sees the order: no second sign-in.
    seen = ok(as_visitor(shop, visitor, "GET", f"/api/orders/{order['id']}"))
    assert seen["id"] == order["id"] and [c["id"] for c in seen["consults"]] == [visitor.conv]
    staff_seen = ok(shop.call("sales", "GET", f"/api/orders/{order['id']}"))
    assert [c["id"] for c in staff_seen["consults"]] == [visitor.conv]
    mine = ok(as_visitor(shop, visitor, "GET", "/api/me/consults"))
    assert [o["id"] for o in mine["orders"]] == [order["id"]]
    assert mine["consults"][0]["order"]["number"] == order["number"]
    ordered = next(
        m
        for m in messages_as(shop, visitor.token, visitor.conv)
        if (m.get("meta") or {}).get("event") == "consult_ordered"
    )
    assert ordered["meta"]["number"] == order["number"]
    history = ok(shop.call("sales", "GET", f"/api/customers/{visitor.id}/history"))
    assert [c["id"] for c in history["consults"]] == [visitor.conv]
    assert [o["id"] for o in history["orders"]] == [order["id"]]
    assert history["customer"]["verified"] is True
    again = shop.call(
        "customer_service",
        "POST",
        f"/api/consults/{visitor.conv}/order",
        {**body, "number": shop.new_number()},
    )
    assert again.status_code == 409, again.text


# --- abuse and privacy -----------------------------------------------------------


def test_a_blocked_visitor_is_refused_politely_and_nothing_is_stored(shop: Shop) -> None:
    visitor = start(shop)
    refused = as_visitor(shop, visitor, "POST", f"/api/visitors/{visitor.id}/block")
    assert refused.status_code == 403, refused.text
    assert (
        shop.call("customer_service", "POST", f"/api/visitors/{visitor.id}/block").status_code
        == 204
    )
    before = shop.server.db_snapshot()
    error = asyncio.run(_visitor_send(shop, visitor, "还在吗"))
    assert error["op"] == "error" and error["code"] == "forbidden", error
    assert "直接联系本店" in error["message"]
    # Asking for another consult gives back the one still open, and opens nothing.
    again = as_visitor(shop, visitor, "POST", "/api/consults", {"text": "再开一个"})
    assert again.status_code == 200 and again.json()["id"] == visitor.conv, again.text
    assert_unchanged(before, shop.server.db_snapshot())
    assert (
        shop.call("customer_service", "DELETE", f"/api/visitors/{visitor.id}/block").status_code
        == 204
    )
    assert asyncio.run(_visitor_send(shop, visitor, "好了"))["op"] == "ack"


async def _visitor_send(shop: Shop, visitor: Visitor, text: str) -> Json:
    peer = await Peer.open(shop.server, visitor.token, "phone")
    try:
        return await peer.send_text(visitor.conv, text, f"v-{next(_refs)}")
    finally:
        await peer.close()


def test_an_unverified_visitor_sends_pictures_but_no_other_files(shop: Shop) -> None:
    visitor = start(shop)
    before = shop.server.db_snapshot()
    with shop.server.http(visitor.token) as client:
        document = tus_create(
            client, conv=visitor.conv, length=16, filename="spec.pdf", filetype="application/pdf"
        )
        program = tus_create(
            client, conv=visitor.conv, length=64, filename="setup.exe", filetype=None
        )
        huge = tus_create(
            client, conv=visitor.conv, length=11 * 2**20, filename="big.png", filetype="image/png"
        )
    for refused in (document, program, huge):
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"]["reason"].startswith("consults."), refused.text
    assert_unchanged(before, shop.server.db_snapshot())
    with shop.server.http(visitor.token) as client:
        picture = raw_upload(client, visitor.conv, PNG, "tent.png", "image/png")
    answers = asyncio.run(_send_files(shop, visitor, [("image", picture)]))
    assert answers[0]["op"] == "ack", answers[0]
    # Once an order vouches for them, a file is a file.
    body = shop.order_body()
    del body["customer"]
    ok(shop.call("customer_service", "POST", f"/api/consults/{visitor.conv}/order", body), 201)
    with shop.server.http(visitor.token) as client:
        pdf = raw_upload(client, visitor.conv, PDF, "spec.pdf", "application/pdf")
    assert asyncio.run(_send_files(shop, visitor, [("file", pdf)]))[0]["op"] == "ack"
    # The previews are made in the background: let them finish before other tests
    # compare the database.
    assert wait_preview(shop.server, visitor.token, picture)["preview"]["status"] == "ready"
    wait_preview(shop.server, visitor.token, pdf)


async def _send_files(shop: Shop, visitor: Visitor, files: list[tuple[str, str]]) -> list[Json]:
    peer = await Peer.open(shop.server, visitor.token, "phone")
    try:
        return [
            await send_media(peer, visitor.conv, kind, [upload], f"f-{next(_refs)}")
            for kind, upload in files
        ]
    finally:
        await peer.close()


def test_a_visitor_reaches_no_one_else_s_consult_order_or_channel(shop: Shop) -> None:
    mine, theirs = start(shop, name="甲"), start(shop, name="乙")
    body = shop.order_body()
    del body["customer"]
    order = ok(
        shop.call("customer_service", "POST", f"/api/consults/{theirs.conv}/order", body), 201
    )
    channel = shop.server.db_rows("SELECT id FROM conversations WHERE role_channel = 'sales'")
    before = shop.server.db_snapshot()
    attempts = [
        ("GET", f"/api/consults/{theirs.conv}", None, 404),
        ("GET", f"/api/orders/{order['id']}", None, 403),
        ("GET", f"/api/conversations/{theirs.conv}/messages", None, 403),
        ("GET", f"/api/conversations/{channel[0][0]}/messages", None, 403),
        ("GET", "/api/consults?view=role", None, 403),
        ("POST", f"/api/consults/{theirs.conv}/take", None, 403),
        ("POST", f"/api/consults/{theirs.conv}/close", None, 403),
        ("POST", f"/api/consults/{mine.conv}/transfer", {"to_role": "sales"}, 403),
        ("GET", f"/api/customers/{theirs.id}/history", None, 403),
        ("POST", f"/api/visitors/{theirs.id}/block", None, 403),
        ("GET", f"/api/visitors/{theirs.id}/export", None, 403),
        ("POST", f"/api/visitors/{theirs.id}/erase", None, 403),
        ("GET", "/api/admin/qr", None, 403),
    ]
    for method, path, body_, status in attempts:
        resp = as_visitor(shop, mine, method, path, body_)
        assert resp.status_code == status, (method, path, resp.text)
    error = asyncio.run(_visitor_send_to(shop, mine, theirs.conv))
    assert error["op"] == "error", error
    assert_unchanged(before, shop.server.db_snapshot())


async def _visitor_send_to(shop: Shop, visitor: Visitor, conv: str) -> Json:
    peer = await Peer.open(shop.server, visitor.token, "phone")
    try:
        return await peer.send_text(conv, "偷看", f"x-{next(_refs)}")
    finally:
        await peer.close()


def test_bad_starts_get_a_clear_error_and_change_nothing(shop: Shop) -> None:
    before = shop.server.db_snapshot()
    for body in (
        {},
        {"name": ""},
        {"name": "x" * 101},
        {"name": "张", "email": "not-an-address"},
        {"name": "张", "page_url": "javascript:alert(1)"},
        {"name": "张", "source": "email"},
        {"name": "张", "language": "fr"},
        {"name": "张", "tag": "has space"},
        {"name": 12},
        {"name": "张", "surprise": True},
    ):
        resp = shop.call(None, "POST", "/api/consults/start", body)
        assert resp.status_code == 400, (body, resp.text)
        assert resp.json()["error"]["code"] == "bad_request"
    assert_unchanged(before, shop.server.db_snapshot())


def test_an_admin_exports_and_erases_a_visitor_and_the_chain_still_verifies(shop: Shop) -> None:
    visitor = start(shop, name="要删除的人", email="erase-me@example.com", text="我的电话 139")
    exported = ok(shop.call("admin", "GET", f"/api/visitors/{visitor.id}/export"))
    assert exported["person"]["email"] == "erase-me@example.com"
    assert any("139" in m["text"] for m in exported["messages"])
    erased = ok(shop.call("admin", "POST", f"/api/visitors/{visitor.id}/erase"))
    assert erased["messages"] >= 2 and erased["sessions"] == 1
    again = ok(shop.call("admin", "GET", f"/api/visitors/{visitor.id}/export"))
    assert again["person"]["email"] is None and again["person"]["name"] != "要删除的人"
    assert not again["messages"]
    staff_seen = messages_as(shop, shop.staff["admin"].token, visitor.conv)
    assert not any("139" in m["text"] or "要删除的人" in m["text"] for m in staff_seen)
    proof = ok(shop.call("admin", "GET", f"/api/admin/verify?conv={visitor.conv}"))
    assert proof["holds"] is True, proof
    assert as_visitor(shop, visitor, "GET", "/api/me/consults").status_code == 401
    actions = ok(shop.call("admin", "GET", "/api/admin/audit?action=visitor.*"))
    assert {"visitor.exported", "visitor.erased"} <= {e["action"] for e in actions["entries"]}


def test_a_mailed_link_signs_another_device_in_once(shop: Shop, recorder: Recorder) -> None:
    address = f"phone-{next(_refs)}@example.com"  # each store's leg its own mail
    visitor = start(shop, name="换手机", email=address)
    sent = ok(as_visitor(shop, visitor, "POST", "/api/consults/email-link", {}))
    assert sent["sent_to"] == address
    mail = _wait_mail(recorder, address)
    token = re.search(r"/chat#resume=([A-Za-z0-9_-]+)", mail)
    assert token, mail
    signed = ok(shop.call(None, "POST", "/api/auth/visitor-link", {"token": token.group(1)}))
    assert signed["user"]["id"] == visitor.id
    reused = shop.call(None, "POST", "/api/auth/visitor-link", {"token": token.group(1)})
    assert reused.status_code == 401, reused.text


def _wait_mail(recorder: Recorder, address: str, timeout_s: float = 10) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for received in recorder.received:
            if address in received.rcpt_tos:
                part = received.message.get_body(preferencelist=("plain",))
                assert part is not None
                return str(part.get_content())
        time.sleep(0.05)
    raise AssertionError(f"no mail to {address}")


# --- the shop's side -------------------------------------------------------------


def test_the_qr_code_the_page_and_the_widget(shop: Shop) -> None:
    svg = shop.call("admin", "GET", "/api/admin/qr?format=svg&tag=counter")
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    assert svg.headers["x-chat-url"].endswith("/chat?src=qr&tag=counter")
    png = shop.call("admin", "GET", "/api/admin/qr?format=png")
    assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert shop.call("admin", "GET", "/api/admin/qr?tag=a%20b").status_code == 400
    page = httpx.get(f"{shop.server.base_url}/chat", timeout=10)
    assert page.status_code == 200 and "x-frame-options" not in page.headers
    assert "frame-ancestors 'self' *" in page.headers["content-security-policy"]
    staff_page = httpx.get(f"{shop.server.base_url}/", timeout=10)
    assert "frame-ancestors 'none'" in staff_page.headers["content-security-policy"]
    widget = httpx.get(f"{shop.server.base_url}/widget.js", timeout=10)
    assert widget.status_code == 200 and "javascript" in widget.headers["content-type"]


def test_the_rules_report_shows_the_shop_s_consult_rules(shop: Shop) -> None:
    rules = ok(shop.call("customer_service", "GET", "/api/rules"))["consult"]
    assert rules["valid"] is True and rules["source"]["origin"] == "shop"
    assert [q["name"] for q in rules["queues"]] == ["brands", "shop"]
    assert rules["max_open_per_agent"] == 2


# --- a server of their own, on a clock the test moves -------------------------------------


def _tomorrow() -> str:
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    return DAYS[(datetime.now(ZoneInfo("Asia/Shanghai")) + timedelta(days=1)).weekday()]


@pytest.mark.sqlite_only  # in this process, to move its clock; the same code on either store
def test_an_unanswered_consult_escalates_when_its_time_is_up_and_starts_are_limited(
    tmp_path: Path, store: str
) -> None:
    (tmp_path / "workflows").mkdir()
    closed_today = f'[hours]\ndays = ["{_tomorrow()}"]\nopen = "09:00"\nclose = "18:00"\n'
    rules = RULES.replace("first_response_s = 86400", "first_response_s = 300")
    (tmp_path / "workflows" / "consults.toml").write_text(
        rules.replace("[[queue]]", closed_today + "\n[[queue]]", 1)
    )
    server = ClockedServer(tmp_path, settings={"session_ttl_s": 1e9})  # rate limits on
    server.start()
    try:
        server.create_admin()
        timed = Shop.open(server)
        visitor = start(timed, text="有人在吗？")
        answered = start(timed, text="我也问一下")
        # Outside the hours the visitor learns when the shop opens.
        away = [
            m
            for m in messages_as(timed, visitor.token, visitor.conv)
            if (m.get("meta") or {}).get("event") == "consult_away"
        ]
        assert len(away) == 1 and "09:00" in away[0]["meta"]["say"]["params"]["next_open"]
        # Twenty starts from one address pass at once; then one waits, and starts nothing.
        for attempt in range(40):
            before = server.db_snapshot()
            answer = timed.call(None, "POST", "/api/consults/start", {"name": f"抢购{attempt}"})
            if answer.status_code == 429:
                break
            assert answer.status_code == 201, answer.text
        else:
            raise AssertionError("40 starts from one address were all let through")
        assert attempt >= 17 and "retry-after" in answer.headers
        assert_unchanged(before, server.db_snapshot())
        asyncio.run(_staff_answers(timed, timed.staff["admin"], answered.conv))
        server.clock.advance(200)  # not yet
        time.sleep(6)  # the timer looks every 5 s
        assert "consult_escalated" not in events(
            messages_as(timed, timed.staff["admin"].token, visitor.conv)
        )
        server.clock.advance(101)
        escalated = _wait_event(timed, visitor.conv, "consult_escalated", timeout_s=15)
        assert escalated["urgent"] is True and escalated["internal"] is True
        assert escalated["mentions"] == [visitor.consult["assignee"]["id"]]
        assert "consult_escalated" not in events(messages_as(timed, visitor.token, visitor.conv))
        view = ok(timed.call("admin", "GET", f"/api/consults/{visitor.conv}"))
        assert view["escalated_ts"] is not None
        # A consult staff answered in time never escalates.
        staff_view = messages_as(timed, timed.staff["admin"].token, answered.conv)
        assert "consult_escalated" not in events(staff_view)
        timed.close()
    finally:
        server.stop()


def _wait_event(shop: Shop, conv: str, event: str, timeout_s: float) -> Json:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for message in messages_as(shop, shop.staff["admin"].token, conv):
            if (message.get("meta") or {}).get("event") == event:
                return message
        time.sleep(0.25)
    raise AssertionError(f"no {event} in {conv} after {timeout_s} s")


@pytest.mark.sqlite_only  # no server, no store
def test_orderchat_qr_writes_a_code_for_the_counter(tmp_path: Path, store: str) -> None:
    png = run_cli("qr", "--tag", "counter", "--out", str(tmp_path / "counter.png"))
    assert png.stdout.strip().endswith("/chat?src=qr&tag=counter")
    assert (tmp_path / "counter.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(tmp_path / "counter.png") as image:
        assert image.size[0] == image.size[1] >= 200
    svg = run_cli("qr", "--out", str(tmp_path / "slip.svg"), "--public-url", "https://c.example")
    assert "https://c.example/chat?src=qr" in svg.stdout
    assert (tmp_path / "slip.svg").read_text().lstrip().startswith("<?xml")
    bad = run_cli("qr", "--tag", "two words", "--out", str(tmp_path / "x.png"), check=False)
    assert bad.returncode == 2 and not (tmp_path / "x.png").exists()
    assert "tag" in bad.stderr
