"""The admin console in Chromium: adding and inviting people, disabling and re-roling
them, as the shop's owner does it, and what the other person's browser shows live."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.helpers import (
    PHONE,
    Pages,
    ShopApi,
    conv_item,
    expect_signed_in,
    no_horizontal_scroll,
    sign_in,
    unique,
)

pytestmark = pytest.mark.browser

STRONG = "kettle-harbour-lantern"


def role_channel(shop: ShopApi, role: str) -> str:
    rows = shop.server.db_rows("SELECT id FROM conversations WHERE role_channel = ?", role)
    assert len(rows) == 1, rows
    return str(rows[0][0])


def person(shop: ShopApi, *roles: str) -> str:
    username = unique("p").replace("-", "")
    body = {"username": username, "password": STRONG, "roles": list(roles)}
    shop.call("boss", "POST", "/api/admin/staff", body, 201)
    return username


def open_console(page: Page) -> None:
    page.get_by_test_id("admin-open").click()
    expect(page.get_by_test_id("admin-console")).to_be_visible()
    expect(page.get_by_test_id("admin-table")).to_be_visible()


def row(page: Page, username: str) -> object:
    return page.locator(f'[data-testid="admin-row"][data-username="{username}"]')


def test_the_admin_adds_a_person_and_invites_another_who_joins_by_the_link(
    pages: Pages, shop: ShopApi
) -> None:
    boss = pages.page()
    sign_in(boss, "boss")
    open_console(boss)
    expect(boss.get_by_test_id("admin-tab-catalogue")).to_have_attribute("href", "#/catalogue")
    expect(boss.get_by_test_id("admin-tab-rules")).to_have_attribute("href", "#/rules")

    added = unique("add").replace("-", "")
    boss.get_by_test_id("admin-add").click()
    dialog = boss.get_by_test_id("dialog")
    dialog.locator("input[name=username]").fill(added)
    dialog.locator("input[name=display_name]").fill("采购 新同事")
    dialog.locator("input[name=password]").fill("password123")
    dialog.locator("input[name=role_purchasing]").check()
    dialog.get_by_test_id("dialog-submit").click()
    # The password policy's refusal shows in the dialog, next to the fields.
    expect(dialog.get_by_test_id("dialog-error")).to_contain_text("密码")
    dialog.locator("input[name=password]").fill(STRONG)
    dialog.get_by_test_id("dialog-submit").click()
    expect(dialog).to_be_hidden()
    expect(row(boss, added)).to_contain_text("采购 新同事")

    invited = unique("inv").replace("-", "")
    boss.get_by_test_id("admin-invite").click()
    dialog = boss.get_by_test_id("dialog")
    dialog.locator("input[name=username]").fill(invited)
    dialog.locator("input[name=role_warehouse]").check()
    dialog.get_by_test_id("dialog-submit").click()
    link = boss.get_by_test_id("admin-link")
    expect(link).to_have_value(re.compile(r"/#/join/[A-Za-z0-9_-]+$"))
    url = link.input_value()

    newcomer = pages.page()
    newcomer.goto(url)
    expect(newcomer.get_by_test_id("join-page")).to_be_visible()
    newcomer.get_by_test_id("join-name").fill("仓库 小新")
    newcomer.get_by_test_id("join-password").fill(STRONG)
    newcomer.get_by_test_id("join-password2").fill(STRONG)
    newcomer.get_by_test_id("join-submit").click()
    expect_signed_in(newcomer)
    expect(newcomer.get_by_test_id("me")).to_have_text("仓库 小新")
    expect(conv_item(newcomer, role_channel(shop, "warehouse"))).to_be_visible()

    # The link works once: opened again, it says so and changes nothing.
    again = pages.page()
    again.goto(url)
    expect(again.get_by_test_id("join-error")).to_contain_text("已被使用")
    forged = pages.page()
    forged.goto("/#/join/not-a-real-token")
    expect(forged.get_by_test_id("join-error")).to_be_visible()


def test_disabling_a_signed_in_person_signs_their_browser_out(pages: Pages, shop: ShopApi) -> None:
    username = person(shop, "sales")
    theirs = pages.page()
    sign_in(theirs, username, STRONG)
    boss = pages.page()
    sign_in(boss, "boss")
    open_console(boss)
    row(boss, username).get_by_test_id("admin-disable").click()
    boss.get_by_test_id("dialog").get_by_test_id("dialog-submit").click()
    expect(row(boss, username)).to_have_attribute("data-disabled", "true")
    # Their open workspace goes back to sign-in on its own, saying why.
    expect(theirs.get_by_test_id("login-form")).to_be_visible()
    expect(theirs.get_by_test_id("login-notice")).to_be_visible()
    row(boss, username).get_by_test_id("admin-enable").click()
    expect(row(boss, username)).to_have_attribute("data-disabled", "false")


def test_re_roling_a_person_changes_their_channels_live(pages: Pages, shop: ShopApi) -> None:
    username = person(shop, "qc")
    theirs = pages.page()
    sign_in(theirs, username, STRONG)
    qc = role_channel(shop, "qc")
    warehouse = role_channel(shop, "warehouse")
    expect(conv_item(theirs, qc)).to_be_visible()
    expect(conv_item(theirs, warehouse)).to_have_count(0)

    boss = pages.page()
    sign_in(boss, "boss")
    open_console(boss)
    row(boss, username).get_by_test_id("admin-editRoles").click()
    dialog = boss.get_by_test_id("dialog")
    dialog.locator("input[name=role_qc]").uncheck()
    dialog.locator("input[name=role_warehouse]").check()
    dialog.get_by_test_id("dialog-submit").click()
    expect(dialog).to_be_hidden()
    expect(row(boss, username).get_by_test_id("admin-roles")).to_contain_text("仓库")

    expect(conv_item(theirs, warehouse)).to_be_visible()
    expect(conv_item(theirs, qc)).to_have_count(0)


def test_a_non_admin_never_sees_the_console(pages: Pages, shop: ShopApi) -> None:
    page = pages.page()
    sign_in(page, "wes")
    expect(page.get_by_test_id("admin-open")).to_have_count(0)
    page.goto("/#/admin")
    expect_signed_in(page)
    expect(page.get_by_test_id("admin-console")).to_have_count(0)


def test_the_console_fits_a_phone(pages: Pages, shop: ShopApi) -> None:
    page = pages.page(viewport=PHONE)
    sign_in(page, "boss")
    open_console(page)
    expect(row(page, "wes").get_by_test_id("admin-editRoles")).to_be_visible()
    no_horizontal_scroll(page, PHONE["width"])
    page.get_by_test_id("admin-back").click()
    expect(page.get_by_test_id("admin-console")).to_have_count(0)
    expect(page.get_by_test_id("conv-list")).to_be_visible()
