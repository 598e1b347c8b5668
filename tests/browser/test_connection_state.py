"""What the app says about its connection, as a user sees it: the network going away
shows in the header at once and on the message written meanwhile, which goes out
once when the network is back; a conversation opened while the server is down says
so with a retry button, and loads by itself when the server is back."""

from __future__ import annotations

import signal
from collections import Counter

import pytest
from playwright.sync_api import Page, Route, expect

from tests.browser.helpers import (
    SENT,
    Pages,
    ShopApi,
    both_in_conv,
    conv_item,
    message,
    open_conv,
    send_text,
    sign_in,
    type_and_send,
    unique,
)
from tests.browser.test_orders import open_invitation
from tests.support import ServerProcess

pytestmark = pytest.mark.browser

# The promise to the user: the header tells the truth within five seconds, not after
# the half minute a silent socket takes to time out.
HEADER_DEADLINE_MS = 5_000


def go_offline(page: Page) -> None:
    assert page.context is not None
    page.context.set_offline(True)


def go_online(page: Page) -> None:
    page.context.set_offline(False)


def test_the_header_and_the_message_say_offline_and_it_goes_out_once_after(
    pages: Pages, shop: ShopApi
) -> None:
    # People no other test pairs up, so nothing else writes in their conversation.
    conv = shop.direct("quinn", "fay")
    quinn, fay = both_in_conv(pages, conv, "quinn", "fay")
    before = unique("断网前 before")
    send_text(quinn, before)
    expect(message(fay, before)).to_have_count(1)

    go_offline(quinn)
    header = quinn.get_by_test_id("connection")
    expect(header).to_have_attribute("data-state", "offline", timeout=HEADER_DEADLINE_MS)
    expect(header).to_have_attribute("data-network", "down")
    expect(header).to_have_text("网络已断开，等待恢复…")

    during = unique("断网时写的 while offline")
    type_and_send(quinn, during)
    waiting = message(quinn, during)
    expect(waiting).to_have_count(1)
    expect(waiting).to_have_attribute("data-state", "pending")
    expect(waiting).to_have_attribute("data-waiting", "network")
    expect(waiting.get_by_test_id("msg-status")).to_have_text("等待网络")
    # The other side is untouched while the sender is offline: nothing arrived.
    expect(message(fay, before)).to_have_count(1)
    expect(message(fay, during)).to_have_count(0)

    go_online(quinn)
    expect(header).to_have_attribute("data-state", "online")
    expect(waiting).to_have_attribute("data-state", SENT)
    expect(message(fay, during)).to_have_count(1)
    after = unique("恢复后 after")
    send_text(quinn, after)
    expect(message(fay, after)).to_have_count(1)

    texts = Counter(m["text"] for m in shop.history("fay", conv))
    assert [texts[t] for t in (before, during, after)] == [1, 1, 1], "stored exactly once each"
    for page in (quinn, fay):
        expect(message(page, during)).to_have_count(1)
        expect(page.locator('[data-testid="msg"][data-state="pending"]')).to_have_count(0)


def test_the_customer_page_says_offline_too(pages: Pages, shop: ShopApi) -> None:
    order = shop.retail_order("amy", customer="断网测试客户")
    link = shop.invite(order["id"], by="amy")
    customer = pages.page(locale="en")
    open_invitation(customer, link)
    amy = pages.page()
    sign_in(amy, "amy")

    go_offline(customer)
    header = customer.get_by_test_id("connection")
    expect(header).to_have_attribute("data-state", "offline", timeout=HEADER_DEADLINE_MS)
    expect(header).to_have_text("No network, waiting…")
    text = unique("written offline by the customer")
    customer.get_by_test_id("composer-input").fill(text)
    customer.get_by_test_id("composer-send").click()
    waiting = message(customer, text)
    expect(waiting).to_have_attribute("data-waiting", "network")
    expect(waiting.get_by_test_id("msg-status")).to_have_text("Waiting for network")

    go_online(customer)
    expect(header).to_have_attribute("data-state", "online")
    expect(waiting).to_have_attribute("data-state", SENT)
    conv_item(amy, order["conv"]).click()
    expect(message(amy, text)).to_have_count(1)
    texts = Counter(m["text"] for m in shop.history("amy", order["conv"]))
    assert texts[text] == 1, "stored exactly once"


