"""The rows behind notifications: the planner's cursor, the outbox, subscriptions, endpoints.

The outbox (`notifications`) is filled by the planner (services/notify/planner.py)
from the event stream and drained by the delivery worker. A row is *claimed*
by setting `claimed_until_ms`: the claiming UPDATE repeats the "free and due"
test in its own WHERE, so of two nodes that picked the same row only one
changes it (PostgreSQL re-checks the condition on the locked row; SQLite has
one writer). A node that dies holding a claim lets it lapse, and the row is
tried again: at-least-once, with `dedupe` as the delivery id.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import and_, bindparam, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from orderchat.core.ids import ConversationId, MessageId, UserId
from orderchat.core.model import UserKind
from orderchat.core.notify import Channel
from orderchat.storage.schema import (
    counters,
    customers,
    events,
    members,
    messages,
    notifications,
    orders,
    users,
)

CURSOR = "notify"


# --- the planner's cursor and what it reads ---------------------------------------------


async def cursor(conn: AsyncConnection) -> int:
    found = (await conn.execute(select(counters.c.value).where(counters.c.name == CURSOR))).scalar()
    return int(found or 0)


async def set_cursor_txn(conn: AsyncConnection, pos: int) -> None:
    """Move the cursor forward only: two planners (a lease changing hands) never move it back."""
    await conn.execute(
        update(counters).where(counters.c.name == CURSOR, counters.c.value < pos).values(value=pos)
    )


@dataclass(frozen=True, slots=True)
class Person:
    id: UserId
    kind: UserKind
    display_name: str
    language: str | None  # a customer's, as the shop has it
    email: str | None  # a customer's address on file


async def persons(conn: AsyncConnection, user_ids: Iterable[str]) -> dict[UserId, Person]:
    wanted = sorted(set(user_ids))
    if not wanted:
        return {}
    rows = await conn.execute(
        select(
            users.c.id,
            users.c.kind,
            users.c.display_name,
            customers.c.language,
            customers.c.email,
        )
        .outerjoin(customers, customers.c.user_id == users.c.id)
        .where(users.c.id.in_(wanted))
    )
    return {
        UserId(row.id): Person(
            UserId(row.id), UserKind(row.kind), row.display_name, row.language, row.email
        )
        for row in rows
    }


async def orders_of_conversations(
    conn: AsyncConnection, conv_ids: Iterable[str]
) -> dict[ConversationId, dict[str, str]]:
    wanted = sorted(set(conv_ids))
    if not wanted:
        return {}
    rows = await conn.execute(
        select(orders.c.id, orders.c.number, orders.c.conv_id).where(orders.c.conv_id.in_(wanted))
    )
    return {ConversationId(r.conv_id): {"id": r.id, "number": r.number} for r in rows}


async def claim_more_mail_txn(
    conn: AsyncConnection,
    recipients: Sequence[str],
    upto_ms: int,
    now_ms: int,
    claim_ms: int,
    apart: Sequence[str],
) -> list[Delivery]:
    """These people's other first-word e-mails due by `upto_ms`: each goes in their mail."""
    if not recipients:
        return []
    rows = await conn.execute(more_mail_claim(recipients, upto_ms, now_ms, claim_ms, apart))
    return [_delivery(r) for r in rows]


def more_mail_claim(
    recipients: Sequence[str], upto_ms: int, now_ms: int, claim_ms: int, apart: Sequence[str]
) -> Any:
    """The statement of `claim_more_mail_txn`, searched through the people's index.

    `next_try_ms + 0` keeps SQLite off the (state, next_try_ms) index, which it
    would otherwise pick for the range: that reads every pending delivery due
    by then, everyone's.
    """
    return (
        update(notifications)
        .where(
            notifications.c.recipient.in_(list(recipients)),
            notifications.c.channel == Channel.EMAIL.value,
            notifications.c.step == 0,
            notifications.c.occasion.not_in(list(apart)),
            notifications.c.state == "pending",
            notifications.c.next_try_ms + 0 <= upto_ms,
            notifications.c.claimed_until_ms <= now_ms,
        )
        # Claimed, it stops merging (see claim_due_txn): what it says is fixed now.
        .values(claimed_until_ms=now_ms + claim_ms, merge_key=None)
        .returning(*notifications.c)
    )


async def head(conn: AsyncConnection) -> int:
    return int((await conn.execute(select(func.coalesce(func.max(events.c.pos), 0)))).scalar() or 0)


# --- the outbox -------------------------------------------------------------------------


