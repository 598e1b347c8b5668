"""The open app rides out a server crash: it reconnects by itself, a message written
while the server was gone waits as pending and is delivered once, and nobody's
timeline loses or repeats a message."""

from __future__ import annotations

from collections import Counter

import pytest
from playwright.sync_api import Page, expect

from tests.browser.helpers import (
    SENT,
    Pages,
    ShopApi,
    both_in_conv,
    message,
    messages,
    send_text,
    type_and_send,
    unique,
)
from tests.support import ServerProcess

pytestmark = pytest.mark.browser


def shown_seqs(page: Page) -> list[int]:
    """The seq of every delivered message in the open timeline, in page order."""
    seqs: list[str] = messages(page).evaluate_all(
        "els => els.map(e => e.dataset.seq).filter(s => s !== undefined && s !== '')"
    )
    return [int(s) for s in seqs]


def test_reconnects_after_a_restart_and_delivers_the_pending_message_once(
    own_pages: Pages, own_demo: ServerProcess
) -> None:
    shop = ShopApi(own_demo)
    conv = shop.direct("amy", "sam")
    amy, sam = both_in_conv(own_pages, conv, "amy", "sam")
    before = unique("重启前 before")
    send_text(amy, before)
    expect(message(sam, before)).to_have_count(1)

    own_demo.kill()  # SIGKILL: no goodbye to anyone's socket
    for page in (amy, sam):
        expect(page.get_by_test_id("connection")).not_to_have_attribute("data-state", "online")
    during = unique("服务器重启中 while down")
    type_and_send(amy, during)
    pending = message(amy, during)
    expect(pending).to_have_count(1)
    expect(pending).to_have_attribute("data-state", "pending")

    own_demo.start()  # same port, same data directory
    for page in (amy, sam):
        expect(page.get_by_test_id("connection")).to_have_attribute("data-state", "online")
    expect(pending).to_have_attribute("data-state", SENT)
    expect(message(sam, during)).to_have_count(1)
    after = unique("重启后 after")
    send_text(amy, after)
    expect(message(sam, after)).to_have_count(1)

    stored = shop.history("sam", conv)
    texts = Counter(m["text"] for m in stored)
    assert [texts[t] for t in (before, during, after)] == [1, 1, 1], "stored exactly once each"
    expected = [m["seq"] for m in stored]
    for page in (amy, sam):
        for text in (before, during, after):
            expect(message(page, text)).to_have_count(1)
        expect(page.locator('[data-testid="msg"][data-state="pending"]')).to_have_count(0)
        seqs = shown_seqs(page)
        assert len(seqs) == len(set(seqs)), f"a message shown twice: {seqs}"
        assert seqs == expected, f"shown {seqs}, stored {expected}"
