"""What an outbound webhook delivery carries, in each of the formats a shop can pick.

- `orderchat`: our own JSON, signed like the inbound webhook (core/signatures.py):
  `X-OrderChat-Timestamp`, `X-OrderChat-Signature: sha256=HMAC(secret,
  "<timestamp>.<body>")`, and `X-OrderChat-Delivery`, the id a receiver
  deduplicates with (a delivery may arrive more than once, never differently).
- `wecom`: a WeCom (企业微信) group robot's markdown message. The robot's key is in
  its URL; it takes no signature.
- `dingtalk`: a DingTalk (钉钉) group robot's markdown message; with a secret, the
  URL carries DingTalk's own signature: `timestamp` (ms) and `sign`, the Base64
  of HMAC-SHA256(secret, "<timestamp>\\n<secret>").

Both robots answer HTTP 200 with `{"errcode": 0}` on success and a non-zero
`errcode` on refusal, which counts as a failed try.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from enum import StrEnum
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import orjson

from orderchat.core.signatures import sign
from orderchat.core.text_table import TEXTS
from orderchat.core.texts import say


class Format(StrEnum):
    ORDERCHAT = "orderchat"
    WECOM = "wecom"
    DINGTALK = "dingtalk"


DELIVERY_HEADER = "X-OrderChat-Delivery"
TOPIC_HEADER = "X-OrderChat-Topic"


def body_of(fmt: Format, event: Mapping[str, Any], language: str) -> bytes:
    """The request body for one event (`event` is the orderchat-format payload)."""
    if fmt is Format.ORDERCHAT:
        return orjson.dumps(event)
    title, text = _markdown(event, language)
    if fmt is Format.WECOM:
        return orjson.dumps({"msgtype": "markdown", "markdown": {"content": text}})
    return orjson.dumps({"msgtype": "markdown", "markdown": {"title": title, "text": text}})


def request_of(
    fmt: Format, url: str, secret: str, delivery_id: str, topic: str, body: bytes, now_ms: int
) -> tuple[str, dict[str, str]]:
    """The URL to post to and the headers, signed for the format."""
    headers = {
        "Content-Type": "application/json",
        DELIVERY_HEADER: delivery_id,
        TOPIC_HEADER: topic,
        **sign(secret, now_ms // 1000, body),
    }
    if fmt is Format.DINGTALK and secret:
        url = _with_query(url, {"timestamp": str(now_ms), "sign": dingtalk_sign(secret, now_ms)})
    return url, headers


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    mac = hmac.new(
        secret.encode("utf-8"), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256
    ).digest()
    return base64.b64encode(mac).decode("ascii")


def robot_refused(fmt: Format, body: bytes) -> str | None:
    """A robot's refusal inside a 200 answer (`errcode` non-zero), or None."""
    if fmt is Format.ORDERCHAT:
        return None
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        return "the robot's answer is not JSON"
    if isinstance(answer, dict) and answer.get("errcode", 0) != 0:
        return f"errcode {answer.get('errcode')}: {str(answer.get('errmsg', ''))[:200]}"
    return None


def _with_query(url: str, extra: Mapping[str, str]) -> str:
    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, urlencode(extra)) if q)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def _markdown(event: Mapping[str, Any], language: str) -> tuple[str, str]:
    """A robot message in the endpoint's language: title, the order, what happened, the link."""
    topic = str(event.get("topic", ""))
    key = f"webhooks.title.{topic.replace('.', '_')}"
    title = say(key).render(language) if key in TEXTS else topic
    order = event.get("order") or {}
    message = event.get("message") or {}
    lines = [f"### {_escape(title)}"]
    if order.get("number"):
        lines.append(f"**{_escape(str(order['number']))}**")
    text = message.get("text") or ""
    if text:
        lines.append(_escape(str(text))[:1000])
    sender = message.get("sender_name")
    if sender:
        lines.append(f"> {_escape(str(sender))}")
    link = event.get("link")
    if link:
        lines.append(f"[{say('webhooks.open_link').render(language)}]({link})")
    return title, "\n\n".join(lines)


def _escape(text: str) -> str:
    """Keep a message's own markdown from restyling or relinking the robot's card."""
    for char in ("\\", "[", "]", "(", ")", "*", "_", "`", "#", "<", ">"):
        text = text.replace(char, "\\" + char)
    return text
