"""What the browser tests share: the demo shop's API for setting up facts, and the
few steps through the web app that most tests take (sign in, open a conversation,
send a message).

The app is reached only through the data-testid contract its pages promise, and
asserted with Playwright's auto-waiting `expect`, so no test depends on how fast
a machine is, only on bounded timeouts.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Locator, Page, expect

from tests.support import ServerProcess

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--use-fake-ui-for-media-stream",
    # The fake camera at 10 frames a second (its default is 20): calls between two or
    # three pages encode and decode every frame, and the suite shares two cores.
    "--use-fake-device-for-media-stream=fps=10",
    "--autoplay-policy=no-user-gesture-required",
]
DEMO_PASSWORD = "orderchat-demo"
# Generous on a busy two-core machine; a passing run waits far less.
TIMEOUT_MS = 15_000
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 360, "height": 640}

_unique = itertools.count(1)
Json = dict[str, Any]


def unique(prefix: str) -> str:
    """A text no other test (or earlier run on the same server) has used."""
    return f"{prefix}-{time.time_ns() % 10**9:09d}-{next(_unique)}"


# --- setting up facts over HTTP -------------------------------------------------


class ShopApi:
    """The demo shop's staff, each signed in once over HTTP, for setting up facts
    that are not what a test is about."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self._sessions: dict[str, Json] = {}

    def session(self, username: str) -> Json:
        if username not in self._sessions:
            resp = httpx.post(
                f"{self.server.base_url}/api/auth/login",
                json={"username": username, "password": DEMO_PASSWORD, "device": "test-setup"},
                timeout=10,
            )
            assert resp.status_code == 200, resp.text
            self._sessions[username] = resp.json()
        return self._sessions[username]

    def user_id(self, username: str) -> str:
        return str(self.session(username)["user"]["id"])

    def display_name(self, username: str) -> str:
        return str(self.session(username)["user"]["display_name"])

    def call(
        self, username: str, method: str, path: str, body: Json | None = None, status: int = 200
    ) -> Any:
        token = self.session(username)["token"]
        with self.server.http(token) as client:
            resp = client.request(method, path, json=body)
        assert resp.status_code == status, f"{method} {path}: {resp.status_code} {resp.text}"
        return resp.json() if resp.content else None

    def direct(self, a: str, b: str) -> str:
        """The direct conversation of two staff users (made if they have none)."""
        token = self.session(a)["token"]
        with self.server.http(token) as client:
            resp = client.post(
                "/api/conversations", json={"kind": "direct", "members": [self.user_id(b)]}
            )
        assert resp.status_code in (200, 201), resp.text
        return str(resp.json()["id"])

    def channel(self, owner: str, title: str, members: list[str]) -> str:
        conv = self.call(
            owner,
            "POST",
            "/api/conversations",
            {"kind": "channel", "title": title, "members": [self.user_id(m) for m in members]},
            201,
        )
        return str(conv["id"])

    def history(self, username: str, conv: str) -> list[Json]:
        found: list[Json] = self.call(
            username, "GET", f"/api/conversations/{conv}/messages?after=0&limit=200"
        )["messages"]
        return found

    def any_sku(self, username: str = "amy") -> Json:
        skus: list[Json] = self.call(username, "GET", "/api/skus?q=TNT&limit=1")["skus"]
        assert skus, "the demo catalogue has tents"
        return skus[0]

    def retail_order(self, creator: str = "amy", customer: str = "测试客户") -> Json:
        sku = self.any_sku(creator)
        return self._new_order(
            creator,
            "WEB",
            "retail",
            customer={"name": customer, "phone": "13800000000", "language": "zh-CN"},
            item={
                "sku": sku["sku"],
                "name": sku["name_zh"],
                "quantity": 1,
                "unit_price_cents": sku["unit_price_cents"],
            },
            address={"name": customer, "city": "杭州", "line1": "文三路 90 号"},
        )

    def oem_order(self, creator: str = "lily") -> Json:
        return self._new_order(
            creator,
            "OEM",
            "oem",
            customer={"name": "Atelier Test", "segment": "brand", "language": "zh-CN"},
            item={
                "sku": "HB-TOTE-01",
                "name": "真皮托特包",
                "quantity": 100,
                "unit_price_cents": 68000,
            },
            address={"city": "上海", "line1": "南京西路 1 号"},
        )

    def _new_order(
        self, creator: str, prefix: str, workflow: str, *, customer: Json, item: Json, address: Json
    ) -> Json:
        """A one-line order with a number of its own; the order as created."""
        order: Json = self.call(
            creator,
            "POST",
            "/api/orders",
            {
                "number": unique(prefix).upper(),
                "workflow": workflow,
                "customer": customer,
                "items": [item],
                "address": address,
            },
            201,
        )
        return order

    def invite(self, order_id: str, by: str = "amy") -> str:
        """The invitation link's path and fragment: `/c#TOKEN`."""
        url: str = self.call(by, "POST", f"/api/orders/{order_id}/invitations", None, 201)["url"]
        assert url.startswith("/c#"), url
        return url

    def propose(self, order_id: str, title: str, text: str, by: str = "lily") -> Json:
        """A confirmation item on the order with version 1 proposed; the item."""
        item: Json = self.call(
            by,
            "POST",
            f"/api/orders/{order_id}/confirmations",
            {"kind": "material", "title": title, "required": True},
            201,
        )
        self.call(by, "POST", f"/api/confirmations/{item['id']}/versions", {"text": text}, 201)
        return item


