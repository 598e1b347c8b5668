"""A visitor's data and devices: continuing on another device, export and erasure.

Erasure keeps the record's shape: the visitor's rows stay (orders and
conversations point at them) with their name, phone and e-mail blanked, and
the content of every message they sent is purged the way retention purges it
(docs/proof.md §6), so each conversation's hash chain still verifies. An
order's own title and address are left as they are: the shop keeps order
records for its accounts, which is an obligation erasure does not override.
"""

from __future__ import annotations

import logging
import secrets
from email.message import EmailMessage
from typing import Any

from orderchat.core.audit import AuditAction, AuditEntry
from orderchat.core.errors import Conflict, Forbidden, NotFound, Unauthorized
from orderchat.core.ids import UserId
from orderchat.core.model import User, UserKind
from orderchat.core.texts import say
from orderchat.media.blobstore import BlobStore
from orderchat.notify.mail import Mailer, MailFailed, SmtpSettings
from orderchat.services.accounts import Accounts, SignedIn, token_hash
from orderchat.services.ports import Clock
from orderchat.storage import accounts as account_store
from orderchat.storage import audit as audit_store
from orderchat.storage import consults as consult_store
from orderchat.storage import conversations as conv_store
from orderchat.storage import media as media_store
from orderchat.storage import orders as order_store
from orderchat.storage import retention as retention_store
from orderchat.storage.engine import Database

logger = logging.getLogger(__name__)

LINK_TTL_MS = 24 * 3600 * 1000
ERASED_NAME = "已删除的访客"
EXPORT_MESSAGES_MAX = 20_000


class Visitors:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        accounts: Accounts,
        blobs: BlobStore,
        smtp: SmtpSettings | None,
        public_url: str,
        shop_name: str,
    ) -> None:
        self._db = db
        self._clock = clock
        self._accounts = accounts
        self._blobs = blobs
        self._mailer = Mailer(smtp) if smtp is not None else None
        self._sender = smtp.sender if smtp is not None else ""
        self._public_url = public_url.rstrip("/")
        self._shop_name = shop_name

    # --- another device ------------------------------------------------------------

    async def mail_link(self, user: User, email: str | None) -> str:
        """Mail the visitor a one-time link that signs another device in as them."""
        if user.kind is not UserKind.CUSTOMER:
            raise Forbidden(say("consults.visitors_only"))
        if self._mailer is None:
            raise Conflict(say("consults.mail_not_set"))
        now_ms = self._clock.now_ms()
        async with self._db.read() as conn:
            record = await order_store.get_customer(conn, user.id)
        address = email or record.email
        if not address:
            raise Conflict(say("consults.no_email"))
        token = secrets.token_urlsafe(32)
        async with self._db.write("visitor-link") as conn:
            await consult_store.insert_link_txn(
                conn, token_hash(token), user.id, now_ms, now_ms + LINK_TTL_MS
            )
        link = f"{self._public_url}/chat#resume={token}"
        try:
            await self._mailer.send(self._link_mail(address, record.language, link))
        except MailFailed as exc:
            logger.warning("the continue link to %s could not be sent: %s", address, exc)
            raise Conflict(say("consults.mail_failed")) from None
        return address

    def _link_mail(self, to: str, language: str, link: str) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self._sender
        message["To"] = to
        message["Subject"] = say("consults.link_subject", shop=self._shop_name).render(language)
        message.set_content(say("consults.link_body", link=link).render(language))
        return message

    async def sign_in_with_link(self, token: str, address: str, device: str | None) -> SignedIn:
        await self._accounts.count_attempt(address, device)
        if not 1 <= len(token) <= 256:
            raise Unauthorized(say("consults.link_not_valid"))
        async with self._db.write("visitor-link-use") as conn:
            user_id = await consult_store.use_link_txn(
                conn, token_hash(token), self._clock.now_ms()
            )
            user = None if user_id is None else await account_store.get_user(conn, user_id)
        if user is None:
            raise Unauthorized(say("consults.link_not_valid"))
        return await self._accounts.sign_in_as(user, device or "visitor-link")

    # --- export and erasure --------------------------------------------------------

    async def export(self, admin: User, visitor: UserId) -> dict[str, Any]:
        """Everything the shop holds about a visitor that identifies them, as JSON."""
        _require_admin(admin)
        now_ms = self._clock.now_ms()
        async with self._db.write("visitor-export") as conn:
            record = await _visitor(conn, visitor)
            consults = await consult_store.consults_of_visitor(conn, visitor)
            orders = await order_store.list_orders(conn, customer_id=visitor)
            sent = await consult_store.sent_messages(conn, visitor, EXPORT_MESSAGES_MAX)
            entry = AuditEntry(AuditAction.VISITOR_EXPORTED, admin.id, visitor, now_ms)
            await audit_store.record_txn(conn, entry)
        return {
            "exported_ts": now_ms,
            "person": {
                "id": record.user_id,
                "name": record.name,
                "phone": record.phone,
                "email": record.email,
                "company": record.company,
                "language": record.language,
            },
            "consults": [
                {
                    "id": c.conv_id,
                    "status": c.status.value,
                    "source": c.source,
                    "page_url": c.page_url,
                    "sku": c.sku,
                    "created_ts": c.created_at_ms,
                    "order": c.order_id,
                }
                for c in consults
            ],
            "orders": [{"id": o.id, "number": o.number, "status": o.status} for o in orders],
            "messages": sent,
        }

    async def erase(self, admin: User, visitor: UserId) -> dict[str, int]:
        """Blank the person and purge what they wrote; the chains stay verifiable."""
        _require_admin(admin)
        now_ms = self._clock.now_ms()
        orphans: list[str] = []
        purged = 0
        async with self._db.write("visitor-erase") as conn:
            await _visitor(conn, visitor)
            for batch in await consult_store.message_runs(conn, visitor):
                files = await retention_store.purge_txn(conn, batch, now_ms, now_ms)
                purged += len(batch.message_ids)
                for _, sha in files:
                    if sha is not None and await media_store.blob_unused(conn, sha):
                        await media_store.delete_blob_txn(conn, sha)
                        orphans.append(sha)
            for consult in await consult_store.consults_of_visitor(conn, visitor):
                await conv_store.rename_txn(conn, consult.conv_id, ERASED_NAME)
            await consult_store.erase_visitor_txn(conn, visitor, ERASED_NAME, now_ms)
            details = {"messages": purged, "files": len(orphans)}
            entry = AuditEntry(AuditAction.VISITOR_ERASED, admin.id, visitor, now_ms, None, details)
            await audit_store.record_txn(conn, entry)
        for sha in orphans:  # after the commit: a failed delete leaves a file, never a hole
            await self._blobs.delete(sha)
        sessions = await self._accounts.revoke_all(visitor)
        return {"messages": purged, "files": len(orphans), "sessions": sessions}


async def _visitor(conn: Any, visitor: UserId) -> Any:
    try:
        return await order_store.get_customer(conn, visitor)
    except NotFound:
        raise NotFound(say("consults.not_a_visitor", user=visitor)) from None


def _require_admin(user: User) -> None:
    if not user.is_admin:
        raise Forbidden(say("consults.admins_only"))
