"""Notifications in Chromium: a person's own choices and devices, the admin's webhook
endpoints with their delivery log, and the sender watching an urgent message's
reminders climb until the recipient reads it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.browser.helpers import (
    DEMO_PASSWORD,
    Pages,
    ShopApi,
    expect_signed_in,
    message,
    open_conv,
    send_text,
    sign_in,
    unique,
    watched_pages,
)
from tests.browser.test_orders import open_invitation
from tests.push_service import PushService
from tests.support import ServerProcess

pytestmark = pytest.mark.browser

# The ladder at test speed: the first word at once, then two reminders a second apart.
QUICK_LADDER = """
[occasions.urgent]
push = 0
[ladder]
escalate_after_s = 1
every_s = 1
reminders = 2
channels = ["push"]
"""


def new_person(shop: ShopApi) -> str:
    """A staff member of their own, whose choices start empty; the demo's password lets
    `shop` sign them in too."""
    username = unique("np").replace("-", "")
    body = {"username": username, "password": DEMO_PASSWORD, "roles": ["sales"]}
    shop.call("boss", "POST", "/api/admin/staff", body, 201)
    return username


def their_choices(shop: ShopApi, username: str) -> Any:
    return shop.call(username, "GET", "/api/me/notifications")


def open_panel_from_menu(page: Page) -> Locator:
    page.get_by_test_id("account-menu").locator("summary").click()
    page.get_by_test_id("notify-open").click()
    panel = page.get_by_test_id("notify-panel")
    expect(panel.get_by_test_id("notify-email")).to_be_visible()
    return panel


def switch(panel: Locator, occasion: str, channel: str) -> Locator:
    return panel.locator(
        f'[data-testid="notify-switch"][data-occasion="{occasion}"][data-channel="{channel}"]'
    )


def test_a_person_sets_their_choices_and_a_bad_address_changes_nothing(
    pages: Pages, shop: ShopApi
) -> None:
    username = new_person(shop)
    page = pages.page()
    sign_in(page, username)
    panel = open_panel_from_menu(page)
    # Staff see the occasions that can concern staff; this device is listed.
    expect(panel.get_by_test_id("notify-occasion")).to_have_count(6)
    expect(panel.locator('[data-occasion="order_status"]')).to_have_count(0)
    expect(panel.locator('[data-testid="notify-device"][data-current="true"]')).to_have_count(1)
    expect(panel.get_by_test_id("notify-urgent-note")).to_be_visible()

    address = f"{username}@shop.example"
    panel.get_by_test_id("notify-email").fill(address)
    panel.get_by_test_id("notify-language").select_option("en")
    switch(panel, "direct", "email").uncheck()
    panel.get_by_test_id("notify-quiet").check()
    panel.get_by_test_id("notify-quiet-start").fill("22:00")
    panel.get_by_test_id("notify-quiet-end").fill("07:30")
    panel.get_by_test_id("notify-save").click()
    expect(panel.get_by_test_id("notify-saved")).to_be_visible()
    # Shanghai is UTC+8: the server keeps the hours with the offset they were chosen in.
    saved = their_choices(shop, username)
    assert saved["email"] == address
    assert saved["language"] == "en"
    assert saved["off"] == {"direct": ["email"]}
    assert saved["quiet"] == {"start": "22:00", "end": "07:30", "utc_offset_min": 480}

    page.reload()
    expect_signed_in(page)
    panel = open_panel_from_menu(page)
    expect(panel.get_by_test_id("notify-email")).to_have_value(address)
    expect(panel.get_by_test_id("notify-language")).to_have_value("en")
    expect(switch(panel, "direct", "email")).not_to_be_checked()
    expect(switch(panel, "direct", "push")).to_be_checked()
    expect(panel.get_by_test_id("notify-quiet")).to_be_checked()
    expect(panel.get_by_test_id("notify-quiet-start")).to_have_value("22:00")
    expect(panel.get_by_test_id("notify-quiet-end")).to_have_value("07:30")

    # A refusal shows the server's words, keeps what was typed, and changes nothing.
    panel.get_by_test_id("notify-email").fill("not-an-address")
    switch(panel, "mention", "push").uncheck()
    panel.get_by_test_id("notify-save").click()
    expect(panel.get_by_test_id("notify-error")).to_contain_text("电子邮件地址")
    expect(panel.get_by_test_id("notify-email")).to_have_value("not-an-address")
    expect(switch(panel, "mention", "push")).not_to_be_checked()
    expect(panel.get_by_test_id("notify-saved")).to_be_hidden()
    assert their_choices(shop, username) == saved
    panel.get_by_test_id("notify-close").click()
    expect(panel).to_have_count(0)


def test_a_customer_sees_their_occasions_and_where_mail_goes(pages: Pages, shop: ShopApi) -> None:
    order = shop.retail_order("amy", customer="通知测试客户")
    page = pages.page()
    open_invitation(page, shop.invite(order["id"]))
    page.get_by_test_id("notify-open").click()
    panel = page.get_by_test_id("notify-panel")
    expect(panel.get_by_test_id("notify-mail-goes-to")).to_contain_text("没有邮箱")
    occasions = panel.get_by_test_id("notify-occasion")
    expect(occasions).to_have_count(3)
    expect(panel.locator('[data-occasion="urgent"]')).to_have_count(0)
    panel.get_by_test_id("notify-email").fill("buyer@home.example")
    switch(panel, "order_status", "push").uncheck()
    panel.get_by_test_id("notify-save").click()
    expect(panel.get_by_test_id("notify-saved")).to_be_visible()
    expect(panel.get_by_test_id("notify-mail-goes-to")).to_contain_text("buyer@home.example")
    expect(switch(panel, "order_status", "push")).not_to_be_checked()


def webhook_row(page: Page, url: str) -> Locator:
    return page.get_by_test_id("hook-row").filter(
        has=page.get_by_test_id("hook-url").get_by_text(url, exact=True)
    )


def test_the_admin_adds_a_webhook_reads_its_log_disables_and_deletes_it(
    pages: Pages, shop: ShopApi
) -> None:
    page = pages.page()
    sign_in(page, "boss")
    page.get_by_test_id("admin-open").click()
    page.get_by_test_id("admin-tab-webhooks").click()
    expect(page).to_have_url(re.compile(r"#/admin/webhooks$"))
    expect(page.get_by_test_id("hooks")).to_be_visible()

    page.get_by_test_id("hooks-add").click()
    dialog = page.get_by_test_id("dialog")
    # This server reaches no private address: the refusal is shown by the fields.
    dialog.locator("input[name=url]").fill("http://127.0.0.1:9/hook")
    dialog.get_by_test_id("dialog-submit").click()
    expect(dialog.get_by_test_id("dialog-error")).to_contain_text("https")
    # A made-up name is taken: names are resolved only when delivering.
    url = f"https://hooks.example/{unique('erp')}"
    dialog.locator("input[name=url]").fill(url)
    dialog.locator("input[name=description]").fill("测试 ERP")
    dialog.get_by_test_id("dialog-submit").click()

    secret = page.get_by_test_id("hook-secret")
    expect(secret).to_have_value(re.compile(r"^\S{16,}$"))
    expect(page.get_by_test_id("hook-secret-note")).to_contain_text("只显示这一次")
    page.get_by_test_id("dialog").get_by_test_id("dialog-cancel").click()
    expect(secret).to_have_count(0)

    row = webhook_row(page, url)
    expect(row).to_have_attribute("data-enabled", "true")
    expect(row.get_by_test_id("hook-topics")).to_contain_text("订单进度")
    hook_id = row.get_attribute("data-id")
    listed = shop.call("boss", "GET", "/api/admin/webhooks")["webhooks"]
    assert "secret" not in next(h for h in listed if h["id"] == hook_id)

    row.get_by_test_id("hook-log").click()
    log = page.get_by_test_id("hook-log-panel")
    expect(log.get_by_test_id("hook-log-status")).to_contain_text("还没有投递")
    order = shop.retail_order("amy")
    shop.call("amy", "POST", f"/api/orders/{order['id']}/status", {"to": "confirmed"})
    # The log refreshes itself; the made-up host never resolves, so the delivery waits to retry.
    entry = log.get_by_test_id("hook-delivery").first
    expect(entry.get_by_test_id("hook-delivery-outcome")).to_contain_text("hooks.example")
    expect(entry).to_have_attribute("data-state", "pending")
    expect(entry.get_by_test_id("hook-delivery-state")).to_have_text("等待重试")
    entry.get_by_test_id("hook-delivery-payload").click()
    expect(entry.locator("pre")).to_contain_text(order["number"])
    expect(log.get_by_test_id("hook-log-older")).to_be_hidden()

    row.get_by_test_id("hook-disable").click()
    expect(row).to_have_attribute("data-enabled", "false")
    expect(row.get_by_test_id("hook-state")).to_have_text("已停用")
    listed = shop.call("boss", "GET", "/api/admin/webhooks")["webhooks"]
    assert [h["enabled"] for h in listed if h["id"] == hook_id] == [False]

    row.get_by_test_id("hook-delete").click()
    page.get_by_test_id("dialog").get_by_test_id("dialog-submit").click()
    expect(row).to_have_count(0)
    expect(log).to_have_count(0)
    listed = shop.call("boss", "GET", "/api/admin/webhooks")["webhooks"]
    assert hook_id not in [h["id"] for h in listed]


def test_a_non_admin_never_sees_the_webhooks(pages: Pages, shop: ShopApi) -> None:
    page = pages.page()
    sign_in(page, "wes")
    page.goto("/#/admin/webhooks")
    expect_signed_in(page)
    expect(page.get_by_test_id("conv-list")).to_be_visible()
    expect(page.get_by_test_id("admin-console")).to_have_count(0)
    expect(page.get_by_test_id("admin-tab-webhooks")).to_have_count(0)
    expect(page.get_by_test_id("hooks")).to_have_count(0)


# --- the urgent ladder, on a server of its own that may push to a service on loopback ---


@pytest.fixture
def push_service() -> Iterator[PushService]:
    with PushService() as service:
        yield service


@pytest.fixture
def ladder_demo(tmp_path: Path) -> Iterator[ServerProcess]:
    (tmp_path / "workflows").mkdir()
    (tmp_path / "workflows" / "notify.toml").write_text(QUICK_LADDER)
    proc = ServerProcess(tmp_path, ("--demo", "--rate-limits", "off", "--allow-private-targets"))
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def ladder_pages(browser: Browser, ladder_demo: ServerProcess) -> Iterator[Pages]:
    yield from watched_pages(browser, ladder_demo)


def test_the_sender_watches_the_reminders_climb_until_it_is_read(
    ladder_pages: Pages, ladder_demo: ServerProcess, push_service: PushService
) -> None:
    shop = ShopApi(ladder_demo)
    key = shop.call("wes", "GET", "/api/push/key")["public_key"]
    device = push_service.subscribe(application_server_key=key)
    shop.call("wes", "POST", "/api/push/subscriptions", device.to_json(), 201)
    conv = shop.direct("amy", "wes")

    amy = ladder_pages.page()
    sign_in(amy, "amy")
    open_conv(amy, conv)
    amy.get_by_test_id("composer-urgent").check()
    text = unique("样品今天必须寄出")
    send_text(amy, text)
    message(amy, text).get_by_test_id("reminders-open").click()
    panel = amy.get_by_test_id("reminders-panel")
    wes = panel.locator(f'[data-testid="reminder-recipient"][data-user="{shop.user_id("wes")}"]')
    expect(wes).to_have_attribute("data-read", "false")
    expect(wes).to_contain_text(shop.display_name("wes"))
    expect(wes.get_by_test_id("reminder-read")).to_have_text("未读")
    steps = wes.get_by_test_id("reminder-step")
    first = steps.and_(amy.locator('[data-step="0"][data-channel="push"]'))
    expect(first).to_have_attribute("data-state", "sent")
    expect(first).to_contain_text("首次通知")
    # The panel refreshes itself while open: the first reminder goes out unread.
    reminder = steps.and_(amy.locator('[data-step="1"]'))
    expect(reminder).to_have_attribute("data-state", "sent")
    expect(reminder).to_contain_text("第 1 次提醒")

    reader = ladder_pages.page()
    sign_in(reader, "wes")
    open_conv(reader, conv)
    expect(message(reader, text)).to_be_visible()
    expect(wes).to_have_attribute("data-read", "true")
    expect(wes.get_by_test_id("reminder-read")).to_have_text("已读")
    amy.get_by_test_id("reminders-close").click()
    expect(panel).to_have_count(0)
