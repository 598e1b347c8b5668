"""The mails as their readers get them: language, links, headers, escaping, grouping.

Each mail is serialised and parsed back the way a mail client would, so what
is tested is what arrives, not the object that was built.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import parsedate_to_datetime

import pytest

from orderchat.notify.mail_compose import (
    MAX_LISTED,
    MAX_TEXT_CHARS,
    MissedItem,
    missed_messages_mail,
    order_status_mail,
    urgent_reminder_mail,
)

NOW_MS = 1_765_000_000_000  # 2025-12-06 05:46:40 UTC
SENDER = "OrderChat <orders@shop.example>"
TO = "wang@example.com"
LINK = "https://shop.example/app"
UNSUBSCRIBE = "https://shop.example/unsubscribe?token=abc&kind=missed"
HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef]")


def _parsed(message: EmailMessage) -> EmailMessage:
    parsed = message_from_bytes(message.as_bytes(), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def _bodies(message: EmailMessage) -> tuple[str, str]:
    plain, page = message.get_body(("plain",)), message.get_body(("html",))
    assert plain is not None and page is not None
    # A text part travels with CRLF line ends (RFC 2046); compare as text.
    text: str = plain.get_content()
    html: str = page.get_content()
    return text.replace("\r\n", "\n"), html.replace("\r\n", "\n")


def _order(language: str = "zh-CN", shop: str = "星辰户外", **changes: str) -> EmailMessage:
    values = {
        "status_text": "已发货" if language == "zh-CN" else "shipped",
        "detail": "顺丰 SF123456" if language == "zh-CN" else "Parcel SF123456",
        "link": "https://shop.example/orders/SO-1001",
        **changes,
    }
    return _parsed(
        order_status_mail(
            to=TO,
            sender=SENDER,
            language=language,
            shop_name=shop,
            order_number="SO-1001",
            unsubscribe_link=UNSUBSCRIBE,
            now_ms=NOW_MS,
            **values,
        )
    )


def _item(conversation: str, n: int, *, urgent: bool = False, text: str = "") -> MissedItem:
    return MissedItem(
        conversation=conversation,
        sender=f"Li {n}",
        text=text or f"message {n}",
        ts_ms=NOW_MS - 60_000 * (10 - n),
        link=f"https://shop.example/m/{n}",
        urgent=urgent,
    )


def _missed(
    items: list[MissedItem], language: str = "zh-CN", shop: str = "星辰户外"
) -> EmailMessage:
    return _parsed(
        missed_messages_mail(
            to=TO,
            sender=SENDER,
            language=language,
            shop_name=shop,
            person="Wang",
            items=items,
            link=LINK,
            unsubscribe_link=UNSUBSCRIBE,
            now_ms=NOW_MS,
        )
    )


def _urgent(reminder: int, language: str = "zh-CN") -> EmailMessage:
    return _parsed(
        urgent_reminder_mail(
            to=TO,
            sender=SENDER,
            language=language,
            shop_name="星辰户外",
            item=_item("订单群", 1, urgent=True, text="客户在等回复"),
            reminder=reminder,
            link=LINK,
            unsubscribe_link=UNSUBSCRIBE,
            now_ms=NOW_MS,
        )
    )


def test_a_chinese_order_mail_says_it_in_chinese_with_the_shop_and_the_way_back() -> None:
    mail = _order()
    plain, page = _bodies(mail)
    assert mail["Subject"] == "【星辰户外】订单 SO-1001：已发货"
    assert mail["Content-Language"] == "zh-CN" and '<html lang="zh-CN">' in page
    for body in (plain, page):
        assert "星辰户外" in body and "订单 SO-1001 有新进展" in body and "查看订单" in body
        assert "顺丰 SF123456" in body
    assert "\nhttps://shop.example/orders/SO-1001\n" in plain  # bare, on a line of its own
    assert 'href="https://shop.example/orders/SO-1001"' in page


def test_an_english_order_mail_has_no_chinese_in_it() -> None:
    mail = _order("en", shop="Trail Shop")
    plain, page = _bodies(mail)
    assert mail["Subject"] == "[Trail Shop] Order SO-1001: shipped"
    assert mail["Content-Language"] == "en" and '<html lang="en">' in page
    assert "News about order SO-1001" in plain and "View the order" in page
    assert not CJK.search(mail["Subject"] + plain + page)


@pytest.mark.parametrize(("asked", "given"), [("fr", "zh-CN"), ("", "zh-CN"), ("en-GB", "en")])
def test_a_language_we_do_not_write_falls_back_to_chinese(asked: str, given: str) -> None:
    mail = _order(asked, shop="Trail Shop", status_text="SHIPPED", detail="")
    assert mail["Content-Language"] == given
    assert bool(HAN.search(mail["Subject"])) == (given == "zh-CN")


def test_every_mail_is_two_utf8_alternatives_with_the_headers_of_an_automatic_sender() -> None:
    for mail in (_order(), _missed([_item("A", 1)]), _urgent(1)):
        assert mail.get_content_type() == "multipart/alternative"
        parts = list(mail.iter_parts())
        assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
        assert all(p.get_content_charset() == "utf-8" for p in parts)
        assert parsedate_to_datetime(mail["Date"]) == datetime.fromtimestamp(NOW_MS / 1000, UTC)
        assert re.fullmatch(r"<[^<>@\s]+@shop\.example>", mail["Message-ID"])
        assert mail["Auto-Submitted"] == "auto-generated"
        assert mail["List-Unsubscribe"] == f"<{UNSUBSCRIBE}>"
        assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert mail["To"] == TO and mail["From"].addresses[0].addr_spec == "orders@shop.example"


def test_the_unsubscribe_link_is_visible_in_both_parts() -> None:
    plain, page = _bodies(_order())
    assert f"\n{UNSUBSCRIBE}\n" in plain and "退订" in plain
    assert 'href="https://shop.example/unsubscribe?token=abc&amp;kind=missed"' in page
    assert "退订</a>" in page


def test_the_html_fetches_nothing_and_links_only_where_it_was_told() -> None:
    items = [_item("A", 1), _item("B", 2, urgent=True)]
    _, page = _bodies(_missed(items))
    assert not re.search(r"<(img|script|link|iframe|object|style)\b|\bsrc=|url\(", page, re.I)
    hrefs = set(re.findall(r'href="([^"]*)"', page))
    allowed = {LINK, UNSUBSCRIBE.replace("&", "&amp;"), *(i.link for i in items)}
    assert hrefs == allowed


def test_what_people_wrote_is_escaped_in_html_and_kept_as_is_in_text() -> None:
    shop = "<script>alert('shop')</script>"
    item = _item("<b>群</b>", 1, text='<script>alert("hi")</script> & more')
    for mail in (_missed([item], shop=shop), _order(shop=shop, detail="<script>x</script>")):
        plain, page = _bodies(mail)
        assert "<script" not in page.lower() and "<b>" not in page
        assert "&lt;script&gt;" in page
        assert "<script>" in plain
    _, page = _bodies(_missed([item], shop=shop))
    assert "&lt;script&gt;alert(&quot;hi&quot;)&lt;/script&gt; &amp; more" in page
    assert "&lt;b&gt;群&lt;/b&gt;" in page


def test_missed_messages_come_in_one_mail_grouped_by_conversation_urgent_ones_marked() -> None:
    items = [_item("Order 17", 3), _item("Team", 2), _item("Order 17", 1, urgent=True)]
    mail = _missed(items)
    plain, page = _bodies(mail)
    assert mail["Subject"] == "【星辰户外】3 条未读消息"
    assert plain.count("== Order 17 ==") == 1 and plain.count("== Team ==") == 1
    # Conversations in the order they first come; each one's messages oldest first.
    order = [plain.index(s) for s in ("== Order 17 ==", "message 1", "message 3", "== Team ==")]
    assert order == sorted(order)
    assert plain.count("[紧急]") == 1 and "[紧急] Li 1 · " in plain
    assert page.count(">紧急</span>") == 1
    assert page.count(">Order 17</h2>") == 1 and page.count(">Team</h2>") == 1
    for item in items:
        assert f"  {item.link}\n" in plain and f'href="{item.link}"' in page
    assert page.count(">打开这条消息</a>") == 3
    assert _missed(items, "en", shop="Trail Shop")["Subject"] == "[Trail Shop] 3 unread messages"


def test_one_missed_message_is_counted_in_the_singular() -> None:
    assert _missed([_item("A", 1)])["Subject"] == "【星辰户外】1 条未读消息"
    assert (
        _missed([_item("A", 1)], "en", "Trail Shop")["Subject"] == "[Trail Shop] 1 unread message"
    )


def test_a_long_message_is_cut_to_300_characters() -> None:
    plain, page = _bodies(_missed([_item("A", 1, text="x" * 1000)]))
    shown = "x" * (MAX_TEXT_CHARS - 1) + "…"
    assert f"  {shown}\n" in plain and "x" * MAX_TEXT_CHARS not in plain
    assert f">{shown}</p>" in page


def test_a_long_absence_lists_the_first_messages_and_counts_them_all() -> None:
    items = [_item(f"C{n % 3}", n % 9) for n in range(MAX_LISTED + 10)]
    mail = _missed(items, "en", "Trail Shop")
    plain, _ = _bodies(mail)
    assert mail["Subject"] == f"[Trail Shop] {MAX_LISTED + 10} unread messages"
    assert plain.count("https://shop.example/m/") == MAX_LISTED
    assert "Not listed here: 10 more." in plain


def test_times_are_shown_in_the_zone_given_with_its_offset() -> None:
    def shown(zone: timezone | None) -> str:
        extra = {} if zone is None else {"timezone": zone}
        mail = missed_messages_mail(
            to=TO,
            sender=SENDER,
            language="en",
            shop_name="Trail Shop",
            person="Wang",
            items=[MissedItem("A", "Li", "hi", NOW_MS, "https://shop.example/m/1")],
            link=LINK,
            unsubscribe_link=UNSUBSCRIBE,
            now_ms=NOW_MS,
            **extra,
        )
        return _bodies(_parsed(mail))[0]

    assert "Li · 2025-12-06 05:46 UTC\n" in shown(None)
    assert "Li · 2025-12-06 13:46 UTC+08:00\n" in shown(timezone(timedelta(hours=8)))
    assert "Li · 2025-12-06 00:16 UTC-05:30\n" in shown(timezone(-timedelta(hours=5, minutes=30)))


def test_an_urgent_reminder_says_which_reminder_it_is_after_the_first() -> None:
    first, third = _urgent(1), _urgent(3)
    assert first["Subject"] == "【星辰户外】「订单群」中有一条紧急消息"
    assert third["Subject"] == "【星辰户外】紧急消息仍未处理（第 3 次提醒）：订单群"
    assert _urgent(3, "en")["Subject"] == (
        "[星辰户外] Still waiting (reminder 3): an urgent message in 订单群"
    )
    plain, page = _bodies(third)
    assert "Li 1 在「订单群」中发来一条紧急消息，还没有人处理。" in plain
    assert "[紧急] Li 1 · " in plain and "客户在等回复" in page
    assert 'href="https://shop.example/m/1"' in page and "查看并处理" in page


def test_line_breaks_in_a_name_do_not_reach_the_headers() -> None:
    mail = _order("en", shop="Trail\r\nBcc: victim@example.com")
    assert mail["Subject"] == "[Trail Bcc: victim@example.com] Order SO-1001: shipped"
    assert mail["Bcc"] is None


@pytest.mark.parametrize(
    "link",
    ["javascript:alert(1)", "/relative/path", "https://shop.example/a\r\nX: y", "mailto:a@b"],
)
def test_only_web_links_go_into_a_mail(link: str) -> None:
    with pytest.raises(ValueError, match="link"):
        _order(link=link)
    with pytest.raises(ValueError, match="link"):
        _missed([MissedItem("A", "Li", "hi", NOW_MS, link)])


def test_a_sender_without_a_domain_or_no_items_is_a_bug_caught_at_once() -> None:
    with pytest.raises(ValueError, match="sender"):
        order_status_mail(
            to=TO,
            sender="orders",
            language="en",
            shop_name="Trail Shop",
            order_number="SO-1",
            status_text="paid",
            detail="",
            link=LINK,
            unsubscribe_link=UNSUBSCRIBE,
            now_ms=NOW_MS,
        )
    with pytest.raises(ValueError, match="at least one"):
        _missed([])
