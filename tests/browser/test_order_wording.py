"""Small words that matter on the order: a step button says what the step does (a
new sample round, not "mark as sampling" while sampling), the phone's order button
says "Order", product names read in English in the English interface with the
Chinese name beside them, and reply and recall never share a look."""

from __future__ import annotations

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.helpers import (
    PHONE,
    Pages,
    ShopApi,
    open_conv,
    send_text,
    sign_in,
    unique,
)
from tests.browser.test_orders import open_invitation, open_order_panel

pytestmark = pytest.mark.browser


def move(shop: ShopApi, order_id: str, to: str, by: str = "lily") -> None:
    shop.call(by, "POST", f"/api/orders/{order_id}/status", {"to": to})


def again_button(page: Page) -> Locator:
    return page.get_by_test_id("order-panel").locator(
        '[data-testid="action-transition"][data-to="sampling"]'
    )


def test_a_repeated_sample_step_names_its_round(pages: Pages, shop: ShopApi) -> None:
    order = shop.oem_order("lily")
    move(shop, order["id"], "quoting")
    move(shop, order["id"], "sampling")

    lily = pages.page(locale="en")
    sign_in(lily, "lily")
    panel = open_order_panel(lily, order["conv"])
    expect(panel.get_by_test_id("order-status")).to_have_attribute("data-status", "sampling")
    button = again_button(lily)
    expect(button).to_have_text("Start sample round 2")
    buttons = panel.get_by_test_id("action-transition")
    expect(buttons.filter(has_text="Mark as Sampling")).to_have_count(0)

    button.click()
    dialog = lily.get_by_test_id("dialog")
    expect(dialog).to_contain_text("Start sample round 2")
    dialog.get_by_test_id("dialog-submit").click()
    expect(dialog).to_be_hidden()
    expect(again_button(lily)).to_have_text("Start sample round 3")
    stored = shop.call("lily", "GET", f"/api/orders/{order['id']}")
    assert (stored["status"], stored["sample_round"]) == ("sampling", 2)

    zh = pages.page()
    sign_in(zh, "lily")
    open_order_panel(zh, order["conv"])
    expect(again_button(zh)).to_have_text("开始第 3 轮打样")


def test_the_phone_order_button_says_order(pages: Pages, shop: ShopApi) -> None:
    order = shop.retail_order("amy")
    for locale, word, name in (("zh-CN", "订单", "订单详情"), ("en", "Order", "Order details")):
        amy = pages.page(locale=locale, viewport=PHONE, is_mobile=True, has_touch=True)
        sign_in(amy, "amy")
        open_conv(amy, order["conv"])
        toggle = amy.get_by_test_id("order-panel-toggle")
        expect(toggle).to_be_visible()
        # What the eye reads on the button is the one word.
        expect(toggle.locator("span:visible")).to_have_text(word)
        expect(toggle).to_have_accessible_name(name)
        expect(amy.get_by_role("button", name=name)).to_have_count(1)
        toggle.click()
        expect(amy.get_by_test_id("order-panel")).to_be_visible()
        expect(toggle).to_have_attribute("aria-expanded", "true")


def test_product_names_in_english_with_the_chinese_beside(pages: Pages, shop: ShopApi) -> None:
    order = shop.retail_order("amy")
    item = order["items"][0]
    sku = shop.call("amy", "GET", f"/api/skus/{item['sku']}")
    assert sku["name_en"] and sku["name_en"] != item["name"], sku

    amy = pages.page(locale="en")
    sign_in(amy, "amy")
    panel = open_order_panel(amy, order["conv"])
    name = panel.get_by_test_id("order-item").get_by_test_id("item-name")
    expect(name).to_contain_text(sku["name_en"])
    expect(name.get_by_test_id("item-name-zh")).to_have_text(item["name"])

    zh = pages.page()
    sign_in(zh, "amy")
    panel = open_order_panel(zh, order["conv"])
    expect(panel.get_by_test_id("order-item").get_by_test_id("item-name")).to_have_text(
        item["name"]
    )

    # The customer reads them the same way, in the language the page is in.
    customer = pages.page(locale="en")
    open_invitation(customer, shop.invite(order["id"], by="amy"))
    name = customer.get_by_test_id("order-item").get_by_test_id("item-name")
    expect(name).to_contain_text(sku["name_en"])
    expect(name.get_by_test_id("item-name-zh")).to_have_text(item["name"])
    customer.get_by_test_id("lang").select_option("zh-CN")
    expect(name).to_have_text(item["name"])


def test_reply_and_recall_look_different(pages: Pages, shop: ShopApi) -> None:
    conv = shop.direct("lily", "quinn")
    lily = pages.page()
    sign_in(lily, "lily")
    open_conv(lily, conv)
    msg = send_text(lily, unique("看图标 icons"))
    msg.hover()
    shapes: dict[str, str] = {}
    for action in ("msg-reply", "msg-recall"):
        button = msg.get_by_test_id(action)
        expect(button).to_have_count(1)
        shapes[action] = button.locator("svg path").evaluate_all(
            "ps => ps.map(p => p.getAttribute('d')).join(' ')"
        )
    assert shapes["msg-reply"] and shapes["msg-recall"]
    assert shapes["msg-reply"] != shapes["msg-recall"]
    assert not set(shapes["msg-reply"].split(" M")) & set(shapes["msg-recall"].split(" M"))
