"""Chatting in the staff workspace, two people in two browsers: signing in, sending
and receiving, unread badges, read receipts, recall, pictures and voice messages."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.helpers import (
    SENT,
    Pages,
    ShopApi,
    both_in_conv,
    by_id,
    by_seq,
    conv_item,
    message,
    open_conv,
    send_text,
    session_in_storage,
    sign_in,
    submit_dialog_if_shown,
    submit_login,
    unique,
)
from tests.media_samples import jpeg

pytestmark = pytest.mark.browser

# Waits until a message's picture shows its preview, decoded, on this page.
IMAGE_SHOWN = """(id) => {
  const img = document.querySelector(
    `[data-testid="msg"][data-id="${id}"] [data-testid="msg-image"]`);
  return !!img && img.complete && img.naturalWidth > 0 && img.currentSrc.includes("/preview");
}"""

# Plays a voice message (again while it is paused) until it has played some of it.
VOICE_PLAYED = """(id) => {
  const audio = document.querySelector(
    `[data-testid="msg"][data-id="${id}"] [data-testid="msg-voice"]`);
  if (!audio) return false;
  if (audio.currentTime > 0 || audio.ended) return true;
  if (audio.paused) audio.play().catch(() => {});
  return false;
}"""


def test_sign_in_send_receive_unread_and_read_receipt(pages: Pages, shop: ShopApi) -> None:
    conv = shop.direct("amy", "sam")
    amy = pages.page()
    amy.goto("/")
    submit_login(amy, "amy", "not-the-password")
    expect(amy.get_by_test_id("login-error")).to_be_visible()
    expect(amy.get_by_test_id("me")).to_be_hidden()
    assert session_in_storage(amy) is None, "a failed sign-in must not store a session"

    submit_login(amy, "amy", "orderchat-demo")
    expect(amy.get_by_test_id("me")).to_contain_text(shop.display_name("amy"))
    expect(amy.get_by_test_id("connection")).to_have_attribute("data-state", "online")
    expect(amy.get_by_test_id("login-form")).to_be_hidden()
    assert session_in_storage(amy) is not None

    sam = pages.page()
    sign_in(sam, "sam")
    badge = conv_item(sam, conv).get_by_test_id("conv-unread")
    expect(badge).to_be_hidden()

    open_conv(amy, conv)
    text = unique("你好 sam，批发价可以")
    sent = send_text(amy, text)
    expect(sent.get_by_test_id("msg-status")).to_have_text("未读")

    # Sam has the list open, not the conversation: the badge counts the new message.
    expect(badge).to_have_text("1")
    open_conv(sam, conv)
    received = message(sam, text)
    expect(received).to_have_count(1)
    expect(received).to_have_attribute("data-seq", sent.get_attribute("data-seq") or "")
    expect(badge).to_be_hidden()

    # Opening the conversation read it: Amy's message turns to read, live.
    expect(sent).to_have_attribute("data-state", "read")
    expect(sent.get_by_test_id("msg-status")).to_have_text("已读")


def test_recall_shows_as_recalled_to_the_other_member(pages: Pages, shop: ShopApi) -> None:
    conv = shop.channel("amy", unique("撤回测试"), ["sam"])
    amy, sam = both_in_conv(pages, conv, "amy", "sam")
    text = unique("这条发错了")
    sent = send_text(amy, text)
    seq = sent.get_attribute("data-seq")
    assert seq is not None
    expect(message(sam, text)).to_have_count(1)

    sent.hover()
    sent.get_by_test_id("msg-recall").click()
    recalled_for_amy = by_seq(amy, seq).and_(amy.locator('[data-recalled="true"]'))
    submit_dialog_if_shown(amy, recalled_for_amy)
    expect(recalled_for_amy).to_have_count(1)
    expect(message(amy, text)).to_have_count(0)

    expect(by_seq(sam, seq)).to_have_attribute("data-recalled", "true")
    expect(sam.get_by_text(text)).to_have_count(0)
    stored = next(m for m in shop.history("sam", conv) if m["seq"] == int(seq))
    assert stored["recalled"] is True


def test_an_urgent_message_flags_the_conversation_until_it_is_handled(
    pages: Pages, shop: ShopApi
) -> None:
    conv = shop.channel("amy", unique("加急测试"), ["wes"])
    amy, wes = pages.page(), pages.page()
    sign_in(amy, "amy")
    sign_in(wes, "wes")
    open_conv(amy, conv)
    expect(conv_item(wes, conv)).to_be_visible()
    expect(conv_item(wes, conv).get_by_test_id("conv-urgent")).to_have_count(0)

    amy.get_by_test_id("composer-urgent").check()
    text = unique("客户在门口等货")
    sent = send_text(amy, text)
    expect(sent.get_by_test_id("msg-urgent")).to_be_visible()
    stored = next(m for m in shop.history("amy", conv) if m["text"] == text)
    assert stored["urgent"] is True

    expect(conv_item(wes, conv).get_by_test_id("conv-urgent")).to_be_visible()
    # A plain message after it: after a reload only the server's count can tell.
    amy.get_by_test_id("composer-urgent").uncheck()
    send_text(amy, unique("另外一件事"))
    wes.reload()
    expect(conv_item(wes, conv).get_by_test_id("conv-urgent")).to_be_visible()
    open_conv(wes, conv)
    expect(message(wes, text).get_by_test_id("msg-urgent")).to_be_visible()
    # Reading it is not dealing with it: the marker stays until someone handles it.
    expect(conv_item(wes, conv).get_by_test_id("conv-urgent")).to_be_visible()
    message(wes, text).get_by_test_id("urgent-handle").click()
    expect(conv_item(wes, conv).get_by_test_id("conv-urgent")).to_have_count(0)


def _sent_media(page: Page, kind: str) -> str:
    """The id of the one message of this kind in the open conversation, once acked."""
    msg = page.get_by_test_id("timeline").locator(f'[data-testid="msg"][data-kind="{kind}"]')
    expect(msg).to_have_count(1)
    expect(msg).to_have_attribute("data-state", SENT)
    msg_id = msg.get_attribute("data-id")
    assert msg_id, "an acked message carries its id"
    return msg_id


def test_picture_reaches_both_sides_with_its_preview(pages: Pages, shop: ShopApi) -> None:
    conv = shop.direct("amy", "wes")
    amy, wes = both_in_conv(pages, conv, "amy", "wes")

    amy.get_by_test_id("composer-file").set_input_files(
        files=[{"name": "样品照片.jpg", "mimeType": "image/jpeg", "buffer": jpeg(640, 480)}]
    )
    # A picture is shown for a look before it goes.
    amy.get_by_test_id("picture-preview").get_by_test_id("picture-send").click()
    msg_id = _sent_media(amy, "image")
    expect(by_id(wes, msg_id)).to_have_count(1)
    for page in (amy, wes):
        expect(by_id(page, msg_id).get_by_test_id("msg-image")).to_be_visible()
        page.wait_for_function(IMAGE_SHOWN, arg=msg_id, polling=100)


def test_voice_message_recorded_and_played(pages: Pages, shop: ShopApi) -> None:
    conv = shop.direct("amy", "leo")
    amy, leo = both_in_conv(pages, conv, "amy", "leo")
    assert amy.evaluate("MediaRecorder.isTypeSupported('audio/webm;codecs=opus')")

    # The fake microphone plays a tone; record a little over a second of it.
    amy.get_by_test_id("composer-voice").click()
    expect(amy.get_by_test_id("composer-voice-cancel")).to_be_visible()
    amy.wait_for_timeout(1500)
    amy.get_by_test_id("composer-voice").click()
    msg_id = _sent_media(amy, "voice")

    voice = by_id(leo, msg_id).get_by_test_id("msg-voice")
    expect(voice).to_have_count(1)
    leo.wait_for_function(VOICE_PLAYED, arg=msg_id, polling=100)
