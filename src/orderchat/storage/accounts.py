"""Users and their sign-in sessions."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Row, bindparam, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from orderchat.core.errors import Conflict, NotFound
from orderchat.core.ids import SessionId, UserId
from orderchat.core.model import Role, Session, User, UserKind
from orderchat.core.texts import say
from orderchat.storage.schema import members, push_subscriptions, sessions, users


def _user(row: Row[Any], user_id: str | None = None) -> User:
    return User(
        id=UserId(user_id or row.id),
        username=row.username,
        display_name=row.display_name,
        roles=tuple(Role(r) for r in row.roles.split(",") if r),
        kind=UserKind(row.kind),
    )


async def insert_user_txn(
    conn: AsyncConnection, user: User, password_hash: str | None, now_ms: int
) -> None:
    """Raises Conflict when the username is taken."""
    try:
        await conn.execute(
            users.insert().values(
                id=user.id,
                username=user.username,
                display_name=user.display_name,
                password_hash=password_hash,
                roles=",".join(r.value for r in user.roles),
                kind=user.kind.value,
                created_at_ms=now_ms,
                disabled=False,
            )
        )
    except IntegrityError as exc:
        raise Conflict(say("accounts.username_taken", username=user.username)) from exc


async def find_login(conn: AsyncConnection, username: str) -> tuple[User, str | None] | None:
    row = (
        await conn.execute(
            select(users).where(users.c.username == username, users.c.disabled.is_(False))
        )
    ).first()
    return None if row is None else (_user(row), row.password_hash)


async def find_credentials(
    conn: AsyncConnection, username: str
) -> tuple[User, str | None, bool] | None:
    """The user, password hash and whether disabled, for sign-in; disabled users included."""
    row = (await conn.execute(select(users).where(users.c.username == username))).first()
    return None if row is None else (_user(row), row.password_hash, row.disabled)


async def get_staff_by_username(conn: AsyncConnection, username: str) -> tuple[User, bool]:
    """A staff user and whether disabled; raises NotFound."""
    row = (
        await conn.execute(
            select(users).where(users.c.username == username, users.c.kind == UserKind.STAFF.value)
        )
    ).first()
    if row is None:
        raise NotFound(say("accounts.no_staff_user", username=username))
    return _user(row), bool(row.disabled)


async def list_staff_accounts(conn: AsyncConnection) -> list[tuple[User, bool]]:
    """Every staff user, disabled ones too, with whether each is disabled."""
    query = select(users).where(users.c.kind == UserKind.STAFF.value).order_by(users.c.username)
    return [(_user(row), bool(row.disabled)) for row in await conn.execute(query)]


async def update_password_txn(conn: AsyncConnection, user_id: UserId, password_hash: str) -> None:
    await conn.execute(
        update(users).where(users.c.id == user_id).values(password_hash=password_hash)
    )


async def update_disabled_txn(conn: AsyncConnection, user_id: UserId, disabled: bool) -> None:
    await conn.execute(update(users).where(users.c.id == user_id).values(disabled=disabled))


async def update_roles_txn(conn: AsyncConnection, user_id: UserId, roles: tuple[Role, ...]) -> None:
    value = ",".join(r.value for r in roles)
    await conn.execute(update(users).where(users.c.id == user_id).values(roles=value))


async def get_user(conn: AsyncConnection, user_id: UserId) -> User:
    row = (await conn.execute(select(users).where(users.c.id == user_id))).first()
    if row is None:
        raise NotFound(say("accounts.no_user", user_id=user_id))
    return _user(row)


async def list_users(conn: AsyncConnection, kind: UserKind | None = None) -> list[User]:
    query = select(users).where(users.c.disabled.is_(False)).order_by(users.c.username)
    if kind is not None:
        query = query.where(users.c.kind == kind.value)
    return [_user(row) for row in await conn.execute(query)]


async def contacts(conn: AsyncConnection, user_id: UserId) -> list[User]:
    """Everyone who is now in a conversation with `user_id` (a customer's shop staff)."""
    mine = select(members.c.conv_id).where(
        members.c.user_id == user_id, members.c.left_pos.is_(None)
    )
    theirs = select(members.c.user_id).where(
        members.c.conv_id.in_(mine), members.c.left_pos.is_(None)
    )
    query = (
        select(users)
        .where(users.c.id.in_(theirs), users.c.disabled.is_(False))
        .order_by(users.c.display_name)
    )
    return [_user(row) for row in await conn.execute(query)]


async def existing_user_ids(conn: AsyncConnection, ids: list[UserId]) -> set[UserId]:
    if not ids:
        return set()
    rows = await conn.execute(
        select(users.c.id).where(users.c.id.in_(ids), users.c.disabled.is_(False))
    )
    return {UserId(row.id) for row in rows}


async def customer_ids(conn: AsyncConnection, ids: list[UserId]) -> set[UserId]:
    """Those of the ids that belong to customers."""
    if not ids:
        return set()
    rows = await conn.execute(
        select(users.c.id).where(users.c.id.in_(ids), users.c.kind == UserKind.CUSTOMER.value)
    )
    return {UserId(row.id) for row in rows}


async def insert_session_txn(
    conn: AsyncConnection,
    session_id: SessionId,
    user_id: UserId,
    token_hash: str,
    device: str,
    now_ms: int,
    expires_at_ms: int,
) -> None:
    await conn.execute(
        sessions.insert().values(
            id=session_id,
            user_id=user_id,
            token_hash=token_hash,
            device=device,
            created_at_ms=now_ms,
            expires_at_ms=expires_at_ms,
            revoked_at_ms=None,
        )
    )


_FIND_SESSION = (
    select(sessions, users)
    .join(users, users.c.id == sessions.c.user_id)
    .where(sessions.c.token_hash == bindparam("token_hash"), users.c.disabled.is_(False))
)


async def find_session(conn: AsyncConnection, token_hash: str) -> tuple[Session, User] | None:
    row = (await conn.execute(_FIND_SESSION, {"token_hash": token_hash})).first()
    if row is None:
        return None
    session = Session(
        id=SessionId(row.id),
        user_id=UserId(row.user_id),
        device=row.device,
        expires_at_ms=row.expires_at_ms,
        revoked_at_ms=row.revoked_at_ms,
    )
    return session, _user(row, row.user_id)


async def revoke_sessions_txn(
    conn: AsyncConnection, user_id: UserId, now_ms: int, session_id: SessionId | None = None
) -> list[SessionId]:
    """Revoke one session, or every live session of the user; return those revoked."""
    condition = [sessions.c.user_id == user_id, sessions.c.revoked_at_ms.is_(None)]
    if session_id is not None:
        condition.append(sessions.c.id == session_id)
    ids = [SessionId(r.id) for r in await conn.execute(select(sessions.c.id).where(*condition))]
    if ids:
        await conn.execute(
            update(sessions).where(sessions.c.id.in_(ids)).values(revoked_at_ms=now_ms)
        )
        # A signed-out device hears nothing more, not even on its lock screen.
        await conn.execute(
            delete(push_subscriptions).where(push_subscriptions.c.session_id.in_(ids))
        )
    return ids


async def is_active_staff(conn: AsyncConnection, user_id: UserId) -> bool:
    query = select(users.c.id).where(
        users.c.id == user_id,
        users.c.kind == UserKind.STAFF.value,
        users.c.disabled.is_(False),
    )
    return (await conn.execute(query)).first() is not None


async def staff_with_roles(conn: AsyncConnection, roles: Iterable[Role]) -> list[UserId]:
    """Active staff holding any of these roles (admins only when asked for)."""
    wanted = {r.value for r in roles}
    query = select(users.c.id, users.c.roles).where(
        users.c.kind == UserKind.STAFF.value, users.c.disabled.is_(False)
    )
    return [
        UserId(r.id)
        for r in await conn.execute(query.order_by(users.c.created_at_ms, users.c.id))
        if wanted.intersection(r.roles.split(","))
    ]
