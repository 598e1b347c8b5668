"""Messages and the durable event stream that clients resume from."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Row, Table, and_, bindparam, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from orderchat.core.edits import MessageEdit
from orderchat.core.errors import NotFound
from orderchat.core.ids import ConversationId, MessageId, UserId
from orderchat.core.model import Message, MessageKind
from orderchat.core.texts import say
from orderchat.storage import prebuilt
from orderchat.storage.schema import (
    conversations,
    counters,
    events,
    members,
    message_edits,
    messages,
    search_docs,
)

_HEAD = "events"


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A message with what only the server sees: who recalled it, and its hash."""

    message: Message
    recalled_at_ms: int | None
    recalled_by: UserId | None
    hash: str


@dataclass(frozen=True, slots=True)
class EventRow:
    pos: int
    conv_id: ConversationId
    kind: str
    ts: int
    message: Message | None
    payload: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class PriorAck:
    id: MessageId
    conv: ConversationId
    seq: int
    ts: int


def _message(row: Row[Any]) -> Message:
    return Message(
        id=MessageId(row.id),
        conv=ConversationId(row.conv_id),
        seq=row.seq,
        ref=row.ref,
        sender=UserId(row.sender_id),
        kind=MessageKind(row.kind),
        text=row.text,
        attachments=tuple(orjson.loads(row.attachments)),
        mentions=tuple(orjson.loads(row.mentions)),
        reply_to=row.reply_to,
        ts=row.ts,
        recalled=row.recalled_at_ms is not None,
        meta=None if row.meta is None else orjson.loads(row.meta),
        internal=bool(row.internal),
        urgent=bool(row.urgent),
        forwarded_from=None if row.forwarded_from is None else orjson.loads(row.forwarded_from),
        purged=row.purged_at_ms is not None,
    )


def message_row(message: Message, hash_: str) -> dict[str, Any]:
    return {
        "id": message.id,
        "conv_id": message.conv,
        "seq": message.seq,
        "sender_id": message.sender,
        "ref": message.ref,
        "kind": message.kind.value,
        "text": message.text,
        "attachments": orjson.dumps(list(message.attachments)).decode(),
        "mentions": orjson.dumps(list(message.mentions)).decode(),
        "reply_to": message.reply_to,
        "meta": None if message.meta is None else orjson.dumps(message.meta).decode(),
        "ts": message.ts,
        "recalled_at_ms": None,
        "recalled_by": None,
        "hash": hash_,
        "internal": message.internal,
        "urgent": message.urgent,
        "forwarded_from": (
            None
            if message.forwarded_from is None
            else orjson.dumps(message.forwarded_from).decode()
        ),
        "purged_at_ms": None,
        "purged_prev": None,
    }


