"""Mails from a real server to a real SMTP server (aiosmtpd) on loopback: a customer's
status mail in their language with a link that signs them in; staff missed-message
mails gathered into one; reading first cancels; one-click unsubscribe holds."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.mail_support import Received, Recorder, smtp_server
from tests.order_support import Shop, load_workflow, path_to
from tests.support import Peer, ServerProcess, free_port
from tests.webhook_receiver import receiving

pytestmark = pytest.mark.timeout(90)

SHOP_NAME = "Sunny Outdoor"
POLICY = """
[occasions.order_status]
email = 0
[occasions.direct]
email = 1
[occasions.mention]
email = 1
[email]
batch_s = 4
"""


@pytest.fixture(scope="module")
def recorder(store: str) -> Recorder:
    """The mails of one store's leg: the legs of a file run one after the other."""
    return Recorder()


@pytest.fixture(scope="module")
def shop(
    tmp_path_factory: pytest.TempPathFactory, store: str, recorder: Recorder
) -> Iterator[Shop]:
    root = tmp_path_factory.mktemp("mail")
    (root / "workflows").mkdir()
    (root / "workflows" / "notify.toml").write_text(POLICY)
    with smtp_server(recorder) as port:
        server = ServerProcess(
            root,
            ("--rate-limits", "off", "--shop-name", SHOP_NAME),
            store=store,
            env={
                "ORDERCHAT_SMTP_HOST": "127.0.0.1",
                "ORDERCHAT_SMTP_PORT": str(port),
                "ORDERCHAT_SMTP_SECURITY": "none",
                "ORDERCHAT_SMTP_FROM": "Sunny Outdoor <orders@shop.example>",
            },
        )
        server.start()
        server.create_admin()
        opened = Shop.open(server)
        yield opened
        opened.close()
        server.stop()


def mails_to(recorder: Recorder, address: str) -> list[EmailMessage]:
    return [r.message for r in recorder.received if address in r.rcpt_tos]


def wait_mails(
    recorder: Recorder, address: str, count: int, timeout_s: float = 10
) -> list[EmailMessage]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = mails_to(recorder, address)
        if len(found) >= count:
            return found
        time.sleep(0.05)
    raise AssertionError(f"{len(mails_to(recorder, address))} mails to {address}, not {count}")


def text_of(mail: EmailMessage) -> str:
    part = mail.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def customer_order(shop: Shop, language: str, address: str) -> dict[str, Any]:
    body = shop.order_body(language=language)
    body["customer"]["email"] = address
    resp = shop.call("customer_service", "POST", "/api/orders", body)
    assert resp.status_code == 201, resp.text
    order: dict[str, Any] = resp.json()
    return order


def confirm(shop: Shop, order: dict[str, Any]) -> None:
    assert shop.move(order["id"], "confirmed", "customer_service").status_code == 200


def test_a_customer_hears_of_their_order_by_mail_in_their_language(
    shop: Shop, recorder: Recorder
) -> None:
    order = customer_order(shop, "en", "lin@example.com")
    wait_mails(recorder, "lin@example.com", 1)  # the order was received
    started = time.monotonic()
    confirm(shop, order)
    mail = wait_mails(recorder, "lin@example.com", 2)[1]
    assert time.monotonic() - started < 2.5  # within 2 s of the change, with polling slack
    assert order["number"] in mail["Subject"] and SHOP_NAME in mail["Subject"]
    assert mail["Content-Language"] == "en"
    assert mail.get_body(preferencelist=("html",)) is not None
    text = text_of(mail)
    assert not re.search(r"[\u4e00-\u9fff]", str(mail["Subject"]))
    link = re.search(r"http://127\.0\.0\.1:\d+/c#([A-Za-z0-9_-]+)", text)
    assert link is not None, text
    signed = httpx.post(
        f"{shop.server.base_url}/api/auth/invitation", json={"token": link.group(1)}, timeout=10
    )
    assert signed.status_code == 200, signed.text
    assert signed.json()["user"]["id"] == order["customer"]

    zh = shop.drive(customer_order(shop, "zh-CN", "zhou@example.com"), "packed")
    before = len(wait_mails(recorder, "zhou@example.com", 4))  # created … packed
    started = time.monotonic()
    shipped = shop.advance(zh, path_to(load_workflow("retail"), "shipped")[-1])
    mail_zh = wait_mails(recorder, "zhou@example.com", before + 1)[-1]
    assert time.monotonic() - started < 2.5  # within 2 s of shipping, with polling slack
    assert re.search(r"[\u4e00-\u9fff]", str(mail_zh["Subject"]))
    assert mail_zh["Content-Language"] == "zh-CN"
    assert shipped["tracking_no"] in text_of(mail_zh) and "已揽收您的包裹" in text_of(mail_zh)