def test_a_conversation_opened_while_the_server_is_down_loads_when_it_is_back(
    own_pages: Pages, own_demo: ServerProcess
) -> None:
    shop = ShopApi(own_demo)
    conv = shop.direct("amy", "sam")
    order = shop.retail_order("amy", customer="重启测试客户")
    amy = own_pages.page()
    sign_in(amy, "amy")
    open_conv(amy, conv)
    earlier = unique("重启前的消息 before the outage")
    send_text(amy, earlier)
    # Start again with no conversation open.
    amy.goto("/")
    expect(amy.get_by_test_id("connection")).to_have_attribute("data-state", "online")
    expect(conv_item(amy, conv)).to_be_visible()
    expect(conv_item(amy, order["conv"])).to_be_visible()

    own_demo.kill()
    expect(amy.get_by_test_id("connection")).not_to_have_attribute("data-state", "online")
    conv_item(amy, conv).click()
    view = amy.locator(f'[data-testid="conv-view"][data-conv-id="{conv}"]')
    failed = view.get_by_test_id("load-failed")
    expect(failed).to_be_visible()
    expect(failed).to_contain_text("会话加载失败")
    retry = failed.get_by_test_id("load-retry")
    expect(retry).to_be_visible()
    # Retrying while the server is still down fails again, and says so the same way.
    retry.click()
    expect(view.get_by_test_id("load-failed")).to_be_visible()

    own_demo.start()
    # No switching away and back: the conversation loads by itself.
    expect(amy.get_by_test_id("connection")).to_have_attribute("data-state", "online")
    expect(view.get_by_test_id("load-failed")).to_have_count(0)
    expect(message(amy, earlier)).to_have_count(1)
    send_text(amy, unique("服务器回来了 back"))

    # An order conversation opened in a second outage brings its order panel back too.
    own_demo.kill()
    expect(amy.get_by_test_id("connection")).not_to_have_attribute("data-state", "online")
    conv_item(amy, order["conv"]).click()
    order_view = amy.locator(f'[data-testid="conv-view"][data-conv-id="{order["conv"]}"]')
    expect(order_view.get_by_test_id("load-failed")).to_be_visible()
    own_demo.start()
    expect(order_view.get_by_test_id("load-failed")).to_have_count(0)
    expect(order_view.get_by_test_id("timeline")).to_be_visible()
    panel = amy.get_by_test_id("order-panel")
    expect(panel.get_by_test_id("load-failed")).to_have_count(0)
    expect(panel).to_contain_text(order["number"])


def test_a_server_that_stops_answering_shows_while_a_message_waits(
    own_pages: Pages, own_demo: ServerProcess
) -> None:
    """The network looks fine to the browser, but nothing answers (a frozen server, a
    dead router): a message waiting for its answer makes the page probe, and the
    silence shows long before the half-minute a quiet socket would take."""
    shop = ShopApi(own_demo)
    conv = shop.direct("amy", "sam")
    amy, sam = both_in_conv(own_pages, conv, "amy", "sam")
    assert own_demo.proc is not None
    own_demo.proc.send_signal(signal.SIGSTOP)
    try:
        text = unique("没人应答时写的 while nobody answers")
        type_and_send(amy, text)
        waiting = message(amy, text)
        expect(waiting).to_have_attribute("data-state", "pending")
        expect(amy.get_by_test_id("connection")).not_to_have_attribute("data-state", "online")
        expect(waiting).to_have_attribute("data-waiting", "network")
        # The browser itself still believes in its network.
        expect(amy.get_by_test_id("connection")).to_have_attribute("data-network", "up")
    finally:
        own_demo.proc.send_signal(signal.SIGCONT)
    expect(amy.get_by_test_id("connection")).to_have_attribute("data-state", "online")
    expect(waiting).to_have_attribute("data-state", SENT)
    expect(message(sam, text)).to_have_count(1)
    texts = Counter(m["text"] for m in shop.history("sam", conv))
    assert texts[text] == 1, "stored exactly once"


