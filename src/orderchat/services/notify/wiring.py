"""The channels a node has, and the keys every node shares (in the database)."""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from orderchat.core.errors import BadRequest
from orderchat.core.notify import Policy, parse_policy
from orderchat.notify.push import VapidKeys
from orderchat.services.notify.channels import MailChannel, PushChannel, WebhookChannel
from orderchat.services.orders.workflows import NOTIFY_POLICY_FILE
from orderchat.services.ports import Clock
from orderchat.storage import notify_people as people
from orderchat.storage.engine import Database

VAPID_KEY = "vapid-private-pem"
UNSUBSCRIBE_KEY = "unsubscribe-secret"


@dataclass(frozen=True, slots=True)
class Outlets:
    push: PushChannel
    mail: MailChannel | None  # None: no SMTP server set up
    webhooks: WebhookChannel

    async def aclose(self) -> None:
        await self.push.aclose()
        await self.webhooks.aclose()


def load_policy(custom_dir: Path | None) -> Policy:
    """The shop's `notify.toml` beside its workflows, else the built-in one."""
    if custom_dir is not None and (custom_dir / NOTIFY_POLICY_FILE).is_file():
        path = custom_dir / NOTIFY_POLICY_FILE
        try:
            return parse_policy(path.read_text("utf-8"))
        except BadRequest as exc:
            raise SystemExit(f"notification policy {path}: {exc.message}") from exc
    text = resources.files("orderchat.workflows").joinpath(NOTIFY_POLICY_FILE).read_text("utf-8")
    return parse_policy(text)


async def shared_keys(db: Database, clock: Clock) -> tuple[VapidKeys, bytes]:
    """The VAPID key pair and the unsubscribe secret, made by the first node to start."""
    fresh_pem = VapidKeys.generate().private_pem()
    fresh_secret = base64.b64encode(secrets.token_bytes(32)).decode()
    async with db.write("notify-keys") as conn:
        pem = await people.offer_server_key_txn(conn, VAPID_KEY, fresh_pem, clock.now_ms())
        secret = await people.offer_server_key_txn(
            conn, UNSUBSCRIBE_KEY, fresh_secret, clock.now_ms()
        )
    return VapidKeys.from_pem(pem), base64.b64decode(secret)
