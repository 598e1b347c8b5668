"""The basics a staff member and a customer rely on without thinking: a staff-only note
is one message, never a mode the composer stays in, and the composer says who will
read what is typed; the customer's confirmations header never says "all approved"
while an item is rejected."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import Pages, ShopApi, message, send_text, sign_in, unique
from tests.browser.test_orders import open_invitation, open_order_panel

pytestmark = pytest.mark.browser

EVERYONE_EN = "Everyone in this conversation, including the customer"
STAFF_ONLY_EN = "Staff only — the customer will not see this"


def test_staff_only_switch_is_off_again_after_each_send(pages: Pages, shop: ShopApi) -> None:
    order = shop.retail_order("amy", customer="作曲测试客户")
    link = shop.invite(order["id"], by="amy")

    customer = pages.page()
    open_invitation(customer, link)

    amy = pages.page(locale="en")
    sign_in(amy, "amy")
    open_order_panel(amy, order["conv"])
    internal = amy.get_by_test_id("composer-internal")
    audience = amy.get_by_test_id("composer-audience")
    expect(internal).not_to_be_checked()
    expect(audience).to_have_text(EVERYONE_EN)

    internal.check()
    expect(audience).to_have_text(STAFF_ONLY_EN)
    expect(audience).to_have_attribute("data-audience", "staff")
    note = unique("staff note")
    sent_note = send_text(amy, note)
    expect(sent_note).to_have_class(re.compile(r"\bmsg-internal\b"))

    # The switch is off again, and the line says so in words.
    expect(internal).not_to_be_checked()
    expect(audience).to_have_text(EVERYONE_EN)
    expect(audience).to_have_attribute("data-audience", "everyone")

    hello = unique("hello customer")
    send_text(amy, hello)

    # The plain message reaches the customer; the note sent before it never does.
    seen = message(customer, hello)
    expect(seen).to_have_count(1)
    expect(message(customer, note)).to_have_count(0)
    history = shop.history("amy", order["conv"])
    flags = {m["text"]: bool(m.get("internal")) for m in history if m.get("text") in (note, hello)}
    assert flags == {note: True, hello: False}, flags


def test_a_staff_only_file_turns_the_switch_off_too(pages: Pages, shop: ShopApi) -> None:
    order = shop.retail_order("amy")
    amy = pages.page(locale="en")
    sign_in(amy, "amy")
    open_order_panel(amy, order["conv"])
    internal = amy.get_by_test_id("composer-internal")
    internal.check()
    name = f"{unique('note')}.txt"
    amy.get_by_test_id("composer-file").set_input_files(
        files=[{"name": name, "mimeType": "text/plain", "buffer": b"for staff only\n"}]
    )
    expect(internal).not_to_be_checked()
    expect(amy.get_by_test_id("composer-audience")).to_have_text(EVERYONE_EN)
    sent = amy.get_by_test_id("timeline").get_by_test_id("msg").filter(has_text=name)
    expect(sent).to_have_count(1)
    expect(sent).to_have_class(re.compile(r"\bmsg-internal\b"))


def test_audience_line_in_chinese(pages: Pages, shop: ShopApi) -> None:
    order = shop.retail_order("amy")
    amy = pages.page()
    sign_in(amy, "amy")
    open_order_panel(amy, order["conv"])
    audience = amy.get_by_test_id("composer-audience")
    expect(audience).to_have_text("本会话所有人可见，包括客户")
    amy.get_by_test_id("composer-internal").check()
    expect(audience).to_have_text("仅员工可见，客户看不到这条消息")


def test_a_rejected_required_item_is_not_all_approved(pages: Pages, shop: ShopApi) -> None:
    order = shop.oem_order("lily")
    title = unique("面料 Fabric")
    shop.propose(order["id"], title, "1.2mm 头层牛皮 top-grain cowhide", by="lily")
    link = shop.invite(order["id"], by="lily")

    customer = pages.page()
    open_invitation(customer, link)
    section = customer.get_by_test_id("confirmations")
    badges = section.get_by_test_id("confirmations-badge")
    expect(badges).to_have_count(1)
    expect(badges).to_have_attribute("data-state", "waiting")

    item = section.get_by_test_id("confirmation").filter(has_text=title)
    item.get_by_test_id("reject-version").click()
    dialog = customer.get_by_test_id("dialog")
    expect(dialog).to_be_visible()
    dialog.locator("textarea").fill("颜色再深一点 A little darker, please.")
    dialog.get_by_test_id("dialog-submit").click()
    expect(dialog).to_be_hidden()
    expect(item.get_by_test_id("confirmation-version")).to_have_attribute("data-state", "rejected")

    expect(badges).to_have_count(1)
    expect(badges).to_have_attribute("data-state", "rejected")
    expect(badges).to_have_text("1 项已驳回，商家将发送新版本")
    expect(section).not_to_contain_text("全部已确认")
    expect(section).not_to_contain_text("All approved")

    # Still the truth after a reload, from what the server says.
    customer.reload()
    expect(customer.get_by_test_id("customer-page")).to_be_visible()
    expect(badges).to_have_attribute("data-state", "rejected")
    expect(section).not_to_contain_text("全部已确认")
