"""The e-mails OrderChat sends, worded in their reader's language.

Each mail is one `EmailMessage` with a plain-text and an HTML alternative
built from the same content, so a reader whose client shows only text misses
nothing. Sentences come from the catalogue (`mail.*` in core/text_table.py);
what people wrote (shop names, conversation titles, message texts) is data,
escaped wherever it meets HTML. Time is an argument: composing reads no clock
for anything the reader sees (only the Message-ID's uniqueness draws on one),
so a mail queued at one moment and sent at another still says when it was due.

The headers keep mail from being mistaken for a person's: `Auto-Submitted`
(RFC 3834) silences auto-replies, and `List-Unsubscribe` with
`List-Unsubscribe-Post` (RFC 8058) lets a mail client unsubscribe in one
click, which large mailbox providers require of bulk senders. The endpoint
behind the link must therefore accept a POST without a session.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid, parseaddr
from urllib.parse import urlsplit

from orderchat.core.texts import DEFAULT_LANGUAGE, normalize_language, say

MAX_TEXT_CHARS = 300
# A digest of a long absence stays a readable mail; the link shows the rest.
MAX_LISTED = 50


@dataclass(frozen=True, slots=True)
class MissedItem:
    """One message the reader has not seen, as the mail shows it."""

    conversation: str
    sender: str
    text: str
    ts_ms: int
    link: str
    urgent: bool = False


@dataclass(frozen=True, slots=True)
class _Quote:
    """A message quoted in a mail, already worded for its reader."""

    byline: str
    text: str
    link: str
    urgent: bool


@dataclass(frozen=True, slots=True)
class _Content:
    """What both alternatives of one mail say, before either is laid out."""

    language: str
    shop: str
    subject: str
    heading: str
    paragraphs: Sequence[str]
    groups: Sequence[tuple[str, Sequence[_Quote]]]
    button: tuple[str, str]
    unsubscribe_link: str


def order_status_mail(
    *,
    to: str,
    sender: str,
    language: str,
    shop_name: str,
    order_number: str,
    status_text: str,
    detail: str,
    link: str,
    unsubscribe_link: str,
    now_ms: int,
) -> EmailMessage:
    """A customer's order moved on; `status_text` and `detail` are already in their language."""
    lang = _language(language)
    shop = _one_line(shop_name)
    subject = say("mail.order_subject", shop=shop, order_number=order_number, status=status_text)
    content = _Content(
        language=lang,
        shop=shop,
        subject=subject.render(lang),
        heading=say("mail.order_heading", order_number=order_number).render(lang),
        paragraphs=[say("mail.order_status_line", status=status_text).render(lang)]
        + ([detail] if detail.strip() else []),
        groups=[],
        button=(say("mail.order_button").render(lang), _checked_link(link)),
        unsubscribe_link=_checked_link(unsubscribe_link),
    )
    return _message(to=to, sender=sender, content=content, now_ms=now_ms)


def missed_messages_mail(
    *,
    to: str,
    sender: str,
    language: str,
    shop_name: str,
    person: str,
    items: Sequence[MissedItem],
    link: str,
    unsubscribe_link: str,
    now_ms: int,
    timezone: tzinfo = UTC,
) -> EmailMessage:
    """One mail for everything a person missed, so a busy day is not a flood of mails.

    Items are grouped by conversation, the conversations in the order their
    first item comes in `items`, each one's items oldest first. The subject
    counts every item; at most `MAX_LISTED` are quoted.
    """
    if not items:
        raise ValueError("a missed-messages mail needs at least one message")
    lang = _language(language)
    shop = _one_line(shop_name)
    key = "mail.missed_subject_one" if len(items) == 1 else "mail.missed_subject"
    listed = items[:MAX_LISTED]
    more = len(items) - len(listed)
    paragraphs = [say("mail.missed_more", more=more).render(lang)] if more else []
    content = _Content(
        language=lang,
        shop=shop,
        subject=say(key, shop=shop, count=len(items)).render(lang),
        heading=say("mail.missed_heading", person=person, shop=shop).render(lang),
        paragraphs=paragraphs,
        groups=_grouped(listed, timezone),
        button=(say("mail.missed_button").render(lang), _checked_link(link)),
        unsubscribe_link=_checked_link(unsubscribe_link),
    )
    return _message(to=to, sender=sender, content=content, now_ms=now_ms)


