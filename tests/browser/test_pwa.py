"""The installable app: its manifests and icons, the service worker that keeps the app
shell and opens the workspace offline with the sends still waiting, push messages
shown as notifications whose click goes to the message, and the switch that turns
notifications on for a device, saying why when it cannot.

Push reaches the worker through the Chrome DevTools Protocol, as DevTools' own
"Push" button sends it; headless Chromium has no push service, so the switch is seen
failing for real and succeeding with the browser's subscribe call stood in for.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from io import BytesIO
from typing import Any

import httpx
import pytest
from PIL import Image
from playwright.sync_api import BrowserContext, Page, Request, Route, expect

from tests.browser.helpers import (
    TIMEOUT_MS,
    Pages,
    ShopApi,
    by_seq,
    conv_item,
    message,
    open_conv,
    sign_in,
    type_and_send,
    unique,
)
from tests.browser.test_orders import open_invitation
from tests.support import Peer, ServerProcess

pytestmark = pytest.mark.browser

# The example VAPID public key of the web-push libraries: a valid uncompressed P-256 point.
PUBLIC_KEY = (
    "BEl62iUYgUivxIkv69yViEuiBIa-Ib9-SkvMeAtA3LFgDzkrxZJjSgSnfckjBJuBkr3qBUYIHBQFLXYp5Nksh8U"
)
FLASHED = re.compile(r"\bflash\b")


# --- helpers -------------------------------------------------------------------------


# Polled by an event, not by `wait_for_function`, which the pages' policy forbids (eval).
CONTROLLED = """(ms) => navigator.serviceWorker.controller ? true : new Promise((resolve) => {
  navigator.serviceWorker.addEventListener("controllerchange", () => resolve(true), { once: true });
  setTimeout(() => resolve(false), ms);
})"""


def controlled(page: Page) -> None:
    """Wait until the service worker is active and controls the page."""
    assert page.evaluate(CONTROLLED, TIMEOUT_MS), "no service worker took control of the page"


def push_context(pages: Pages, **options: Any) -> BrowserContext:
    ctx = pages.context(**options)
    ctx.grant_permissions(["notifications"], origin=pages.base_url)
    return ctx


def deliver_push(page: Page, base_url: str, data: str) -> None:
    """Deliver a push to the page's service worker as DevTools does, by the worker's
    registration id, which DevTools reports once its ServiceWorker domain is on."""
    cdp = page.context.new_cdp_session(page)
    found: list[str] = []

    def updated(event: dict[str, Any]) -> None:
        for reg in event["registrations"]:
            if reg["scopeURL"] == f"{base_url}/" and not reg.get("isDeleted"):
                found.append(reg["registrationId"])

    cdp.on("ServiceWorker.workerRegistrationUpdated", updated)
    cdp.send("ServiceWorker.enable")
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while not found and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    assert found, "the service worker's registration never showed"
    cdp.send(
        "ServiceWorker.deliverPushMessage",
        {"origin": base_url, "registrationId": found[-1], "data": data},
    )
    cdp.detach()


NOTIFICATIONS = """async () => {
  const reg = await navigator.serviceWorker.ready;
  return (await reg.getNotifications()).map((n) => ({
    title: n.title, body: n.body, tag: n.tag, url: n.data ? n.data.url : undefined,
  }));
}"""


def notifications(page: Page) -> list[dict[str, Any]]:
    """The notifications the page's service worker shows now."""
    shown: list[dict[str, Any]] = page.evaluate(NOTIFICATIONS)
    return shown


# DevTools acknowledges a push before the browser hands it to the worker and drops the
# outcome, so a push the browser failed to hand over (on a loaded machine the worker
# can be starting or stopping) is sent again; a notification's arrival is the receipt.
REDELIVER_AFTER_S = 4.0


def push_until(
    page: Page, base_url: str, data: str, arrived: Callable[[list[dict[str, Any]]], bool]
) -> list[dict[str, Any]]:
    """Deliver a push, again while nothing `arrived` says is shown; what is shown then."""
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while True:
        deliver_push(page, base_url, data)
        again = min(deadline, time.monotonic() + REDELIVER_AFTER_S)
        shown = notifications(page)
        while not arrived(shown) and time.monotonic() < again:
            page.wait_for_timeout(100)
            shown = notifications(page)
        if arrived(shown) or time.monotonic() >= deadline:
            return shown


