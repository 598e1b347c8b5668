"""A visitor's consult, from the visitor's side (docs/consults.md): `/chat` on a phone in
Chinese, a picture sent and a product card received, the place in the queue while the
shop's only agent is busy, the way back after a reload, and the widget on another
site whose Content-Security-Policy is strict (its pictures loaded with the visitor's
token, its session kept by the host page across a reload)."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from playwright.sync_api import Frame, Locator, Page, expect

from tests.browser.helpers import (
    DESKTOP,
    PHONE,
    SENT,
    Json,
    Pages,
    ShopApi,
    message,
    no_horizontal_scroll,
    send_text,
    type_and_send,
    unique,
)
from tests.media_samples import jpeg
from tests.support import ServerProcess

pytestmark = pytest.mark.browser

# The shop queue's one agent in the demo (consults.toml: Chinese goes to customer service).
AGENT = "amy"
# Sees every consult (admins are members of all of them).
ADMIN = "boss"

# Until a message's picture shows its preview, decoded, on this page.
IMAGE_SHOWN = """(id) => {
  const img = document.querySelector(
    `[data-testid="msg"][data-id="${id}"] [data-testid="msg-image"]`);
  return !!img && img.complete && img.naturalWidth > 0 && img.currentSrc.includes("/preview");
}"""

# The same inside the widget's frame, where the picture is fetched with the visitor's
# token and shown through a blob: URL (the SameSite=Strict media cookie never goes there).
IMAGE_SHOWN_BY_TOKEN = """([id, url]) => {
  const img = document.querySelector(
    `[data-testid="msg"][data-id="${id}"] [data-testid="msg-image"]`);
  return !!img && img.complete && img.naturalWidth > 0 && img.currentSrc.startsWith("blob:")
    && (img.dataset.mediaUrl || "").includes(url);
}"""

# Until the element with this test id covers the whole viewport.
FILLS_THE_SCREEN = """(testId) => {
  const box = document.querySelector(`[data-testid="${testId}"]`).getBoundingClientRect();
  return box.x === 0 && box.y === 0
    && box.width === window.innerWidth && box.height === window.innerHeight;
}"""

# What Chromium does to a cross-site frame when third-party storage is blocked: no
# localStorage, no sessionStorage (the chat's own origin, framed, only).
DENY_FRAME_STORAGE = """(() => {
  if (window.top === window || location.origin !== %s) return;
  for (const name of ["localStorage", "sessionStorage"]) {
    Object.defineProperty(window, name, {
      configurable: true,
      get() { throw new DOMException("Access is denied for this document.", "SecurityError"); },
    });
  }
})();"""


def fill_start_form(scope: Page | Any, name: str, text: str, phone: str | None = None) -> None:
    """The start form of `/chat`, in a page or in the widget's frame."""
    expect(scope.get_by_test_id("consult-start-form")).to_be_visible()
    scope.get_by_test_id("consult-name").fill(name)
    if phone:
        scope.get_by_test_id("consult-phone").fill(phone)
    scope.get_by_test_id("consult-text").fill(text)
    scope.get_by_test_id("consult-start-submit").click()


def open_consult(scope: Page | Any) -> tuple[Locator, str]:
    """The consult's view once it is live; its id."""
    view = scope.get_by_test_id("consult-view")
    expect(view).to_be_visible()
    expect(scope.get_by_test_id("connection")).to_have_attribute("data-state", "online")
    consult_id = view.get_attribute("data-consult-id")
    assert consult_id
    return view, consult_id


def consult_conv(consult: Json) -> str:
    return str(consult.get("conv") or consult.get("conversation") or consult["id"])


def assert_clean(pages: Pages, page: Page) -> None:
    """No policy violation, console error or uncaught error, in the page or its frames."""
    watch = pages.watch(page)
    violations = [
        v for frame in page.frames for v in frame.evaluate("window.__cspViolations || []")
    ]
    assert violations == [], "Content-Security-Policy violations"
    assert watch.console_errors == [], "errors in the console"
    assert watch.page_errors == [], "uncaught errors"


def start_by_api(server: ServerProcess, name: str, language: str = "zh-CN") -> Json:
    """Another visitor's consult, started over HTTP as the page would; the consult."""
    resp = httpx.post(
        f"{server.base_url}/api/consults/start",
        json={"name": name, "language": language, "text": unique("想问一下"), "device": "test"},
        timeout=10,
    )
    assert resp.status_code in (200, 201), resp.text
    consult: Json = resp.json()["consult"]
    return consult