# --- pages and what they log -------------------------------------------------------


@dataclass
class Watch:
    """What a page reported that a user never should see: uncaught errors, console
    errors, Content-Security-Policy violations and `alert()`-style dialogs."""

    page_errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def on_console(self, msg: ConsoleMessage) -> None:
        url = msg.location.get("url", "")
        # The browser asks for /favicon.ico on its own, at a moment of its choosing;
        # test_security checks the pages name an icon that exists instead.
        if msg.type == "error" and not url.endswith("/favicon.ico"):
            self.console_errors.append(f"{msg.text} @ {url}")

    def csp_violations(self, page: Page) -> list[str]:
        found: list[str] = page.evaluate("window.__cspViolations || []")
        return found


# Recorded from the first moment of every document, before the app's own code runs.
CSP_PROBE = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(e.violatedDirective + " " + (e.blockedURI || "") + " " +
    (e.sourceFile || "") + ":" + (e.lineNumber || 0));
});
"""


class Pages:
    """Browser contexts for one test: a fresh context per user (or device)."""

    def __init__(self, browser: Browser, base_url: str) -> None:
        self.browser = browser
        self.base_url = base_url
        self.contexts: list[BrowserContext] = []
        self.watches: dict[Page, Watch] = {}

    def context(
        self, *, viewport: dict[str, int] | None = None, locale: str = "zh-CN", **options: Any
    ) -> BrowserContext:
        ctx = self.browser.new_context(
            base_url=self.base_url,
            locale=locale,
            timezone_id="Asia/Shanghai",
            viewport=viewport or DESKTOP,  # type: ignore[arg-type]
            **options,
        )
        ctx.set_default_timeout(TIMEOUT_MS)
        ctx.add_init_script(CSP_PROBE)
        ctx.grant_permissions(["microphone"], origin=self.base_url)
        self.contexts.append(ctx)
        return ctx

    def page(self, **options: Any) -> Page:
        """A new page in a new context."""
        return self.tab(self.context(**options))

    def tab(self, ctx: BrowserContext) -> Page:
        """Another page (tab) in an existing context, watched like the others."""
        page = ctx.new_page()
        self._watch(page)
        return page

    def _watch(self, page: Page) -> None:
        watch = Watch()
        self.watches[page] = watch
        page.on("pageerror", lambda err: watch.page_errors.append(str(err)))
        page.on("console", watch.on_console)

        def on_dialog(dialog: Any) -> None:
            # A confirmation the app asks for is answered yes; anything else is noted.
            if dialog.type == "confirm":
                dialog.accept()
            else:
                watch.dialogs.append(f"{dialog.type}: {dialog.message}")
                dialog.dismiss()

        page.on("dialog", on_dialog)

    def watch(self, page: Page) -> Watch:
        return self.watches[page]

    def close(self) -> None:
        for ctx in self.contexts:
            ctx.close()
        self.contexts.clear()

    def uncaught(self) -> list[str]:
        return [f"{p.url}: {e}" for p, w in self.watches.items() for e in w.page_errors]


def watched_pages(browser: Browser, server: ServerProcess) -> Iterator[Pages]:
    """Pages on `server` for one test; any uncaught error in the app fails the test."""
    pages = Pages(browser, server.base_url)
    try:
        yield pages
        uncaught = pages.uncaught()
    finally:
        pages.close()
    assert not uncaught, "uncaught errors in the app:\n" + "\n".join(uncaught)


# --- steps through the staff workspace ----------------------------------------------


def session_in_storage(page: Page) -> Any:
    return page.evaluate("localStorage.getItem('orderchat.session')")


def sign_in(page: Page, username: str, password: str = DEMO_PASSWORD) -> None:
    """Sign in on the staff workspace and wait until the app is live."""
    page.goto("/")
    submit_login(page, username, password)
    expect_signed_in(page)


def expect_signed_in(page: Page) -> None:
    """The staff workspace shows who is signed in and is connected."""
    expect(page.get_by_test_id("me")).to_be_visible()
    expect(page.get_by_test_id("connection")).to_have_attribute("data-state", "online")


def submit_login(page: Page, username: str, password: str) -> None:
    expect(page.get_by_test_id("login-form")).to_be_visible()
    page.get_by_test_id("login-username").fill(username)
    page.get_by_test_id("login-password").fill(password)
    page.get_by_test_id("login-submit").click()


def conv_item(page: Page, conv_id: str) -> Locator:
    return page.get_by_test_id("conv-list").locator(
        f'[data-testid="conv-item"][data-conv-id="{conv_id}"]'
    )


def open_conv(page: Page, conv_id: str) -> Locator:
    """Click the conversation in the list; its view, once loaded (the view shows at
    once, its timeline and composer only when the history has arrived)."""
    item = conv_item(page, conv_id)
    expect(item).to_be_visible()
    item.click()
    view = page.locator(f'[data-testid="conv-view"][data-conv-id="{conv_id}"]')
    expect(view).to_be_visible()
    expect(view.locator(".conv-main > .op-loading")).to_have_count(0)
    return view


def both_in_conv(pages: Pages, conv_id: str, first: str, second: str) -> tuple[Page, Page]:
    """Two users, each signed in in a browser of their own, with the conversation open."""
    one, other = pages.page(), pages.page()
    sign_in(one, first)
    sign_in(other, second)
    open_conv(one, conv_id)
    open_conv(other, conv_id)
    return one, other


def messages(page: Page) -> Locator:
    """Every message element shown in the open conversation's timeline."""
    return page.get_by_test_id("timeline").get_by_test_id("msg")