# Inside the worker: the notification as the browser keeps it, clicked.
CLICK = """async (tag) => {
  const [notification] = await self.registration.getNotifications({ tag });
  if (!notification) throw new Error("no notification tagged " + tag);
  self.dispatchEvent(new NotificationEvent("notificationclick", { notification }));
}"""


def click_notification(ctx: BrowserContext, tag: str) -> None:
    assert ctx.service_workers, "the context has no service worker"
    ctx.service_workers[0].evaluate(CLICK, tag)


def send_many(server: ServerProcess, token: str, conv: str, count: int, prefix: str) -> list[int]:
    """`count` text messages in `conv` over a WebSocket of their own; their seqs."""

    async def run() -> list[int]:
        peer = await Peer.open(server, token)
        try:
            seqs = []
            for i in range(count):
                ack = await peer.send_text(conv, f"{prefix} {i}", str(uuid.uuid4()))
                assert ack["op"] == "ack", ack
                seqs.append(int(ack["seq"]))
            return seqs
        finally:
            await peer.close()

    # Playwright's sync API keeps an event loop running in this thread.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, run()).result(timeout=60)


# The conversation list with the page's own session: its status, or "failed".
API_FETCH = """() => {
  const { token } = JSON.parse(localStorage.getItem("orderchat.session"));
  return fetch("/api/conversations", { headers: { Authorization: `Bearer ${token}` } })
    .then((r) => r.status, () => "failed");
}"""


# --- the manifests and the worker as served ------------------------------------------


@pytest.mark.parametrize("path", ["/", "/c"])
def test_each_page_names_a_valid_manifest_whose_icons_are_there(
    demo: ServerProcess, path: str
) -> None:
    with httpx.Client(base_url=demo.base_url, timeout=10) as client:
        html = client.get(path).text
        link = re.search(r'<link rel="manifest" href="([^"]+)"', html)
        assert link, f"{path} names no manifest"
        resp = client.get(link.group(1))
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("application/manifest+json")
        manifest = resp.json()
        assert manifest["name"] and manifest["short_name"]
        assert manifest["start_url"] == path and manifest["scope"] == path
        assert manifest["display"] == "standalone"
        for colour in ("theme_color", "background_color"):
            assert re.fullmatch(r"#[0-9a-f]{6}", manifest[colour]), colour
        found = set()
        for icon in manifest["icons"]:
            image = client.get(icon["src"])
            assert image.status_code == 200, icon["src"]
            assert image.headers["content-type"] == "image/png"
            with Image.open(BytesIO(image.content)) as png:
                assert png.format == "PNG"
                assert f"{png.width}x{png.height}" == icon["sizes"], icon["src"]
            found.add((icon["sizes"], icon.get("purpose", "any")))
        assert {("192x192", "any"), ("512x512", "any"), ("512x512", "maskable")} <= found


def test_the_worker_is_served_from_the_root_with_the_shell_written_in(demo: ServerProcess) -> None:
    with httpx.Client(base_url=demo.base_url, timeout=10) as client:
        resp = client.get("/sw.js")
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/javascript")
        assert resp.headers["cache-control"] == "no-cache"
        assert resp.headers["service-worker-allowed"] == "/"
        assert "script-src 'self'" in resp.headers["content-security-policy"]
        shell = json.loads(re.search(r"^const SHELL = (.*);$", resp.text, re.M).group(1))  # type: ignore[union-attr]
        assert re.fullmatch(r"[0-9a-f]{16}", shell["version"])
        files = shell["files"]
        assert {"/", "/c", "/assets/js/staff.js", "/assets/js/customer.js"} <= set(files)
        assert "/assets/icons/icon-192.png" in files and "/assets/css/app.css" in files
        assert not [f for f in files if not f.startswith(("/assets/", "/c")) and f != "/"]
        for path in files:
            assert client.get(path).status_code == 200, path


# --- the worker in the browser -------------------------------------------------------


