"""What the notification planner and worker read: the stream's messages, and who can be told.

The planner reads each new event's small row first and the message whole only
when someone in its conversation can be told or an endpoint may hear of it;
the worker reads the messages its deliveries stand for, to word them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import bindparam, literal, or_, select, union_all
from sqlalchemy.ext.asyncio import AsyncConnection

from orderchat.core.ids import ConversationId, MessageId, UserId
from orderchat.core.model import ConversationKind, MessageKind, Role, UserKind
from orderchat.core.notify import Channel, Member
from orderchat.storage.schema import (
    conversations,
    customers,
    events,
    members,
    messages,
    notify_preferences,
    push_subscriptions,
    users,
)


@dataclass(frozen=True, slots=True)
class StreamMessage:
    pos: int
    id: MessageId
    conv: ConversationId
    conv_kind: ConversationKind
    conv_title: str | None
    seq: int
    sender: UserId
    kind: MessageKind
    text: str
    mentions: tuple[str, ...]
    internal: bool
    urgent: bool
    meta: Mapping[str, Any] | None
    ts: int


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """A message's place in the stream: enough to decide whether to read it whole."""

    pos: int
    conv: ConversationId
    message: MessageId


async def new_events(
    conn: AsyncConnection, after: int, upto: int | None, limit: int
) -> tuple[int, list[StreamEvent]]:
    """The messages written at positions in (after, upto], and the last position looked at.

    `upto` None: up to the head this snapshot sees (one writer commits in order).
    Only the events' own small rows are read: most messages, in a shop where few
    people can be told anything, need no more (`stream_messages` reads the rest).
    """
    query = (
        select(events.c.pos, events.c.kind, events.c.conv_id, events.c.message_id)
        .where(events.c.pos > after)
        .order_by(events.c.pos)
        .limit(limit)
    )
    if upto is not None:
        query = query.where(events.c.pos <= upto)
    rows = (await conn.execute(query)).all()
    last = rows[-1].pos if rows else after
    said = [
        StreamEvent(pos, ConversationId(conv), MessageId(message))
        for pos, kind, conv, message in rows
        if kind == "message" and message is not None
    ]
    return last, said


async def stream_messages(
    conn: AsyncConnection, said: Sequence[StreamEvent]
) -> list[StreamMessage]:
    """The messages of these events, in the events' order; recalled ones left out."""
    if not said:
        return []
    rows = await conn.execute(
        _with_conversation().where(
            messages.c.id.in_([e.message for e in said]), messages.c.recalled_at_ms.is_(None)
        )
    )
    by_id = {row.id: row for row in rows}
    return [_stream_message(e.pos, by_id[e.message]) for e in said if e.message in by_id]


def _stream_message(pos: int, row: Any) -> StreamMessage:
    return StreamMessage(
        pos=pos,
        id=MessageId(row.id),
        conv=ConversationId(row.conv_id),
        conv_kind=ConversationKind(row.conv_kind),
        conv_title=row.conv_title,
        seq=row.seq,
        sender=UserId(row.sender_id),
        kind=MessageKind(row.kind),
        text=row.text,
        mentions=tuple(orjson.loads(row.mentions)),
        internal=bool(row.internal),
        urgent=bool(row.urgent),
        meta=None if row.meta is None else orjson.loads(row.meta),
        ts=row.ts,
    )


async def stored_messages(
    conn: AsyncConnection, message_ids: Iterable[str]
) -> dict[MessageId, StreamMessage]:
    """Messages by id, as the worker words them (their stream position is not needed: 0)."""
    wanted = sorted(set(message_ids))
    if not wanted:
        return {}
    rows = await conn.execute(_with_conversation().where(messages.c.id.in_(wanted)))
    return {MessageId(row.id): _stream_message(0, row) for row in rows}


def _with_conversation() -> Any:
    """Messages with what wording them needs of their conversation (kind, title)."""
    return select(
        messages,
        conversations.c.kind.label("conv_kind"),
        conversations.c.title.label("conv_title"),
    ).join(conversations, conversations.c.id == messages.c.conv_id)


