"""What the conversation list's filters need: unread mentions, open order
exceptions, and whose turn it is in an order's thread.

Each query is bounded by the conversations asked about and, for mentions, by
the unread range of each (the (conv_id, seq) index).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import orjson
from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from orderchat.core.ids import ConversationId, UserId
from orderchat.core.model import CLIENT_KINDS, UserKind
from orderchat.storage.schema import (
    confirmation_items,
    members,
    messages,
    order_issues,
    orders,
    users,
)


async def unread_mentions(
    conn: AsyncConnection, user_id: UserId, conv_ids: Sequence[str], include_internal: bool
) -> dict[ConversationId, list[tuple[str, ...]]]:
    """Per conversation, the mention tokens of others' unread, unrecalled messages."""
    if not conv_ids:
        return {}
    query = (
        select(messages.c.conv_id, messages.c.mentions)
        .join(
            members,
            and_(members.c.conv_id == messages.c.conv_id, members.c.user_id == user_id),
        )
        .where(
            messages.c.conv_id.in_(list(conv_ids)),
            messages.c.seq > members.c.read_seq,
            messages.c.sender_id != user_id,
            messages.c.recalled_at_ms.is_(None),
            messages.c.mentions != "[]",
        )
    )
    if not include_internal:
        query = query.where(messages.c.internal.is_(False))
    found: dict[ConversationId, list[tuple[str, ...]]] = {}
    for row in await conn.execute(query):
        tokens = tuple(str(t) for t in orjson.loads(row.mentions))
        found.setdefault(ConversationId(row.conv_id), []).append(tokens)
    return found


async def open_issue_kinds(
    conn: AsyncConnection, conv_ids: Sequence[str]
) -> dict[ConversationId, list[str]]:
    """Per order conversation, the kinds of its exceptions not yet settled."""
    if not conv_ids:
        return {}
    query = (
        select(orders.c.conv_id, order_issues.c.kind)
        .join(order_issues, order_issues.c.order_id == orders.c.id)
        .where(orders.c.conv_id.in_(list(conv_ids)), order_issues.c.outcome.is_(None))
    )
    found: dict[ConversationId, list[str]] = {}
    for row in await conn.execute(query):
        found.setdefault(ConversationId(row.conv_id), []).append(row.kind)
    return found


@dataclass(frozen=True, slots=True)
class LastWord:
    """The last message a person wrote in a conversation that its customer can see."""

    seq: int
    sender: UserId
    by_staff: bool


async def last_public_words(
    conn: AsyncConnection, conv_ids: Sequence[str]
) -> dict[ConversationId, LastWord]:
    """Per conversation, the newest customer-visible message a person wrote.

    Server-made messages (order events, system notes) and recalled ones do not
    count: they say nothing about whose turn it is.
    """
    if not conv_ids:
        return {}
    kinds = [k.value for k in CLIENT_KINDS]
    newest = (
        select(messages.c.conv_id, func.max(messages.c.seq).label("seq"))
        .where(
            messages.c.conv_id.in_(list(conv_ids)),
            messages.c.internal.is_(False),
            messages.c.recalled_at_ms.is_(None),
            messages.c.kind.in_(kinds),
        )
        .group_by(messages.c.conv_id)
        .subquery()
    )
    query = (
        select(messages.c.conv_id, messages.c.seq, messages.c.sender_id, users.c.kind)
        .join(newest, and_(newest.c.conv_id == messages.c.conv_id, newest.c.seq == messages.c.seq))
        .join(users, users.c.id == messages.c.sender_id)
    )
    return {
        ConversationId(r.conv_id): LastWord(
            r.seq, UserId(r.sender_id), r.kind == UserKind.STAFF.value
        )
        for r in await conn.execute(query)
    }


async def order_states(
    conn: AsyncConnection, conv_ids: Sequence[str]
) -> dict[ConversationId, tuple[str, str]]:
    """Per order conversation, its order's (workflow, status)."""
    if not conv_ids:
        return {}
    query = select(orders.c.conv_id, orders.c.workflow, orders.c.status).where(
        orders.c.conv_id.in_(list(conv_ids))
    )
    return {ConversationId(r.conv_id): (r.workflow, r.status) for r in await conn.execute(query)}


async def awaiting_decision(conn: AsyncConnection, conv_ids: Sequence[str]) -> set[ConversationId]:
    """The order conversations with a proposed confirmation version nobody has decided on."""
    if not conv_ids:
        return set()
    query = (
        select(orders.c.conv_id)
        .join(confirmation_items, confirmation_items.c.order_id == orders.c.id)
        .where(orders.c.conv_id.in_(list(conv_ids)), confirmation_items.c.status == "proposed")
        .distinct()
    )
    return {ConversationId(r.conv_id) for r in await conn.execute(query)}