async def insert_messages_txn(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    await insert_rows(conn, messages, rows)


@functools.lru_cache(maxsize=16)
def _named_insert(table: Table) -> str:
    names = [c.name for c in table.columns]
    return (
        f"INSERT INTO {table.name} ({', '.join(names)}) "
        f"VALUES ({', '.join(':' + n for n in names)})"
    )


@functools.lru_cache(maxsize=16)
def _pg_insert(table: Table) -> tuple[str, tuple[str, ...]]:
    names = tuple(c.name for c in table.columns)
    marks = ", ".join(f"${i}" for i in range(1, len(names) + 1))
    return f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({marks})", names


async def insert_rows(conn: AsyncConnection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert whole rows (every column given) in one statement.

    The rows go straight to the driver's executemany, which binds them in C:
    SQLAlchemy's per-row parameter processing cost more than SQLite's insert
    itself for the messages and events of a group commit.
    """
    if not rows:
        return
    if conn.dialect.name != "sqlite":
        sql, names = _pg_insert(table)
        await prebuilt.pg_run(conn, sql, [[row[n] for n in names] for row in rows])
        return
    await prebuilt.execute(conn, _named_insert(table), list(rows))


_PRIOR_ACK_CHUNK = 400


@functools.lru_cache(maxsize=64)
def _sqlite_prior_acks(count: int) -> str:
    keys = ", ".join(["(?, ?)"] * count)
    return (
        "SELECT m.sender_id, m.ref, m.id, m.conv_id, m.seq, m.ts "
        f"FROM (VALUES {keys}) AS k CROSS JOIN messages AS m "
        "ON m.sender_id = k.column1 AND m.ref = k.column2"
    )


_PG_PRIOR_ACKS = (
    "SELECT m.sender_id, m.ref, m.id, m.conv_id, m.seq, m.ts"
    " FROM unnest($1::varchar[], $2::varchar[]) AS k(sender_id, ref)"
    " JOIN messages AS m ON m.sender_id = k.sender_id AND m.ref = k.ref"
)


async def find_prior_acks(
    conn: AsyncConnection, keys: Sequence[tuple[UserId, str]]
) -> dict[tuple[UserId, str], PriorAck]:
    """Messages already stored under these (sender, ref) idempotency keys.

    SQLite plans `(sender_id, ref) IN (...)` as a scan of the whole table (the
    row-value IN list cannot drive the unique index), which made every group
    commit slower as history grew: a join against the keys as VALUES searches
    the index once per key instead.
    """
    found: dict[tuple[UserId, str], PriorAck] = {}
    if conn.dialect.name == "postgresql":
        senders = [key[0] for key in keys]
        refs = [key[1] for key in keys]
        for sender, ref, id_, conv, seq, ts in await prebuilt.pg_fetch(
            conn, _PG_PRIOR_ACKS, senders, refs
        ):
            found[(UserId(sender), ref)] = PriorAck(MessageId(id_), ConversationId(conv), seq, ts)
        return found
    for start in range(0, len(keys), _PRIOR_ACK_CHUNK):
        chunk = keys[start : start + _PRIOR_ACK_CHUNK]
        params = tuple(value for key in chunk for value in key)
        for sender, ref, id_, conv, seq, ts in await prebuilt.fetch(
            conn, _sqlite_prior_acks(len(chunk)), params
        ):
            found[(UserId(sender), ref)] = PriorAck(MessageId(id_), ConversationId(conv), seq, ts)
    return found


async def get_stored_message(conn: AsyncConnection, conv_id: str, seq: int) -> StoredMessage:
    row = (
        await conn.execute(
            select(messages).where(messages.c.conv_id == conv_id, messages.c.seq == seq)
        )
    ).first()
    if row is None:
        raise NotFound(say("messages.no_message_in_conversation", seq=seq))
    return stored_message(row)


def stored_message(row: Row[Any]) -> StoredMessage:
    """A whole message row: the audit and the chain's proofs need what members never see."""
    return StoredMessage(
        message=_message(row),
        recalled_at_ms=row.recalled_at_ms,
        recalled_by=None if row.recalled_by is None else UserId(row.recalled_by),
        hash=row.hash,
    )


async def mark_recalled_txn(
    conn: AsyncConnection, message_id: MessageId, by: UserId, now_ms: int
) -> None:
    await conn.execute(
        update(messages)
        .where(messages.c.id == message_id)
        .values(recalled_at_ms=now_ms, recalled_by=by)
    )
    # Members stop finding it at once; an audit search still does.
    await conn.execute(
        update(search_docs).where(search_docs.c.message_id == message_id).values(recalled=True)
    )


async def history(
    conn: AsyncConnection,
    conv_id: str,
    *,
    after: int | None,
    before: int | None,
    limit: int,
    include_internal: bool = True,
) -> list[Message]:
    """A page of messages in ascending seq: after a seq, before one, or the newest."""
    query = select(messages).where(messages.c.conv_id == conv_id)
    if not include_internal:
        query = query.where(messages.c.internal.is_(False))
    if after is not None:
        query = query.where(messages.c.seq > after).order_by(messages.c.seq).limit(limit)
        return [_message(r) for r in await conn.execute(query)]
    if before is not None:
        query = query.where(messages.c.seq < before)
    query = query.order_by(messages.c.seq.desc()).limit(limit)
    return [_message(r) for r in reversed(list(await conn.execute(query)))]


async def last_messages(
    conn: AsyncConnection, conv_ids: Sequence[str], include_internal: bool = True
) -> dict[ConversationId, Message]:
    if not conv_ids:
        return {}
    if not include_internal:
        return await _last_public_messages(conn, conv_ids)
    query = (
        select(messages)
        .join(
            conversations,
            and_(
                conversations.c.id == messages.c.conv_id,
                conversations.c.last_seq == messages.c.seq,
            ),
        )
        .where(conversations.c.id.in_(list(conv_ids)))
    )
    return {ConversationId(r.conv_id): _message(r) for r in await conn.execute(query)}


async def _last_public_messages(
    conn: AsyncConnection, conv_ids: Sequence[str]
) -> dict[ConversationId, Message]:
    newest = (
        select(messages.c.conv_id, func.max(messages.c.seq).label("seq"))
        .where(messages.c.conv_id.in_(list(conv_ids)), messages.c.internal.is_(False))
        .group_by(messages.c.conv_id)
        .subquery()
    )
    query = select(messages).join(
        newest, and_(newest.c.conv_id == messages.c.conv_id, newest.c.seq == messages.c.seq)
    )
    return {ConversationId(r.conv_id): _message(r) for r in await conn.execute(query)}


async def count_urgent_after(
    conn: AsyncConnection, user_id: UserId, conv_ids: Sequence[str], include_internal: bool
) -> dict[str, int]:
    """Per conversation, others' urgent messages past the user's read mark, recalled aside."""
    where = [
        messages.c.urgent.is_(True),
        messages.c.recalled_at_ms.is_(None),
        messages.c.sender_id != user_id,
    ]
    if not include_internal:
        where.append(messages.c.internal.is_(False))
    return await _count_unread(conn, user_id, conv_ids, where)


async def count_public_after(
    conn: AsyncConnection, user_id: UserId, conv_ids: Sequence[str]
) -> dict[str, int]:
    """Per conversation, the messages a customer can see that are past their read mark."""
    return await _count_unread(conn, user_id, conv_ids, [messages.c.internal.is_(False)])


async def _count_unread(
    conn: AsyncConnection,
    user_id: UserId,
    conv_ids: Sequence[str],
    where: Sequence[ColumnElement[bool]],
) -> dict[str, int]:
    """Per conversation, the messages past the user's read mark that match `where`.

    Only the unread range is read: the (conv_id, seq) index bounds it.
    """
    if not conv_ids:
        return {}
    query = (
        select(messages.c.conv_id, func.count().label("n"))
        .join(
            members,
            and_(members.c.conv_id == messages.c.conv_id, members.c.user_id == user_id),
        )
        .where(
            messages.c.conv_id.in_(list(conv_ids)),
            messages.c.seq > members.c.read_seq,
            *where,
        )
        .group_by(messages.c.conv_id)
    )
    found = {c: 0 for c in conv_ids}
    found.update({r.conv_id: int(r.n) for r in await conn.execute(query)})
    return found


# --- the event stream -----------------------------------------------------------


_LOCK_COUNTER = (
    select(counters.c.value).where(counters.c.name == bindparam("b_name")).with_for_update()
)
_SET_COUNTER = (
    update(counters)
    .where(counters.c.name == bindparam("b_name"))
    .values(value=bindparam("b_value"))
)


async def lock_head_txn(conn: AsyncConnection) -> int:
    """The stream's head, locked until commit so positions commit in order."""
    return int(await prebuilt.scalar(conn, _LOCK_COUNTER, {"b_name": _HEAD}))


async def set_head_txn(conn: AsyncConnection, head: int) -> None:
    await prebuilt.run(conn, _SET_COUNTER, {"b_name": _HEAD, "b_value": head})


_READ_HEAD = select(counters.c.value).where(counters.c.name == _HEAD)
# PostgreSQL: the persisted horizon, below which every position is final (storage/stream.py).
_PG_READ_HEAD = text("SELECT orderchat_stream_horizon()")


async def read_head(conn: AsyncConnection) -> int:
    """The position up to which events may be handed out: none at or below it can still commit."""
    if conn.dialect.name == "postgresql":
        return int((await conn.execute(_PG_READ_HEAD)).scalar_one() or 0)
    return int((await conn.execute(_READ_HEAD)).scalar_one())


async def insert_events_txn(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    await insert_rows(conn, events, rows)


def event_row(
    pos: int,
    conv_id: str,
    kind: str,
    ts: int,
    *,
    message_id: str | None = None,
    payload: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "pos": pos,
        "conv_id": conv_id,
        "kind": kind,
        "message_id": message_id,
        "payload": None if payload is None else orjson.dumps(payload).decode(),
        "ts": ts,
    }


def _events_for_user_query(include_internal: bool) -> Any:
    query = (
        select(
            events.c.pos.label("e_pos"),
            events.c.conv_id.label("e_conv"),
            events.c.kind.label("e_kind"),
            events.c.ts.label("e_ts"),
            events.c.payload.label("e_payload"),
            messages,
        )
        .join(
            members,
            and_(
                members.c.conv_id == events.c.conv_id,
                members.c.user_id == bindparam("user_id"),
            ),
        )
        .outerjoin(messages, messages.c.id == events.c.message_id)
        .where(
            events.c.pos > bindparam("after"),
            events.c.pos <= bindparam("upto"),
            events.c.pos >= members.c.joined_pos,
            or_(members.c.left_pos.is_(None), events.c.pos <= members.c.left_pos),
        )
        .order_by(events.c.pos)
        .limit(bindparam("limit"))
    )
    if not include_internal:
        query = query.where(or_(events.c.message_id.is_(None), messages.c.internal.is_(False)))
    return query


# Built once: every reconnect runs one, and building a statement costs more
# than running it on SQLite.
_EVENTS_FOR_STAFF = _events_for_user_query(include_internal=True)
_EVENTS_FOR_CUSTOMER = _events_for_user_query(include_internal=False)


async def events_for_user(
    conn: AsyncConnection,
    user_id: UserId,
    after: int,
    upto: int,
    limit: int,
    include_internal: bool = True,
) -> list[EventRow]:
    """Durable events in (after, upto] the user may see, oldest first.

    A member sees a conversation's events from the one that added them to the
    one that removed them, so a removed member still learns of the removal and
    of everything before it, and nothing after.
    """
    query = _EVENTS_FOR_STAFF if include_internal else _EVENTS_FOR_CUSTOMER
    params = {"user_id": user_id, "after": after, "upto": upto, "limit": limit}
    found = []
    for row in await conn.execute(query, params):
        found.append(
            EventRow(
                pos=row.e_pos,
                conv_id=ConversationId(row.e_conv),
                kind=row.e_kind,
                ts=row.e_ts,
                message=None if row.id is None else _message(row),
                payload=None if row.e_payload is None else orjson.loads(row.e_payload),
            )
        )
    return found


# --- edits -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredEdit:
    edit: MessageEdit
    hash: str


def edit_row(edit: MessageEdit, hash_: str) -> dict[str, Any]:
    return {
        "message_id": edit.message_id,
        "version": edit.version,
        "conv_id": edit.conv,
        "seq": edit.seq,
        "by_id": edit.by,
        "ref": edit.ref,
        "text": edit.text,
        "ts": edit.ts,
        "hash": hash_,
        "purged_prev": None,
    }


async def insert_edits_txn(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    await insert_rows(conn, message_edits, rows)


def stored_edit(row: Row[Any]) -> StoredEdit:
    return _edit(row)


def _edit(row: Row[Any]) -> StoredEdit:
    return StoredEdit(
        MessageEdit(
            message_id=MessageId(row.message_id),
            conv=ConversationId(row.conv_id),
            seq=row.seq,
            version=row.version,
            by=UserId(row.by_id),
            text=row.text,
            ts=row.ts,
            ref=row.ref,
        ),
        row.hash,
    )


async def list_edits(conn: AsyncConnection, message_id: str) -> list[StoredEdit]:
    """Every edit of a message, oldest first."""
    query = (
        select(message_edits)
        .where(message_edits.c.message_id == message_id)
        .order_by(message_edits.c.version)
    )
    return [_edit(row) for row in await conn.execute(query)]


async def find_edit_by_ref(conn: AsyncConnection, by: UserId, ref: str) -> StoredEdit | None:
    query = select(message_edits).where(message_edits.c.by_id == by, message_edits.c.ref == ref)
    row = (await conn.execute(query)).first()
    return None if row is None else _edit(row)


async def latest_edits(
    conn: AsyncConnection, message_ids: Sequence[str]
) -> dict[MessageId, MessageEdit]:
    """The newest edit of each of these messages that has one."""
    if not message_ids:
        return {}
    newest = (
        select(message_edits.c.message_id, func.max(message_edits.c.version).label("v"))
        .where(message_edits.c.message_id.in_(list(message_ids)))
        .group_by(message_edits.c.message_id)
        .subquery()
    )
    query = select(message_edits).join(
        newest,
        and_(
            message_edits.c.message_id == newest.c.message_id,
            message_edits.c.version == newest.c.v,
        ),
    )
    return {MessageId(row.message_id): _edit(row).edit for row in await conn.execute(query)}


async def with_edits(conn: AsyncConnection, found: list[Message]) -> list[Message]:
    """Messages as members see them now: the newest text, marked with when it was edited."""
    edits = await latest_edits(conn, [m.id for m in found])
    if not edits:
        return found
    return [
        m if m.id not in edits else replace(m, text=edits[m.id].text, edited_ts=edits[m.id].ts)
        for m in found
    ]
