"""The staff workspace and the customer page are one app: the same order progress,
drawn from the server's workflow data, the same dialogs, and the same idempotent
decisions. Each test would catch one of them drifting apart again."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, Request, expect

from tests.browser.helpers import (
    Pages,
    ShopApi,
    open_conv,
    session_in_storage,
    sign_in,
    unique,
    watched_pages,
)
from tests.support import ServerProcess

pytestmark = pytest.mark.browser

# A shop's own workflow whose state names and labels appear nowhere in the app's code.
# The usual path is declared first; `scrapped` is a side exit (terminal, off the path).
KILN_WORKFLOW = """
name = "kiln"
initial = "shaped"
staff_roles = ["customer_service", "sales"]
title = { zh-CN = "陶瓷定制", en = "Pottery" }

[states]
shaped = { label = { zh-CN = "已成型", en = "Shaped" } }
bisque_fired = { label = { zh-CN = "素烧完成", en = "Bisque fired" } }
glazed = { label = { zh-CN = "已上釉", en = "Glazed" } }
collected = { label = { zh-CN = "已取件", en = "Collected" }, terminal = true }
scrapped = { label = { zh-CN = "已报废", en = "Scrapped" }, terminal = true }

[[transitions]]
from = "shaped"
to = "bisque_fired"
roles = ["customer_service", "sales"]
customer = true
text = { zh-CN = "订单 {number} 的素烧已完成。", en = "Order {number} is bisque fired." }

[[transitions]]
from = "bisque_fired"
to = "glazed"
roles = ["customer_service", "sales"]
customer = true
text = { zh-CN = "已上釉。", en = "Glazed." }

[[transitions]]
from = "glazed"
to = "collected"
roles = ["customer_service", "sales"]
customer = true
text = { zh-CN = "已取件。", en = "Collected." }

[[transitions]]
from = ["shaped", "bisque_fired", "glazed"]
to = "scrapped"
roles = ["customer_service", "sales"]
customer = true
text = { zh-CN = "很抱歉，作品在烧制中损坏。", en = "We are sorry: the piece broke in the kiln." }
"""


@pytest.fixture(scope="module")
def kiln_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A demo shop that also runs the kiln workflow from its data directory."""
    data_dir = tmp_path_factory.mktemp("kiln-demo")
    (data_dir / "workflows").mkdir()
    (data_dir / "workflows" / "kiln.toml").write_text(KILN_WORKFLOW, encoding="utf-8")
    proc = ServerProcess(data_dir, ("--demo", "--rate-limits", "off"))
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def kiln_pages(browser: Browser, kiln_demo: ServerProcess) -> Iterator[Pages]:
    yield from watched_pages(browser, kiln_demo)


def open_invitation(page: Page, link: str) -> Locator:
    page.goto(link)
    customer = page.get_by_test_id("customer-page")
    expect(customer).to_be_visible()
    expect(page.get_by_test_id("connection")).to_have_attribute("data-state", "online")
    return customer


def by_status(progress: Locator, testid: str, status: str) -> Locator:
    return progress.locator(f'[data-testid="{testid}"][data-status="{status}"]')


def test_progress_on_both_pages_follows_the_servers_workflow(
    kiln_pages: Pages, kiln_demo: ServerProcess
) -> None:
    shop = ShopApi(kiln_demo)
    sku = shop.any_sku("amy")
    order = shop.call(
        "amy",
        "POST",
        "/api/orders",
        {
            "number": unique("KILN").upper(),
            "workflow": "kiln",
            "customer": {"name": "窑烧测试客户", "language": "zh-CN"},
            "items": [{"sku": sku["sku"], "quantity": 1, "unit_price_cents": 12000}],
        },
        201,
    )
    link = shop.call("amy", "POST", f"/api/orders/{order['id']}/invitations", None, 201)["url"]

    customer = kiln_pages.page()
    open_invitation(customer, link)
    progress = customer.get_by_test_id("order-timeline")
    expect(customer.get_by_test_id("order-status")).to_have_text("已成型")
    # The path ahead is the workflow's, in its order, without the side exit.
    ahead = progress.get_by_test_id("order-timeline-next")
    expect(ahead).to_have_text(["素烧完成", "已上釉", "已取件"])
    expect(ahead).to_have_count(3)

    shop.call("amy", "POST", f"/api/orders/{order['id']}/status", {"to": "bisque_fired"})
    expect(customer.get_by_test_id("order-status")).to_have_attribute("data-status", "bisque_fired")
    step = by_status(progress, "order-timeline-item", "bisque_fired")
    expect(step).to_have_count(1)
    expect(step).to_contain_text("素烧完成")
    expect(step).to_contain_text(f"订单 {order['number']} 的素烧已完成。")
    expect(ahead).to_have_text(["已上釉", "已取件"])

    # The staff panel draws the same progress, for staff, from the same data.
    amy = kiln_pages.page()
    sign_in(amy, "amy")
    open_conv(amy, order["conv"])
    panel = amy.get_by_test_id("order-panel")
    staff_progress = panel.get_by_test_id("order-timeline")
    staff_step = by_status(staff_progress, "order-timeline-item", "bisque_fired")
    expect(staff_step).to_contain_text("素烧完成")
    expect(staff_progress.get_by_test_id("order-timeline-next")).to_have_text(["已上釉", "已取件"])
    # A move off the usual path is the one drawn as a warning.
    scrap = panel.locator('[data-testid="action-transition"][data-to="scrapped"]')
    expect(scrap).to_have_class(re.compile(r"\bbtn-danger-outline\b"))
    expect(panel.locator('[data-testid="action-transition"][data-to="glazed"]')).to_have_class(
        re.compile(r"\bbtn-primary\b")
    )


