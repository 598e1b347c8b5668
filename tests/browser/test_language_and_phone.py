"""The app speaks Chinese and English, switched live and remembered, and works on a
360 × 640 phone screen without sideways scrolling."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import (
    PHONE,
    Pages,
    ShopApi,
    conv_item,
    message,
    no_horizontal_scroll,
    open_conv,
    send_text,
    sign_in,
    unique,
)

pytestmark = pytest.mark.browser

HAS_CHINESE = re.compile(r"[\u3400-\u9fff]")
NO_CHINESE = re.compile(r"^[^\u3400-\u9fff]+$")


def test_language_switch_changes_the_text_live_and_is_remembered(
    pages: Pages, shop: ShopApi
) -> None:
    conv = shop.direct("amy", "pete")
    amy = pages.page(locale="zh-CN")
    sign_in(amy, "amy")
    expect(amy.locator("html")).to_have_attribute("lang", "zh-CN")
    open_conv(amy, conv)
    status = send_text(amy, unique("语言")).get_by_test_id("msg-status")
    send = amy.get_by_test_id("composer-send")
    expect(status).to_have_text("未读")
    expect(send).to_have_accessible_name(HAS_CHINESE)

    amy.get_by_test_id("lang").select_option("en")
    expect(amy.locator("html")).to_have_attribute("lang", "en")
    expect(status).to_have_text(re.compile(r"^unread$", re.IGNORECASE))
    expect(send).to_have_accessible_name(NO_CHINESE)

    amy.reload()
    expect(amy.get_by_test_id("connection")).to_have_attribute("data-state", "online")
    expect(amy.locator("html")).to_have_attribute("lang", "en")
    expect(amy.get_by_test_id("lang")).to_have_value("en")

    amy.get_by_test_id("lang").select_option("zh-CN")
    expect(amy.locator("html")).to_have_attribute("lang", "zh-CN")
    open_conv(amy, conv)
    expect(amy.get_by_test_id("msg-status").first).to_have_text("未读")
    expect(send).to_have_accessible_name(HAS_CHINESE)


def test_phone_screen_shows_the_list_and_a_usable_conversation(pages: Pages, shop: ShopApi) -> None:
    conv = shop.direct("sam", "pete")
    order = shop.retail_order("amy", customer="手机测试客户")
    phone = {"viewport": PHONE, "is_mobile": True, "has_touch": True}

    sam = pages.page(**phone)
    sign_in(sam, "sam")
    expect(sam.get_by_test_id("conv-list")).to_be_in_viewport()
    expect(conv_item(sam, conv)).to_be_visible()
    no_horizontal_scroll(sam, PHONE["width"])

    open_conv(sam, conv)
    expect(sam.get_by_test_id("composer-input")).to_be_in_viewport()
    expect(sam.get_by_test_id("composer-send")).to_be_in_viewport()
    text = unique(
        "手机上发的消息，比较长一点，看看会不会把页面撑宽 a-long-unbroken-word-" + "x" * 80
    )
    send_text(sam, text)
    expect(message(sam, text)).to_be_in_viewport()
    no_horizontal_scroll(sam, PHONE["width"])

    amy = pages.page(**phone)
    sign_in(amy, "amy")
    open_conv(amy, order["conv"])
    amy.get_by_test_id("order-panel-toggle").click()
    panel = amy.get_by_test_id("order-panel")
    expect(panel).to_be_in_viewport()
    expect(panel.get_by_test_id("order-status")).to_have_attribute("data-status", "placed")
    no_horizontal_scroll(amy, PHONE["width"])


def test_an_issue_note_reads_in_each_viewers_language(pages: Pages, shop: ShopApi) -> None:
    """One stored note, two readers: each sees it in the language they chose, live."""
    order = shop.retail_order("amy", customer="语言测试客户")
    zh = pages.page(locale="zh-CN")
    en = pages.page(locale="en-US")
    for page in (zh, en):
        sign_in(page, "amy")
        open_conv(page, order["conv"])
    shop.call(
        "amy",
        "POST",
        f"/api/orders/{order['id']}/issues",
        {
            "kind": "address_change_requested",
            "address": {"name": "Wu", "city": "Lhasa", "line1": "3 Road"},
        },
        201,
    )
    zh_note = zh.locator('[data-event="address_change_requested"] [data-testid="msg-text"]')
    en_note = en.locator('[data-event="address_change_requested"] [data-testid="msg-text"]')
    expect(zh_note).to_contain_text("未发货，可直接修改")
    expect(en_note).to_contain_text("not shipped: change it")
    expect(en_note).to_have_text(NO_CHINESE)
    expect(zh_note).not_to_contain_text("not shipped")

    en.get_by_test_id("lang").select_option("zh-CN")
    expect(en_note).to_contain_text("未发货，可直接修改")
