"""The catalogue (#/catalogue) and rules (#/rules) views, reached from the account menu.

The import is previewed before anything is written: a file with a bad row shows
that row, keeps the Import button disabled and changes nothing; the fixed file
imports, and the new SKU is in the list.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.helpers import (
    PHONE,
    Pages,
    ShopApi,
    no_horizontal_scroll,
    sign_in,
    unique,
)

pytestmark = pytest.mark.browser

HEADER = "sku,name_zh,name_en,category,unit_price_cents,low_stock_threshold,location,on_hand"


def _open_from_menu(page: Page, which: str) -> None:
    page.get_by_test_id("account-menu").locator("summary").click()
    page.get_by_test_id(f"menu-{which}").click()
    expect(page).to_have_url(re.compile(f"#/{which}$"))


def _search(page: Page, text: str) -> None:
    box = page.get_by_test_id("catalogue-search")
    box.fill("")
    box.press_sequentially(text)


def _choose_csv(page: Page, name: str, text: str) -> None:
    page.get_by_test_id("import-file").set_input_files(
        {"name": name, "mimeType": "text/csv", "buffer": text.encode("utf-8-sig")}
    )


def test_search_finds_skus_by_code_chinese_and_english_name(pages: Pages) -> None:
    wes = pages.page()
    sign_in(wes, "wes")
    _open_from_menu(wes, "catalogue")
    rows = wes.get_by_test_id("sku-row")
    expect(wes.get_by_test_id("catalogue-count")).to_have_text(re.compile(r"\d{4}"))

    _search(wes, "CLO-01-RD-XL")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-sku", "CLO-01-RD-XL")
    expect(rows.first).to_contain_text("冲锋衣")

    _search(wes, "家庭帐篷")
    expect(rows).to_have_count(9)
    expect(wes.get_by_test_id("catalogue-count")).to_contain_text("9")

    _search(wes, "family tent red")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-sku", "TNT-05-RD")


def test_a_file_with_a_bad_row_cannot_be_imported_until_it_is_fixed(
    pages: Pages, shop: ShopApi
) -> None:
    code, other = unique("LAMP"), unique("LAMP")
    good = f"{code},头灯,Headlamp,lights,9900,2,main,7"
    wes = pages.page()
    sign_in(wes, "wes")
    _open_from_menu(wes, "catalogue")
    wes.get_by_test_id("catalogue-import").click()

    _choose_csv(wes, "bad.csv", f"{HEADER}\n{good}\n{other},营地灯,Lantern,lights,abc,2,main,3\n")
    bad = wes.locator("[data-testid='import-row'][data-action='error']")
    expect(bad).to_have_count(1)
    expect(bad).to_have_attribute("data-line", "3")
    expect(bad.get_by_test_id("import-error")).to_have_attribute("data-column", "unit_price_cents")
    expect(wes.locator("[data-testid='import-row'][data-action='create']")).to_have_count(1)
    expect(wes.get_by_test_id("import-apply")).to_be_disabled()
    shop.call("wes", "GET", f"/api/skus/{code}", status=404)

    _choose_csv(
        wes, "fixed.csv", f"{HEADER}\n{good}\n{other},营地灯,Lantern,lights,4500,2,main,3\n"
    )
    expect(wes.locator("[data-testid='import-row'][data-action='create']")).to_have_count(2)
    expect(wes.locator("[data-testid='import-row'][data-action='error']")).to_have_count(0)
    apply = wes.get_by_test_id("import-apply")
    expect(apply).to_be_enabled()
    apply.click()
    expect(wes.get_by_test_id("import-panel")).to_be_hidden()

    _search(wes, code)
    row = wes.locator(f"[data-testid='sku-row'][data-sku='{code}']")
    expect(row).to_be_visible()
    expect(row.get_by_test_id("sku-on-hand")).to_have_text("7")
    expect(row).to_contain_text("头灯")


def test_the_rules_view_lists_the_workflows_with_their_files_and_validity(pages: Pages) -> None:
    amy = pages.page()
    sign_in(amy, "amy")
    _open_from_menu(amy, "rules")
    workflows = amy.get_by_test_id("rules-workflow")
    expect(workflows).to_have_count(2)
    for name in ("retail", "oem"):
        card = amy.locator(f"[data-testid='rules-workflow'][data-name='{name}']")
        expect(card.get_by_test_id("rules-path")).to_have_text(re.compile(rf"/{name}\.toml$"))
        expect(card.get_by_test_id("rules-valid")).to_have_text("有效")
        expect(card.get_by_test_id("rules-running")).to_have_text("正在使用")
    routing = amy.get_by_test_id("rules-routing-file")
    expect(routing.get_by_test_id("rules-path")).to_have_text(re.compile(r"routing\.py$"))
    expect(routing.get_by_test_id("rules-valid")).to_have_text("有效")
    notify = amy.get_by_test_id("rules-notify-file")
    expect(notify.get_by_test_id("rules-path")).to_have_text(re.compile(r"/notify\.toml$"))
    expect(notify.get_by_test_id("rules-valid")).to_have_text("有效")
    status = notify.locator("[data-testid='rules-occasion'][data-occasion='order_status']")
    expect(status).to_contain_text("立即")
    expect(notify.get_by_test_id("rules-ladder")).to_be_visible()
    consult = amy.get_by_test_id("rules-consult-file")
    expect(consult.get_by_test_id("rules-path")).to_have_text(re.compile(r"/consults\.toml$"))
    expect(consult.get_by_test_id("rules-valid")).to_have_text("有效")
    shop_queue = consult.locator("[data-testid='rules-queue'][data-queue='shop']")
    expect(shop_queue).to_contain_text("客服")
    expect(shop_queue).to_contain_text("轮流分配")
    expect(amy.get_by_test_id("rules-none")).to_have_count(0)

    amy.get_by_test_id("lang").select_option("en")
    expect(workflows.first.get_by_test_id("rules-valid")).to_have_text("Valid")
    expect(status).to_contain_text("at once")
    expect(shop_queue).to_contain_text("Round robin")
    english = consult.locator("[data-testid='rules-queue'][data-queue='english']")
    expect(english).to_contain_text("English")


def test_roles_that_may_not_edit_see_the_catalogue_read_only_and_may_export_it(
    pages: Pages,
) -> None:
    sam = pages.page()
    sign_in(sam, "sam")
    _open_from_menu(sam, "catalogue")
    expect(sam.get_by_test_id("sku-row").first).to_be_visible()
    expect(sam.get_by_test_id("catalogue-export")).to_be_visible()
    expect(sam.get_by_test_id("catalogue-new")).to_have_count(0)
    expect(sam.get_by_test_id("catalogue-import")).to_have_count(0)
    expect(sam.get_by_test_id("sku-edit")).to_have_count(0)

    with sam.expect_download() as download:
        sam.get_by_test_id("catalogue-export").click()
    path = download.value.path()
    raw = path.read_bytes()
    assert raw.startswith(("\ufeff" + HEADER).encode())
    assert "CLO-01-RD-XL,冲锋衣（红色 XL码）" in raw.decode("utf-8-sig")


def test_a_sku_added_and_edited_in_the_catalogue_keeps_its_changes(pages: Pages) -> None:
    code = unique("ROPE")
    pat = pages.page()
    sign_in(pat, "pat")
    _open_from_menu(pat, "catalogue")
    pat.get_by_test_id("catalogue-new").click()
    dialog = pat.get_by_test_id("dialog")
    dialog.get_by_label("SKU 编码").fill(code)
    dialog.get_by_label("中文名").fill("动力绳")
    dialog.get_by_label("单价（元）").fill("12.5")
    dialog.get_by_test_id("dialog-submit").click()
    row = pat.locator(f"[data-testid='sku-row'][data-sku='{code}']")
    expect(row).to_contain_text("动力绳")
    expect(row).to_contain_text("12.50")

    row.get_by_test_id("sku-edit").click()
    dialog.get_by_label("英文名").fill("Dynamic rope")
    dialog.get_by_label("低库存阈值").fill("4")
    dialog.get_by_test_id("dialog-submit").click()
    expect(row).to_contain_text("Dynamic rope")
    # Nothing in stock and a threshold of 4: the SKU is marked low.
    expect(row.get_by_test_id("low-stock")).to_be_visible()


def test_the_catalogue_works_on_a_phone(pages: Pages) -> None:
    wes = pages.page(viewport=PHONE)
    sign_in(wes, "wes")
    _open_from_menu(wes, "catalogue")
    expect(wes.get_by_test_id("sku-row").first).to_be_visible()
    no_horizontal_scroll(wes, PHONE["width"])
    wes.get_by_test_id("page-next").click()
    expect(wes.get_by_test_id("page-number")).to_contain_text("2")
    wes.get_by_test_id("page-back").click()
    expect(wes.get_by_test_id("catalogue")).to_have_count(0)
    expect(wes.get_by_test_id("conv-list")).to_be_visible()
