"""The admin console's evidence tools in Chromium: the audit log (filters and its CSV),
retention rules, an order's legal hold and the server's public key.

The module runs a demo server of its own: a retention rule is shop-wide, and the
other modules' conversations are no business of it."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.helpers import (
    PHONE,
    Pages,
    ShopApi,
    no_horizontal_scroll,
    open_conv,
    sign_in,
    unique,
    watched_pages,
)
from tests.support import Peer, ServerProcess

pytestmark = pytest.mark.browser

STRONG = "kettle-harbour-lantern"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("evidence"), ("--demo", "--rate-limits", "off"))
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def api(server: ServerProcess) -> ShopApi:
    return ShopApi(server)


@pytest.fixture
def tabs(browser: Browser, server: ServerProcess) -> Iterator[Pages]:
    yield from watched_pages(browser, server)


def open_section(page: Page, section: str) -> None:
    page.get_by_test_id("admin-open").click()
    expect(page.get_by_test_id("admin-console")).to_be_visible()
    page.get_by_test_id(f"admin-tab-{section}").click()
    expect(page).to_have_url(re.compile(rf"#/admin/{section}$"))


def test_the_audit_log_shows_a_role_change_filters_it_and_exports_it(
    tabs: Pages, api: ShopApi, tmp_path: Path
) -> None:
    username = unique("aud").replace("-", "")
    api.call(
        "boss",
        "POST",
        "/api/admin/staff",
        {"username": username, "password": STRONG, "roles": ["warehouse"]},
        201,
    )
    api.call(
        "boss", "PUT", f"/api/admin/staff/{username}/roles", {"roles": ["warehouse", "logistics"]}
    )

    page = tabs.page(locale="en-GB")
    sign_in(page, "boss")
    open_section(page, "audit")
    rows = page.get_by_test_id("audit-row")
    change = rows.filter(has_text=username).and_(
        page.locator('[data-action="staff.roles_changed"]')
    )
    expect(change).to_have_count(1)
    expect(change.get_by_test_id("audit-action")).to_have_text("Changed roles")
    details = change.get_by_test_id("audit-details")
    expect(details).to_contain_text("Warehouse → Warehouse / Logistics")

    page.get_by_test_id("audit-q").fill(username)
    page.get_by_test_id("audit-q").press("Enter")
    expect(rows).to_have_count(2)
    # Newest first: the role change came after the person was added.
    expect(rows.nth(0)).to_have_attribute("data-action", "staff.roles_changed")
    expect(rows.nth(1)).to_have_attribute("data-action", "staff.added")
    page.get_by_test_id("audit-family").select_option("webhook")
    expect(page.get_by_test_id("audit-status")).to_have_text("No entries match.")
    page.get_by_test_id("audit-family").select_option("staff")
    expect(rows).to_have_count(2)

    with page.expect_download() as download:
        page.get_by_test_id("audit-export").click()
    saved = tmp_path / "audit.csv"
    download.value.save_as(saved)
    text = saved.read_text(encoding="utf-8-sig")
    lines = [line for line in text.splitlines() if line]
    assert lines[0].startswith("id,time_utc,ts,action"), lines[0]
    assert len(lines) == 3, text  # the header, the role change and the adding, no more
    assert "staff.roles_changed" in lines[1] and username in lines[1], text
    assert "staff.added" in lines[2], text
    # The export itself is on the record.
    logged = api.call("boss", "GET", "/api/admin/audit?action=audit.exported&limit=1")
    assert logged["entries"] and logged["entries"][0]["details"]["text"] == username


def send_and_recall(server: ServerProcess, token: str, conv: str, text: str) -> int:
    """A text message sent and recalled by its sender over a WebSocket; its seq."""

    async def run() -> int:
        peer = await Peer.open(server, token)
        try:
            ack = await peer.send_text(conv, text, str(uuid.uuid4()))
            assert ack["op"] == "ack", ack
            ref = str(uuid.uuid4())
            await peer.send({"op": "recall", "ref": ref, "conv": conv, "seq": ack["seq"]})
            done = await peer.recv_ack(ref)
            assert done["op"] == "ack", done
            return int(ack["seq"])
        finally:
            await peer.close()

    # Playwright's sync API keeps an event loop running in this thread.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, run()).result(timeout=60)


def test_an_audit_search_finds_a_recalled_message_in_a_strangers_chat(
    tabs: Pages, api: ShopApi
) -> None:
    conv = api.channel("amy", unique("私下"), ["sam"])
    word = unique("takenback").replace("-", "")
    seq = send_and_recall(api.server, api.session("amy")["token"], conv, f"{word} 发错了")

    page = tabs.page()
    sign_in(page, "boss")
    page.get_by_test_id("conv-filter").fill(word)
    panel = page.get_by_test_id("search-panel")
    expect(panel).to_have_attribute("data-state", "done")
    expect(panel.get_by_test_id("search-result")).to_have_count(0)
    page.get_by_test_id("search-filters-toggle").click()
    page.get_by_test_id("search-audit").check()
    hit = panel.locator(f'[data-testid="search-result"][data-conv-id="{conv}"][data-seq="{seq}"]')
    expect(hit).to_have_count(1)
    expect(hit.get_by_test_id("search-recalled")).to_have_text("已撤回")
    # Opening it shows its audit record: the boss is not in that chat.
    hit.click()
    record = page.get_by_test_id("message-audit")
    expect(record.get_by_test_id("message-audit-text")).to_have_text(f"{word} 发错了")
    logged = api.call("boss", "GET", f"/api/admin/audit?action=search.audit&q={word}")
    assert logged["entries"], logged


def test_the_audit_log_reads_on_a_phone(tabs: Pages) -> None:
    page = tabs.page(viewport=PHONE)
    sign_in(page, "boss")
    page.goto("/#/admin/audit")
    expect(page.get_by_test_id("audit-row").first).to_be_visible()
    expect(page.get_by_test_id("audit-export")).to_be_visible()
    no_horizontal_scroll(page, PHONE["width"])


def test_a_retention_rule_is_saved_and_stays_after_a_reload(tabs: Pages, api: ShopApi) -> None:
    page = tabs.page()
    sign_in(page, "boss")
    open_section(page, "retention")
    expect(page.get_by_test_id("ret-chain")).to_contain_text("哈希链")
    channel = page.locator('[data-testid="ret-row"][data-kind="channel"]')
    expect(channel).to_have_attribute("data-days", "forever")
    channel.get_by_test_id("ret-forever").uncheck()
    channel.get_by_test_id("ret-days").fill("30")
    channel.get_by_test_id("ret-save").click()
    expect(page.locator('[data-testid="ret-row"][data-kind="channel"]')).to_have_attribute(
        "data-days", "30"
    )
    assert api.call("boss", "GET", "/api/admin/retention")["rules"]["channel"] == 30

    page.reload()
    channel = page.locator('[data-testid="ret-row"][data-kind="channel"]')
    expect(channel).to_have_attribute("data-days", "30")
    expect(channel.get_by_test_id("ret-days")).to_have_value("30")
    expect(channel.get_by_test_id("ret-current")).to_contain_text("30")
    expect(page.locator('[data-testid="ret-row"][data-kind="order"]')).to_have_attribute(
        "data-days", "forever"
    )

    # Purging now asks first and tells what it removed.
    page.get_by_test_id("ret-run").click()
    page.get_by_test_id("dialog").get_by_test_id("dialog-submit").click()
    expect(page.get_by_test_id("ret-ran")).to_be_visible()
    api.call("boss", "PUT", "/api/admin/retention", {"kind": "channel", "days": None})


def test_the_legal_hold_switch_holds_the_order(tabs: Pages, api: ShopApi) -> None:
    order = api.retail_order("amy")
    page = tabs.page()
    sign_in(page, "boss")
    open_conv(page, order["conv"])
    panel = page.get_by_test_id("order-panel")
    switch = panel.get_by_test_id("order-legal-hold")
    expect(switch).to_have_attribute("aria-checked", "false")
    expect(panel.get_by_test_id("order-legal-hold-badge")).to_have_count(0)
    switch.click()
    expect(panel.get_by_test_id("order-legal-hold-badge")).to_be_visible()
    expect(panel.get_by_test_id("order-legal-hold")).to_have_attribute("aria-checked", "true")
    assert api.call("boss", "GET", f"/api/orders/{order['id']}")["legal_hold"] is True

    page.goto("/#/admin/retention")
    held = page.locator(f'[data-testid="ret-held-order"][data-id="{order["id"]}"]')
    expect(held).to_contain_text(order["number"])


def test_the_proof_section_shows_the_servers_public_key(tabs: Pages, api: ShopApi) -> None:
    anchors = api.call("boss", "GET", "/api/admin/anchors")
    page = tabs.page()
    sign_in(page, "boss")
    open_section(page, "proof")
    expect(page.get_by_test_id("proof-key")).to_have_value(anchors["public_key"])
    expect(page.get_by_test_id("proof-key-id")).to_have_value(anchors["key_id"])
    expect(page.get_by_test_id("proof-anchor")).to_have_count(len(anchors["anchors"]))
