"""Web push (RFC 8030) to browsers whose tabs are closed.

The payload is encrypted for the browser (RFC 8291, `aes128gcm`, through
http_ece) so the push service relays bytes it cannot read, and every request
carries a VAPID token (RFC 8292, through py_vapid) so the push service knows
it comes from the server the subscription was made for. The request itself
goes out over one shared `httpx.AsyncClient`: pywebpush's own sending is
synchronous and would stall the event loop for a whole round trip. Where a
push may go is `notify/push_endpoints.py`; the key, `notify/vapid.py`.
"""

from __future__ import annotations

import asyncio
import email.utils
import re
import ssl
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Literal, cast, get_args

import http_ece
import httpx
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02, VapidException

from orderchat.core.errors import BadRequest
from orderchat.notify.push_endpoints import (
    EndpointBlocked,
    PushTarget,
    check_auth,
    check_p256dh,
    check_subscription,
    check_subscription_async,
    guarded_transport,
    parse_endpoint,
)
from orderchat.notify.vapid import VapidKeys, check_subject, vapid_header

__all__ = [
    "MAX_PAYLOAD_BYTES",
    "PushOutcome",
    "PushResult",
    "PushSender",
    "PushTarget",
    "Urgency",
    "VapidKeys",
    "check_subscription",
    "check_subscription_async",
    "encrypt",
]

# RFC 8291 section 4: push services need take no more than 4096 bytes of body,
# which is an 86-byte header, the plaintext, a 1-byte delimiter and a 16-byte tag.
MAX_BODY_BYTES: Final = 4096
MAX_PAYLOAD_BYTES: Final = MAX_BODY_BYTES - 86 - 1 - 16
MAX_TOPIC_CHARS: Final = 32
# RFC 8292 allows tokens valid for up to 24 h; half of that leaves room for a
# push service whose clock runs ahead. A token is reused for an hour so push
# services see the same one across a burst, as they prefer.
TOKEN_LIFETIME_S: Final = 12 * 3600
TOKEN_REUSE_S: Final = 3600
_MAX_CACHED_TOKENS: Final = 256
_REASON_BODY_BYTES: Final = 512
_REASON_BODY_CHARS: Final = 200

Urgency = Literal["very-low", "low", "normal", "high"]
URGENCIES: Final[tuple[str, ...]] = get_args(Urgency)

_TOPIC = re.compile(rf"[A-Za-z0-9_-]{{1,{MAX_TOPIC_CHARS}}}")


class PushOutcome(StrEnum):
    DELIVERED = "delivered"
    GONE = "gone"  # the subscription must be pruned
    RETRY = "retry"  # nobody's fault and it passes: try later
    REJECTED = "rejected"  # this message will never be taken: do not try it again


@dataclass(frozen=True, slots=True)
class PushResult:
    outcome: PushOutcome
    status: int | None
    reason: str  # short text for the delivery log
    retry_after_s: float | None = None


def outcome_for(status: int) -> PushOutcome:
    """What a push service's answer means for the subscription and the message.

    404 and 410 are how push services say the browser unsubscribed or the
    subscription expired (RFC 8030 section 7.3); 408, 425, 429 and 5xx pass;
    any other 4xx (a bad token, a payload too large) fails the same way again.
    A redirect is refused as well: it is never followed.
    """
    if 200 <= status < 300:
        return PushOutcome.DELIVERED
    if status in (404, 410):
        return PushOutcome.GONE
    if status in (408, 425, 429) or status >= 500:
        return PushOutcome.RETRY
    return PushOutcome.REJECTED


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """A Retry-After header in seconds from `now`: it may be a number or an HTTP date."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - now)


def push_headers(ttl_s: int, urgency: str, topic: str | None) -> dict[str, str]:
    """The RFC 8030 headers; a bad value is the caller's bug, so ValueError rather than a result."""
    if isinstance(ttl_s, bool) or not isinstance(ttl_s, int) or ttl_s < 0:
        raise ValueError(f"ttl_s must be a whole number of seconds >= 0, not {ttl_s!r}")
    if urgency not in URGENCIES:
        raise ValueError(f"urgency must be one of {', '.join(URGENCIES)}, not {urgency!r}")
    headers = {"TTL": str(ttl_s), "Urgency": urgency}
    if topic is not None:
        if not _TOPIC.fullmatch(topic):
            raise ValueError(f"a topic is 1-{MAX_TOPIC_CHARS} base64url characters: {topic!r}")
        headers["Topic"] = topic
    return headers


def encrypt(target: PushTarget, payload: bytes) -> bytes:
    """RFC 8291 `aes128gcm`, one record, with a key pair made for this message alone."""
    receiver = check_p256dh(target.p256dh)
    auth = check_auth(target.auth)
    ephemeral = ec.generate_private_key(ec.SECP256R1())
    body = http_ece.encrypt(
        payload, private_key=ephemeral, dh=receiver, auth_secret=auth, version="aes128gcm"
    )
    return cast(bytes, body)


