"""Conversations and their members."""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Row, and_, bindparam, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from orderchat.core.errors import Conflict, NotFound
from orderchat.core.ids import ConversationId, UserId
from orderchat.core.model import Conversation, ConversationKind, Role, UserKind
from orderchat.core.texts import say
from orderchat.storage import prebuilt
from orderchat.storage.schema import conversations, members, users


@dataclass(frozen=True, slots=True)
class MemberSet:
    """The current members of one conversation, with what mentions need to know."""

    roles: dict[UserId, tuple[Role, ...]]
    usernames: dict[str, UserId]
    customers: set[UserId] = field(default_factory=set)

    @property
    def staff(self) -> frozenset[UserId]:
        return frozenset(u for u in self.roles if u not in self.customers)


@dataclass(frozen=True, slots=True)
class Membership:
    read_seq: int
    left_pos: int | None


def _conversation(row: Row[Any]) -> Conversation:
    return _conversation_of([getattr(row, name) for name in _HEAD_COLUMNS])


async def insert_conversation_txn(
    conn: AsyncConnection,
    conv: Conversation,
    direct_key: str | None,
    role_channel: str | None = None,
) -> None:
    """Raises Conflict when the direct pair already has its conversation."""
    try:
        async with conn.begin_nested():
            await conn.execute(
                conversations.insert().values(
                    id=conv.id,
                    kind=conv.kind.value,
                    title=conv.title,
                    created_by=conv.created_by,
                    created_at_ms=conv.created_at_ms,
                    last_seq=conv.last_seq,
                    last_activity_ms=conv.last_activity_ms,
                    direct_key=direct_key,
                    last_hash=conv.last_hash,
                    role_channel=role_channel,
                )
            )
    except IntegrityError as exc:
        raise Conflict(say("conversations.direct_conversation_exists_already")) from exc


async def find_direct(conn: AsyncConnection, key: str) -> ConversationId | None:
    row = (
        await conn.execute(select(conversations.c.id).where(conversations.c.direct_key == key))
    ).first()
    return None if row is None else ConversationId(row.id)


async def find_role_channel(conn: AsyncConnection, role: str) -> ConversationId | None:
    query = select(conversations.c.id).where(conversations.c.role_channel == role)
    row = (await conn.execute(query)).first()
    return None if row is None else ConversationId(row.id)


async def get_conversation(conn: AsyncConnection, conv_id: str) -> Conversation:
    row = (await conn.execute(select(conversations).where(conversations.c.id == conv_id))).first()
    if row is None:
        raise NotFound(say("messaging.no_conversation", conv_id=conv_id))
    return _conversation(row)


async def lock_conversations_txn(
    conn: AsyncConnection, conv_ids: Iterable[str]
) -> dict[ConversationId, tuple[Conversation, int]]:
    """Read and lock the conversations a batch writes to, with their members_version.

    The lock is what keeps per-conversation sequence numbers gapless: with
    SQLite, the single writer (the transaction began with BEGIN IMMEDIATE);
    with PostgreSQL, the rows themselves, FOR UPDATE, taken in id order so that
    two nodes locking overlapping sets wait rather than deadlock. This is the
    writer's hottest read, so on SQLite it goes straight to the driver.
    """
    ids = sorted(conv_ids)
    found: Sequence[Sequence[Any]]
    if conn.dialect.name == "postgresql":
        found = list(await conn.execute(_PG_LOCK_CONVERSATIONS, {"ids": ids}))
    else:
        found = await prebuilt.fetch(conn, _sqlite_lock_conversations(len(ids)), tuple(ids))
    return {ConversationId(r[0]): (_conversation_of(r[:-1]), int(r[-1])) for r in found}


async def bump_members_version_txn(conn: AsyncConnection, conv_ids: Sequence[str]) -> None:
    """Say that these conversations' members (or their roles) changed in this transaction."""
    await conn.execute(
        update(conversations)
        .where(conversations.c.id.in_(list(conv_ids)))
        .values(members_version=conversations.c.members_version + 1)
    )


