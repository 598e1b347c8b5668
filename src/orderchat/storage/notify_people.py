"""The rows of who can be reached how: preferences, push subscriptions, webhook endpoints."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from orderchat.core.ids import SessionId, UserId
from orderchat.core.notify import Preferences, QuietHours, parse_off
from orderchat.storage.schema import (
    customers,
    notifications,
    notify_preferences,
    push_subscriptions,
    server_keys,
    sessions,
    users,
    webhook_endpoints,
)

# --- preferences ------------------------------------------------------------------------


def _preferences(row: Any) -> Preferences:
    quiet = None
    if row.quiet is not None:
        q = orjson.loads(row.quiet)
        quiet = QuietHours(q["start_min"], q["end_min"], q["utc_offset_min"])
    return Preferences(
        off=parse_off(orjson.loads(row.off)), quiet=quiet, email=row.email, language=row.language
    )


async def preferences(conn: AsyncConnection, user_ids: Iterable[str]) -> dict[UserId, Preferences]:
    wanted = sorted(set(user_ids))
    if not wanted:
        return {}
    rows = await conn.execute(
        select(notify_preferences).where(notify_preferences.c.user_id.in_(wanted))
    )
    return {UserId(row.user_id): _preferences(row) for row in rows}


async def save_preferences_txn(
    conn: AsyncConnection, user_id: UserId, prefs: Preferences, now_ms: int
) -> None:
    values = {
        "email": prefs.email,
        "language": prefs.language,
        "off": orjson.dumps(
            {o.value: sorted(c.value for c in chans) for o, chans in prefs.off.items() if chans}
        ).decode(),
        "quiet": None
        if prefs.quiet is None
        else orjson.dumps(
            {
                "start_min": prefs.quiet.start_min,
                "end_min": prefs.quiet.end_min,
                "utc_offset_min": prefs.quiet.utc_offset_min,
            }
        ).decode(),
        "updated_at_ms": now_ms,
    }
    changed = await conn.execute(
        update(notify_preferences).where(notify_preferences.c.user_id == user_id).values(values)
    )
    if changed.rowcount == 0:
        await conn.execute(insert(notify_preferences).values(user_id=user_id, **values))


# --- push subscriptions -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Subscription:
    id: str
    user_id: UserId
    session_id: SessionId
    endpoint: str
    p256dh: str
    auth: str
    created_at_ms: int


def _subscription(row: Any) -> Subscription:
    return Subscription(
        id=row.id,
        user_id=UserId(row.user_id),
        session_id=SessionId(row.session_id),
        endpoint=row.endpoint,
        p256dh=row.p256dh,
        auth=row.auth,
        created_at_ms=row.created_at_ms,
    )


async def save_subscription_txn(conn: AsyncConnection, sub: Subscription) -> Subscription:
    """Store a device's subscription; the same endpoint again moves it to this session."""
    await conn.execute(
        delete(push_subscriptions).where(push_subscriptions.c.endpoint == sub.endpoint)
    )
    await conn.execute(
        insert(push_subscriptions).values(
            id=sub.id,
            user_id=sub.user_id,
            session_id=sub.session_id,
            endpoint=sub.endpoint,
            p256dh=sub.p256dh,
            auth=sub.auth,
            created_at_ms=sub.created_at_ms,
        )
    )
    return sub


async def delete_subscription_txn(conn: AsyncConnection, user_id: str, endpoint: str) -> bool:
    result = await conn.execute(
        delete(push_subscriptions).where(
            push_subscriptions.c.user_id == user_id, push_subscriptions.c.endpoint == endpoint
        )
    )
    return bool(result.rowcount)


async def delete_subscriptions_of_sessions_txn(
    conn: AsyncConnection, session_ids: Iterable[str]
) -> None:
    ids = sorted(set(session_ids))
    if ids:
        await conn.execute(
            delete(push_subscriptions).where(push_subscriptions.c.session_id.in_(ids))
        )


async def prune_subscription_txn(conn: AsyncConnection, subscription_id: str) -> None:
    await conn.execute(delete(push_subscriptions).where(push_subscriptions.c.id == subscription_id))


async def subscriptions_of(conn: AsyncConnection, user_id: str, now_ms: int) -> list[Subscription]:
    """A person's live subscriptions: their session still signed in and unexpired."""
    rows = await conn.execute(
        select(push_subscriptions)
        .join(sessions, sessions.c.id == push_subscriptions.c.session_id)
        .where(
            push_subscriptions.c.user_id == user_id,
            sessions.c.revoked_at_ms.is_(None),
            sessions.c.expires_at_ms > now_ms,
        )
        .order_by(push_subscriptions.c.created_at_ms)
    )
    return [_subscription(row) for row in rows]


async def devices_of(conn: AsyncConnection, user_id: str, now_ms: int) -> list[dict[str, Any]]:
    """The person's signed-in devices, each with whether it takes web push."""
    rows = await conn.execute(
        select(
            sessions.c.id,
            sessions.c.device,
            sessions.c.created_at_ms,
            func.count(push_subscriptions.c.id).label("push"),
        )
        .outerjoin(push_subscriptions, push_subscriptions.c.session_id == sessions.c.id)
        .where(
            sessions.c.user_id == user_id,
            sessions.c.revoked_at_ms.is_(None),
            sessions.c.expires_at_ms > now_ms,
        )
        .group_by(sessions.c.id, sessions.c.device, sessions.c.created_at_ms)
        .order_by(sessions.c.created_at_ms)
    )
    return [dict(row._mapping) for row in rows]


