"""Reading the hash chains back, a batch at a time, for proofs and dossiers.

Nothing here decides whether a chain holds (core/proof.py does); these reads
only hand the stored links over in seq order, so that a walk over millions of
messages keeps one batch in memory. Every read is indexed: conversations by
their primary key, messages by (conv_id, seq), edits by their message.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from orderchat.core.errors import NotFound
from orderchat.core.ids import ConversationId, UserId
from orderchat.core.model import UserKind
from orderchat.core.texts import say
from orderchat.storage.messages import StoredEdit, StoredMessage, stored_edit, stored_message
from orderchat.storage.schema import conversations, members, message_edits, messages, users


@dataclass(frozen=True, slots=True)
class ChainHead:
    """Where a conversation's chain must end: its last seq and the hash kept for it."""

    conv_id: ConversationId
    kind: str
    title: str | None
    last_seq: int
    last_hash: str


@dataclass(frozen=True, slots=True)
class ChainRow:
    """A message as stored, with every edit of it. A purged one (retention removed its
    content) keeps its hash only: its place in the chain, not its content, is proved."""

    message: StoredMessage
    edits: list[StoredEdit]
    purged: bool = False
    # Of a purged message and its edits (by version): the hash of the link before each.
    prev: str | None = None
    edit_prevs: dict[int, str | None] = field(default_factory=dict)


_HEAD_COLUMNS = (
    conversations.c.id,
    conversations.c.kind,
    conversations.c.title,
    conversations.c.last_seq,
    conversations.c.last_hash,
)


def _head(row: Sequence[object]) -> ChainHead:
    conv_id, kind, title, last_seq, last_hash = row
    return ChainHead(
        ConversationId(str(conv_id)),
        str(kind),
        None if title is None else str(title),
        int(str(last_seq)),
        str(last_hash),
    )


async def list_chain_heads(conn: AsyncConnection, after: str, limit: int) -> list[ChainHead]:
    """The next `limit` conversations by id after `after` ("" for the first)."""
    query = (
        select(*_HEAD_COLUMNS)
        .where(conversations.c.id > after)
        .order_by(conversations.c.id)
        .limit(limit)
    )
    return [_head(tuple(row)) for row in await conn.execute(query)]


async def get_chain_head(conn: AsyncConnection, conv_id: str) -> ChainHead:
    row = (await conn.execute(select(*_HEAD_COLUMNS).where(conversations.c.id == conv_id))).first()
    if row is None:
        raise NotFound(say("messaging.no_conversation", conv_id=conv_id))
    return _head(tuple(row))


async def count_links(conn: AsyncConnection) -> int:
    """Every link of every chain: each conversation's messages (seqs are gapless) and edits."""
    seqs = (await conn.execute(select(func.coalesce(func.sum(conversations.c.last_seq), 0)))).one()
    edits = (await conn.execute(select(func.count()).select_from(message_edits))).one()
    return int(seqs[0]) + int(edits[0])


async def chain_rows(
    conn: AsyncConnection, conv_id: str, after_seq: int, limit: int
) -> list[ChainRow]:
    """The next `limit` messages after `after_seq`, in seq order, each with its edits."""
    query = (
        select(messages)
        .where(messages.c.conv_id == conv_id, messages.c.seq > after_seq)
        .order_by(messages.c.seq)
        .limit(limit)
    )
    rows = list(await conn.execute(query))
    found = [stored_message(row) for row in rows]
    if not found:
        return []
    # Absent before retention's migration (0014): nothing was purged then.
    purged = {row.id for row in rows if getattr(row, "purged_at_ms", None) is not None}
    edits: dict[str, list[StoredEdit]] = defaultdict(list)
    edited = (
        select(message_edits)
        .join(messages, messages.c.id == message_edits.c.message_id)
        .where(
            messages.c.conv_id == conv_id,
            messages.c.seq > after_seq,
            messages.c.seq <= found[-1].message.seq,
        )
    )
    edit_prevs: dict[str, dict[int, str | None]] = defaultdict(dict)
    for row in await conn.execute(edited):
        edits[row.message_id].append(stored_edit(row))
        edit_prevs[row.message_id][row.version] = getattr(row, "purged_prev", None)
    prevs = {row.id: getattr(row, "purged_prev", None) for row in rows}
    return [
        ChainRow(
            m,
            edits.get(m.message.id, []),
            m.message.id in purged,
            prevs.get(m.message.id),
            edit_prevs.get(m.message.id, {}),
        )
        for m in found
    ]


async def member_reads(conn: AsyncConnection, conv_id: str) -> list[tuple[UserId, int, bool]]:
    """Everyone who was ever a member: how far they have read, and whether they are still in."""
    query = (
        select(members.c.user_id, members.c.read_seq, members.c.left_pos)
        .where(members.c.conv_id == conv_id)
        .order_by(members.c.joined_at_ms, members.c.user_id)
    )
    return [
        (UserId(row.user_id), int(row.read_seq), row.left_pos is None)
        for row in await conn.execute(query)
    ]


@dataclass(frozen=True, slots=True)
class Person:
    name: str
    staff: bool


async def people(conn: AsyncConnection, ids: Sequence[str]) -> dict[UserId, Person]:
    """The names people are shown as, and whether each is staff (unknown ids are left out)."""
    if not ids:
        return {}
    query = select(users.c.id, users.c.display_name, users.c.kind).where(
        users.c.id.in_(sorted(set(ids)))
    )
    return {
        UserId(row.id): Person(str(row.display_name), row.kind == UserKind.STAFF.value)
        for row in await conn.execute(query)
    }