class PushSender:
    """Sends pushes to any number of push services over one connection pool.

    Every failure comes back as a `PushResult` the caller can act on (prune,
    retry, give up), never as an exception; only a caller's bug (a negative
    TTL, an unknown urgency, a malformed topic) raises ValueError.
    """

    def __init__(
        self,
        keys: VapidKeys,
        subject: str,
        *,
        allow_private: bool = False,
        timeout_s: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """`ssl_context` replaces the system's trusted certificates: for an egress that
        intercepts TLS with a CA of its own, and for tests."""
        check_subject(subject)
        self._subject = subject
        self._allow_private = allow_private
        self._timeout_s = timeout_s
        # py_vapid's own `sub` check refuses https: URLs with a path; check_subject stands in.
        self._vapid = Vapid02(private_key=keys.private_key, conf={"no-strict": True})
        self._tokens: dict[str, tuple[str, float]] = {}
        self._client = httpx.AsyncClient(
            transport=guarded_transport(allow_private, ssl_context),
            timeout=timeout_s,
            follow_redirects=False,
            trust_env=False,
            headers={"User-Agent": "OrderChat"},
        )

    async def send(
        self,
        target: PushTarget,
        payload: bytes,
        *,
        ttl_s: int,
        urgency: Urgency = "normal",
        topic: str | None = None,
    ) -> PushResult:
        """Encrypt, sign and post one message; an empty payload is a push without data."""
        headers = push_headers(ttl_s, urgency, topic)
        if len(payload) > MAX_PAYLOAD_BYTES:
            reason = f"{len(payload)} bytes of payload: a push carries {MAX_PAYLOAD_BYTES} at most"
            return PushResult(PushOutcome.REJECTED, None, reason)
        try:
            endpoint = parse_endpoint(target.endpoint, allow_private=self._allow_private)
            body = encrypt(target, payload) if payload else b""
            headers["Authorization"] = self._authorization(endpoint.origin)
        except BadRequest as exc:
            return PushResult(PushOutcome.REJECTED, None, exc.message)
        except VapidException as exc:
            return PushResult(PushOutcome.REJECTED, None, f"cannot sign for this endpoint: {exc}")
        if body:
            headers["Content-Encoding"] = "aes128gcm"
        return await self._post(target.endpoint, headers, body)

    async def _post(self, url: str, headers: dict[str, str], body: bytes) -> PushResult:
        try:
            async with asyncio.timeout(self._timeout_s):
                request = self._client.build_request("POST", url, headers=headers, content=body)
                response = await self._client.send(request, stream=True)
                try:
                    text = await _start_of_body(response)
                finally:
                    await response.aclose()
        except EndpointBlocked as exc:
            return PushResult(PushOutcome.REJECTED, None, f"{exc} is not a public address")
        except (TimeoutError, httpx.TimeoutException):
            return PushResult(PushOutcome.RETRY, None, f"no answer within {self._timeout_s:g} s")
        except httpx.TransportError as exc:
            return PushResult(PushOutcome.RETRY, None, f"{type(exc).__name__}: {exc}"[:200])
        except httpx.InvalidURL as exc:
            return PushResult(PushOutcome.REJECTED, None, f"invalid URL: {exc}")
        return _result(response, text)

    def _authorization(self, audience: str) -> str:
        """A token for one push service, reused while it is fresh."""
        now = time.time()
        cached = self._tokens.get(audience)
        if cached is not None and now < cached[1]:
            return cached[0]
        claims = {"aud": audience, "exp": int(now) + TOKEN_LIFETIME_S, "sub": self._subject}
        header = vapid_header(self._vapid.sign(claims)["Authorization"])
        if len(self._tokens) >= _MAX_CACHED_TOKENS:
            self._tokens.clear()  # endpoints are the public's to make up: bound the memory
        self._tokens[audience] = (header, now + TOKEN_REUSE_S)
        return header

    async def aclose(self) -> None:
        await self._client.aclose()


async def _start_of_body(response: httpx.Response) -> str:
    """The start of an answer's body, for the log: a push service says there why it refused.

    Read even when it is not wanted, because a connection is only used again
    once its answer has been read to the end (push services' bodies are short
    or empty); but no further than a few hundred bytes, because the endpoint
    may be anyone's server and its body endless.
    """
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_raw():
        chunks.append(chunk)
        size += len(chunk)
        if size >= _REASON_BODY_BYTES:
            break
    text = b"".join(chunks)[:_REASON_BODY_BYTES].decode("utf-8", "replace")
    return " ".join(text.split())[:_REASON_BODY_CHARS]


def _result(response: httpx.Response, text: str) -> PushResult:
    status = response.status_code
    outcome = outcome_for(status)
    reason = f"{status} {response.reason_phrase}".strip()
    if text and outcome is not PushOutcome.DELIVERED:
        reason = f"{reason}: {text}"
    retry_after = None
    if outcome is PushOutcome.RETRY:
        retry_after = retry_after_seconds(response.headers.get("Retry-After"), time.time())
    return PushResult(outcome, status, reason, retry_after)
