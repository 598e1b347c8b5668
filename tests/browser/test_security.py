"""The pages run under a strict Content-Security-Policy and break none of it; markup
in a message stays text; signing out everywhere signs out every tab and device."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.helpers import (
    Pages,
    ShopApi,
    both_in_conv,
    expect_signed_in,
    message,
    send_text,
    session_in_storage,
    sign_in,
    submit_dialog_if_shown,
    unique,
)
from tests.support import ServerProcess

pytestmark = pytest.mark.browser

XSS = "<img src=x onerror=alert(1)>"


@pytest.mark.parametrize("path", ["/", "/c"])
def test_pages_carry_a_strict_content_security_policy(demo: ServerProcess, path: str) -> None:
    resp = httpx.get(demo.base_url + path, timeout=10)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    policy = resp.headers.get("content-security-policy", "")
    directives = {d.split()[0]: d.split()[1:] for d in policy.split(";") if d.strip()}
    assert directives.get("script-src") == ["'self'"], policy
    assert directives.get("style-src") == ["'self'"], policy
    assert directives.get("object-src") == ["'none'"], policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy, policy
    assert resp.headers.get("x-content-type-options") == "nosniff"
    # The page itself holds no inline script or style for the policy to block.
    html = resp.text.lower()
    assert "<style" not in html and " style=" not in html, "inline styles in the page"
    assert " onload=" not in html and " onclick=" not in html, "inline handlers in the page"


@pytest.mark.parametrize("path", ["/", "/c"])
def test_pages_have_an_icon(demo: ServerProcess, path: str) -> None:
    """Without one the browser fetches /favicon.ico, and a 404 is an error in the console."""
    html = httpx.get(demo.base_url + path, timeout=10).text
    links = re.findall(r"<link\b[^>]*\brel=\"(?:shortcut )?icon\"[^>]*>", html, re.IGNORECASE)
    hrefs = [m.group(1) for link in links if (m := re.search(r'href="([^"]+)"', link))]
    if not hrefs:
        hrefs = ["/favicon.ico"]
    for href in hrefs:
        if href.startswith("data:"):
            continue  # inline, nothing to fetch
        resp = httpx.get(demo.base_url + href, timeout=10)
        assert resp.status_code == 200, f"{path} names the icon {href}: {resp.status_code}"


def test_markup_in_a_message_stays_text_and_nothing_breaks_the_policy(
    pages: Pages, shop: ShopApi
) -> None:
    conv = shop.direct("amy", "fay")
    amy, fay = both_in_conv(pages, conv, "amy", "fay")

    text = f"{XSS} {unique('看看这个')}"
    send_text(amy, text)
    for page in (amy, fay):
        msg = message(page, text)
        expect(msg).to_have_count(1)
        expect(msg.get_by_test_id("msg-text")).to_have_text(text)
        assert msg.get_by_test_id("msg-text").evaluate("el => el.querySelector('*') === null")
        expect(page.locator('img[src="x"]')).to_have_count(0)
    # A preview of the message in the list is text as well.
    expect(fay.locator('img[src="x"], [onerror]')).to_have_count(0)

    for page in (amy, fay):
        watch = pages.watch(page)
        assert watch.csp_violations(page) == [], "Content-Security-Policy violations"
        assert watch.console_errors == [], "errors in the console"
        assert watch.page_errors == [], "uncaught errors"
        assert watch.dialogs == [], "the message ran script (a dialog opened)"


def test_sign_out_everywhere_signs_out_every_tab_and_device(pages: Pages) -> None:
    laptop = pages.context()
    first = pages.tab(laptop)
    sign_in(first, "quinn")
    second = pages.tab(laptop)
    second.goto("/")  # the same browser: the stored session signs this tab in too
    expect_signed_in(second)
    phone = pages.page()
    sign_in(phone, "quinn")

    first.get_by_test_id("signout-all").click()
    submit_dialog_if_shown(first, first.get_by_test_id("login-form"))
    for page in (first, second, phone):
        expect(page.get_by_test_id("login-form")).to_be_visible()
        expect(page.get_by_test_id("me")).to_be_hidden()
        assert session_in_storage(page) is None
    for page in (first, second, phone):
        watch = pages.watch(page)
        assert watch.csp_violations(page) == [], "Content-Security-Policy violations"
        assert watch.page_errors == [], "uncaught errors"
