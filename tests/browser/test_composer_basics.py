"""The basics a staff member and a customer rely on without thinking: a staff-only note
is one message, never a mode the composer stays in, and the composer says who will
read what is typed."""

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


def test_audience_line_in_chinese(pages: Pages, shop: ShopApi) -> None:
    order = shop.retail_order("amy")
    amy = pages.page()
    sign_in(amy, "amy")
    open_order_panel(amy, order["conv"])
    audience = amy.get_by_test_id("composer-audience")
    expect(audience).to_have_text("本会话所有人可见，包括客户")
    amy.get_by_test_id("composer-internal").check()
    expect(audience).to_have_text("仅员工可见，客户看不到这条消息")