async def insert_deliveries_txn(
    conn: AsyncConnection, rows: Sequence[dict[str, Any]], merges: Sequence[Merge] = ()
) -> int:
    """Add deliveries, or merge chat into the waiting ones; the count of rows touched.

    A merge moves a waiting delivery on to the latest message, in one statement
    for the batch, before the insert: a row whose `merge_key` is taken (it was
    just merged into) is skipped, as is one whose `dedupe` is there (an event
    planned again); a merge of an event planned again finds its position
    already passed and changes nothing.
    """
    touched = 0
    if merges:
        params = [
            {
                "m_key": m.key,
                "m_first_pos": m.first_pos,
                "m_seq": m.seq,
                "m_message": m.message_id,
                "m_pos": m.pos,
                "m_count": m.count,
            }
            for m in merges
        ]
        result = await conn.execute(_MERGE, params)
        touched += int(result.rowcount or 0)
    if rows:
        maker = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        # No conflict target: `dedupe` and `merge_key` are both kept unique.
        result = await conn.execute(maker(notifications).on_conflict_do_nothing(), list(rows))
        touched += int(result.rowcount or 0)
    return touched


@dataclass(frozen=True, slots=True)
class Merge:
    """A batch's messages for one waiting delivery: from the first's position, up to the last."""

    key: str
    first_pos: int
    seq: int
    message_id: str
    pos: int
    count: int


_MERGE = (
    update(notifications)
    .where(
        notifications.c.merge_key == bindparam("m_key"),
        notifications.c.event_pos < bindparam("m_first_pos"),
    )
    .values(
        seq=bindparam("m_seq"),
        message_id=bindparam("m_message"),
        event_pos=bindparam("m_pos"),
        merged=notifications.c.merged + bindparam("m_count"),
    )
)


@dataclass(frozen=True, slots=True)
class Delivery:
    id: str
    dedupe: str
    channel: Channel
    occasion: str
    recipient: UserId | None
    endpoint_id: str | None
    conv: ConversationId
    seq: int
    message_id: MessageId
    step: int
    payload: Mapping[str, Any] | None
    first_due_ms: int
    attempts: int
    created_at_ms: int
    merged: int = 1  # messages it tells of: the latest is `message_id`
    first_seq: int | None = None


def _delivery(row: Any) -> Delivery:
    return Delivery(
        id=row.id,
        dedupe=row.dedupe,
        channel=Channel(row.channel),
        occasion=row.occasion,
        recipient=None if row.recipient is None else UserId(row.recipient),
        endpoint_id=row.endpoint_id,
        conv=ConversationId(row.conv_id),
        seq=row.seq,
        message_id=MessageId(row.message_id),
        step=row.step,
        payload=None if row.payload is None else orjson.loads(row.payload),
        first_due_ms=row.first_due_ms,
        attempts=row.attempts,
        created_at_ms=row.created_at_ms,
        merged=row.merged,
        first_seq=row.first_seq,
    )


def _free_and_due(now_ms: int) -> Any:
    return and_(
        notifications.c.state == "pending",
        notifications.c.next_try_ms <= now_ms,
        notifications.c.claimed_until_ms <= now_ms,
    )


async def claim_due_txn(
    conn: AsyncConnection, now_ms: int, claim_ms: int, limit: int
) -> list[Delivery]:
    """Claim up to `limit` due deliveries until `now_ms + claim_ms`, oldest due first.

    A claimed delivery stops merging: what it says is fixed now, and a message
    after this starts a delivery of its own.
    """
    picked = (
        select(notifications.c.id)
        .where(_free_and_due(now_ms))
        .order_by(notifications.c.next_try_ms)
        .limit(limit)
    )
    ids = [row.id for row in await conn.execute(picked)]
    if not ids:
        return []
    rows = await conn.execute(
        update(notifications)
        .where(notifications.c.id.in_(ids), _free_and_due(now_ms))
        .values(claimed_until_ms=now_ms + claim_ms, merge_key=None)
        .returning(*notifications.c)
    )
    return sorted((_delivery(r) for r in rows), key=lambda d: (d.first_due_ms, d.id))


async def next_due_ms(conn: AsyncConnection) -> int | None:
    found = (
        await conn.execute(
            select(func.min(notifications.c.next_try_ms)).where(notifications.c.state == "pending")
        )
    ).scalar()
    return None if found is None else int(found)


async def finish_many_txn(conn: AsyncConnection, finished: Sequence[Finished]) -> None:
    """Close deliveries for good: sent, cancelled (read, recalled, unreachable) or dead.

    One statement, built once, runs for all of a batch inside the driver; a
    statement of its own for each delivery cost more to build than SQLite took
    to run it.
    """
    if not finished:
        return
    params = [
        {
            "b_id": f.id,
            "b_state": f.state,
            "b_outcome": f.outcome,
            "b_attempts": f.attempts,
            "b_done": f.done_at_ms,
        }
        for f in finished
    ]
    await conn.execute(_FINISH, params)


