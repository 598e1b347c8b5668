"""Outbound webhooks against a real server and a receiver on loopback: signed once,
retried with the same delivery id, kept through a SIGKILL, refused for private
targets unless allowed, managed by admins only, in the robots' own formats."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.order_support import Shop, expect_error
from tests.support import ServerProcess, free_port
from tests.webhook_receiver import Receiver, receiving, signature_ok

pytestmark = pytest.mark.timeout(90)

# Seconds, not minutes: retries after 1 s, 2 s …, given up 4 s after the first due.
FAST_POLICY = """
[occasions.direct]
push = 0
[retry]
first_s = 1
max_s = 1
give_up_after_s = 4
"""


def fast_server(root: Path, store: str, *extra: str) -> ServerProcess:
    (root / "workflows").mkdir(parents=True, exist_ok=True)
    (root / "workflows" / "notify.toml").write_text(FAST_POLICY)
    proc = ServerProcess(root, ("--rate-limits", "off", *extra), store=store)
    proc.start()
    proc.create_admin()
    return proc


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory, store: str) -> Iterator[Shop]:
    server = fast_server(tmp_path_factory.mktemp("hooks"), store, "--allow-private-targets")
    opened = Shop.open(server)
    yield opened
    opened.close()
    server.stop()


def register(shop: Shop, url: str, topics: list[str], **extra: Any) -> dict[str, Any]:
    resp = shop.call(
        "admin", "POST", "/api/admin/webhooks", {"url": url, "topics": topics, **extra}
    )
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    return body


def remove(shop: Shop, endpoint: dict[str, Any]) -> None:
    assert shop.call("admin", "DELETE", f"/api/admin/webhooks/{endpoint['id']}").status_code == 204


def confirm_new_order(shop: Shop) -> dict[str, Any]:
    order = shop.create_order()
    resp = shop.move(order["id"], "confirmed", "customer_service")
    assert resp.status_code == 200, resp.text
    return order


def log_of(shop: Shop, endpoint: dict[str, Any]) -> list[dict[str, Any]]:
    resp = shop.call("admin", "GET", f"/api/admin/webhooks/{endpoint['id']}/deliveries")
    assert resp.status_code == 200, resp.text
    found: list[dict[str, Any]] = resp.json()["deliveries"]
    return found


def wait_log(
    shop: Shop, endpoint: dict[str, Any], state: str, timeout_s: float = 15
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        rows = log_of(shop, endpoint)
        if rows and rows[0]["state"] == state:
            return rows[0]
        time.sleep(0.1)
    raise AssertionError(f"no {state} delivery: {log_of(shop, endpoint)}")


def test_a_status_change_reaches_the_endpoint_signed_and_once(shop: Shop) -> None:
    with receiving() as receiver:
        endpoint = register(shop, receiver.url, ["order.status"])
        try:
            order = confirm_new_order(shop)
            (got,) = receiver.wait_for(1)
            assert signature_ok(endpoint["secret"], got, time.time())
            body = got.json()
            assert (
                body["topic"] == "order.status"
                and got.headers["x-orderchat-topic"] == "order.status"
            )
            assert body["order"]["number"] == order["number"]
            assert body["event"]["name"] == "status_changed"
            assert body["id"] == got.delivery
            assert body["link"].startswith("http://127.0.0.1:") and "/#/c/" in body["link"]
            time.sleep(1.5)  # nothing more comes: once
            assert len(receiver.received) == 1
            row = wait_log(shop, endpoint, "sent")
            assert row["id"] == got.delivery and row["attempts"] == 1
        finally:
            remove(shop, endpoint)


def test_a_new_consult_reaches_an_endpoint_that_asked_for_new_consults(shop: Shop) -> None:
    """A visitor's first words go to the shop's robot at once, signed; the endpoint
    that asked only for order statuses hears nothing of it."""
    with receiving() as receiver, receiving() as bystander:
        endpoint = register(shop, receiver.url, ["consult.new"])
        other = register(shop, bystander.url, ["order.status"])
        try:
            started = shop.call(
                None, "POST", "/api/consults/start", {"name": "Ms Webhook", "text": "有防水帐篷吗"}
            )
            assert started.status_code == 201, started.text
            (got,) = receiver.wait_for(1)
            assert signature_ok(endpoint["secret"], got, time.time())
            body = got.json()
            assert body["topic"] == "consult.new" and body["id"] == got.delivery
            assert body["conversation"]["id"] == started.json()["consult"]["id"]
            time.sleep(1)
            assert bystander.received == []
        finally:
            remove(shop, endpoint)
            remove(shop, other)


def test_a_failing_endpoint_gets_the_same_delivery_again_until_it_takes_it(shop: Shop) -> None:
    with receiving() as receiver:
        receiver.fail_next = 2
        endpoint = register(shop, receiver.url, ["order.status"])
        try:
            confirm_new_order(shop)
            tries = receiver.wait_for(3, timeout_s=20)
            assert len({t.delivery for t in tries}) == 1
            assert len({t.body for t in tries}) == 1
            assert all(signature_ok(endpoint["secret"], t, time.time()) for t in tries)
            row = wait_log(shop, endpoint, "sent")
            assert row["attempts"] == 3
        finally:
            remove(shop, endpoint)


def test_an_endpoint_down_for_good_is_given_up_with_the_reason(shop: Shop) -> None:
    with receiving() as receiver:
        receiver.fail_next, receiver.fail_status = 1000, 503
        endpoint = register(shop, receiver.url, ["order.status"])
        try:
            confirm_new_order(shop)
            row = wait_log(shop, endpoint, "dead", timeout_s=20)
            assert "503" in row["outcome"] and row["attempts"] >= 2
        finally:
            remove(shop, endpoint)


def test_a_delivery_committed_before_a_sigkill_arrives_after_the_restart(
    tmp_path: Path, store: str
) -> None:
    server = fast_server(tmp_path / "killed", store, "--allow-private-targets")
    shop = Shop.open(server)
    port = free_port()  # nothing listens here yet: the first tries fail
    try:
        endpoint = register(shop, f"http://127.0.0.1:{port}/hook", ["order.status"])
        order = confirm_new_order(shop)
        server.kill()  # SIGKILL, right after the commit
        shop.close()
        with receiving(port) as receiver:
            server.start()
            (got,) = receiver.wait_for(1, timeout_s=20)
            assert got.json()["order"]["number"] == order["number"]
            assert signature_ok(endpoint["secret"], got, time.time())
            time.sleep(1.0)
            assert {r.delivery for r in receiver.received} == {got.delivery}
    finally:
        shop.close()
        server.stop()


@pytest.mark.sqlite_only  # the rule is the same on every store
def test_robots_get_their_own_markdown_and_dingtalk_its_signature(shop: Shop) -> None:
    with receiving() as receiver:
        wecom = register(shop, receiver.url + "?key=abc", ["order.status"], format="wecom")
        ding = register(
            shop,
            receiver.url + "?access_token=t",
            ["order.status"],
            format="dingtalk",
            language="en",
            secret="SEC" + "d" * 40,
        )
        try:
            order = confirm_new_order(shop)
            got = receiver.wait_for(2)
            by_query = {urlsplit(r.path).query.split("&")[0]: r for r in got}
            card = by_query["key=abc"].json()
            assert card["msgtype"] == "markdown" and order["number"] in card["markdown"]["content"]
            ding_req = by_query["access_token=t"]
            query = parse_qs(urlsplit(ding_req.path).query)
            stamp = query["timestamp"][0]
            mac = hmac.new(
                ding["secret"].encode(), f"{stamp}\n{ding['secret']}".encode(), hashlib.sha256
            )
            assert query["sign"] == [base64.b64encode(mac.digest()).decode()]
            assert ding_req.json()["markdown"]["title"] == "Order status"
        finally:
            remove(shop, wecom)
            remove(shop, ding)


@pytest.mark.sqlite_only  # the rule is the same on every store
def test_a_robot_that_refuses_inside_a_200_is_tried_again(shop: Shop) -> None:
    with receiving() as receiver:
        receiver.answer = b'{"errcode":310000,"errmsg":"keywords not in content"}'
        endpoint = register(shop, receiver.url, ["order.status"], format="wecom")
        try:
            confirm_new_order(shop)
            receiver.wait_for(2, timeout_s=15)
            row = log_of(shop, endpoint)[0]
            assert "310000" in (row["outcome"] or "")
        finally:
            remove(shop, endpoint)


def test_only_admins_manage_endpoints_and_a_refusal_changes_nothing(shop: Shop) -> None:
    before = shop.call("admin", "GET", "/api/admin/webhooks").json()
    body = {"url": "http://127.0.0.1:9/hook", "topics": ["order.status"]}
    expect_error(shop.call("sales", "POST", "/api/admin/webhooks", body), 403, "forbidden")
    expect_error(shop.call("sales", "GET", "/api/admin/webhooks"), 403, "forbidden")
    for bad in (
        {**body, "topics": ["order.eaten"]},
        {**body, "topics": []},
        {**body, "format": "telex"},
        {**body, "url": "ftp://127.0.0.1/x"},
        {**body, "secret": "short"},
        {**body, "description": "x" * 201},
        {**body, "surprise": 1},
    ):
        expect_error(shop.call("admin", "POST", "/api/admin/webhooks", bad), 400)
    expect_error(shop.call("admin", "PUT", "/api/admin/webhooks/wh_none", body), 404)
    expect_error(shop.call("admin", "DELETE", "/api/admin/webhooks/wh_none"), 404)
    expect_error(shop.call("admin", "GET", "/api/admin/webhooks/wh_none/deliveries"), 404)
    assert shop.call("admin", "GET", "/api/admin/webhooks").json() == before


@pytest.mark.sqlite_only  # the rule is the same on every store
def test_private_targets_are_refused_unless_the_server_allows_them(
    tmp_path: Path, store: str
) -> None:
    server = fast_server(tmp_path / "strict", store)
    shop = Shop.open(server)
    try:
        for url in (
            "http://127.0.0.1:8080/hook",
            "https://127.0.0.1/hook",
            "https://10.0.0.8/hook",
            "https://169.254.169.254/latest",
            "https://[::1]/hook",
        ):
            resp = shop.call(
                "admin", "POST", "/api/admin/webhooks", {"url": url, "topics": ["order.status"]}
            )
            expect_error(resp, 400, "bad_request")
        assert shop.call("admin", "GET", "/api/admin/webhooks").json() == {"webhooks": []}
    finally:
        shop.close()
        server.stop()


@pytest.mark.sqlite_only  # the rule is the same on every store
def test_receiver_helper_is_strict(tmp_path: Path) -> None:
    """The receiver's check fails a body changed after signing: it is a real check."""
    with receiving() as receiver:
        import httpx

        from orderchat.core.signatures import sign

        body = b'{"a":1}'
        headers = sign("s" * 20, int(time.time()), body)
        httpx.post(receiver.url, content=body + b" ", headers=headers, timeout=5)
        (got,) = receiver.wait_for(1)
        assert not signature_ok("s" * 20, got, time.time())
    assert isinstance(receiver, Receiver)