def urgent_reminder_mail(
    *,
    to: str,
    sender: str,
    language: str,
    shop_name: str,
    item: MissedItem,
    reminder: int,
    link: str,
    unsubscribe_link: str,
    now_ms: int,
    timezone: tzinfo = UTC,
) -> EmailMessage:
    """An urgent message nobody has handled; `reminder` counts from 1, the first notice.

    A later reminder says so in its subject, so a reader sees the wait grow
    without opening the mail.
    """
    lang = _language(language)
    shop = _one_line(shop_name)
    conversation = _one_line(item.conversation)
    if reminder > 1:
        subject = say(
            "mail.urgent_subject_again", shop=shop, conversation=conversation, reminder=reminder
        )
    else:
        subject = say("mail.urgent_subject", shop=shop, conversation=conversation)
    heading = say("mail.urgent_heading", sender=item.sender, conversation=item.conversation)
    content = _Content(
        language=lang,
        shop=shop,
        subject=subject.render(lang),
        heading=heading.render(lang),
        paragraphs=[],
        groups=_grouped([item], timezone),
        button=(say("mail.urgent_button").render(lang), _checked_link(link)),
        unsubscribe_link=_checked_link(unsubscribe_link),
    )
    return _message(to=to, sender=sender, content=content, now_ms=now_ms)


def cut(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    """At most `limit` characters, the last an ellipsis when something was left out."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _language(language: str) -> str:
    return normalize_language(language) or DEFAULT_LANGUAGE


def _one_line(text: str) -> str:
    """A header holds one line: a title with line breaks in it is shown joined."""
    return " ".join(text.split())


def _checked_link(link: str) -> str:
    """Only web links go into a mail: anything else is a bug in the caller, not a link."""
    parts = urlsplit(link)
    if parts.scheme not in ("https", "http") or not parts.netloc or _one_line(link) != link:
        raise ValueError(f"not an http(s) link: {link!r}")
    return link


def _when(ts_ms: int, timezone: tzinfo) -> str:
    """Date and minute with the zone's offset: the reader may be anywhere."""
    moment = datetime.fromtimestamp(ts_ms / 1000, timezone)
    offset = moment.utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds()) // 60
    zone = "UTC"
    if minutes:
        hours, rest = divmod(abs(minutes), 60)
        zone = f"UTC{'+' if minutes > 0 else '-'}{hours:02d}:{rest:02d}"
    return f"{moment:%Y-%m-%d %H:%M} {zone}"


def _grouped(items: Sequence[MissedItem], timezone: tzinfo) -> list[tuple[str, Sequence[_Quote]]]:
    groups: dict[str, list[MissedItem]] = {}
    for item in items:
        groups.setdefault(item.conversation, []).append(item)
    return [
        (title, [_quoted(item, timezone) for item in sorted(members, key=lambda i: i.ts_ms)])
        for title, members in groups.items()
    ]


def _quoted(item: MissedItem, timezone: tzinfo) -> _Quote:
    byline = f"{item.sender} · {_when(item.ts_ms, timezone)}"
    return _Quote(byline, cut(item.text), _checked_link(item.link), item.urgent)


def _message(*, to: str, sender: str, content: _Content, now_ms: int) -> EmailMessage:
    """The headers every OrderChat mail carries, around its two alternatives."""
    message = EmailMessage(policy=SMTP)
    message["From"] = sender
    message["To"] = to
    message["Subject"] = _one_line(content.subject)
    message["Date"] = format_datetime(datetime.fromtimestamp(now_ms / 1000, UTC))
    message["Message-ID"] = make_msgid(domain=sender_domain(sender))
    message["Auto-Submitted"] = "auto-generated"
    message["List-Unsubscribe"] = f"<{content.unsubscribe_link}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    plain = _plain(content)
    message.set_content(plain, charset="utf-8", cte=_transfer_encoding(plain))
    page = _html(content)
    message.add_alternative(page, subtype="html", charset="utf-8", cte=_transfer_encoding(page))
    # Set last: filling the body moves any Content-* header into the first part.
    message["Content-Language"] = content.language
    return message


def sender_domain(sender: str) -> str:
    """The From address's domain, in ASCII: it names the Message-ID, which RFC 5322 wants unique.

    Raises:
        ValueError: the address has no domain one could send from.
    """
    local, at, domain = parseaddr(sender)[1].rpartition("@")
    domain = domain.strip().lower()
    if not (local and at and domain):
        raise ValueError(f"the sender {sender!r} has no domain")
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError(f"the sender {sender!r} has no usable domain") from None


def _transfer_encoding(body: str) -> str | None:
    """Base64 for anything but short ASCII lines: safe through any relay, 8BITMIME or not."""
    short = all(len(line) <= 76 for line in body.splitlines())
    return None if body.isascii() and short else "base64"


