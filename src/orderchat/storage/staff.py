"""What the admin console reads and writes beyond the accounts themselves: one-time
staff links (invitations and password resets), session counts, and the
memberships a role brings with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, and_, case, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from orderchat.core.ids import ConversationId, UserId
from orderchat.core.model import Role, UserKind
from orderchat.storage.schema import conversations, members, orders, sessions, staff_links, users


@dataclass(frozen=True, slots=True)
class StaffLink:
    id: str
    kind: str  # "invite" or "reset"
    username: str
    display_name: str | None
    roles: tuple[Role, ...]
    user_id: UserId | None
    created_by: UserId | None
    created_at_ms: int
    expires_at_ms: int
    used_at_ms: int | None
    revoked_at_ms: int | None


def _link(row: Row[Any]) -> StaffLink:
    return StaffLink(
        id=row.id,
        kind=row.kind,
        username=row.username,
        display_name=row.display_name,
        roles=tuple(Role(r) for r in row.roles.split(",") if r),
        user_id=None if row.user_id is None else UserId(row.user_id),
        created_by=None if row.created_by is None else UserId(row.created_by),
        created_at_ms=row.created_at_ms,
        expires_at_ms=row.expires_at_ms,
        used_at_ms=row.used_at_ms,
        revoked_at_ms=row.revoked_at_ms,
    )


async def insert_link_txn(conn: AsyncConnection, link: StaffLink, token_hash: str) -> None:
    await conn.execute(
        staff_links.insert().values(
            id=link.id,
            token_hash=token_hash,
            kind=link.kind,
            username=link.username,
            display_name=link.display_name,
            roles=",".join(r.value for r in link.roles),
            user_id=link.user_id,
            created_by=link.created_by,
            created_at_ms=link.created_at_ms,
            expires_at_ms=link.expires_at_ms,
            used_at_ms=None,
            revoked_at_ms=None,
        )
    )


async def find_link(conn: AsyncConnection, token_hash: str) -> StaffLink | None:
    row = (
        await conn.execute(select(staff_links).where(staff_links.c.token_hash == token_hash))
    ).first()
    return None if row is None else _link(row)


async def mark_link_used_txn(
    conn: AsyncConnection, link_id: str, user_id: UserId, now_ms: int
) -> bool:
    """Use the link once: False when another request used or revoked it first."""
    result = await conn.execute(
        update(staff_links)
        .where(
            staff_links.c.id == link_id,
            staff_links.c.used_at_ms.is_(None),
            staff_links.c.revoked_at_ms.is_(None),
        )
        .values(used_at_ms=now_ms, user_id=user_id)
    )
    return bool(result.rowcount)


async def revoke_open_links_txn(
    conn: AsyncConnection, kind: str, username: str, now_ms: int
) -> None:
    """A new link of this kind for this person replaces the ones not used yet."""
    await conn.execute(
        update(staff_links)
        .where(
            staff_links.c.kind == kind,
            staff_links.c.username == username,
            staff_links.c.used_at_ms.is_(None),
            staff_links.c.revoked_at_ms.is_(None),
        )
        .values(revoked_at_ms=now_ms)
    )


@dataclass(frozen=True, slots=True)
class SessionStats:
    active: int
    last_sign_in_ms: int | None


async def session_stats(conn: AsyncConnection, now_ms: int) -> dict[UserId, SessionStats]:
    """Per staff user: live sessions now, and when they last signed in."""
    is_live = and_(sessions.c.revoked_at_ms.is_(None), sessions.c.expires_at_ms > now_ms)
    live = func.sum(case((is_live, 1), else_=0))
    query = select(sessions.c.user_id, live, func.max(sessions.c.created_at_ms)).group_by(
        sessions.c.user_id
    )
    return {
        UserId(row[0]): SessionStats(int(row[1] or 0), row[2]) for row in await conn.execute(query)
    }


async def count_enabled_admins(conn: AsyncConnection) -> int:
    query = select(users.c.roles).where(
        users.c.kind == UserKind.STAFF.value, users.c.disabled.is_(False)
    )
    return sum(1 for row in await conn.execute(query) if Role.ADMIN.value in row.roles.split(","))


@dataclass(frozen=True, slots=True)
class OrderThread:
    conv_id: ConversationId
    workflow: str
    status: str
    created_by: UserId


async def list_order_threads(conn: AsyncConnection) -> list[OrderThread]:
    """Every order's thread with its workflow and status; the caller decides which are open."""
    query = select(orders.c.conv_id, orders.c.workflow, orders.c.status, orders.c.created_by)
    return [
        OrderThread(ConversationId(r.conv_id), r.workflow, r.status, UserId(r.created_by))
        for r in await conn.execute(query.order_by(orders.c.created_at_ms, orders.c.id))
    ]


@dataclass(frozen=True, slots=True)
class Joined:
    conv_id: ConversationId
    by_role: bool
    created_by: UserId | None
    role_channel: str | None


async def current_memberships(conn: AsyncConnection, user_id: UserId) -> list[Joined]:
    query = (
        select(
            members.c.conv_id,
            members.c.by_role,
            conversations.c.created_by,
            conversations.c.role_channel,
        )
        .join(conversations, conversations.c.id == members.c.conv_id)
        .where(members.c.user_id == user_id, members.c.left_pos.is_(None))
    )
    return [
        Joined(ConversationId(r.conv_id), bool(r.by_role), r.created_by, r.role_channel)
        for r in await conn.execute(query)
    ]


async def mark_by_role_txn(conn: AsyncConnection, conv_id: str, user_ids: list[UserId]) -> None:
    """These members are in the conversation for their roles (an order's staff)."""
    if user_ids:
        await conn.execute(
            update(members)
            .where(members.c.conv_id == conv_id, members.c.user_id.in_(user_ids))
            .values(by_role=True)
        )