def message(page: Page, text: str) -> Locator:
    """The message whose text is exactly `text`."""
    return messages(page).filter(has=page.get_by_test_id("msg-text").get_by_text(text, exact=True))


def by_seq(page: Page, seq: str | int) -> Locator:
    return page.get_by_test_id("timeline").locator(f'[data-testid="msg"][data-seq="{seq}"]')


def by_id(page: Page, msg_id: str) -> Locator:
    return page.get_by_test_id("timeline").locator(f'[data-testid="msg"][data-id="{msg_id}"]')


SENT = re.compile(r"^(sent|read)$")


def type_and_send(page: Page, text: str) -> None:
    box = page.get_by_test_id("composer-input")
    box.fill(text)
    page.get_by_test_id("composer-send").click()


def send_text(page: Page, text: str) -> Locator:
    """Send a text message and wait for the server's ack to show on it."""
    type_and_send(page, text)
    msg = message(page, text)
    expect(msg).to_have_count(1)
    expect(msg).to_have_attribute("data-state", SENT)
    expect(msg).to_have_attribute("data-seq", re.compile(r"^\d+$"))
    return msg


def submit_dialog_if_shown(page: Page, done: Locator) -> None:
    """After a click that may ask for confirmation in the app's own dialog:
    confirm it if it is what appears, otherwise `done` shows the result already."""
    dialog = page.get_by_test_id("dialog")
    expect(dialog.or_(done).first).to_be_visible()
    if dialog.is_visible():
        dialog.get_by_test_id("dialog-submit").click()
        expect(dialog).to_be_hidden()


def no_horizontal_scroll(page: Page, width: int) -> None:
    scroll_width = page.evaluate("document.scrollingElement.scrollWidth")
    assert scroll_width <= width, f"the page scrolls sideways: scrollWidth {scroll_width} > {width}"