async def messages_in_ranges(
    conn: AsyncConnection, ranges: Sequence[tuple[str, int, int]], limit: int
) -> list[list[StreamMessage]]:
    """For each (conversation, first seq, last seq), its latest `limit` messages in that
    range, oldest first, recalled ones left out: what merged deliveries stand for, to
    list in their mails. One statement for all the ranges of a batch."""
    if not ranges:
        return []
    parts = [
        _with_conversation()
        .add_columns(literal(number).label("range_no"))
        .where(
            messages.c.conv_id == conv,
            messages.c.seq >= first_seq,
            messages.c.seq <= last_seq,
            messages.c.recalled_at_ms.is_(None),
        )
        .order_by(messages.c.seq.desc())
        .limit(limit)
        .subquery()
        for number, (conv, first_seq, last_seq) in enumerate(ranges)
    ]
    rows = await conn.execute(union_all(*(select(part) for part in parts)))
    found: list[list[StreamMessage]] = [[] for _ in ranges]
    for row in rows:
        found[row.range_no].append(_stream_message(0, row))
    return [sorted(each, key=lambda m: m.seq) for each in found]


async def current_members(
    conn: AsyncConnection, conv_ids: Iterable[str]
) -> dict[ConversationId, list[Member]]:
    """Who is in each conversation now, with their kind and roles."""
    wanted = sorted(set(conv_ids))
    if not wanted:
        return {}
    rows = await conn.execute(_present_members().where(members.c.conv_id.in_(wanted)))
    found: dict[ConversationId, list[Member]] = {}
    for row in rows:
        found.setdefault(ConversationId(row.conv_id), []).append(_member(row))
    return found


def _present_members(*columns: Any) -> Any:
    """Members still in their conversations and not disabled, with what `_member` needs."""
    return (
        select(members.c.conv_id, users.c.id, users.c.kind, users.c.roles, *columns)
        .join(users, users.c.id == members.c.user_id)
        .where(members.c.left_pos.is_(None), users.c.disabled.is_(False))
    )


def _member(row: Any) -> Member:
    roles = frozenset(Role(r) for r in row.roles.split(",") if r)
    return Member(UserId(row.id), UserKind(row.kind), roles)


@dataclass(frozen=True, slots=True)
class Reachable:
    """A member who can be told at all, and on which of the channels asked about."""

    member: Member
    channels: frozenset[Channel]


_HAS_PUSH = (
    select(push_subscriptions.c.user_id).where(push_subscriptions.c.user_id == users.c.id).exists()
)
_HAS_OWN_ADDRESS = (
    select(notify_preferences.c.user_id)
    .where(notify_preferences.c.user_id == users.c.id, notify_preferences.c.email != "")
    .exists()
)
_HAS_ADDRESS_ON_FILE = (
    select(customers.c.user_id)
    .where(customers.c.user_id == users.c.id, customers.c.email != "")
    .exists()
)
_HAS_ADDRESS = or_(_HAS_OWN_ADDRESS, _HAS_ADDRESS_ON_FILE)


def _reachable_query(push: bool, mail: bool) -> Any:
    """Members reachable on push and/or mail: only the channels asked about are tested."""
    has_push = _HAS_PUSH if push else literal(False)
    has_mail = _HAS_ADDRESS if mail else literal(False)
    return (
        _present_members(has_push.label("push"), has_mail.label("mail"))
        .where(members.c.conv_id.in_(bindparam("convs", expanding=True)))
        .where(or_(has_push, has_mail))
    )


# Built once: the planner asks for every batch of the stream.
_REACHABLE = {
    (push, mail): _reachable_query(push, mail)
    for push in (False, True)
    for mail in (False, True)
    if push or mail
}


async def reachable_members(
    conn: AsyncConnection, conv_ids: Iterable[str], channels: frozenset[Channel]
) -> dict[ConversationId, list[Reachable]]:
    """Who in each conversation can be told on any of `channels`: a push subscription,
    an address (`email_addresses`' rule: their own choice, else one on file).

    Nobody else can be planned for, so nobody else is loaded: in a shop where few
    have push or e-mail the planner reads, for most messages, nothing at all.
    """
    wanted = sorted(set(conv_ids))
    asked = (Channel.PUSH in channels, Channel.EMAIL in channels)
    if not wanted or asked not in _REACHABLE:
        return {}
    rows = await conn.execute(_REACHABLE[asked], {"convs": wanted})
    found: dict[ConversationId, list[Reachable]] = {}
    for row in rows:
        on = frozenset(
            channel for channel, yes in ((Channel.PUSH, row.push), (Channel.EMAIL, row.mail)) if yes
        )
        found.setdefault(ConversationId(row.conv_id), []).append(Reachable(_member(row), on))
    return found