def test_the_customer_page_retries_a_failed_load_when_the_connection_is_back(
    pages: Pages, shop: ShopApi
) -> None:
    order = shop.retail_order("amy", customer="加载失败测试客户")
    link = shop.invite(order["id"], by="amy")
    customer = pages.page()
    # The order cannot be fetched: what a customer sees while the shop's server restarts.
    customer.route("**/api/orders**", lambda route: route.abort())
    customer.goto(link)
    failed = customer.get_by_test_id("load-failed")
    expect(failed).to_be_visible()
    expect(failed.get_by_test_id("load-retry")).to_be_visible()
    expect(customer.get_by_test_id("customer-page")).to_have_count(0)

    customer.unroute("**/api/orders**")
    go_offline(customer)
    go_online(customer)
    # No button pressed: the page loads the order when it is connected again.
    expect(customer.get_by_test_id("customer-page")).to_be_visible()
    expect(customer.get_by_test_id("order-number")).to_contain_text(order["number"])
    expect(customer.get_by_test_id("load-failed")).to_have_count(0)


def test_a_conversation_list_that_failed_to_load_comes_back(pages: Pages, shop: ShopApi) -> None:
    conv = shop.direct("quinn", "pat")
    quinn = pages.page(locale="en")
    quinn.route("**/api/conversations", lambda route: route.abort())
    sign_in(quinn, "quinn")
    listing = quinn.get_by_test_id("conv-list")
    expect(quinn.get_by_test_id("load-retry")).to_be_visible()
    expect(conv_item(quinn, conv)).to_have_count(0)
    # Pressing the button while it still fails changes nothing.
    quinn.get_by_test_id("load-retry").click()
    expect(quinn.get_by_test_id("load-retry")).to_be_visible()

    quinn.unroute("**/api/conversations")
    go_offline(quinn)
    go_online(quinn)
    expect(conv_item(quinn, conv)).to_be_visible()
    expect(listing.get_by_test_id("load-retry")).to_have_count(0)
    open_conv(quinn, conv)


def test_a_list_load_that_fails_after_the_connection_came_back_loads_again(
    pages: Pages, shop: ShopApi
) -> None:
    """The connection's return can land while a retry is still on its way to failing."""
    conv = shop.direct("quinn", "wes")
    quinn = pages.page(locale="en")
    held: list[Route] = []
    mode = ["abort"]

    def conversations(route: Route) -> None:
        if mode[0] == "abort":
            route.abort()
        elif mode[0] == "hold":
            held.append(route)
        else:
            route.continue_()

    quinn.route("**/api/conversations", conversations)
    sign_in(quinn, "quinn")
    expect(quinn.get_by_test_id("load-retry")).to_be_visible()

    mode[0] = "hold"
    quinn.get_by_test_id("load-retry").click()
    for _ in range(100):  # the retry on its way: held here until the connection is back
        if held:
            break
        quinn.wait_for_timeout(50)
    assert len(held) == 1
    mode[0] = "pass"
    state = quinn.get_by_test_id("connection")
    go_offline(quinn)
    expect(state).to_have_attribute("data-state", "offline")
    go_online(quinn)
    expect(state).to_have_attribute("data-state", "online")
    held[0].abort()
    expect(conv_item(quinn, conv)).to_be_visible()
    expect(quinn.get_by_test_id("load-retry")).to_have_count(0)
