"""Message actions in two browsers: editing one's own message, forwarding a message
into another conversation, and `/stock` answered on a private card to the asker alone."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.helpers import (
    Pages,
    ShopApi,
    both_in_conv,
    by_seq,
    message,
    messages,
    open_conv,
    send_text,
    sign_in,
    type_and_send,
    unique,
)


def test_an_edit_shows_the_new_text_and_edited_to_the_other_member(
    pages: Pages, shop: ShopApi
) -> None:
    conv = shop.channel("amy", unique("编辑测试"), ["sam"])
    amy, sam = both_in_conv(pages, conv, "amy", "sam")
    text = unique("明天发货")
    sent = send_text(amy, text)
    seq = sent.get_attribute("data-seq")
    assert seq is not None
    expect(message(sam, text)).to_have_count(1)

    sent.hover()
    sent.get_by_test_id("msg-edit").click()
    dialog = amy.get_by_test_id("dialog")
    box = dialog.locator("textarea")
    expect(box).to_have_value(text)
    new_text = unique("后天发货")
    box.fill(new_text)
    dialog.get_by_test_id("dialog-submit").click()
    expect(dialog).to_be_hidden()

    for page in (amy, sam):
        shown = by_seq(page, seq)
        expect(shown.get_by_test_id("msg-text")).to_have_text(new_text)
        expect(shown.get_by_test_id("msg-edited")).to_have_text("已编辑")
    expect(sam.get_by_text(text, exact=True)).to_have_count(0)
    stored = next(m for m in shop.history("sam", conv) if m["seq"] == int(seq))
    assert stored["text"] == new_text and stored["edited_ts"]


def test_someone_elses_message_offers_no_edit(pages: Pages, shop: ShopApi) -> None:
    conv = shop.channel("amy", unique("不能编辑"), ["sam"])
    amy, sam = both_in_conv(pages, conv, "amy", "sam")
    text = unique("只有我能改")
    send_text(amy, text)
    theirs = message(sam, text)
    theirs.hover()
    expect(theirs.get_by_test_id("msg-edit")).to_have_count(0)


def test_a_forward_reaches_the_other_conversation_with_its_link(
    pages: Pages, shop: ShopApi
) -> None:
    source_title = unique("面料供应商")
    source = shop.channel("amy", source_title, ["pat"])
    target = shop.channel("amy", unique("订单沟通"), ["sam"])
    amy, sam = pages.page(), pages.page()
    sign_in(amy, "amy")
    sign_in(sam, "sam")
    open_conv(amy, source)
    open_conv(sam, target)
    text = unique("面料下周到")
    sent = send_text(amy, text)

    sent.hover()
    sent.get_by_test_id("msg-forward").click()
    picker = amy.get_by_test_id("dialog")
    target_title = next(
        c["title"]
        for c in shop.call("amy", "GET", "/api/conversations")["conversations"]
        if c["id"] == target
    )
    picker.get_by_test_id("forward-search").fill(target_title[-8:])
    options = picker.get_by_test_id("forward-option")
    expect(options).to_have_count(1)
    options.first.click()
    picker.get_by_test_id("forward-send").click()
    expect(picker).to_be_hidden()

    forwarded = message(sam, text)
    expect(forwarded).to_have_count(1)
    line = forwarded.get_by_test_id("msg-forwarded")
    expect(line).to_contain_text(shop.display_name("amy"))
    expect(line).to_contain_text(source_title)
    # Sam is not in the supplier chat: the link does not open it for him.
    line.get_by_test_id("msg-forwarded-open").click()
    expect(sam.get_by_text("你不在原消息所在的会话中")).to_be_visible()
    expect(sam.locator(f'[data-testid="conv-view"][data-conv-id="{target}"]')).to_be_visible()

    # Amy is: from the forward in the order chat, the link takes her to the original.
    open_conv(amy, target)
    mine = message(amy, text)
    expect(mine).to_have_count(1)
    mine.get_by_test_id("msg-forwarded-open").click()
    expect(amy.locator(f'[data-testid="conv-view"][data-conv-id="{source}"]')).to_be_visible()
    stored = [m for m in shop.history("sam", target) if m["text"] == text]
    assert len(stored) == 1 and stored[0]["forwarded_from"]["conv"] == source


def test_stock_shows_a_private_card_with_pages_to_the_asker_only(
    pages: Pages, shop: ShopApi
) -> None:
    tag = re.sub(r"[^A-Za-z0-9]", "", unique("TENT")).upper()[-12:]
    codes = [f"{tag}-{i:02d}" for i in range(12)]
    for code in codes:
        shop.call(
            "pat",
            "POST",
            "/api/skus",
            {
                "sku": code,
                "name_zh": f"帐篷 {code}",
                "name_en": f"Tent {code}",
                "category": "test",
                "unit_price_cents": 9900,
                "low_stock_threshold": 0,
            },
            201,
        )
    conv = shop.channel("amy", unique("库存查询"), ["sam"])
    amy, sam = both_in_conv(pages, conv, "amy", "sam")
    marker = unique("查询之前")
    send_text(amy, marker)
    expect(message(sam, marker)).to_have_count(1)

    type_and_send(amy, f"/库存 {tag}")
    card = amy.get_by_test_id("command-card")
    expect(card).to_have_count(1)
    expect(card.get_by_test_id("command-private")).to_have_text("仅你可见")
    expect(card.get_by_test_id("command-page")).to_have_text("第 1/2 页")
    expect(card.get_by_test_id("command-item")).to_have_count(10)
    seen = set(
        card.get_by_test_id("command-item").evaluate_all("els => els.map(e => e.dataset.sku)")
    )
    expect(card.get_by_test_id("command-prev")).to_be_disabled()

    card.get_by_test_id("command-next").click()
    expect(card.get_by_test_id("command-page")).to_have_text("第 2/2 页")
    expect(card.get_by_test_id("command-item")).to_have_count(2)
    seen |= set(
        card.get_by_test_id("command-item").evaluate_all("els => els.map(e => e.dataset.sku)")
    )
    assert seen == set(codes)
    expect(card.get_by_test_id("command-next")).to_be_disabled()
    # The question never became a message: nothing pending, nothing stored.
    expect(messages(amy).filter(has_text=f"/库存 {tag}")).to_have_count(0)

    after = unique("查询之后")
    send_text(amy, after)
    expect(message(sam, after)).to_have_count(1)
    expect(sam.get_by_test_id("command-card")).to_have_count(0)
    expect(messages(sam).filter(has_text=tag)).to_have_count(0)
    assert all(tag not in m["text"] for m in shop.history("sam", conv))
