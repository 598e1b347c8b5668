"""Group chats, pin and mute, the list's filter chips, urgent handling and the file
library, as people use them in the staff workspace: each action in one browser,
checked live in the others."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

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
from tests.media_samples import jpeg

pytestmark = pytest.mark.browser


def _open_id(page: Page) -> str:
    view = page.get_by_test_id("conv-view")
    expect(view).to_be_visible()
    found = view.get_attribute("data-conv-id")
    assert found
    return found


def _members_dialog(page: Page) -> None:
    page.get_by_test_id("conv-members").click()
    expect(page.get_by_test_id("members-panel")).to_be_visible()


def test_a_named_group_of_three_appears_live_and_its_members_change_live(
    pages: Pages, shop: ShopApi
) -> None:
    amy, sam, wes = pages.page(), pages.page(), pages.page()
    for page, name in ((amy, "amy"), (sam, "sam"), (wes, "wes")):
        sign_in(page, name)
    title = unique("周末促销小组")
    amy.get_by_test_id("new-group").click()
    dialog = amy.get_by_test_id("dialog")
    dialog.get_by_label(re.compile("群名称|Group name")).fill(title)
    # Nobody chosen: the dialog says so and nothing is made.
    dialog.get_by_test_id("dialog-submit").click()
    expect(dialog.get_by_test_id("dialog-error")).to_be_visible()
    for who in ("sam", "wes"):
        dialog.locator(f'[data-testid="person-check"][data-user="{shop.user_id(who)}"]').check()
    dialog.get_by_test_id("dialog-submit").click()
    expect(dialog).to_be_hidden()
    expect(amy.get_by_test_id("conv-header")).to_have_text(title)
    conv = _open_id(amy)
    for page in (sam, wes):  # live, without a reload
        expect(conv_item(page, conv).get_by_test_id("conv-title")).to_have_text(title)

    # Add a fourth person from the members panel; the others see it in the thread.
    open_conv(sam, conv)
    _members_dialog(amy)
    panel = amy.get_by_test_id("members-panel")
    panel.locator(f'[data-testid="person-check"][data-user="{shop.user_id("leo")}"]').check()
    panel.get_by_test_id("member-add").click()
    expect(
        panel.locator(f'[data-testid="member-row"][data-user="{shop.user_id("leo")}"]')
    ).to_be_visible()
    leo_name = shop.display_name("leo")
    expect(sam.get_by_test_id("timeline").get_by_text(leo_name)).to_be_visible()

    # Rename from the panel: every open browser shows the new name.
    renamed = unique("售后小组")
    panel.get_by_test_id("group-name").fill(renamed)
    panel.get_by_test_id("group-rename").click()
    expect(sam.get_by_test_id("conv-header")).to_have_text(renamed)
    expect(conv_item(wes, conv).get_by_test_id("conv-title")).to_have_text(renamed)

    # Remove wes: the conversation leaves his list at once, and he cannot read it.
    wes_row = panel.locator(f'[data-testid="member-row"][data-user="{shop.user_id("wes")}"]')
    wes_row.get_by_test_id("member-remove").click()
    amy.get_by_test_id("dialog").filter(
        has=amy.get_by_test_id("dialog-submit")
    ).last.get_by_test_id("dialog-submit").click()
    expect(wes_row).to_have_count(0)
    expect(conv_item(wes, conv)).to_have_count(0)
    shop.call("wes", "GET", f"/api/conversations/{conv}/messages", status=403)
    assert not pages.uncaught()


def test_pin_puts_a_conversation_first_on_every_device_and_mute_shows_a_dot(
    pages: Pages, shop: ShopApi
) -> None:
    older = shop.channel("amy", unique("置顶测试"), ["sam"])
    newer = shop.channel("amy", unique("免打扰测试"), ["sam"])
    amy, laptop, sam = pages.page(), pages.page(), pages.page()
    sign_in(amy, "amy")
    sign_in(laptop, "amy")
    sign_in(sam, "sam")
    first = amy.get_by_test_id("conv-item").first
    expect(first).to_have_attribute("data-conv-id", newer)

    open_conv(amy, older)
    amy.get_by_test_id("conv-pin").click()
    expect(amy.get_by_test_id("conv-pin")).to_have_attribute("aria-pressed", "true")
    for page in (amy, laptop):  # the other device follows live
        expect(page.get_by_test_id("conv-item").first).to_have_attribute("data-conv-id", older)
        expect(conv_item(page, older)).to_have_attribute("data-pinned", "true")
    expect(conv_item(sam, older)).not_to_have_attribute("data-pinned", "true")  # his own list

    open_conv(amy, newer)
    amy.get_by_test_id("conv-mute").click()
    expect(conv_item(laptop, newer)).to_have_attribute("data-muted", "true")
    open_conv(amy, older)
    open_conv(sam, newer)
    send_text(sam, unique("随便说一句"))
    row = conv_item(amy, newer)
    expect(row.get_by_test_id("conv-unread-dot")).to_be_visible()
    expect(row.get_by_test_id("conv-unread")).to_have_count(0)
    # A mention of her still shows the count.
    send_text(sam, f"@amy {unique('请看一下')}")
    expect(row.get_by_test_id("conv-unread")).to_have_text("2")
    expect(conv_item(sam, newer)).not_to_have_attribute("data-muted", "true")

    # Unpin from the list's context menu: the order goes back to activity.
    conv_item(amy, older).click(button="right")
    amy.get_by_test_id("conv-menu-pin").click()
    expect(conv_item(laptop, older)).not_to_have_attribute("data-pinned", "true")
    expect(amy.get_by_test_id("conv-item").first).not_to_have_attribute("data-conv-id", older)
    assert not pages.uncaught()


def test_filter_chips_show_what_needs_me_open_exceptions_and_waiting_customers(
    pages: Pages, shop: ShopApi
) -> None:
    order = shop.retail_order("amy", customer=unique("筛选客户"))
    team = shop.channel("sam", unique("筛选测试"), ["amy"])
    amy, sam = pages.page(), pages.page()
    sign_in(amy, "amy")
    sign_in(sam, "sam")

    # amy writes to the customer: that order now waits for the customer.
    open_conv(amy, order["conv"])
    send_text(amy, unique("请确认收货地址"))
    chip = amy.get_by_test_id("conv-chip-waiting_customer")
    expect(chip).to_be_visible()
    chip.click()
    expect(conv_item(amy, order["conv"])).to_be_visible()
    expect(conv_item(amy, team)).to_have_count(0)
    chip.click()  # off again

    # sam asks customer service in the team chat: it needs amy.
    open_conv(sam, team)
    send_text(sam, f"@customer_service {unique('客户要发票')}")
    needs = amy.get_by_test_id("conv-chip-needs_me")
    expect(needs).not_to_have_attribute("data-count", "0")
    needs.click()
    expect(conv_item(amy, team)).to_be_visible()
    needs.click()

    # An exception on the order routed to customer service.
    shop.call(
        "amy",
        "POST",
        f"/api/orders/{order['id']}/issues",
        {"kind": "delay_risk", "reason": unique("大雾"), "eta": "周五"},
        201,
    )
    exceptions = amy.get_by_test_id("conv-chip-exception_open")
    expect(exceptions).not_to_have_attribute("data-count", "0")
    exceptions.click()
    expect(conv_item(amy, order["conv"])).to_be_visible()
    expect(conv_item(amy, team)).to_have_count(0)
    assert not pages.uncaught()


def test_an_urgent_message_is_marked_handled_with_who_and_when(pages: Pages, shop: ShopApi) -> None:
    conv = shop.channel("amy", unique("加急处理"), ["wes"])
    amy, wes = pages.page(), pages.page()
    sign_in(amy, "amy")
    sign_in(wes, "wes")
    open_conv(amy, conv)
    amy.get_by_test_id("composer-urgent").check()
    text = unique("客户在门口等货")
    send_text(amy, text)
    open_conv(wes, conv)  # read it
    expect(conv_item(wes, conv).get_by_test_id("conv-urgent")).to_be_visible()  # still there
    urgent = message(wes, text)
    urgent.get_by_test_id("urgent-handle").click()
    name = shop.display_name("wes")
    for page in (amy, wes):
        expect(message(page, text).get_by_test_id("urgent-handled")).to_contain_text(name)
        expect(conv_item(page, conv).get_by_test_id("conv-urgent")).to_have_count(0)
    expect(message(amy, text).get_by_test_id("urgent-handle")).to_have_count(0)
    assert not pages.uncaught()


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_the_file_library_opens_from_the_header(pages: Pages, shop: ShopApi, viewport: str) -> None:
    conv = shop.channel("amy", unique("文件库"), ["lily"])
    amy = pages.page(viewport=PHONE) if viewport == "phone" else pages.page()
    sign_in(amy, "amy")
    open_conv(amy, conv)
    amy.get_by_test_id("composer-file").set_input_files(
        files=[{"name": "样品照片.jpg", "mimeType": "image/jpeg", "buffer": jpeg(320, 240)}]
    )
    amy.get_by_test_id("picture-preview").get_by_test_id("picture-send").click()
    expect(amy.get_by_test_id("msg").filter(has=amy.get_by_test_id("msg-image"))).to_have_count(1)
    amy.get_by_test_id("composer-file").set_input_files(
        files=[{"name": "质检报告.txt", "mimeType": "text/plain", "buffer": b"QC ok\n" * 50}]
    )
    expect(amy.locator('[data-testid="msg"][data-kind="file"][data-seq]')).to_have_count(1)

    amy.get_by_test_id("conv-head-open").click()
    library = amy.get_by_test_id("file-library")
    expect(library).to_be_visible()
    expect(library.get_by_test_id("lib-picture")).to_have_count(1)
    row = library.get_by_test_id("lib-file")
    expect(row).to_have_count(1)
    expect(row.get_by_test_id("lib-name")).to_have_text("质检报告.txt")
    expect(row).to_contain_text(shop.display_name("amy"))
    expect(row.get_by_test_id("lib-download")).to_have_attribute("href", re.compile("/api/media/"))
    if viewport == "phone":
        no_horizontal_scroll(amy, PHONE["width"])

    library.get_by_test_id("lib-kind-file").click()
    expect(library.get_by_test_id("lib-picture")).to_have_count(0)
    expect(library.get_by_test_id("lib-file")).to_have_count(1)
    library.get_by_test_id("lib-kind-image").click()
    expect(library.get_by_test_id("lib-file")).to_have_count(0)
    library.get_by_test_id("lib-picture").click()
    expect(amy.get_by_test_id("lightbox")).to_be_visible()
    assert not pages.uncaught()