@dataclass(frozen=True, slots=True)
class Finished:
    id: str
    state: str
    outcome: str
    attempts: int
    done_at_ms: int


_FINISH = (
    update(notifications)
    .where(notifications.c.id == bindparam("b_id"), notifications.c.state == "pending")
    .values(
        state=bindparam("b_state"),
        outcome=bindparam("b_outcome"),
        attempts=bindparam("b_attempts"),
        done_at_ms=bindparam("b_done"),
        claimed_until_ms=0,
    )
)


async def retry_txn(
    conn: AsyncConnection, delivery_id: str, attempts: int, next_try_ms: int, outcome: str
) -> None:
    await conn.execute(
        update(notifications)
        .where(notifications.c.id == delivery_id, notifications.c.state == "pending")
        .values(attempts=attempts, next_try_ms=next_try_ms, outcome=outcome, claimed_until_ms=0)
    )


async def postpone_txn(
    conn: AsyncConnection, delivery_id: str, until_ms: int, key: str | None
) -> None:
    """Quiet hours: the delivery waits, keeps its attempts, and merges again while it waits.

    Its merge key comes back only if no newer delivery took it meanwhile: a
    night of messages then wakes the person once, not once per claim.
    """
    await conn.execute(
        update(notifications)
        .where(notifications.c.id == delivery_id, notifications.c.state == "pending")
        .values(next_try_ms=until_ms, claimed_until_ms=0)
    )
    if key is None:
        return
    other = notifications.alias("other")
    taken = select(other.c.id).where(other.c.merge_key == key).exists()
    await conn.execute(
        update(notifications)
        .where(notifications.c.id == delivery_id, notifications.c.state == "pending", ~taken)
        .values(merge_key=key)
    )


async def prune_done_txn(conn: AsyncConnection, before_ms: int, limit: int) -> int:
    """Delete up to `limit` deliveries that were done before `before_ms`; how many went."""
    old = (
        select(notifications.c.id)
        .where(
            notifications.c.state.in_(("sent", "cancelled", "dead")),
            notifications.c.done_at_ms < before_ms,
        )
        .limit(limit)
    )
    ids = [row.id for row in await conn.execute(old)]
    if ids:
        await conn.execute(delete(notifications).where(notifications.c.id.in_(ids)))
    return len(ids)


async def read_and_recalled(
    conn: AsyncConnection, pairs: Iterable[tuple[str, str]], message_ids: Iterable[str]
) -> tuple[dict[tuple[str, str], int], set[str]]:
    """How far each (conversation, person) has read, and which of these messages are recalled."""
    wanted = set(pairs)
    read: dict[tuple[str, str], int] = {}
    convs = sorted({conv for conv, _ in wanted})
    if convs:
        rows = await conn.execute(
            select(members.c.conv_id, members.c.user_id, members.c.read_seq).where(
                members.c.conv_id.in_(convs)
            )
        )
        for row in rows:
            if (row.conv_id, row.user_id) in wanted:
                read[(row.conv_id, row.user_id)] = row.read_seq
    ids = sorted(set(message_ids))
    recalled: set[str] = set()
    if ids:
        rows = await conn.execute(
            select(messages.c.id).where(
                messages.c.id.in_(ids), messages.c.recalled_at_ms.is_not(None)
            )
        )
        recalled = {row.id for row in rows}
    return read, recalled


async def deliveries_of_message(conn: AsyncConnection, message_id: str) -> list[dict[str, Any]]:
    """Every delivery planned for one message (the sender's view of the urgent ladder)."""
    rows = await conn.execute(
        select(notifications)
        .where(notifications.c.message_id == message_id, notifications.c.recipient.is_not(None))
        .order_by(notifications.c.recipient, notifications.c.step, notifications.c.channel)
    )
    return [dict(row._mapping) for row in rows]


async def endpoint_deliveries(
    conn: AsyncConnection, endpoint_id: str, before_ms: int | None, limit: int
) -> list[dict[str, Any]]:
    query = (
        select(notifications)
        .where(notifications.c.endpoint_id == endpoint_id)
        .order_by(notifications.c.created_at_ms.desc(), notifications.c.id.desc())
        .limit(limit)
    )
    if before_ms is not None:
        query = query.where(notifications.c.created_at_ms < before_ms)
    return [dict(row._mapping) for row in await conn.execute(query)]
