"""Searching messages in the web app: the staff list's search box and the customer
page's search field, against `GET /api/search` on the shared demo server.

The facts are set up over HTTP and a WebSocket of their own; only the search is
done through the pages. Each test finds its own messages by the conversation and
seq the results carry, so other tests' messages on the same server never matter.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.helpers import (
    PHONE,
    Pages,
    ShopApi,
    by_seq,
    no_horizontal_scroll,
    sign_in,
    unique,
)
from tests.support import Peer, ServerProcess

pytestmark = pytest.mark.browser

LATER = 80  # more than the one page (50) a conversation opens with


def send_all(
    server: ServerProcess, token: str, conv: str, frames: list[dict[str, Any]]
) -> list[int]:
    """Text messages (`{"text": …, "internal"?: True}`) sent in order over one
    WebSocket; their seqs."""

    async def run() -> list[int]:
        peer = await Peer.open(server, token)
        try:
            seqs = []
            for frame in frames:
                ack = await peer.send_text(conv, frame.pop("text"), str(uuid.uuid4()), **frame)
                assert ack["op"] == "ack", ack
                seqs.append(int(ack["seq"]))
            return seqs
        finally:
            await peer.close()

    # Playwright's sync API keeps an event loop running in this thread.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, run()).result(timeout=120)


def search(page: Page, query: str, box: str = "conv-filter") -> Locator:
    """Type into the search box (the app searches after a pause); the panel once its
    answer has come."""
    page.get_by_test_id(box).fill(query)
    panel = page.get_by_test_id("search-panel")
    expect(panel).to_be_visible()
    expect(panel).to_have_attribute("data-state", "done")
    return panel


def result(page: Page, conv: str, seq: int) -> Locator:
    return page.get_by_test_id("search-results").locator(
        f'[data-testid="search-result"][data-conv-id="{conv}"][data-seq="{seq}"]'
    )


@pytest.fixture(scope="module")
def leather(demo: ServerProcess, shop: ShopApi) -> dict[str, Any]:
    """A channel where leather came up early, followed by many more messages."""
    tag = unique("pl")
    conv = shop.channel("amy", unique("面料组"), ["lily"])
    text = f"这批皮料是头层牛皮，三周前到的 {tag}"
    frames = [{"text": f"样品今天寄出 {tag}"}, {"text": text}]
    frames += [{"text": f"后续跟进 {i} {tag}"} for i in range(LATER)]
    seqs = send_all(demo, shop.session("amy")["token"], conv, frames)
    return {"conv": conv, "seq": seqs[1], "text": text, "tag": tag}


def test_a_found_message_opens_its_conversation_at_it(
    pages: Pages, leather: dict[str, Any]
) -> None:
    lily = pages.page()
    sign_in(lily, "lily")
    search(lily, "皮料")
    hit = result(lily, leather["conv"], leather["seq"])
    expect(hit).to_have_count(1)
    expect(hit.get_by_test_id("search-result-sender")).to_have_text(re.compile(r"\S"))
    expect(hit.get_by_test_id("search-snippet")).to_have_text(leather["text"])
    hit.click()

    view = lily.locator(f'[data-testid="conv-view"][data-conv-id="{leather["conv"]}"]')
    expect(view).to_be_visible()
    found = by_seq(lily, leather["seq"])
    expect(found).to_be_in_viewport()
    expect(found).to_have_class(re.compile(r"\bflash\b"))
    # Older pages were loaded down to it: its neighbours on both sides are there.
    expect(by_seq(lily, leather["seq"] - 1)).to_have_count(1)
    expect(by_seq(lily, leather["seq"] + 1)).to_have_count(1)
    # The results stay, for the next one; Escape clears the box and them.
    expect(lily.get_by_test_id("search-panel")).to_be_visible()
    lily.get_by_test_id("conv-filter").press("Escape")
    expect(lily.get_by_test_id("conv-filter")).to_have_value("")
    expect(lily.get_by_test_id("search-panel")).to_be_hidden()


def test_the_highlight_marks_exactly_the_words_searched(
    pages: Pages, leather: dict[str, Any]
) -> None:
    amy = pages.page(locale="en-US")
    sign_in(amy, "amy")
    box = amy.get_by_test_id("conv-filter")
    box.fill("皮料")
    box.press("Enter")  # at once, without the pause
    expect(amy.get_by_test_id("search-panel")).to_have_attribute("data-state", "done")
    snippet = result(amy, leather["conv"], leather["seq"]).get_by_test_id("search-snippet")
    marks = snippet.locator("mark")
    expect(marks).to_have_count(1)
    expect(marks).to_have_text("皮料", use_inner_text=True)
    # The marked part is an element of its own within the text, not markup from the server.
    assert snippet.evaluate("n => n.textContent") == leather["text"]
    assert marks.evaluate("n => n.childNodes.length === 1 && n.firstChild.nodeType") == 3
    sender = result(amy, leather["conv"], leather["seq"]).get_by_test_id("search-result-sender")
    expect(sender).to_have_text("Me")

    # Nothing found says so, in the reader's language.
    box.fill(f"{leather['tag']} 皮鞋")
    box.press("Enter")
    expect(amy.get_by_test_id("search-status")).to_have_text("No messages found.")
    expect(amy.get_by_test_id("search-result")).to_have_count(0)

    # A search the server refuses shows its reason.
    box.fill("！！")
    box.press("Enter")
    status = amy.get_by_test_id("search-status")
    expect(status).to_have_attribute("role", "alert")
    expect(status).to_have_text(
        "The search failed: type words, an order number or a code to search for"
    )
    expect(amy.get_by_test_id("search-panel")).to_have_attribute("data-state", "error")


def test_a_customer_finds_their_order_but_never_a_staff_note(
    pages: Pages, demo: ServerProcess, shop: ShopApi
) -> None:
    order = shop.retail_order("amy", customer="搜索测试客户")
    link = shop.invite(order["id"], by="amy")
    tag = unique("kh")
    public = f"您订的皮料样品已经寄出 {tag}"
    note = f"内部备注：皮料成本价不要告诉客户 {tag}"
    public_seq, note_seq = send_all(
        demo,
        shop.session("amy")["token"],
        order["conv"],
        [{"text": public}, {"text": note, "internal": True}],
    )

    customer = pages.page(viewport=PHONE)
    customer.goto(link)
    expect(customer.get_by_test_id("customer-page")).to_be_visible()
    expect(customer.get_by_test_id("connection")).to_have_attribute("data-state", "online")
    panel = search(customer, "皮料", box="search-input")
    hit = result(customer, order["conv"], public_seq)
    expect(hit).to_have_count(1)
    expect(hit.get_by_test_id("search-result-where")).to_have_text(order["number"])
    expect(hit.locator("mark")).to_have_text("皮料")
    expect(result(customer, order["conv"], note_seq)).to_have_count(0)
    expect(panel).not_to_contain_text("成本价")
    no_horizontal_scroll(customer, PHONE["width"])

    # The filters fit the phone too.
    customer.get_by_test_id("search-filters-toggle").click()
    expect(customer.get_by_test_id("search-filters")).to_be_visible()
    no_horizontal_scroll(customer, PHONE["width"])

    hit.click()
    expect(panel).to_be_hidden()  # folded away so the conversation has the room
    found = by_seq(customer, public_seq)
    expect(found).to_be_in_viewport()
    expect(found).to_have_class(re.compile(r"\bflash\b"))
    no_horizontal_scroll(customer, PHONE["width"])


def test_a_kind_filter_narrows_the_results(
    pages: Pages, demo: ServerProcess, shop: ShopApi
) -> None:
    order = shop.retail_order("amy", customer="筛选测试客户")
    number = order["number"]
    # The order's own events (its creation) name its number; so does this text.
    [text_seq] = send_all(
        demo, shop.session("amy")["token"], order["conv"], [{"text": f"{number} 的皮料已备好"}]
    )

    amy = pages.page()
    sign_in(amy, "amy")
    search(amy, number)
    hits = amy.get_by_test_id("search-result")
    expect(result(amy, order["conv"], text_seq)).to_have_count(1)
    expect(hits.and_(amy.locator('[data-kind="order_event"]')).first).to_be_visible()

    toggle = amy.get_by_test_id("search-filters-toggle")
    toggle.click()
    amy.get_by_test_id("search-kind-order_event").click()
    expect(amy.get_by_test_id("search-kind-order_event")).to_have_attribute("aria-pressed", "true")
    expect(toggle).to_have_text(re.compile(r"\(1\)|（1）"))
    expect(result(amy, order["conv"], text_seq)).to_have_count(0)
    expect(hits.first).to_be_visible()
    assert set(hits.evaluate_all("ns => ns.map(n => n.dataset.kind)")) == {"order_event"}

    amy.get_by_test_id("search-kind-order_event").click()
    amy.get_by_test_id("search-kind-text").click()
    expect(result(amy, order["conv"], text_seq)).to_have_count(1)
    expect(hits).to_have_count(1)

    # A kind nothing matches: the panel says the filters found nothing.
    amy.get_by_test_id("search-kind-text").click()
    amy.get_by_test_id("search-kind-voice").click()
    expect(hits).to_have_count(0)
    expect(amy.get_by_test_id("search-status")).to_have_text("没有符合筛选条件的消息。")