def test_one_click_unsubscribe_stops_that_kind_of_mail(shop: Shop, recorder: Recorder) -> None:
    order = customer_order(shop, "en", "quit@example.com")
    (mail,) = wait_mails(recorder, "quit@example.com", 1)
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    target = re.fullmatch(r"<(.+)>", str(mail["List-Unsubscribe"]))
    assert target is not None
    page = httpx.get(target.group(1), timeout=10)
    assert page.status_code == 200 and "<form" in page.text  # a look does not unsubscribe
    forged = httpx.post(target.group(1)[:-2] + "00", timeout=10)
    assert forged.status_code == 400
    done = httpx.post(
        target.group(1),
        content=b"List-Unsubscribe=One-Click",
        timeout=10,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert done.status_code == 200
    confirm(shop, order)
    time.sleep(2.0)
    assert len(mails_to(recorder, "quit@example.com")) == 1


def staff_mail(shop: Shop, who: str, address: str) -> None:
    resp = shop.call(who, "PUT", "/api/me/notifications", {"email": address})
    assert resp.status_code == 200, resp.text
    assert resp.json()["mail_goes_to"] == address


def direct(shop: Shop, a: str, b: str) -> str:
    other = shop.staff[b].id
    resp = shop.call(a, "POST", "/api/conversations", {"kind": "direct", "members": [other]})
    assert resp.status_code in (200, 201), resp.text
    conv: str = resp.json()["id"]
    return conv


async def say_in(shop: Shop, who: str, conv: str, *texts: str) -> list[int]:
    """Send texts over the real protocol; their seqs, as acked."""
    peer = await Peer.open(shop.server, shop.staff[who].token)
    try:
        seqs = []
        for n, text in enumerate(texts):
            ack = await peer.send_text(conv, text, ref=f"r{time.monotonic_ns()}-{n}")
            assert ack["op"] == "ack", ack
            seqs.append(int(ack["seq"]))
        return seqs
    finally:
        await peer.close()


async def test_missed_messages_go_out_gathered_in_one_mail(shop: Shop, recorder: Recorder) -> None:
    staff_mail(shop, "purchasing", "pat@shop.example")
    conv = direct(shop, "sales", "purchasing")
    await say_in(
        shop, "sales", conv, "first: the buckles arrived", "second: they look <b>great</b>"
    )
    (mail,) = await asyncio.to_thread(wait_mails, recorder, "pat@shop.example", 1)
    text = text_of(mail)
    assert "first: the buckles arrived" in text and "second: they look" in text
    html = mail.get_body(preferencelist=("html",))
    assert html is not None and "<b>great</b>" not in str(html.get_content())
    await asyncio.sleep(2.0)
    assert len(mails_to(recorder, "pat@shop.example")) == 1


async def test_a_message_read_before_its_mail_is_due_sends_nothing(
    shop: Shop, recorder: Recorder
) -> None:
    staff_mail(shop, "logistics", "leo@shop.example")
    conv = direct(shop, "warehouse", "logistics")
    (seq,) = await say_in(shop, "warehouse", conv, "read me quickly")
    reader = await Peer.open(shop.server, shop.staff["logistics"].token)
    try:
        await reader.send({"op": "read", "conv": conv, "seq": seq})
        await reader.recv_op("read")
    finally:
        await reader.close()
    await asyncio.sleep(3.0)
    assert mails_to(recorder, "leo@shop.example") == []


def test_bad_choices_are_refused_and_change_nothing(shop: Shop) -> None:
    before = shop.call("qc", "GET", "/api/me/notifications").json()
    for bad in (
        {"email": "not an address"},
        {"off": {"shouting": ["email"]}},
        {"off": {"direct": ["fax"]}},
        {"quiet": {"start": "25:00", "end": "07:00", "utc_offset_min": 480}},
        {"quiet": {"start": "22:00", "end": "07:00", "utc_offset_min": 5000}},
        {"language": "fr"},
        {"surprise": True},
    ):
        resp = shop.call("qc", "PUT", "/api/me/notifications", bad)
        assert resp.status_code == 400, (bad, resp.text)
    assert shop.call("qc", "GET", "/api/me/notifications").json() == before


def test_received_mails_came_over_one_server(recorder: Recorder, tmp_path: Path) -> None:
    """Every mail was taken from the configured sender, none twice."""
    ids = [r.message["Message-ID"] for r in recorder.received]
    assert len(ids) == len(set(ids))
    assert all(
        isinstance(r, Received) and r.mail_from == "orders@shop.example" for r in recorder.received
    )


@pytest.mark.sqlite_only  # the worker's handling of a channel that is down, on any store
def test_a_mail_server_that_is_down_holds_back_nothing_else_and_loses_nothing(
    tmp_path: Path, store: str
) -> None:
    root = tmp_path / "down"
    (root / "workflows").mkdir(parents=True)
    (root / "workflows" / "notify.toml").write_text(
        POLICY + "[retry]\nfirst_s = 1\nmax_s = 1\ngive_up_after_s = 600\n"
    )
    mail_port = free_port()  # nobody listens here yet
    server = ServerProcess(
        root,
        ("--rate-limits", "off", "--allow-private-targets"),
        store=store,
        env={
            "ORDERCHAT_SMTP_HOST": "127.0.0.1",
            "ORDERCHAT_SMTP_PORT": str(mail_port),
            "ORDERCHAT_SMTP_SECURITY": "none",
            "ORDERCHAT_SMTP_FROM": "Shop <orders@shop.example>",
        },
    )
    server.start()
    server.create_admin()
    shop = Shop.open(server)
    try:
        with receiving() as hooks:
            resp = shop.call(
                "admin",
                "POST",
                "/api/admin/webhooks",
                {"url": hooks.url, "topics": ["order.status"]},
            )
            assert resp.status_code == 201, resp.text
            order = customer_order(shop, "en", "later@example.com")
            confirm(shop, order)
            hooks.wait_for(1)  # the webhook went out while the mail server was away
        late = Recorder()
        with smtp_server(late, port=mail_port):
            found = wait_mails(late, "later@example.com", 2, timeout_s=15)
        assert all(order["number"] in m["Subject"] for m in found)
    finally:
        shop.close()
        server.stop()
