"""Consults from the staff side (docs/consults.md), a visitor on a phone in another
browser: the inbox fills live, a consult is taken, a product shared, the consult
transferred with a note the visitor never sees, turned into an order the visitor
finds on their page; a blocked visitor is told so, politely, when they write; an
admin sees every consult, moves one to a role's queue and closes it; an admin exports
a visitor's data and erases it, which the audit log records; and the admin console
gives the QR code, the /chat link and the widget snippet.

The shop's consult rules give each agent room for one consult, so with the one
customer-service agent busy a new consult waits in the queue: what "unassigned" is.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.browser.helpers import (
    PHONE,
    Pages,
    ShopApi,
    message,
    send_text,
    sign_in,
    unique,
    watched_pages,
)
from tests.media_samples import jpeg
from tests.support import ServerProcess

pytestmark = pytest.mark.browser

CONSULT_RULES = """
first_response_s = 3600
max_open_per_agent = 1
timezone = "Asia/Shanghai"

[[queue]]
name = "shop"
roles = ["customer_service"]
strategy = "round_robin"
"""

PAGE_URL = "https://shop.example/tents/tnt-2p"


@pytest.fixture(scope="module")
def consult_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data: Path = tmp_path_factory.mktemp("web-consults")
    (data / "workflows").mkdir()
    (data / "workflows" / "consults.toml").write_text(CONSULT_RULES, encoding="utf-8")
    proc = ServerProcess(data, ("--demo", "--rate-limits", "off"))
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def consult_shop(consult_server: ServerProcess) -> ShopApi:
    return ShopApi(consult_server)


@pytest.fixture
def consult_pages(browser: Browser, consult_server: ServerProcess) -> Iterator[Pages]:
    """Pages on the consult server; a console error or a policy violation on any of
    them fails the test, as an uncaught error does."""
    for pages in watched_pages(browser, consult_server):
        yield pages
        errors = [e for watch in pages.watches.values() for e in watch.console_errors]
        violations = [v for page in pages.watches for v in pages.watch(page).csp_violations(page)]
        assert not errors, "console errors:\n" + "\n".join(errors)
        assert not violations, "policy violations:\n" + "\n".join(violations)


def busy_agent(server: ServerProcess) -> None:
    """Another visitor's consult, so the one customer-service agent has no room left."""
    resp = httpx.post(
        f"{server.base_url}/api/consults/start",
        json={"name": unique("先来的访客"), "text": "在吗？", "language": "zh-CN"},
        timeout=10,
    )
    assert resp.status_code == 201, resp.text


def open_inbox(page: Page, view: str) -> Locator:
    """The consults tab of the conversation list, at one of its views."""
    page.get_by_test_id("conv-tab-consult").click()
    inbox = page.get_by_test_id("inbox")
    expect(inbox).to_be_visible()
    inbox.get_by_test_id(f"inbox-view-{view}").click()
    expect(inbox.get_by_test_id(f"inbox-view-{view}")).to_have_attribute("aria-selected", "true")
    return inbox


def inbox_item(page: Page, visitor: str) -> Locator:
    return page.get_by_test_id("inbox-list").get_by_test_id("inbox-item").filter(has_text=visitor)


def start_on_phone(pages: Pages, name: str, text: str, query: str = "") -> Page:
    """A visitor on a 360-px phone starts a consult on /chat."""
    visitor = pages.page(viewport=PHONE)
    visitor.goto(f"/chat{query}")
    expect(visitor.get_by_test_id("consult-start-form")).to_be_visible()
    visitor.get_by_test_id("consult-name").fill(name)
    visitor.get_by_test_id("consult-phone").fill("13900001111")
    visitor.get_by_test_id("consult-text").fill(text)
    visitor.get_by_test_id("consult-start-submit").click()
    expect(visitor.get_by_test_id("consult-view")).to_be_visible()
    expect(visitor.get_by_test_id("connection")).to_have_attribute("data-state", "online")
    return visitor