def _plain(content: _Content) -> str:
    """The text alternative: every link bare on a line of its own, for clients that link URLs."""
    lang = content.language
    lines = [content.shop, "", content.heading, ""]
    for paragraph in content.paragraphs:
        lines += [paragraph, ""]
    urgent = say("mail.urgent_mark").render(lang)
    for title, quotes in content.groups:
        lines += [f"== {title} ==", ""]
        for quote in quotes:
            lines.append(f"[{urgent}] {quote.byline}" if quote.urgent else quote.byline)
            lines += [f"  {line}" for line in quote.text.splitlines() or [""]]
            lines += [f"  {quote.link}", ""]
    label, link = content.button
    lines += [label, link, "", "-- ", _sent_by(content)]
    prompt = say("mail.footer_unsubscribe_prompt").render(lang)
    unsubscribe = say("mail.footer_unsubscribe").render(lang)
    lines += [f"{prompt} {unsubscribe}", content.unsubscribe_link]
    return "\n".join(lines) + "\n"


_FONT = "font-family:-apple-system,'Segoe UI','PingFang SC','Microsoft YaHei',Arial,sans-serif;"
_MUTED = "font-size:13px;color:#71717a;"
_TEXT = "margin:0 0 12px;white-space:pre-wrap;"
_BUTTON = (
    "display:inline-block;padding:10px 20px;border-radius:6px;background:#2563eb;"
    "color:#ffffff;font-weight:600;text-decoration:none;"
)
_BADGE = (
    "display:inline-block;margin-right:6px;padding:0 6px;border-radius:4px;"
    "background:#dc2626;color:#ffffff;font-size:12px;font-weight:600;"
)


def _html(content: _Content) -> str:
    """The HTML alternative: inline styles only, nothing fetched, every piece of data escaped."""
    label, link = content.button
    parts = [
        "<!DOCTYPE html>",
        f'<html lang="{_e(content.language)}">',
        '<head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(content.subject)}</title></head>",
        f'<body style="margin:0;padding:0;background:#f4f4f5;color:#18181b;{_FONT}">',
        '<div style="max-width:600px;margin:0 auto;padding:24px 16px;">',
        '<div style="padding:24px;border-radius:8px;background:#ffffff;">',
        f'<p style="margin:0 0 16px;{_MUTED}">{_e(content.shop)}</p>',
        f'<h1 style="margin:0 0 16px;font-size:18px;">{_e(content.heading)}</h1>',
        *(f'<p style="{_TEXT}">{_e(paragraph)}</p>' for paragraph in content.paragraphs),
        *(_html_group(title, quotes, content.language) for title, quotes in content.groups),
        f'<p style="margin:24px 0 0;"><a href="{_e(link)}" style="{_BUTTON}">{_e(label)}</a></p>',
        "</div>",
        _html_footer(content),
        "</div>",
        "</body>",
        "</html>",
    ]
    return "\n".join(parts) + "\n"


def _html_group(title: str, quotes: Sequence[_Quote], language: str) -> str:
    urgent = say("mail.urgent_mark").render(language)
    opener = say("mail.open_message").render(language)
    parts = [f'<h2 style="margin:20px 0 8px;font-size:15px;">{_e(title)}</h2>']
    for quote in quotes:
        edge = "#dc2626" if quote.urgent else "#d4d4d8"
        badge = f'<span style="{_BADGE}">{_e(urgent)}</span>' if quote.urgent else ""
        parts += [
            f'<div style="margin:0 0 12px;padding:4px 12px;border-left:3px solid {edge};">',
            f'<p style="margin:0 0 4px;{_MUTED}">{badge}{_e(quote.byline)}</p>',
            f'<p style="{_TEXT}">{_e(quote.text)}</p>',
            f'<p style="margin:0;font-size:13px;"><a href="{_e(quote.link)}">{_e(opener)}</a></p>',
            "</div>",
        ]
    return "\n".join(parts)


def _html_footer(content: _Content) -> str:
    prompt = say("mail.footer_unsubscribe_prompt").render(content.language)
    unsubscribe = say("mail.footer_unsubscribe").render(content.language)
    return (
        f'<p style="margin:16px 0 0;{_MUTED}">{_e(_sent_by(content))}<br>'
        f'{_e(prompt)} <a href="{_e(content.unsubscribe_link)}" style="color:#71717a;">'
        f"{_e(unsubscribe)}</a></p>"
    )


def _sent_by(content: _Content) -> str:
    return say("mail.footer_sent_by", shop=content.shop).render(content.language)


def _e(text: str) -> str:
    return html.escape(text, quote=True)