def test_the_worker_controls_the_page_and_keeps_the_shell_and_never_the_api(
    pages: Pages,
) -> None:
    page = pages.page()
    sign_in(page, "amy")
    controlled(page)
    # The API answered while the worker was in control: it still kept none of it.
    assert page.evaluate(API_FETCH) == 200
    kept = page.evaluate(
        """async () => {
          const found = [];
          for (const name of await caches.keys())
            for (const request of await (await caches.open(name)).keys())
              found.push([name, new URL(request.url).pathname]);
          return found;
        }"""
    )
    names = {name for name, _ in kept}
    paths = {path for _, path in kept}
    assert len(names) == 1 and next(iter(names)).startswith("orderchat-shell-"), names
    assert {"/", "/c", "/assets/js/staff.js", "/assets/js/socket.js"} <= paths
    assert {"/assets/css/app.css", "/assets/icons/icon-192.png"} <= paths
    assert not [p for p in paths if p.startswith(("/api", "/ws", "/media"))], paths
    watch = pages.watch(page)
    assert watch.console_errors == [] and watch.csp_violations(page) == []


def test_opened_offline_the_workspace_says_so_lists_what_waits_and_sends_it_after(
    pages: Pages, shop: ShopApi
) -> None:
    title = unique("离线频道")
    conv = shop.channel("amy", title, ["sam"])
    page = pages.page()
    sign_in(page, "amy")
    controlled(page)
    open_conv(page, conv)

    page.context.set_offline(True)
    text = unique("离线时写的 written offline")
    type_and_send(page, text)
    expect(message(page, text)).to_have_attribute("data-state", "pending")
    page.reload()
    # The worker itself has no network either, so the page can only be its copy.
    assert page.context.service_workers, "no service worker"
    probe = "fetch('/').then(() => 'answered', () => 'failed')"
    assert page.context.service_workers[0].evaluate(probe) == "failed"

    # The shell came from the worker's copy: the app runs, and says it is offline.
    notice = page.get_by_test_id("offline-notice")
    expect(notice).to_be_visible()
    expect(notice).to_have_attribute("data-reason", "network")
    expect(notice).to_contain_text("离线")
    item = notice.get_by_test_id("offline-pending-item")
    expect(item).to_have_count(1)
    expect(item.get_by_test_id("offline-pending-conv")).to_have_text(title)
    expect(item.get_by_test_id("offline-pending-text")).to_have_text(text)
    expect(page.get_by_test_id("connection")).to_have_attribute("data-network", "down")
    # The API is never answered from a cache: without a network it fails.
    assert page.evaluate(API_FETCH) == "failed"

    page.context.set_offline(False)
    expect(page.get_by_test_id("connection")).to_have_attribute("data-state", "online")
    expect(notice).to_be_hidden()
    expect(conv_item(page, conv)).to_be_visible()
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while text not in [m["text"] for m in shop.history("sam", conv)]:
        assert time.monotonic() < deadline, "the waiting send never went out"
        time.sleep(0.2)
    assert [m["text"] for m in shop.history("sam", conv)].count(text) == 1


# --- push -----------------------------------------------------------------------------


def test_a_push_is_a_notification_whose_click_opens_the_conversation_at_the_message(
    pages: Pages, shop: ShopApi, demo: ServerProcess
) -> None:
    conv = shop.channel("amy", unique("推送频道"), ["sam"])
    seqs = send_many(demo, shop.session("sam")["token"], conv, 60, unique("早先 earlier"))
    target = seqs[2]  # older than the first page the conversation loads
    ctx = push_context(pages)
    page = pages.tab(ctx)
    sign_in(page, "amy")
    controlled(page)

    # A push that cannot be read still shows something.
    generic = {"title": "OrderChat", "body": "有新消息", "tag": "", "url": None}
    shown = push_until(page, demo.base_url, "not json", lambda shown: bool(shown))
    # A push sent again may have shown a second one just like it, and nothing else.
    assert shown and all(n == generic for n in shown), shown

    tag = f"conv-{conv}"
    payload = {
        "title": "Sam",
        "body": unique("看这条 look at this"),
        "url": f"/#/c/{conv}/m/{target}",
        "tag": tag,
        "ts": int(time.time() * 1000),
    }
    wanted = {"title": "Sam", "body": payload["body"], "tag": tag, "url": payload["url"]}
    shown = push_until(page, demo.base_url, json.dumps(payload), lambda shown: wanted in shown)
    assert wanted in shown and generic in shown, shown

    click_notification(ctx, tag)
    expect(page.locator(f'[data-testid="conv-view"][data-conv-id="{conv}"]')).to_be_visible()
    msg = by_seq(page, target)
    expect(msg).to_have_class(FLASHED)
    expect(msg).to_be_in_viewport()
    # The address names the conversation, so the same link clicked again is heard.
    expect(page).to_have_url(re.compile(rf"/#/c/{conv}$"))
    assert wanted not in notifications(page), "the clicked notification stays"


