"""The three ways out — web push, e-mail, webhooks — as the worker uses them.

Each answers with a `Sent`: delivered, try again later, or give up (with the
reason the delivery log shows). Push goes to every live device of a person:
one device that took it is enough; one the push service says is gone is
forgotten at once.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from enum import StrEnum

import orjson

from orderchat.core.webhook_formats import Format, body_of, request_of, robot_refused
from orderchat.notify.mail import Mailer, MailFailed
from orderchat.notify.push import PushOutcome, PushSender, PushTarget
from orderchat.notify.webhook_sender import WebhookSender
from orderchat.services.notify.events import Told
from orderchat.storage import notify_people as people
from orderchat.storage.engine import Database
from orderchat.storage.notify import Delivery

logger = logging.getLogger(__name__)

# How long a push service keeps trying a device that is off: a day, an hour if urgent
# (a reminder follows anyway).
PUSH_TTL_S = 24 * 3600
URGENT_PUSH_TTL_S = 3600


def spare_failed_sniffio_imports() -> None:
    """Make httpcore's `import sniffio` fail at once where sniffio is not installed.

    httpcore (under httpx) imports sniffio to learn which async library runs each
    time it sets up a lock or an event, several times per request. Where sniffio
    is absent (anyio no longer brings it), each of those is a failed import that
    searches all of sys.path: with deliveries going out side by side, that was
    15 to 40 % of the server's CPU. None in sys.modules is Python's own record of
    a module that is not there; the import then fails without a search.
    """
    if "sniffio" not in sys.modules and importlib.util.find_spec("sniffio") is None:
        sys.modules["sniffio"] = None  # type: ignore[assignment]


class Verdict(StrEnum):
    SENT = "sent"
    RETRY = "retry"
    GIVE_UP = "dead"
    CANCEL = "cancelled"


@dataclass(frozen=True, slots=True)
class Sent:
    verdict: Verdict
    outcome: str
    retry_after_s: float | None = None


class PushChannel:
    def __init__(self, db: Database, sender: PushSender) -> None:
        self._db = db
        self._sender = sender

    async def send(
        self,
        recipient: str,
        told: Told,
        *,
        urgent: bool,
        ts_ms: int,
        now_ms: int,
        ttl_s: int | None = None,
        flags: Mapping[str, bool] | None = None,
    ) -> Sent:
        """Push `told` to every device of `recipient`; `flags` (`ring`, `quiet`) tell the
        service worker how to show it, `ttl_s` how long it is worth delivering."""
        async with self._db.read() as conn:
            devices = await people.subscriptions_of(conn, recipient, now_ms)
        if not devices:
            return Sent(Verdict.CANCEL, "no device takes push")
        shown = {"title": told.title, "body": told.body, "url": told.path, "tag": told.tag}
        payload = orjson.dumps({**shown, "ts": ts_ms, **(flags or {})})
        outcomes: list[PushOutcome] = []
        reasons: list[str] = []
        retry_after: float | None = None
        for device in devices:
            result = await self._sender.send(
                PushTarget(device.endpoint, device.p256dh, device.auth),
                payload,
                ttl_s=ttl_s or (URGENT_PUSH_TTL_S if urgent else PUSH_TTL_S),
                urgency="high" if urgent else "normal",
            )
            outcomes.append(result.outcome)
            reasons.append(result.reason)
            if result.outcome is PushOutcome.GONE:
                async with self._db.write("push-gone") as conn:
                    await people.prune_subscription_txn(conn, device.id)
            elif result.outcome is PushOutcome.RETRY and result.retry_after_s is not None:
                retry_after = max(retry_after or 0.0, result.retry_after_s)
        summary = f"{outcomes.count(PushOutcome.DELIVERED)}/{len(devices)} devices: "
        summary += "; ".join(reasons)[:300]
        if PushOutcome.DELIVERED in outcomes:
            return Sent(Verdict.SENT, summary)
        if PushOutcome.RETRY in outcomes:
            return Sent(Verdict.RETRY, summary, retry_after)
        if all(o is PushOutcome.GONE for o in outcomes):
            return Sent(Verdict.CANCEL, summary)
        return Sent(Verdict.GIVE_UP, summary)

    async def aclose(self) -> None:
        await self._sender.aclose()


class MailChannel:
    def __init__(self, mailer: Mailer) -> None:
        self._mailer = mailer

    async def send(self, message: EmailMessage) -> Sent:
        try:
            await self._mailer.send(message)
        except MailFailed as failed:
            verdict = Verdict.GIVE_UP if failed.permanent else Verdict.RETRY
            return Sent(verdict, failed.reason[:300])
        return Sent(Verdict.SENT, "accepted by the mail server")


class WebhookChannel:
    def __init__(self, db: Database, sender: WebhookSender) -> None:
        self._db = db
        self._sender = sender

    async def send(self, delivery: Delivery, now_ms: int) -> Sent:
        async with self._db.read() as conn:
            endpoint = await people.endpoint(conn, delivery.endpoint_id or "")
        if endpoint is None or not endpoint.enabled:
            return Sent(Verdict.CANCEL, "the endpoint is removed or switched off")
        fmt = Format(endpoint.format)
        body = body_of(fmt, delivery.payload or {}, endpoint.language)
        url, headers = request_of(
            fmt, endpoint.url, endpoint.secret, delivery.dedupe, delivery.occasion, body, now_ms
        )
        posted = await self._sender.post(url, headers, body)
        if posted.ok:
            refused = robot_refused(fmt, posted.answer)
            if refused is None:
                return Sent(Verdict.SENT, f"HTTP {posted.status}")
            return Sent(Verdict.RETRY, refused)
        return Sent(Verdict.RETRY, posted.reason, posted.retry_after_s)

    async def aclose(self) -> None:
        await self._sender.aclose()