def test_a_consult_is_taken_shared_transferred_and_ordered_while_the_visitor_watches(
    consult_pages: Pages, consult_server: ServerProcess, consult_shop: ShopApi
) -> None:
    pages = consult_pages
    sku = consult_shop.any_sku("amy")["sku"]
    busy_agent(consult_server)
    amy = pages.page()
    sign_in(amy, "amy")
    inbox = open_inbox(amy, "unassigned")

    # A visitor comes from a product page through the widget and asks in Chinese.
    name = unique("张先生")
    question = unique("请问这款帐篷去西藏防水吗")
    query = f"?src=widget&page={quote(PAGE_URL, safe='')}&sku={quote(sku)}"
    visitor = start_on_phone(pages, name, question, query)
    expect(message(visitor, question)).to_have_count(1)
    visitor.get_by_test_id("composer-file").set_input_files(
        files=[{"name": "参考图.jpg", "mimeType": "image/jpeg", "buffer": jpeg(640, 480)}]
    )
    visitor.get_by_test_id("picture-preview").get_by_test_id("picture-send").click()
    picture = visitor.get_by_test_id("timeline").locator('[data-testid="msg"][data-kind="image"]')
    expect(picture).to_have_count(1)
    expect(picture).to_have_attribute("data-seq", re.compile(r"^\d+$"))

    # The consult shows in amy's inbox without a reload: waiting, from where, for what.
    item = inbox_item(amy, name)
    expect(item).to_have_count(1)
    expect(item).to_have_attribute("data-status", "queued")
    expect(item.get_by_test_id("inbox-waiting")).to_contain_text("已等")
    expect(item.get_by_test_id("inbox-source")).to_contain_text("网站插件")
    expect(item.get_by_test_id("inbox-sku")).to_contain_text(sku)
    expect(item.get_by_test_id("inbox-page")).to_contain_text("shop.example/tents/tnt-2p")
    expect(inbox.get_by_test_id("inbox-view-unassigned")).not_to_have_attribute("data-count", "0")
    consult_id = item.get_attribute("data-consult-id")
    assert consult_id

    # She opens it: the conversation with the visitor's words and picture, and the panel.
    item.click()
    view = amy.locator(f'[data-testid="conv-view"][data-conv-id="{consult_id}"]')
    expect(view).to_have_attribute("data-kind", "consult")
    expect(message(amy, question)).to_have_count(1)
    expect(amy.get_by_test_id("timeline").locator('[data-kind="image"]')).to_have_count(1)
    panel = amy.get_by_test_id("consult-panel")
    expect(panel.get_by_test_id("consult-visitor-display")).to_have_text(name)
    expect(panel.get_by_test_id("consult-visitor-phone")).to_have_text("13900001111")
    expect(panel.get_by_test_id("consult-sku")).to_have_text(sku)
    expect(panel.get_by_test_id("consult-page")).to_contain_text(PAGE_URL)

    # The panel has drawn the visitor's history too: no redraw is still coming that could
    # replace the button between the press and the release of a click.
    expect(panel.get_by_test_id("consult-history-empty")).to_be_visible()

    # She takes it; the visitor sees who answers.
    panel.get_by_test_id("consult-take").click()
    expect(panel).to_have_attribute("data-status", "open")
    expect(panel.get_by_test_id("consult-agent")).to_have_text(consult_shop.display_name("amy"))
    expect(item).to_have_count(0)  # no longer unassigned
    inbox.get_by_test_id("inbox-view-mine").click()
    expect(item).to_have_attribute("data-status", "open")
    expect(visitor.get_by_test_id("consult-agent")).to_contain_text(
        consult_shop.display_name("amy")
    )

    # She shares the product: a card on both sides.
    amy.get_by_test_id("composer-product").click()
    picker = amy.get_by_test_id("dialog")
    picker.get_by_test_id("share-product-input").fill(sku)
    picker.locator(f'[data-testid="share-product-row"][data-sku="{sku}"]').get_by_test_id(
        "share-product-pick"
    ).click()
    expect(picker).to_be_hidden()
    card = f'[data-testid="product-card"][data-sku="{sku}"]'
    expect(amy.get_by_test_id("timeline").locator(card)).to_have_count(1)
    expect(visitor.get_by_test_id("timeline").locator(card)).to_have_count(1)
    expect(
        visitor.get_by_test_id("timeline").locator(card).get_by_test_id("product-name")
    ).not_to_be_empty()

    # A staff-only line in the consult, as in an order's chat.
    aside = unique("这位客户之前问过背包")
    amy.get_by_test_id("composer-internal").check()
    expect(amy.get_by_test_id("composer-audience")).to_have_attribute("data-audience", "staff")
    send_text(amy, aside)

    # She hands it to sam, with a note for him alone.
    note = unique("客户想要两顶，问批发价")
    panel.get_by_test_id("consult-transfer").click()
    dialog = amy.get_by_test_id("dialog")
    dialog.locator('select[name="user"]').select_option(consult_shop.user_id("sam"))
    dialog.locator('textarea[name="note"]').fill(note)
    dialog.get_by_test_id("dialog-submit").click()
    expect(dialog).to_be_hidden()
    expect(panel.get_by_test_id("consult-agent")).to_have_text(consult_shop.display_name("sam"))
    expect(amy.get_by_test_id("timeline").get_by_text(note)).to_have_count(1)

    # Sam finds it under "mine", answers, and makes the order from it.
    sam = pages.page()
    sign_in(sam, "sam")
    open_inbox(sam, "mine")
    mine = sam.get_by_test_id("inbox-list").locator(
        f'[data-testid="inbox-item"][data-consult-id="{consult_id}"]'
    )
    expect(mine).to_have_count(1)
    mine.click()
    expect(sam.locator(f'[data-testid="conv-view"][data-conv-id="{consult_id}"]')).to_be_visible()
    expect(sam.get_by_test_id("timeline").get_by_text(note)).to_have_count(1)
    reply = unique("您好，我是销售，两顶可以优惠")
    send_text(sam, reply)

    # The visitor reads sam's answer, and never the note.
    expect(message(visitor, reply)).to_have_count(1)
    expect(visitor.get_by_text(note)).to_have_count(0)
    expect(visitor.get_by_text(aside)).to_have_count(0)
    expect(message(sam, aside)).to_have_count(1)

    number = unique("CS").upper()
    sam_panel = sam.get_by_test_id("consult-panel")
    sam_panel.get_by_test_id("consult-create-order").click()
    form = sam.get_by_test_id("dialog")
    expect(form.locator(f'[data-testid="order-item"][data-sku="{sku}"]')).to_have_count(1)
    form.locator('input[name="number"]').fill(number)
    form.locator('input[name="addr_city"]').fill("拉萨")
    form.locator('input[name="addr_line1"]').fill("北京中路 1 号")
    form.get_by_test_id("dialog-submit").click()
    expect(form).to_be_hidden()
    order_view = sam.locator('[data-testid="conv-view"][data-kind="order"]')
    expect(order_view).to_be_visible()
    expect(sam.get_by_test_id("order-panel")).to_contain_text(number)

    # The visitor finds the order on their page, signed in as they were.
    visitor.get_by_test_id("consult-back").click()
    order_link = visitor.get_by_test_id("order-list").get_by_test_id("order-link")
    expect(order_link.filter(has_text=number)).to_have_count(1)
    assert visitor.evaluate("document.scrollingElement.scrollWidth") <= PHONE["width"]

    # Amy, still on the consult, sees the order it became, in its history too, and opens it.
    expect(panel.get_by_test_id("consult-order")).to_contain_text(number)
    ordered = panel.locator('[data-testid="consult-history-item"][data-kind="order"]')
    expect(ordered).to_contain_text(number)
    ordered.get_by_test_id("consult-open-order").click()
    expect(amy.locator('[data-testid="conv-view"][data-kind="order"]')).to_be_visible()
    expect(amy.get_by_test_id("order-panel")).to_contain_text(number)