def test_a_customer_notification_opens_its_order_at_the_message(
    pages: Pages, shop: ShopApi, demo: ServerProcess
) -> None:
    first = shop.retail_order("amy", customer=unique("推送客户"))
    second = shop.call(
        "amy",
        "POST",
        "/api/orders",
        {
            "number": unique("WEB").upper(),
            "workflow": "retail",
            "customer_id": first["customer"],
            "items": [first["items"][0]],
            "address": first["address"],
        },
        201,
    )
    seqs = send_many(demo, shop.session("amy")["token"], second["conv"], 40, unique("订单消息"))
    target = seqs[1]
    ctx = push_context(pages, locale="en")
    page = pages.tab(ctx)
    open_invitation(page, shop.invite(first["id"]))
    expect(page.get_by_test_id("order-number")).to_have_text(first["number"])
    controlled(page)

    tag = f"order-{second['id']}"
    payload = {
        "title": second["number"],
        "body": "The shop wrote",
        "url": f"/c?order={second['id']}&seq={target}",
        "tag": tag,
        "ts": int(time.time() * 1000),
    }
    wanted = {"title": payload["title"], "body": payload["body"], "tag": tag, "url": payload["url"]}
    shown = push_until(page, demo.base_url, json.dumps(payload), lambda shown: wanted in shown)
    assert wanted in shown, shown

    click_notification(ctx, tag)
    expect(page.get_by_test_id("order-number")).to_have_text(second["number"])
    msg = by_seq(page, target)
    expect(msg).to_have_class(FLASHED)
    expect(msg).to_be_in_viewport()


# --- the switch -------------------------------------------------------------------------


def open_switch(page: Page) -> None:
    page.get_by_test_id("account-menu").locator("summary").click()
    expect(page.get_by_test_id("push-switch")).to_be_visible()


def answer(route: Route, status: int, body: Any = None) -> None:
    route.fulfill(
        status=status,
        content_type="application/json",
        body="" if body is None else json.dumps(body),
    )


def test_the_switch_says_why_push_cannot_be_turned_on_and_stays_off(pages: Pages) -> None:
    ctx = push_context(pages, locale="en")
    page = pages.tab(ctx)
    sign_in(page, "amy")
    controlled(page)
    open_switch(page)
    switch = page.get_by_test_id("push-switch")
    status = page.get_by_test_id("push-status")
    expect(status).to_have_text("Off.")

    # A server without push.
    page.route(
        "**/api/push/key",
        lambda route: answer(route, 404, {"error": {"code": "not_found", "message": "Not Found"}}),
    )
    switch.click()
    expect(status).to_have_text("This server does not send push notifications.")
    expect(switch).not_to_be_checked()

    # A browser without a push service: headless Chromium refuses to subscribe.
    page.unroute("**/api/push/key")
    page.route("**/api/push/key", lambda route: answer(route, 200, {"public_key": PUBLIC_KEY}))
    switch.click()
    expect(status).to_have_text(
        "This browser's push service is not available, so notifications cannot be turned on."
    )
    expect(switch).not_to_be_checked()

    # No permission.
    denied = pages.page(locale="en")
    sign_in(denied, "sam")
    open_switch(denied)
    denied.get_by_test_id("push-switch").click()
    expect(denied.get_by_test_id("push-status")).to_have_text(
        re.compile(r"^(The browser blocks notifications|Notifications were not allowed)")
    )
    expect(denied.get_by_test_id("push-switch")).not_to_be_checked()