def test_a_visitor_on_a_phone_starts_in_chinese_sends_a_picture_and_sees_a_product(
    pages: Pages, shop: ShopApi
) -> None:
    visitor = pages.page(viewport=PHONE, locale="zh-CN")
    visitor.goto("/chat?src=qr&tag=counter")
    expect(visitor.get_by_test_id("consult-start-form")).to_be_visible()
    expect(visitor.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(visitor.get_by_test_id("consult-start-submit")).to_have_text("开始咨询")
    no_horizontal_scroll(visitor, PHONE["width"])

    # A name is all it takes, and it does take one.
    visitor.get_by_test_id("consult-start-submit").click()
    expect(visitor.get_by_test_id("consult-start-error")).to_be_visible()
    name = unique("张先生")
    question = unique("去西藏徒步，选哪款背包合适？")
    fill_start_form(visitor, name, question, phone="13800000000")
    _, consult_id = open_consult(visitor)
    expect(message(visitor, question)).to_have_count(1)
    no_horizontal_scroll(visitor, PHONE["width"])

    consult = shop.call(ADMIN, "GET", f"/api/consults/{consult_id}")
    assert consult["source"] == "qr" and consult["tag"] == "counter", consult
    assert consult["visitor"]["display_name"] == name
    conv = consult_conv(consult)

    # A picture, looked at before it goes, then shown with its preview.
    visitor.get_by_test_id("composer-file").set_input_files(
        files=[{"name": "背包.jpg", "mimeType": "image/jpeg", "buffer": jpeg(640, 480)}]
    )
    visitor.get_by_test_id("picture-preview").get_by_test_id("picture-send").click()
    picture = visitor.get_by_test_id("timeline").locator('[data-testid="msg"][data-kind="image"]')
    expect(picture).to_have_count(1)
    expect(picture).to_have_attribute("data-state", SENT)
    picture_id = picture.get_attribute("data-id")
    visitor.wait_for_function(IMAGE_SHOWN, arg=picture_id, polling=100)

    # Staff share a product: the visitor sees its card, with the stock as it is now.
    sku = shop.any_sku(AGENT)
    shop.call(AGENT, "POST", f"/api/conversations/{conv}/products", {"sku": sku["sku"]}, 201)
    card = visitor.get_by_test_id("timeline").get_by_test_id("product-card")
    expect(card).to_have_count(1)
    expect(card).to_have_attribute("data-sku", sku["sku"])
    expect(card.get_by_test_id("product-name")).to_have_text(sku["name_zh"])
    yuan = f"{sku['unit_price_cents'] / 100:,.2f}"
    expect(card.get_by_test_id("product-price")).to_contain_text(yuan)
    now = shop.call(AGENT, "GET", f"/api/products/{sku['sku']}")
    stock = card.get_by_test_id("product-stock")
    expect(stock).to_have_attribute("data-live", "true")
    expect(stock).to_have_attribute("data-stock", str(now["available"]))
    no_horizontal_scroll(visitor, PHONE["width"])

    # The reader's language, switched on the page.
    visitor.get_by_test_id("lang").select_option("en")
    expect(card.get_by_test_id("product-name")).to_have_text(sku["name_en"])
    expect(visitor.get_by_test_id("composer-send")).to_contain_text("Send")

    # Back after a reload: the same consult, its history and its card.
    visitor.reload()
    again = visitor.locator(f'[data-testid="consult-view"][data-consult-id="{consult_id}"]')
    expect(again).to_be_visible()
    expect(message(visitor, question)).to_have_count(1)
    expect(visitor.get_by_test_id("timeline").get_by_test_id("product-card")).to_have_count(1)
    send_text(visitor, unique("还在吗"))

    # The shop closes it: the page says so at once.
    shop.call(AGENT, "POST", f"/api/consults/{consult_id}/close")
    expect(again).to_have_attribute("data-status", "closed")
    expect(visitor.get_by_test_id("consult-status")).to_have_attribute("data-status", "closed")
    assert_clean(pages, visitor)


def test_a_visitor_sees_their_place_in_the_queue_until_the_agent_is_free(
    pages: Pages, shop: ShopApi, demo: ServerProcess
) -> None:
    # Other visitors fill the agent's places until one more has to wait.
    fillers: list[Json] = []
    for _ in range(12):
        fillers.append(start_by_api(demo, unique("排队的客人")))
        if fillers[-1]["status"] == "queued":
            break
    assert fillers[-1]["status"] == "queued", "the agent never got busy"

    visitor = pages.page(viewport=PHONE, locale="zh-CN")
    visitor.goto("/chat")
    fill_start_form(visitor, unique("李女士"), unique("帐篷防水吗"))
    view, consult_id = open_consult(visitor)
    expect(view).to_have_attribute("data-status", "queued")
    stored = shop.call(ADMIN, "GET", f"/api/consults/{consult_id}")
    assert stored["status"] == "queued" and stored["position"] >= 2, stored
    queue = visitor.get_by_test_id("consult-queue")
    expect(queue).to_have_attribute("data-position", str(stored["position"]))
    expect(queue).to_contain_text(f"第 {stored['position']} 位")

    # The waiting filler goes, then the agent closes consults until ours is theirs.
    shop.call(AGENT, "POST", f"/api/consults/{fillers[-1]['id']}/close")
    for _ in range(20):
        if shop.call(ADMIN, "GET", f"/api/consults/{consult_id}")["status"] == "open":
            break
        busy = shop.call(AGENT, "GET", "/api/consults?view=mine&status=open&limit=1")["consults"]
        assert busy, "the agent has nothing open yet the consult still waits"
        shop.call(AGENT, "POST", f"/api/consults/{busy[0]['id']}/close")
    expect(view).to_have_attribute("data-status", "open")
    expect(queue).to_have_count(0)
    expect(visitor.get_by_test_id("consult-agent")).to_contain_text(shop.display_name(AGENT))

    for consult in [*fillers, {"id": consult_id}]:
        if shop.call(ADMIN, "GET", f"/api/consults/{consult['id']}")["status"] != "closed":
            shop.call(AGENT, "POST", f"/api/consults/{consult['id']}/close")
    assert_clean(pages, visitor)


def test_without_mail_no_other_device_link_a_dead_link_says_so_and_a_block_is_polite(
    pages: Pages, shop: ShopApi
) -> None:
    visitor = pages.page(viewport=PHONE, locale="en-GB")
    visitor.goto("/chat#resume=not-a-real-token")
    expect(visitor.get_by_test_id("resume-failed")).to_be_visible()
    # The token left the address bar at once.
    assert "#" not in visitor.url, visitor.url
    visitor.get_by_test_id("resume-onward").click()
    fill_start_form(visitor, unique("Ms Brown"), unique("Is the tent waterproof?"))
    open_consult(visitor)
    visitor.get_by_test_id("consult-back").click()
    expect(visitor.get_by_test_id("consult-home")).to_be_visible()
    expect(visitor.get_by_test_id("consult-item")).to_have_count(1)

    # The demo has no mail server: asking for a link hides the way for good.
    visitor.get_by_test_id("consult-email-link").click()
    dialog = visitor.get_by_test_id("dialog")
    dialog.locator("input[type=email]").fill("brown@example.com")
    dialog.get_by_test_id("dialog-submit").click()
    expect(dialog).to_be_hidden()
    expect(visitor.get_by_test_id("consult-email-link")).to_have_count(0)
    visitor.get_by_test_id("consult-item").click()
    _, consult_id = open_consult(visitor)
    expect(visitor.get_by_test_id("consult-email-link")).to_have_count(0)

    # Blocked by the shop: a send is refused politely, in the server's words.
    visitor_id = shop.call(ADMIN, "GET", f"/api/consults/{consult_id}")["visitor"]["id"]
    shop.call(ADMIN, "POST", f"/api/visitors/{visitor_id}/block", None, 204)
    blocked = visitor.get_by_test_id("consult-blocked")
    expect(blocked).to_be_hidden()
    type_and_send(visitor, unique("Hello?"))
    expect(blocked).to_be_visible()
    expect(blocked.get_by_test_id("consult-blocked-message")).to_have_text(
        "Sorry, your messages cannot be delivered at the moment. Please contact the shop directly."
    )
    shop.call(ADMIN, "DELETE", f"/api/visitors/{visitor_id}/block", None, 204)
    shop.call(ADMIN, "POST", f"/api/consults/{consult_id}/close")
    watch = pages.watch(visitor)
    assert visitor.evaluate("window.__cspViolations") == []
    assert watch.page_errors == []


def test_an_order_made_from_the_consult_opens_on_the_customer_page_with_the_same_session(
    pages: Pages, shop: ShopApi
) -> None:
    visitor = pages.page(locale="zh-CN")
    visitor.goto("/chat")
    fill_start_form(visitor, unique("王女士"), unique("想订两顶帐篷"))
    _, consult_id = open_consult(visitor)

    sku = shop.any_sku(AGENT)
    number = unique("WEB").upper()
    order = shop.call(
        AGENT,
        "POST",
        f"/api/consults/{consult_id}/order",
        {
            "number": number,
            "workflow": "retail",
            "items": [
                {
                    "sku": sku["sku"],
                    "name": sku["name_zh"],
                    "quantity": 2,
                    "unit_price_cents": sku["unit_price_cents"],
                }
            ],
            "address": {"name": "王女士", "city": "杭州", "line1": "文三路 90 号"},
        },
        201,
    )
    link = visitor.get_by_test_id("consult-order-link")
    expect(link).to_contain_text(number)
    expect(link).to_have_attribute("href", f"/c?order={order['id']}")

    # The list has it too, and the customer page opens it without an invitation.
    visitor.get_by_test_id("consult-back").click()
    order_link = visitor.get_by_test_id("order-list").get_by_test_id("order-link")
    expect(order_link).to_have_count(1)
    order_link.click()
    expect(visitor.get_by_test_id("customer-page")).to_be_visible()
    expect(visitor.get_by_test_id("order-number")).to_have_text(number)
    expect(visitor.get_by_test_id("connection")).to_have_attribute("data-state", "online")
    shop.call(AGENT, "POST", f"/api/consults/{consult_id}/close")
    assert_clean(pages, visitor)


# --- the widget on another site ---------------------------------------------------------


@contextmanager
def shop_site(origin: str, sku: str) -> Iterator[str]:
    """A site on another origin (`localhost`, not the server's `127.0.0.1`) whose product
    page carries the widget under the strict policy docs/consults.md promises to keep;
    the page's address."""
    policy = f"default-src 'none'; script-src {origin}; frame-src {origin}; style-src 'self'"
    page = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<title>Two-person tent</title>"
        f"<script src='{origin}/widget.js' data-sku='{sku}' data-lang='en' async></script>"
        "</head><body><h1>Two-person tent</h1><p>Light, waterproof.</p></body></html>"
    ).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if not self.path.startswith("/tents/"):
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Security-Policy", policy)
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_address[1]}/tents/{sku.lower()}?from=search"
    finally:
        server.shutdown()
        server.server_close()


