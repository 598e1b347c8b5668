"""One person's own settings of a conversation (pinned, muted), and urgent handling.

Both are rare writes beside the message stream, so they live in tables of
their own (migration 0008) and never slow the writer's batched inserts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from orderchat.core.errors import Conflict
from orderchat.core.ids import ConversationId, UserId
from orderchat.core.texts import say
from orderchat.storage.schema import member_settings, messages, urgent_handled


@dataclass(frozen=True, slots=True)
class MemberSettings:
    pinned_at_ms: int | None = None
    muted: bool = False

    @property
    def pinned(self) -> bool:
        return self.pinned_at_ms is not None


NO_SETTINGS = MemberSettings()


async def find_settings(conn: AsyncConnection, conv_id: str, user_id: UserId) -> MemberSettings:
    row = (
        await conn.execute(
            select(member_settings.c.pinned_at_ms, member_settings.c.muted).where(
                member_settings.c.conv_id == conv_id, member_settings.c.user_id == user_id
            )
        )
    ).first()
    return NO_SETTINGS if row is None else MemberSettings(row.pinned_at_ms, bool(row.muted))


async def settings_for_user(
    conn: AsyncConnection, user_id: UserId, conv_ids: Sequence[str]
) -> dict[str, MemberSettings]:
    if not conv_ids:
        return {}
    rows = await conn.execute(
        select(
            member_settings.c.conv_id, member_settings.c.pinned_at_ms, member_settings.c.muted
        ).where(member_settings.c.user_id == user_id, member_settings.c.conv_id.in_(conv_ids))
    )
    return {r.conv_id: MemberSettings(r.pinned_at_ms, bool(r.muted)) for r in rows}


async def save_settings_txn(
    conn: AsyncConnection, conv_id: str, user_id: UserId, settings: MemberSettings
) -> None:
    found = await conn.execute(
        update(member_settings)
        .where(member_settings.c.conv_id == conv_id, member_settings.c.user_id == user_id)
        .values(pinned_at_ms=settings.pinned_at_ms, muted=settings.muted)
    )
    if found.rowcount == 0:
        await conn.execute(
            member_settings.insert().values(
                conv_id=conv_id,
                user_id=user_id,
                pinned_at_ms=settings.pinned_at_ms,
                muted=settings.muted,
            )
        )


# --- urgent messages and their handling -----------------------------------------------


@dataclass(frozen=True, slots=True)
class UrgentMessage:
    seq: int
    sender: UserId
    ts: int
    internal: bool
    handled_by: UserId | None
    handled_at_ms: int | None


def _urgent_query(include_internal: bool) -> Select[Any]:
    query = (
        select(
            messages.c.conv_id,
            messages.c.seq,
            messages.c.sender_id,
            messages.c.ts,
            messages.c.internal,
            urgent_handled.c.handled_by,
            urgent_handled.c.handled_at_ms,
        )
        .outerjoin(
            urgent_handled,
            and_(
                urgent_handled.c.conv_id == messages.c.conv_id,
                urgent_handled.c.seq == messages.c.seq,
            ),
        )
        .where(messages.c.urgent.is_(True), messages.c.recalled_at_ms.is_(None))
    )
    if not include_internal:
        query = query.where(messages.c.internal.is_(False))
    return query


async def list_urgent(
    conn: AsyncConnection, conv_id: str, include_internal: bool, limit: int
) -> list[UrgentMessage]:
    """A conversation's urgent messages (recalled ones aside), newest first."""
    query = (
        _urgent_query(include_internal)
        .where(messages.c.conv_id == conv_id)
        .order_by(messages.c.seq.desc())
        .limit(limit)
    )
    return [
        UrgentMessage(
            r.seq,
            UserId(r.sender_id),
            r.ts,
            bool(r.internal),
            None if r.handled_by is None else UserId(r.handled_by),
            r.handled_at_ms,
        )
        for r in await conn.execute(query)
    ]


async def open_urgent(
    conn: AsyncConnection, conv_ids: Sequence[str], include_internal: bool
) -> dict[ConversationId, list[tuple[int, UserId]]]:
    """Per conversation, the (seq, sender) of urgent messages nobody has handled yet."""
    if not conv_ids:
        return {}
    query = _urgent_query(include_internal).where(
        messages.c.conv_id.in_(list(conv_ids)), urgent_handled.c.seq.is_(None)
    )
    found: dict[ConversationId, list[tuple[int, UserId]]] = {}
    for r in await conn.execute(query):
        found.setdefault(ConversationId(r.conv_id), []).append((r.seq, UserId(r.sender_id)))
    return found


async def insert_handled_txn(
    conn: AsyncConnection, conv_id: str, seq: int, by: UserId, now_ms: int
) -> None:
    """Raises Conflict when someone handled it first."""
    try:
        async with conn.begin_nested():
            await conn.execute(
                urgent_handled.insert().values(
                    conv_id=conv_id, seq=seq, handled_by=by, handled_at_ms=now_ms
                )
            )
    except IntegrityError as exc:
        raise Conflict(say("attention.urgent_handled_already")) from exc


async def find_handled(conn: AsyncConnection, conv_id: str, seq: int) -> tuple[UserId, int] | None:
    row = (
        await conn.execute(
            select(urgent_handled.c.handled_by, urgent_handled.c.handled_at_ms).where(
                urgent_handled.c.conv_id == conv_id, urgent_handled.c.seq == seq
            )
        )
    ).first()
    return None if row is None else (UserId(row.handled_by), row.handled_at_ms)