# The browser's subscription, stood in for: headless Chromium has no push service.
FAKE_PUSH = """
(() => {
  let current = null;
  window.__unsubscribed = 0;
  PushManager.prototype.getSubscription = async function () { return current; };
  PushManager.prototype.subscribe = async function (options) {
    const key = new Uint8Array(options.applicationServerKey);
    if (key.length !== 65 || key[0] !== 4) throw new DOMException("bad key", "InvalidAccessError");
    const endpoint = "https://push.example.test/send/" + Math.random().toString(36).slice(2);
    current = {
      endpoint,
      options: { applicationServerKey: key.buffer, userVisibleOnly: options.userVisibleOnly },
      toJSON: () => ({ endpoint, expirationTime: null, keys: { p256dh: "BPk3", auth: "a2V5" } }),
      unsubscribe: async () => { current = null; window.__unsubscribed += 1; return true; },
    };
    return current;
  };
})();
"""


def test_the_switch_subscribes_unsubscribes_and_sign_out_drops_the_subscription(
    pages: Pages, shop: ShopApi
) -> None:
    ctx = push_context(pages, locale="en")
    ctx.add_init_script(FAKE_PUSH)
    page = pages.tab(ctx)
    sign_in(page, "fay")
    controlled(page)
    calls: list[tuple[str, Any]] = []

    def subscriptions(route: Route, request: Request) -> None:
        calls.append((request.method, request.post_data_json))
        answer(
            route,
            201 if request.method == "POST" else 204,
            {} if request.method == "POST" else None,
        )

    page.route("**/api/push/key", lambda route: answer(route, 200, {"public_key": PUBLIC_KEY}))
    page.route("**/api/push/subscriptions", subscriptions)
    open_switch(page)
    switch = page.get_by_test_id("push-switch")
    status = page.get_by_test_id("push-status")

    switch.click()
    expect(status).to_have_text("On: new messages notify this device.")
    expect(switch).to_be_checked()
    method, body = calls[-1]
    assert method == "POST"
    assert body["endpoint"].startswith("https://push.example.test/send/")
    assert body["keys"] == {"p256dh": "BPk3", "auth": "a2V5"}
    endpoint = body["endpoint"]

    switch.click()
    expect(status).to_have_text("Off.")
    expect(switch).not_to_be_checked()
    assert calls[-1] == ("DELETE", {"endpoint": endpoint})
    assert page.evaluate("window.__unsubscribed") == 1

    switch.click()
    expect(switch).to_be_checked()
    page.get_by_test_id("signout").click()
    expect(page.get_by_test_id("login-form")).to_be_visible()
    assert page.evaluate("window.__unsubscribed") == 2
    user = shop.user_id("fay")
    assert page.evaluate(f"localStorage.getItem('orderchat.push.{user}')") is None


def test_a_subscription_the_browser_lost_is_made_again_and_given_to_the_server_on_open(
    pages: Pages, shop: ShopApi
) -> None:
    """The push service renewed or dropped this browser's subscription while the app
    was closed: the next start subscribes again (if it must) and tells the server."""
    ctx = push_context(pages, locale="en")
    ctx.add_init_script(FAKE_PUSH)  # a reload starts with no subscription in the browser
    page = pages.tab(ctx)
    sign_in(page, "pat")
    controlled(page)
    posted: list[str] = []

    def subscriptions(route: Route, request: Request) -> None:
        if request.method != "POST":
            answer(route, 204, None)
            return
        posted.append(request.post_data_json["endpoint"])
        answer(route, 201, {})

    page.route("**/api/push/key", lambda route: answer(route, 200, {"public_key": PUBLIC_KEY}))
    page.route("**/api/push/subscriptions", subscriptions)
    open_switch(page)
    page.get_by_test_id("push-switch").click()
    expect(page.get_by_test_id("push-status")).to_have_text("On: new messages notify this device.")
    assert len(posted) == 1

    page.reload()
    expect(page.get_by_test_id("conv-list")).to_be_visible()
    for _ in range(100):  # bounded: the renewal runs as the workspace starts
        if len(posted) == 2:
            break
        page.wait_for_timeout(50)
    assert len(posted) == 2, posted
    assert posted[1] != posted[0] and posted[1].startswith("https://push.example.test/send/")
    user = shop.user_id("pat")
    assert page.evaluate(f"localStorage.getItem('orderchat.push.{user}')") == posted[1]
    open_switch(page)
    expect(page.get_by_test_id("push-status")).to_have_text("On: new messages notify this device.")
