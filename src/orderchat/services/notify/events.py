"""What a notification says and where it leads: links, webhook events, push payloads.

A push payload carries only what a lock screen may show: who, the order's
number, the status, the first 100 characters. It is built per recipient when
it is sent, in their language, from what a *customer* may see when the
recipient is one (the planner never plans a staff-only note for a customer,
and the worker checks again).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from orderchat.core.model import MessageKind
from orderchat.core.notify import Occasion, Topic, preview
from orderchat.core.texts import from_json, say
from orderchat.storage.notify_reads import StreamMessage


@dataclass(frozen=True, slots=True)
class Links:
    """Where a notification leads; `base_url` is what people open OrderChat at."""

    base_url: str

    def staff_path(self, conv: str, seq: int) -> str:
        return f"/#/c/{quote(conv)}/m/{seq}"

    def customer_path(self, order_id: str, seq: int) -> str:
        return f"/c?order={quote(order_id)}&seq={seq}"

    def absolute(self, path: str) -> str:
        return self.base_url.rstrip("/") + path

    def customer_sign_in(self, token: str) -> str:
        """A link that signs the customer in the way an invitation link does."""
        return self.absolute(f"/c#{token}")

    def unsubscribe(self, token: str) -> str:
        return self.absolute(f"/unsubscribe?t={quote(token)}")


def order_of(meta: Mapping[str, Any] | None) -> dict[str, str] | None:
    if not meta or not isinstance(meta.get("order"), str):
        return None
    return {"id": str(meta["order"]), "number": str(meta.get("number", ""))}


SERVER_WORDED = frozenset({MessageKind.CALL, MessageKind.SYSTEM})


def worded(message: StreamMessage, language: str) -> str:
    """The message's words in a language: an order event's text is stored in each."""
    meta = message.meta or {}
    texts = meta.get("text")
    if message.kind is MessageKind.ORDER_EVENT and isinstance(texts, dict):
        chosen = texts.get(language) or texts.get("zh-CN")
        if isinstance(chosen, str):
            return chosen
    # A server's own words (a call's record, a system note) in the reader's language.
    said = from_json(meta.get("say")) if message.kind in SERVER_WORDED else None
    if said is not None:
        return said.render(language)
    if message.text:
        return message.text
    return say(f"notify.kind.{message.kind.value}").render(language)


def webhook_event(
    message: StreamMessage, topic: Topic, sender_name: str | None, links: Links
) -> dict[str, Any]:
    """The `orderchat` format of one event; robots' formats are made from it."""
    meta = message.meta or {}
    event = None
    if message.kind is MessageKind.ORDER_EVENT:
        event = {
            "name": meta.get("event"),
            "text": meta.get("text"),
            "details": meta.get("details"),
        }
    return {
        "topic": topic.value,
        "ts": message.ts,
        "conversation": {"id": message.conv, "title": message.conv_title, "seq": message.seq},
        "message": {
            "id": message.id,
            "kind": message.kind.value,
            "text": worded(message, "zh-CN"),
            "sender": message.sender,
            "sender_name": sender_name,
            "urgent": message.urgent,
            "internal": message.internal,
        },
        "order": order_of(meta),
        "event": event,
        "link": links.absolute(links.staff_path(message.conv, message.seq)),
    }


@dataclass(frozen=True, slots=True)
class Told:
    """One notification as a person sees it, in their language."""

    title: str
    body: str
    path: str
    tag: str


def told(
    message: StreamMessage,
    occasion: Occasion,
    *,
    customer: bool,
    language: str,
    sender_name: str,
    shop_name: str,
    links: Links,
    step: int,
    order: Mapping[str, str] | None,
    merged: int = 1,
) -> Told:
    """Title, body and link of a push (and the subject matter of a mail).

    `order` is the order of the message's conversation, if it is an order's;
    `merged` counts the messages the push stands for, the latest one shown.
    """
    words = preview(worded(message, language))
    if customer:
        number = order["number"] if order else ""
        title = say("notify.title.customer", shop=shop_name, number=number).render(language)
        path = links.customer_path(order["id"], message.seq) if order else "/c"
        body = words if message.kind is MessageKind.ORDER_EVENT else f"{sender_name}: {words}"
    else:
        where = message.conv_title or sender_name
        key = "notify.title.urgent" if occasion is Occasion.URGENT else "notify.title.staff"
        title = say(key, where=where, sender=sender_name).render(language)
        if step:
            title = say("notify.title.reminder", title=title, step=step).render(language)
        path = links.staff_path(message.conv, message.seq)
        body = f"{sender_name}: {words}"
    if merged > 1:
        title = say("notify.merged_title", title=title, count=merged).render(language)
    tag = f"urgent-{message.id}" if occasion is Occasion.URGENT else f"conv-{message.conv}"
    return Told(title=title, body=preview(body, 160), path=path, tag=tag)