_HEAD_COLUMNS = (
    "id",
    "kind",
    "title",
    "created_by",
    "created_at_ms",
    "last_seq",
    "last_activity_ms",
    "last_hash",
)


def _conversation_of(row: Sequence[Any]) -> Conversation:
    conv_id, kind, title, created_by, created_at_ms, last_seq, last_activity_ms, last_hash = row
    return Conversation(
        id=ConversationId(conv_id),
        kind=ConversationKind(kind),
        title=title,
        created_by=None if created_by is None else UserId(created_by),
        created_at_ms=created_at_ms,
        last_seq=last_seq,
        last_activity_ms=last_activity_ms,
        last_hash=last_hash,
    )


@functools.lru_cache(maxsize=64)
def _sqlite_lock_conversations(count: int) -> str:
    columns = ", ".join(_HEAD_COLUMNS)
    marks = ", ".join(["?"] * count)
    return f"SELECT {columns}, members_version FROM conversations WHERE id IN ({marks}) ORDER BY id"


_PG_LOCK_CONVERSATIONS = text(
    f"SELECT {', '.join(_HEAD_COLUMNS)}, members_version FROM conversations"
    " WHERE id = ANY(:ids) ORDER BY id FOR UPDATE"
)


_SET_HEAD = (
    update(conversations)
    .where(conversations.c.id == bindparam("b_id"))
    .values(
        last_seq=bindparam("b_seq"),
        last_activity_ms=bindparam("b_ms"),
        last_hash=bindparam("b_hash"),
    )
)


async def set_heads_txn(conn: AsyncConnection, heads: Sequence[Conversation]) -> None:
    if not heads:
        return
    await prebuilt.run(
        conn,
        _SET_HEAD,
        [
            {"b_id": c.id, "b_seq": c.last_seq, "b_ms": c.last_activity_ms, "b_hash": c.last_hash}
            for c in heads
        ],
    )


async def member_sets(
    conn: AsyncConnection, conv_ids: Iterable[str]
) -> dict[ConversationId, MemberSet]:
    query = (
        select(members.c.conv_id, users.c.id, users.c.username, users.c.roles, users.c.kind)
        .join(users, users.c.id == members.c.user_id)
        .where(members.c.conv_id.in_(list(conv_ids)), members.c.left_pos.is_(None))
    )
    found: dict[ConversationId, MemberSet] = defaultdict(lambda: MemberSet({}, {}))
    for row in await conn.execute(query):
        entry = found[ConversationId(row.conv_id)]
        user_id = UserId(row.id)
        entry.roles[user_id] = tuple(Role(r) for r in row.roles.split(",") if r)
        entry.usernames[row.username] = user_id
        if row.kind == UserKind.CUSTOMER.value:
            entry.customers.add(user_id)
    return dict(found)


async def users_ever_in(conn: AsyncConnection, conv_ids: Sequence[str]) -> set[UserId]:
    """Everyone who is or was a member of these conversations (a removal reaches the removed)."""
    if not conv_ids:
        return set()
    query = select(members.c.user_id).where(members.c.conv_id.in_(list(conv_ids))).distinct()
    return {UserId(r.user_id) for r in await conn.execute(query)}


async def find_membership(
    conn: AsyncConnection, conv_id: str, user_id: UserId
) -> Membership | None:
    row = (
        await conn.execute(
            select(members.c.read_seq, members.c.left_pos).where(
                members.c.conv_id == conv_id, members.c.user_id == user_id
            )
        )
    ).first()
    return None if row is None else Membership(row.read_seq, row.left_pos)