# --- webhook endpoints ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Endpoint:
    id: str
    url: str
    secret: str
    topics: frozenset[str]
    format: str
    language: str
    description: str
    enabled: bool
    created_by: UserId
    created_at_ms: int


def _endpoint(row: Any) -> Endpoint:
    return Endpoint(
        id=row.id,
        url=row.url,
        secret=row.secret,
        topics=frozenset(orjson.loads(row.topics)),
        format=row.format,
        language=row.language,
        description=row.description,
        enabled=bool(row.enabled),
        created_by=UserId(row.created_by),
        created_at_ms=row.created_at_ms,
    )


async def insert_endpoint_txn(conn: AsyncConnection, endpoint: Endpoint) -> Endpoint:
    await conn.execute(insert(webhook_endpoints).values(_endpoint_values(endpoint)))
    return endpoint


async def update_endpoint_txn(conn: AsyncConnection, endpoint: Endpoint) -> Endpoint:
    await conn.execute(
        update(webhook_endpoints)
        .where(webhook_endpoints.c.id == endpoint.id)
        .values(_endpoint_values(endpoint))
    )
    return endpoint


def _endpoint_values(endpoint: Endpoint) -> dict[str, Any]:
    return {
        "id": endpoint.id,
        "url": endpoint.url,
        "secret": endpoint.secret,
        "topics": orjson.dumps(sorted(endpoint.topics)).decode(),
        "format": endpoint.format,
        "language": endpoint.language,
        "description": endpoint.description,
        "enabled": endpoint.enabled,
        "created_by": endpoint.created_by,
        "created_at_ms": endpoint.created_at_ms,
    }


async def delete_endpoint_txn(conn: AsyncConnection, endpoint_id: str) -> bool:
    """Remove an endpoint; its deliveries still waiting are cancelled, its log is kept."""
    await conn.execute(
        update(notifications)
        .where(notifications.c.endpoint_id == endpoint_id, notifications.c.state == "pending")
        .values(state="cancelled", outcome="endpoint removed", claimed_until_ms=0)
    )
    result = await conn.execute(
        delete(webhook_endpoints).where(webhook_endpoints.c.id == endpoint_id)
    )
    return bool(result.rowcount)


async def endpoints(conn: AsyncConnection, only_enabled: bool = False) -> list[Endpoint]:
    query = select(webhook_endpoints).order_by(webhook_endpoints.c.created_at_ms)
    if only_enabled:
        query = query.where(webhook_endpoints.c.enabled.is_(True))
    return [_endpoint(row) for row in await conn.execute(query)]


async def endpoint(conn: AsyncConnection, endpoint_id: str) -> Endpoint | None:
    row = (
        await conn.execute(select(webhook_endpoints).where(webhook_endpoints.c.id == endpoint_id))
    ).first()
    return None if row is None else _endpoint(row)


# --- keys the nodes share ---------------------------------------------------------------


async def server_key(conn: AsyncConnection, name: str) -> str | None:
    return (
        await conn.execute(select(server_keys.c.value).where(server_keys.c.name == name))
    ).scalar()


async def offer_server_key_txn(conn: AsyncConnection, name: str, value: str, now_ms: int) -> str:
    """Store `value` under `name` unless a node stored one first; the stored one wins."""
    found = await server_key(conn, name)
    if found is not None:
        return found
    try:
        async with conn.begin_nested():
            await conn.execute(
                insert(server_keys).values(name=name, value=value, created_at_ms=now_ms)
            )
    except IntegrityError:
        return str(await server_key(conn, name))
    return value


async def email_addresses(conn: AsyncConnection, user_ids: Iterable[str]) -> dict[UserId, str]:
    """Each person's address: their own choice first, else a customer's address on file."""
    wanted = sorted(set(user_ids))
    if not wanted:
        return {}
    found: dict[UserId, str] = {}
    for row in await conn.execute(
        select(customers.c.user_id, customers.c.email).where(
            customers.c.user_id.in_(wanted), customers.c.email.is_not(None)
        )
    ):
        if row.email:
            found[UserId(row.user_id)] = row.email
    for row in await conn.execute(
        select(notify_preferences.c.user_id, notify_preferences.c.email).where(
            notify_preferences.c.user_id.in_(wanted), notify_preferences.c.email.is_not(None)
        )
    ):
        if row.email:
            found[UserId(row.user_id)] = row.email
    return found


async def display_names(conn: AsyncConnection, user_ids: Iterable[str]) -> dict[UserId, str]:
    wanted = sorted(set(user_ids))
    if not wanted:
        return {}
    rows = await conn.execute(
        select(users.c.id, users.c.display_name).where(users.c.id.in_(wanted))
    )
    return {UserId(row.id): row.display_name for row in rows}
