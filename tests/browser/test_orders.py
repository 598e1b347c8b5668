"""Orders seen from both sides: staff act in the order panel, the customer follows on
the page their invitation link opens, and each sees the other's step live."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.helpers import Pages, ShopApi, open_conv, sign_in, submit_dialog_if_shown, unique

pytestmark = pytest.mark.browser

# Set before the step under test; still there afterwards only if the page never reloaded.
MARK = "window.__sameDocument = true"
SAME_DOCUMENT = "window.__sameDocument === true"


def open_invitation(page: Page, link: str) -> Locator:
    """Follow the invitation link; the customer page once it is live."""
    page.goto(link)
    customer = page.get_by_test_id("customer-page")
    expect(customer).to_be_visible()
    expect(page.get_by_test_id("connection")).to_have_attribute("data-state", "online")
    # The token left the address bar (and the history entry) at once.
    expect(page).to_have_url(re.compile(r"/c$"))
    assert "#" not in page.url, page.url
    return customer


def open_order_panel(page: Page, conv: str) -> Locator:
    open_conv(page, conv)
    panel = page.get_by_test_id("order-panel")
    expect(panel).to_be_visible()
    return panel


def test_staff_step_shows_live_on_the_customer_page(pages: Pages, shop: ShopApi) -> None:
    order = shop.retail_order("amy", customer="网页测试客户")
    link = shop.invite(order["id"], by="amy")

    customer = pages.page()
    open_invitation(customer, link)
    expect(customer.get_by_test_id("order-number")).to_contain_text(order["number"])
    status = customer.get_by_test_id("order-status")
    expect(status).to_have_attribute("data-status", "placed")
    expect(status).to_contain_text("已下单")
    steps = customer.get_by_test_id("order-timeline").get_by_test_id("order-timeline-item")
    expect(steps.filter(has_text="已确认")).to_have_count(0)
    customer.evaluate(MARK)

    amy = pages.page()
    sign_in(amy, "amy")
    panel = open_order_panel(amy, order["conv"])
    panel_status = panel.get_by_test_id("order-status")
    expect(panel_status).to_have_attribute("data-status", "placed")
    confirm = panel.locator('[data-testid="action-transition"][data-to="confirmed"]')
    expect(confirm).to_be_enabled()
    confirm.click()
    confirmed = panel.locator('[data-testid="order-status"][data-status="confirmed"]')
    submit_dialog_if_shown(amy, confirmed)
    expect(panel_status).to_have_attribute("data-status", "confirmed")

    expect(status).to_have_attribute("data-status", "confirmed")
    expect(status).to_contain_text("已确认")
    expect(steps.filter(has_text="已确认")).to_have_count(1)
    # The customer is told in the conversation too, in their language, by name.
    expect(customer.get_by_test_id("timeline").get_by_test_id("msg-sender").first).to_contain_text(
        shop.display_name("amy")
    )
    expect(customer.get_by_test_id("timeline")).to_contain_text(
        f"您的订单 {order['number']} 已确认"
    )
    assert customer.evaluate(SAME_DOCUMENT), "the customer page reloaded instead of updating"
    assert "#" not in customer.url


def test_customer_approval_shows_live_in_the_staff_panel(pages: Pages, shop: ShopApi) -> None:
    order = shop.oem_order("lily")
    title = unique("面料 Fabric")
    shop.propose(order["id"], title, "1.2mm 头层牛皮 top-grain cowhide", by="lily")
    link = shop.invite(order["id"], by="lily")

    lily = pages.page()
    sign_in(lily, "lily")
    panel = open_order_panel(lily, order["conv"])
    staff_version = (
        panel.get_by_test_id("confirmations")
        .get_by_test_id("confirmation")
        .filter(has_text=title)
        .get_by_test_id("confirmation-version")
    )
    expect(staff_version).to_have_count(1)
    expect(staff_version).to_have_attribute("data-state", "proposed")
    lily.evaluate(MARK)

    customer = pages.page()
    open_invitation(customer, link)
    item = (
        customer.get_by_test_id("confirmations")
        .get_by_test_id("confirmation")
        .filter(has_text=title)
    )
    version = item.get_by_test_id("confirmation-version")
    expect(version).to_have_count(1)
    expect(version).to_have_attribute("data-state", "proposed")
    item.get_by_test_id("approve-version").click()
    approved = item.locator('[data-testid="confirmation-version"][data-state="approved"]')
    submit_dialog_if_shown(customer, approved)
    expect(version).to_have_attribute("data-state", "approved")

    expect(staff_version).to_have_attribute("data-state", "approved")
    assert lily.evaluate(SAME_DOCUMENT), "the staff page reloaded instead of updating"
    items = shop.call("lily", "GET", f"/api/orders/{order['id']}/confirmations")
    decided = [v for i in items["items"] if i["title"] == title for v in i["versions"]]
    assert [v["state"] for v in decided] == ["approved"], decided