async def add_members_txn(
    conn: AsyncConnection,
    conv_id: str,
    user_ids: Sequence[UserId],
    pos: int,
    now_ms: int,
    *,
    by_role: bool = False,
) -> None:
    """Make users members from stream position `pos` on; former members rejoin.

    `by_role` records that a role brought them in, so losing it takes them out.
    """
    former = {
        UserId(r.user_id)
        for r in await conn.execute(
            select(members.c.user_id).where(
                members.c.conv_id == conv_id, members.c.user_id.in_(list(user_ids))
            )
        )
    }
    fresh = [u for u in user_ids if u not in former]
    if fresh:
        await conn.execute(
            members.insert(),
            [
                {
                    "conv_id": conv_id,
                    "user_id": u,
                    "joined_pos": pos,
                    "left_pos": None,
                    "read_seq": 0,
                    "joined_at_ms": now_ms,
                    "by_role": by_role,
                }
                for u in fresh
            ],
        )
    if former:
        await conn.execute(
            update(members)
            .where(members.c.conv_id == conv_id, members.c.user_id.in_(list(former)))
            .values(joined_pos=pos, left_pos=None, joined_at_ms=now_ms, by_role=by_role)
        )


async def remove_member_txn(conn: AsyncConnection, conv_id: str, user_id: UserId, pos: int) -> None:
    await conn.execute(
        update(members)
        .where(members.c.conv_id == conv_id, members.c.user_id == user_id)
        .values(left_pos=pos)
    )


async def rename_txn(conn: AsyncConnection, conv_id: str, title: str) -> None:
    await conn.execute(
        update(conversations).where(conversations.c.id == conv_id).values(title=title)
    )


async def advance_reads_txn(
    conn: AsyncConnection, reads: Sequence[tuple[str, UserId, int]]
) -> None:
    """Move read marks forward (never back) for (conversation, user, seq) triples."""
    if not reads:
        return
    await prebuilt.run(
        conn, _ADVANCE_READ, [{"b_conv": c, "b_user": u, "b_seq": s} for c, u, s in reads]
    )


_ADVANCE_READ = (
    update(members)
    .where(
        and_(
            members.c.conv_id == bindparam("b_conv"),
            members.c.user_id == bindparam("b_user"),
            members.c.read_seq < bindparam("b_seq"),
        )
    )
    .values(read_seq=bindparam("b_seq"))
)


async def list_member_reads(conn: AsyncConnection, conv_id: str) -> dict[UserId, int]:
    rows = await conn.execute(
        select(members.c.user_id, members.c.read_seq).where(
            members.c.conv_id == conv_id, members.c.left_pos.is_(None)
        )
    )
    return {UserId(r.user_id): r.read_seq for r in rows}


@dataclass(frozen=True, slots=True)
class ListedConversation:
    conv: Conversation
    read_seq: int
    members: list[UserId]


async def list_for_user(conn: AsyncConnection, user_id: UserId) -> list[ListedConversation]:
    """The user's conversations, most recent activity first."""
    query = (
        select(conversations, members.c.read_seq)
        .join(members, members.c.conv_id == conversations.c.id)
        .where(members.c.user_id == user_id, members.c.left_pos.is_(None))
        .order_by(conversations.c.last_activity_ms.desc(), conversations.c.id)
    )
    rows = list(await conn.execute(query))
    everyone = await member_lists(conn, [r.id for r in rows])
    return [ListedConversation(_conversation(r), r.read_seq, everyone.get(r.id, [])) for r in rows]


async def member_lists(conn: AsyncConnection, conv_ids: list[str]) -> dict[str, list[UserId]]:
    found: dict[str, list[UserId]] = defaultdict(list)
    if conv_ids:
        query = (
            select(members.c.conv_id, members.c.user_id)
            .where(members.c.conv_id.in_(conv_ids), members.c.left_pos.is_(None))
            .order_by(members.c.joined_at_ms, members.c.user_id)
        )
        for row in await conn.execute(query):
            found[row.conv_id].append(UserId(row.user_id))
    return found