def test_customer_decision_carries_an_idempotency_key(pages: Pages, shop: ShopApi) -> None:
    order = shop.oem_order("lily")
    title = unique("颜色 Colour")
    shop.propose(order["id"], title, "深蓝 navy", by="lily")
    link = shop.invite(order["id"], by="lily")

    customer = pages.page()
    open_invitation(customer, link)
    item = customer.get_by_test_id("confirmation").filter(has_text=title)
    item.get_by_test_id("approve-version").click()
    dialog = customer.get_by_test_id("dialog")
    expect(dialog).to_be_visible()
    with customer.expect_request(is_decision) as sent:
        dialog.get_by_test_id("dialog-submit").click()
    expect(item.get_by_test_id("confirmation-version")).to_have_attribute("data-state", "approved")
    request = sent.value
    key = request.headers.get("idempotency-key")
    assert key, f"no Idempotency-Key among the headers {sorted(request.headers)}"

    # The same decision again with the same key, as a retry after a lost answer would be.
    token = json.loads(session_in_storage(customer))["token"]
    with shop.server.http(token) as client:
        again = client.post(
            request.url,
            content=request.post_data or "",
            headers={"Idempotency-Key": key, "Content-Type": "application/json"},
        )
    assert again.status_code == 200, again.text
    assert again.headers.get("idempotent-replayed") == "true", dict(again.headers)
    items = shop.call("lily", "GET", f"/api/orders/{order['id']}/confirmations")["items"]
    versions = [v for i in items if i["title"] == title for v in i["versions"]]
    assert [(v["state"], v["decision"]) for v in versions] == [("approved", "approved")], versions


def is_decision(request: Request) -> bool:
    return request.method == "POST" and request.url.endswith("/decision")


def check_dialog(page: Page, open_dialog: Locator, required: str, value: str) -> None:
    """The app's dialog contract: a modal `dlg`; an empty required field is refused in
    place; Escape closes it and leaves no trace; filled in, it submits and closes."""
    dialogs = page.locator("dialog")
    open_dialog.click()
    dialog = page.get_by_test_id("dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_have_class(re.compile(r"\bdlg\b"))
    assert dialog.evaluate("d => d.open && d.matches(':modal')"), "the dialog is not modal"
    dialog.get_by_test_id("dialog-submit").click()
    expect(dialog.get_by_test_id("dialog-error")).to_be_visible()
    expect(dialog).to_be_visible()
    page.keyboard.press("Escape")
    expect(dialogs).to_have_count(0)

    open_dialog.click()
    expect(dialog).to_be_visible()
    expect(dialog.get_by_test_id("dialog-error")).to_be_hidden()
    dialog.locator(f'[name="{required}"]').fill(value)
    dialog.get_by_test_id("dialog-submit").click()
    expect(dialogs).to_have_count(0)


def test_a_dialog_behaves_the_same_on_both_pages(pages: Pages, shop: ShopApi) -> None:
    order = shop.oem_order("lily")
    title = unique("包装 Packaging")
    shop.propose(order["id"], title, "牛皮纸盒 kraft box", by="lily")
    link = shop.invite(order["id"], by="lily")

    customer = pages.page()
    open_invitation(customer, link)
    item = customer.get_by_test_id("confirmation").filter(has_text=title)
    check_dialog(customer, item.get_by_test_id("reject-version"), "comment", "再深一点 darker")
    expect(item.get_by_test_id("confirmation-version")).to_have_attribute("data-state", "rejected")

    lily = pages.page()
    sign_in(lily, "lily")
    open_conv(lily, order["conv"])
    panel = lily.get_by_test_id("order-panel")
    added = unique("尺码 Size")
    check_dialog(lily, panel.get_by_test_id("action-add-confirmation"), "title", added)
    expect(panel.get_by_test_id("confirmation").filter(has_text=added)).to_have_count(1)


def test_pages_share_one_module_for_each_concern() -> None:
    """No page keeps its own copy of what the app shares."""
    js = Path(__file__).resolve().parents[2] / "src" / "orderchat" / "web" / "assets" / "js"
    sources = {p.relative_to(js).as_posix(): p.read_text("utf-8") for p in js.rglob("*.js")}
    owners = {
        r"function newRef\(": {"ref.js"},
        r"function pickText\(": {"i18n.js"},
        r"function fmtAddress\(": {"format.js"},
        r"function formDialog\(": {"ui/dialogs.js"},
        r"function orderProgress\(": {"ui/progress.js"},
    }
    for pattern, owner in owners.items():
        found = {name for name, text in sources.items() if re.search(pattern, text)}
        assert found == owner, f"{pattern}: defined in {sorted(found)}"
    for page in ("staff.js", "customer.js"):
        assert "/api/workflows" not in sources[page], page
    assert "./ui/progress.js" in sources["customer.js"]
    assert "./progress.js" in sources["ui/orderpanel.js"]
    # Workflow state names come from the server, never from the code.
    for name in ("ui/orderpanel.js", "ui/progress.js", "workflow.js", "customer.js"):
        for state in ("cancelled", "delivered", "refunded", "placed", "shipped"):
            assert f'"{state}"' not in sources[name], f"{name} names the state {state!r}"