def test_the_widget_on_a_strict_site_opens_the_chat_and_the_consult_knows_the_page(
    pages: Pages, shop: ShopApi, demo: ServerProcess
) -> None:
    sku = shop.any_sku(AGENT)["sku"]
    with shop_site(demo.base_url, sku) as address:
        context = pages.context(viewport=DESKTOP, locale="en-GB")
        context.add_init_script(DENY_FRAME_STORAGE % json.dumps(demo.base_url))
        host = pages.tab(context)
        host.goto(address)
        button = host.get_by_test_id("orderchat-widget-button")
        expect(button).to_be_visible()
        panel = host.get_by_test_id("orderchat-widget-panel")
        expect(panel).to_be_hidden()

        button.click()
        expect(panel).to_be_visible()
        src = host.get_by_test_id("orderchat-widget-frame").get_attribute("src") or ""
        assert src.startswith(f"{demo.base_url}/chat?"), src
        chat = host.frame_locator("#orderchat-widget-frame")
        expect(chat.get_by_test_id("consult-start-submit")).to_have_text("Start chatting")
        question = unique("Is this tent good above 4000 m?")
        fill_start_form(chat, unique("Alex"), question)
        view, consult_id = open_consult(chat)
        expect(
            chat.get_by_test_id("timeline").get_by_test_id("msg-text").filter(has_text=question)
        ).to_have_count(1)

        consult = shop.call(ADMIN, "GET", f"/api/consults/{consult_id}")
        assert consult["source"] == "widget", consult
        assert consult["page_url"] == address, consult
        assert consult["sku"] == sku, consult

        # Closed and opened again, the frame keeps the conversation.
        host.get_by_test_id("orderchat-widget-close").click()
        expect(panel).to_be_hidden()
        expect(button).to_be_visible()
        button.click()
        expect(view).to_be_visible()

        # On a phone the chat takes the whole screen.
        host.set_viewport_size({"width": PHONE["width"], "height": PHONE["height"]})
        # The media query's change event reaches the widget at the next frame, not at once.
        host.wait_for_function(FILLS_THE_SCREEN, arg="orderchat-widget-panel", polling=50)
        box = panel.bounding_box()
        assert box is not None
        assert (box["x"], box["y"], box["width"], box["height"]) == (
            0,
            0,
            PHONE["width"],
            PHONE["height"],
        ), box
        expect(chat.get_by_test_id("composer-input")).to_be_visible()
        host.set_viewport_size({"width": DESKTOP["width"], "height": DESKTOP["height"]})

        # The frame has no storage of its own here; the frame did not fall over for it.
        frame = chat_frame(host)
        assert frame.evaluate(NO_STORAGE), "the frame was expected to be denied storage"

        # A picture: sent, then shown with its preview, loaded with the visitor's token.
        chat.get_by_test_id("composer-file").set_input_files(
            files=[{"name": "tent.jpg", "mimeType": "image/jpeg", "buffer": jpeg(640, 480)}]
        )
        chat.get_by_test_id("picture-preview").get_by_test_id("picture-send").click()
        picture = chat.get_by_test_id("timeline").locator('[data-testid="msg"][data-kind="image"]')
        expect(picture).to_have_count(1)
        expect(picture).to_have_attribute("data-state", SENT)
        picture_id = picture.get_attribute("data-id")
        assert picture_id
        frame.wait_for_function(IMAGE_SHOWN_BY_TOKEN, arg=[picture_id, "/preview"], polling=100)

        # The widget keeps the visitor's token (a customer's, never staff's) in the host
        # page's own storage, under the OrderChat origin's name.
        kept = host.evaluate(
            "(key) => JSON.parse(localStorage.getItem(key))", f"orderchat-widget:{demo.base_url}"
        )
        assert kept and kept["user"]["kind"] == "customer" and kept["user"]["roles"] == [], kept
        mine = httpx.get(
            f"{demo.base_url}/api/me/consults",
            headers={"Authorization": f"Bearer {kept['token']}"},
            timeout=10,
        )
        assert mine.status_code == 200, mine.text
        assert [c["id"] for c in mine.json()["consults"]] == [consult_id], mine.json()
        assert_clean(pages, host)

        # The host page reloads: the visitor is still in the same consult, with its history.
        host.reload()
        expect(panel).to_be_hidden()
        button.click()
        again = chat.locator(f'[data-testid="consult-view"][data-consult-id="{consult_id}"]')
        expect(again).to_be_visible()
        expect(chat.get_by_test_id("consult-start-form")).to_have_count(0)
        expect(chat.get_by_test_id("connection")).to_have_attribute("data-state", "online")
        expect(
            chat.get_by_test_id("timeline").get_by_test_id("msg-text").filter(has_text=question)
        ).to_have_count(1)
        expect(
            chat.get_by_test_id("timeline").locator(f'[data-testid="msg"][data-id="{picture_id}"]')
        ).to_have_count(1)
        frame = chat_frame(host)
        assert frame.evaluate(NO_STORAGE)
        # History carries the attachment as sent: the original or the preview, either by token.
        frame.wait_for_function(IMAGE_SHOWN_BY_TOKEN, arg=[picture_id, "/api/media/"], polling=100)
        # Writing on goes into the same consult: the visitor did not start over.
        more = unique("Still there?")
        chat.get_by_test_id("composer-input").fill(more)
        chat.get_by_test_id("composer-send").click()
        written = chat.get_by_test_id("timeline").locator(
            '[data-testid="msg"]', has=chat.get_by_test_id("msg-text").get_by_text(more, exact=True)
        )
        expect(written).to_have_attribute("data-state", SENT)
        mine = httpx.get(
            f"{demo.base_url}/api/me/consults",
            headers={"Authorization": f"Bearer {kept['token']}"},
            timeout=10,
        )
        assert [c["id"] for c in mine.json()["consults"]] == [consult_id], mine.json()

        assert_clean(pages, host)
        shop.call(ADMIN, "POST", f"/api/consults/{consult_id}/close")


def chat_frame(host: Page) -> Frame:
    """The widget's frame, for running code in it."""
    handle = host.get_by_test_id("orderchat-widget-frame").element_handle()
    frame = handle.content_frame() if handle else None
    assert frame is not None
    return frame


NO_STORAGE = """() => {
  try { return !localStorage; } catch { return true; }
}"""


def test_widget_and_chat_page_are_served_for_embedding(demo: ServerProcess) -> None:
    widget = httpx.get(f"{demo.base_url}/widget.js", timeout=10)
    assert widget.status_code == 200
    assert re.match(r"(text|application)/javascript", widget.headers["content-type"])
    page = httpx.get(f"{demo.base_url}/chat", timeout=10)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers.get("content-security-policy", "")
    directives = {d.split()[0]: d.split()[1:] for d in policy.split(";") if d.strip()}
    assert directives.get("script-src") == ["'self'"], policy
    assert directives.get("frame-ancestors") not in (None, ["'none'"]), policy
    assert page.headers.get("x-frame-options", "").upper() != "DENY"
    html = page.text.lower()
    assert "<style" not in html and " style=" not in html and " onload=" not in html
