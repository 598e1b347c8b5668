"""Writing a message as people do: Enter makes a new line until "Enter sends" is
ticked (a choice the device remembers), the Enter that confirms a Chinese input
candidate never sends, and a picture is looked at, captioned and then sent, or
cancelled without a trace."""

from __future__ import annotations

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.helpers import (
    SENT,
    Pages,
    ShopApi,
    both_in_conv,
    messages,
    open_conv,
    send_text,
    sign_in,
    unique,
)
from tests.browser.test_orders import open_invitation
from tests.media_samples import jpeg

pytestmark = pytest.mark.browser


def shown(page: Page, text: str) -> Locator:
    """The messages in the open timeline whose text contains `text`."""
    return messages(page).filter(has_text=text)


def picture(name: str, color: tuple[int, int, int] = (200, 30, 30)) -> dict[str, object]:
    return {"name": name, "mimeType": "image/jpeg", "buffer": jpeg(320, 240, color=color)}


def test_enter_makes_a_new_line_until_enter_sends_is_ticked(pages: Pages, shop: ShopApi) -> None:
    # People no other test pairs up, so nothing else writes in their conversation.
    conv = shop.direct("pete", "fay")
    pete, fay = both_in_conv(pages, conv, "pete", "fay")
    box = pete.get_by_test_id("composer-input")
    enter_sends = pete.get_by_test_id("composer-enter-sends")
    expect(enter_sends).not_to_be_checked()
    expect(pete.get_by_test_id("composer-keyhint")).to_have_text("Ctrl+Enter 发送，Enter 换行")

    first, second = unique("第一行 first"), unique("第二行 second")
    box.click()
    box.press_sequentially(first)
    box.press("Enter")
    box.press_sequentially(second)
    expect(box).to_have_value(f"{first}\n{second}")
    expect(shown(pete, first)).to_have_count(0)
    box.press("Control+Enter")
    expect(box).to_have_value("")
    sent = shown(fay, first)
    expect(sent).to_have_count(1)
    expect(sent).to_contain_text(second)

    enter_sends.check()
    expect(pete.get_by_test_id("composer-keyhint")).to_have_text("Enter 发送，Shift+Enter 换行")
    # The choice belongs to the device: it is still made after a reload.
    pete.reload()
    open_conv(pete, conv)
    expect(enter_sends).to_be_checked()

    third, fourth = unique("第三行 third"), unique("第四行 fourth")
    box.click()
    box.press_sequentially(third)
    box.press("Shift+Enter")
    box.press_sequentially(fourth)
    expect(box).to_have_value(f"{third}\n{fourth}")
    # The Enter that picks an input method's candidate is the input method's.
    box.dispatch_event("keydown", {"key": "Enter", "code": "Enter", "isComposing": True})
    expect(box).to_have_value(f"{third}\n{fourth}")
    expect(shown(pete, third)).to_have_count(0)
    box.press("Enter")
    expect(box).to_have_value("")
    sent = shown(fay, third)
    expect(sent).to_have_count(1)
    expect(sent).to_contain_text(fourth)
    expect(shown(pete, third)).to_have_attribute("data-state", SENT)

    texts = [m["text"] for m in shop.history("fay", conv)]
    assert texts.count(f"{first}\n{second}") == 1
    assert texts.count(f"{third}\n{fourth}") == 1
    assert not [t for t in texts if t.startswith(third) and t != f"{third}\n{fourth}"]

    enter_sends.uncheck()
    pete.reload()
    open_conv(pete, conv)
    expect(enter_sends).not_to_be_checked()


def test_a_picture_is_previewed_and_goes_with_its_caption(pages: Pages, shop: ShopApi) -> None:
    conv = shop.direct("quinn", "pete")
    quinn, pete = both_in_conv(pages, conv, "quinn", "pete")
    quinn.get_by_test_id("composer-file").set_input_files(files=[picture("样品正面.jpg")])
    preview = quinn.get_by_test_id("picture-preview")
    expect(preview).to_be_visible()
    expect(preview.get_by_test_id("picture-thumb")).to_have_count(1)
    quinn.wait_for_function(
        "() => { const i = document.querySelector('[data-testid=picture-thumb] img');"
        " return !!i && i.complete && i.naturalWidth > 0; }",
        polling=100,
    )
    # Nothing has gone yet.
    images = quinn.get_by_test_id("timeline").locator('[data-testid="msg"][data-kind="image"]')
    expect(images).to_have_count(0)

    caption = unique("样品正面，请确认颜色 front of the sample")
    preview.get_by_test_id("picture-caption").fill(caption)
    preview.get_by_test_id("picture-send").click()
    expect(preview).to_be_hidden()
    mine = shown(quinn, caption)
    expect(mine).to_have_attribute("data-state", SENT)
    theirs = shown(pete, caption)
    expect(theirs).to_have_count(1)
    expect(theirs).to_have_attribute("data-kind", "image")
    expect(theirs.get_by_test_id("msg-image")).to_be_visible()
    expect(theirs.get_by_test_id("msg-text")).to_have_text(caption)

    stored = [m for m in shop.history("pete", conv) if m["kind"] == "image"]
    assert [(m["text"], len(m["attachments"])) for m in stored] == [(caption, 1)]


def test_cancelling_the_preview_sends_nothing(pages: Pages, shop: ShopApi) -> None:
    conv = shop.direct("pat", "leo")
    pat, leo = both_in_conv(pages, conv, "pat", "leo")
    before = len(shop.history("leo", conv))
    pat.get_by_test_id("composer-file").set_input_files(
        files=[picture("一.jpg"), picture("二.jpg", (30, 30, 200))]
    )
    preview = pat.get_by_test_id("picture-preview")
    expect(preview.get_by_test_id("picture-thumb")).to_have_count(2)
    preview.get_by_test_id("picture-caption").fill(unique("不要发 never sent"))
    preview.get_by_test_id("picture-cancel").click()
    expect(preview).to_be_hidden()

    # A message sent afterwards is the only thing that arrives.
    marker = unique("取消之后 after cancelling")
    send_text(pat, marker)
    expect(shown(leo, marker)).to_have_count(1)
    expect(leo.get_by_test_id("timeline").locator('[data-kind="image"]')).to_have_count(0)
    after = shop.history("leo", conv)
    assert [m["text"] for m in after[before:]] == [marker]


def test_the_customer_previews_a_picture_too(pages: Pages, shop: ShopApi) -> None:
    order = shop.retail_order("amy", customer="图片说明客户")
    link = shop.invite(order["id"], by="amy")
    customer = pages.page(locale="en")
    open_invitation(customer, link)
    customer.get_by_test_id("composer-file").set_input_files(files=[picture("damaged box.jpg")])
    preview = customer.get_by_test_id("picture-preview")
    expect(preview.get_by_test_id("picture-send")).to_have_text("Send")
    caption = unique("the box arrived dented")
    preview.get_by_test_id("picture-caption").fill(caption)
    preview.get_by_test_id("picture-send").click()
    expect(shown(customer, caption)).to_have_attribute("data-state", SENT)

    amy = pages.page()
    sign_in(amy, "amy")
    open_conv(amy, order["conv"])
    theirs = shown(amy, caption)
    expect(theirs).to_have_count(1)
    expect(theirs).to_have_attribute("data-kind", "image")