def test_a_blocked_visitor_is_told_politely_and_reaches_nobody(
    consult_pages: Pages, consult_server: ServerProcess, consult_shop: ShopApi
) -> None:
    pages = consult_pages
    busy_agent(consult_server)
    name = unique("刷屏的访客")
    visitor = start_on_phone(pages, name, unique("你好"))

    amy = pages.page()
    sign_in(amy, "amy")
    open_inbox(amy, "role")
    item = inbox_item(amy, name)
    expect(item).to_have_count(1)
    item.click()
    panel = amy.get_by_test_id("consult-panel")
    expect(panel.get_by_test_id("consult-visitor-blocked")).to_have_text("否")
    panel.get_by_test_id("consult-block").click()
    amy.get_by_test_id("dialog").get_by_test_id("dialog-submit").click()
    expect(panel.get_by_test_id("consult-visitor-blocked")).to_have_text("是")
    expect(panel.get_by_test_id("consult-unblock")).to_be_visible()

    refused = unique("再问一次")
    visitor.get_by_test_id("composer-input").fill(refused)
    visitor.get_by_test_id("composer-send").click()
    notice = visitor.get_by_test_id("consult-blocked")
    expect(notice).to_be_visible()
    expect(notice).not_to_be_empty()
    # Nothing reached the shop.
    expect(amy.get_by_test_id("timeline").get_by_text(refused)).to_have_count(0)
    history = consult_shop.history("amy", item.get_attribute("data-conv-id") or "")
    assert all(refused not in (m.get("text") or "") for m in history)


