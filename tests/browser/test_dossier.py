"""The order panel's dossier button: the ZIP the browser saves is one that verifies."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import expect

from tests.browser.helpers import Pages, ShopApi, open_conv, sign_in
from tests.support import run_cli


def test_the_order_panel_downloads_a_dossier_that_verifies(
    pages: Pages, shop: ShopApi, tmp_path: Path
) -> None:
    order = shop.oem_order("lily")
    page = pages.page()
    sign_in(page, "lily")
    open_conv(page, order["conv"])
    panel = page.get_by_test_id("order-panel")
    button = panel.get_by_test_id("order-dossier")
    expect(button).to_contain_text("下载证据包")
    with page.expect_download() as download:
        button.click()
    assert download.value.suggested_filename == f"dossier-{order['number']}.zip"
    saved = tmp_path / "dossier.zip"
    download.value.save_as(saved)
    expect(button).to_be_enabled()
    done = run_cli("verify", str(saved), "--lang", "en", check=False)
    assert done.returncode == 0, done.stdout + done.stderr
