"""What people and admins do with notifications: devices, choices, endpoints, the ladder.

Every check comes before any write, so a refused request changes nothing.
Webhook endpoints are the admin's alone; a person's devices and choices are
their own; an urgent message's reminders are seen by its sender and admins.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, replace
from typing import Any

from orderchat.core.audit import AuditAction, AuditEntry
from orderchat.core.errors import BadRequest, Forbidden, NotFound
from orderchat.core.ids import IdMinter, SessionId, UserId
from orderchat.core.model import Role, User
from orderchat.core.notify import (
    UNSUBSCRIBE_KINDS,
    Channel,
    Preferences,
    Topic,
    read_unsubscribe_token,
)
from orderchat.core.targets import parse_target
from orderchat.core.texts import LANGUAGES, say
from orderchat.core.webhook_formats import Format
from orderchat.notify.push import PushTarget, VapidKeys, check_subscription_async
from orderchat.services.accounts import Accounts
from orderchat.services.ports import Clock
from orderchat.storage import audit as audit_store
from orderchat.storage import notify as store
from orderchat.storage import notify_people as people
from orderchat.storage.engine import Database
from orderchat.storage.messages import get_stored_message
from orderchat.storage.notify_people import Endpoint

__all__ = ["EMAIL_PATTERN", "Endpoint", "NewEndpoint", "Notifications"]

MAX_DESCRIPTION = 200
MAX_EMAIL = 200
EMAIL_PATTERN = (
    r"^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63}){0,4}\.[A-Za-z]{2,12}$"
)
_EMAIL = re.compile(EMAIL_PATTERN)
_SECRET = re.compile(r"[\x21-\x7e]{16,128}")


@dataclass(frozen=True, slots=True)
class NewEndpoint:
    url: str
    topics: list[str]
    format: str = Format.ORDERCHAT.value
    language: str = "zh-CN"
    description: str = ""
    secret: str | None = None  # made up by the server when not given
    enabled: bool = True


class Notifications:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        ids: IdMinter,
        keys: VapidKeys,
        unsubscribe_secret: bytes,
        *,
        allow_private: bool,
    ) -> None:
        self._db = db
        self._clock = clock
        self._ids = ids
        self.keys = keys
        self._secret = unsubscribe_secret
        self._allow_private = allow_private

    # --- this device's web push ---------------------------------------------------------

    async def subscribe(
        self, user: User, session: SessionId, endpoint: str, p256dh: str, auth: str
    ) -> people.Subscription:
        target: PushTarget = await check_subscription_async(
            endpoint, p256dh, auth, allow_private=self._allow_private
        )
        sub = people.Subscription(
            id=self._ids.new("ps"),
            user_id=user.id,
            session_id=session,
            endpoint=target.endpoint,
            p256dh=target.p256dh,
            auth=target.auth,
            created_at_ms=self._clock.now_ms(),
        )
        async with self._db.write("push-subscribe") as conn:
            return await people.save_subscription_txn(conn, sub)

    async def unsubscribe(self, user: User, endpoint: str) -> None:
        async with self._db.write("push-unsubscribe") as conn:
            if not await people.delete_subscription_txn(conn, user.id, endpoint):
                raise NotFound(say("notify.no_subscription"))

    async def devices(self, user: User) -> list[dict[str, Any]]:
        async with self._db.read() as conn:
            return await people.devices_of(conn, user.id, self._clock.now_ms())

    # --- a person's choices ---------------------------------------------------------------

    async def preferences(self, user: User) -> tuple[Preferences, str | None]:
        """Their choices, and the address mails go to (theirs, or the one the shop has)."""
        async with self._db.read() as conn:
            found = (await people.preferences(conn, [user.id])).get(user.id, Preferences())
            address = (await people.email_addresses(conn, [user.id])).get(user.id)
        return found, address

    async def set_preferences(self, user: User, prefs: Preferences) -> Preferences:
        if prefs.email is not None and not (
            len(prefs.email) <= MAX_EMAIL and _EMAIL.fullmatch(prefs.email)
        ):
            raise BadRequest(say("notify.email_shape"))
        if prefs.language is not None and prefs.language not in LANGUAGES:
            raise BadRequest(say("notify.email_shape"))
        async with self._db.write("notify-preferences") as conn:
            await people.save_preferences_txn(conn, user.id, prefs, self._clock.now_ms())
        return prefs

    async def unsubscribe_by_link(self, token: str) -> tuple[UserId, str]:
        """Switch e-mail off for the kind of mail a link names; no sign-in needed."""
        user, kind = read_unsubscribe_token(self._secret, token)
        async with self._db.write("notify-unsubscribe") as conn:
            found = (await people.preferences(conn, [user])).get(user, Preferences())
            off = dict(found.off)
            for occasion in UNSUBSCRIBE_KINDS[kind]:
                off[occasion] = off.get(occasion, frozenset()) | {Channel.EMAIL}
            await people.save_preferences_txn(
                conn, user, replace(found, off=off), self._clock.now_ms()
            )
        return user, kind

    # --- the urgent ladder, as its sender sees it ---------------------------------------

    async def reminders(self, user: User, conv_id: str, seq: int) -> list[dict[str, Any]]:
        """What went out for one message, per recipient: the urgent ladder's record.

        Any message has one (a direct message's push, an order's mail); only urgent
        ones climb.
        """
        async with self._db.read() as conn:
            stored = await get_stored_message(conn, conv_id, seq)
            message = stored.message
            if message.sender != user.id and Role.ADMIN not in user.roles:
                raise Forbidden(say("notify.only_sender_sees_ladder"))
            rows = await store.deliveries_of_message(conn, message.id)
            read, _ = await store.read_and_recalled(
                conn, {(conv_id, r["recipient"]) for r in rows}, []
            )
        return [{**row, "read": read.get((conv_id, row["recipient"]), 0) >= seq} for row in rows]

    # --- webhook endpoints (admins) -----------------------------------------------------

    def _checked(self, new: NewEndpoint) -> NewEndpoint:
        parse_target(new.url, allow_private=self._allow_private)
        known = [t.value for t in Topic]
        if not new.topics:
            raise BadRequest(say("webhooks.topics_needed"))
        for topic in new.topics:
            if topic not in known:
                raise BadRequest(say("webhooks.unknown_topic", topic=topic, known=known))
        if new.format not in [f.value for f in Format]:
            raise BadRequest(
                say("webhooks.unknown_format", format=new.format, known=[f.value for f in Format])
            )
        if new.language not in LANGUAGES:
            raise BadRequest(say("webhooks.unknown_format", format=new.language, known=LANGUAGES))
        if len(new.description) > MAX_DESCRIPTION:
            raise BadRequest(say("webhooks.description_too_long", limit=MAX_DESCRIPTION))
        if new.secret is not None and not _SECRET.fullmatch(new.secret):
            raise BadRequest(say("webhooks.secret_shape"))
        return new

    async def add_endpoint(self, admin: User, new: NewEndpoint) -> Endpoint:
        Accounts.require_admin(admin)
        checked = self._checked(new)
        endpoint = Endpoint(
            id=self._ids.new("wh"),
            url=checked.url,
            secret=checked.secret or secrets.token_urlsafe(32),
            topics=frozenset(checked.topics),
            format=checked.format,
            language=checked.language,
            description=checked.description,
            enabled=checked.enabled,
            created_by=admin.id,
            created_at_ms=self._clock.now_ms(),
        )
        async with self._db.write("webhook-add") as conn:
            added = await people.insert_endpoint_txn(conn, endpoint)
            await audit_store.record_txn(
                conn,
                _endpoint_entry(AuditAction.WEBHOOK_CREATED, admin, added, self._clock.now_ms()),
            )
            return added

    async def change_endpoint(self, admin: User, endpoint_id: str, new: NewEndpoint) -> Endpoint:
        Accounts.require_admin(admin)
        checked = self._checked(new)
        async with self._db.write("webhook-change") as conn:
            found = await people.endpoint(conn, endpoint_id)
            if found is None:
                raise NotFound(say("webhooks.unknown_endpoint"))
            changed = replace(
                found,
                url=checked.url,
                topics=frozenset(checked.topics),
                format=checked.format,
                language=checked.language,
                description=checked.description,
                enabled=checked.enabled,
                secret=checked.secret or found.secret,
            )
            updated = await people.update_endpoint_txn(conn, changed)
            now_ms = self._clock.now_ms()
            new_secret = changed.secret != found.secret
            entry = _endpoint_entry(AuditAction.WEBHOOK_CHANGED, admin, updated, now_ms, new_secret)
            await audit_store.record_txn(conn, entry)
            return updated

    async def remove_endpoint(self, admin: User, endpoint_id: str) -> None:
        Accounts.require_admin(admin)
        async with self._db.write("webhook-remove") as conn:
            found = await people.endpoint(conn, endpoint_id)
            if found is None or not await people.delete_endpoint_txn(conn, endpoint_id):
                raise NotFound(say("webhooks.unknown_endpoint"))
            await audit_store.record_txn(
                conn,
                _endpoint_entry(AuditAction.WEBHOOK_DELETED, admin, found, self._clock.now_ms()),
            )

    async def endpoints(self, admin: User) -> list[Endpoint]:
        Accounts.require_admin(admin)
        async with self._db.read() as conn:
            return await people.endpoints(conn)

    async def deliveries(
        self, admin: User, endpoint_id: str, before_ms: int | None, limit: int
    ) -> list[dict[str, Any]]:
        Accounts.require_admin(admin)
        async with self._db.read() as conn:
            if await people.endpoint(conn, endpoint_id) is None:
                raise NotFound(say("webhooks.unknown_endpoint"))
            return await store.endpoint_deliveries(conn, endpoint_id, before_ms, limit)


def _endpoint_entry(
    action: AuditAction, admin: User, endpoint: Endpoint, now_ms: int, new_secret: bool = False
) -> AuditEntry:
    """An endpoint as the audit log keeps it: where it points and what it carries, no secret."""
    details: dict[str, object] = {
        "url": endpoint.url,
        "topics": sorted(endpoint.topics),
        "format": str(endpoint.format),
        "enabled": endpoint.enabled,
    }
    if new_secret:
        details["secret_changed"] = True
    return AuditEntry(action, admin.id, endpoint.id, now_ms, None, details)