def test_the_admin_console_gives_the_qr_code_the_chat_link_and_the_widget_snippet(
    consult_pages: Pages,
) -> None:
    boss = consult_pages.page(accept_downloads=True)
    sign_in(boss, "boss")
    boss.get_by_test_id("admin-open").click()
    boss.get_by_test_id("admin-tab-consults").click()
    expect(boss).to_have_url(re.compile(r"#/admin/consults$"))
    image = boss.get_by_test_id("admin-qr-image")
    expect(image).to_be_visible()
    boss.wait_for_function(
        "() => { const i = document.querySelector('[data-testid=admin-qr-image]');"
        " return !!i && i.complete && i.naturalWidth > 0; }",
        polling=100,
    )
    expect(boss.get_by_test_id("admin-qr-url")).to_have_text(
        re.compile(r"/chat\?src=qr&tag=counter$")
    )

    # Another tag, another code.
    boss.get_by_test_id("admin-qr-tag").fill("shelf-a")
    boss.get_by_test_id("admin-qr-tag").press("Enter")
    expect(boss.get_by_test_id("admin-qr")).to_have_attribute("data-tag", "shelf-a")
    expect(boss.get_by_test_id("admin-qr-url")).to_have_text(
        re.compile(r"/chat\?src=qr&tag=shelf-a$")
    )
    with boss.expect_download() as got:
        boss.get_by_test_id("admin-qr-png").click()
    download = got.value
    assert download.suggested_filename == "orderchat-qr-shelf-a.png"
    path = download.path()
    assert path is not None and Path(path).read_bytes().startswith(b"\x89PNG")
    with boss.expect_download() as got:
        boss.get_by_test_id("admin-qr-svg").click()
    svg = got.value.path()
    assert svg is not None and b"<svg" in Path(svg).read_bytes()

    expect(boss.get_by_test_id("admin-chat-link")).to_have_value(re.compile(r"^http://[^ ]+/chat$"))
    snippet = boss.get_by_test_id("admin-widget-snippet")
    widget = re.compile(r'^<script src="http://[^"]+/widget\.js" .*async></script>$')
    expect(snippet).to_have_value(widget)

    boss.get_by_test_id("lang").select_option("en")
    expect(boss.get_by_test_id("admin-tab-consults")).to_have_text("Consults")
    expect(boss.get_by_test_id("admin-qr-png")).to_have_text("Download PNG")


def test_an_admin_sees_every_consult_moves_one_to_a_role_and_closes_it(
    consult_pages: Pages, consult_server: ServerProcess
) -> None:
    name = unique("Ms Brand")
    resp = httpx.post(
        f"{consult_server.base_url}/api/consults/start",
        json={
            "name": name,
            "text": "Custom totes?",
            "language": "zh-CN",
            "source": "qr",
            "tag": "counter",
        },
        timeout=10,
    )
    assert resp.status_code == 201, resp.text
    boss = consult_pages.page(locale="en-US")
    sign_in(boss, "boss")
    boss.get_by_test_id("lang").select_option("en")
    inbox = open_inbox(boss, "all")
    expect(inbox.get_by_test_id("inbox-view-all")).to_contain_text("All")
    item = inbox_item(boss, name)
    expect(item.get_by_test_id("inbox-source")).to_have_text("QR code · Tag counter")
    item.click()
    panel = boss.get_by_test_id("consult-panel")
    expect(panel.get_by_test_id("consult-tag")).to_have_text("counter")

    panel.get_by_test_id("consult-transfer").click()
    dialog = boss.get_by_test_id("dialog")
    dialog.locator('select[name="to"]').select_option("role")
    dialog.locator('select[name="role"]').select_option("sales")
    dialog.get_by_test_id("dialog-submit").click()
    expect(dialog).to_be_hidden()
    expect(panel.get_by_test_id("consult-queue")).to_contain_text("Sales")

    panel.get_by_test_id("consult-close").click()
    boss.get_by_test_id("dialog").get_by_test_id("dialog-submit").click()
    expect(panel).to_have_attribute("data-status", "closed")
    expect(panel.get_by_test_id("consult-close")).to_have_count(0)
    expect(item).to_have_count(0)
    inbox.get_by_test_id("inbox-closed").check()
    expect(item).to_have_attribute("data-status", "closed")
    expect(item.get_by_test_id("inbox-status")).to_have_text("Closed")


def test_an_admin_exports_a_visitors_data_and_erases_it(
    consult_pages: Pages, consult_server: ServerProcess
) -> None:
    name = unique("Mr Privacy")
    resp = httpx.post(
        f"{consult_server.base_url}/api/consults/start",
        json={"name": name, "email": "privacy@example.com", "text": "Hello?", "language": "en"},
        timeout=10,
    )
    assert resp.status_code == 201, resp.text
    visitor_id = resp.json()["user"]["id"]
    boss = consult_pages.page(locale="en-US", accept_downloads=True)
    sign_in(boss, "boss")
    boss.get_by_test_id("lang").select_option("en")
    open_inbox(boss, "all")
    item = inbox_item(boss, name)
    expect(item).to_have_count(1)
    item.click()
    panel = boss.get_by_test_id("consult-panel")
    expect(panel.get_by_test_id("consult-visitor-display")).to_have_text(name)

    # Export: a JSON file named after the visitor, holding their name and address.
    with boss.expect_download() as got:
        panel.get_by_test_id("consult-export").click()
    download = got.value
    assert download.suggested_filename == f"{visitor_id}.json"
    path = download.path()
    assert path is not None
    exported = json.loads(Path(path).read_text(encoding="utf-8"))
    assert exported["person"]["name"] == name
    assert exported["person"]["email"] == "privacy@example.com"

    # Erase: the dialog says what goes and what stays; once confirmed, the panel shows it.
    panel.get_by_test_id("consult-erase").click()
    dialog = boss.get_by_test_id("dialog")
    expect(dialog).to_contain_text("name, phone and e-mail")
    expect(dialog).to_contain_text("hash chains still verify")
    dialog.get_by_test_id("dialog-submit").click()
    expect(dialog).to_be_hidden()
    expect(panel.get_by_test_id("consult-erased")).to_have_text("Personal data erased")
    expect(panel.get_by_test_id("consult-visitor-erased")).to_have_text("Yes")
    expect(panel.get_by_test_id("consult-visitor-display")).not_to_have_text(name)
    expect(panel.get_by_test_id("consult-visitor-email")).to_have_count(0)
    expect(panel.get_by_test_id("consult-erase")).to_have_count(0)

    # The audit log says who did it, in the reader's language.
    boss.get_by_test_id("admin-open").click()
    boss.get_by_test_id("admin-tab-audit").click()
    boss.get_by_test_id("audit-family").select_option("visitor")
    erased = boss.locator(
        f'[data-testid="audit-row"][data-action="visitor.erased"]:has([title="{visitor_id}"])'
    )
    expect(erased).to_have_count(1)
    expect(erased.get_by_test_id("audit-action")).to_have_text("Erased a visitor's personal data")
    exported_row = boss.locator(
        f'[data-testid="audit-row"][data-action="visitor.exported"]:has([title="{visitor_id}"])'
    )
    expect(exported_row.get_by_test_id("audit-action")).to_have_text("Exported a visitor's data")
