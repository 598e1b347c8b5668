"""Consults' rows: their queue, agent and clocks; the inbox queries; visitors' flags.

Every write here runs inside a group-commit transaction (`*_txn`), under the
consult conversation's row lock, which the writer takes before an op runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from orderchat.core.consults import ConsultStatus
from orderchat.core.errors import NotFound
from orderchat.core.ids import ConversationId, OrderId, UserId
from orderchat.core.model import Role
from orderchat.core.texts import say
from orderchat.storage import retention as retention_store
from orderchat.storage.schema import (
    consult_queues,
    consults,
    customers,
    messages,
    orders,
    users,
    visitor_links,
)


@dataclass(frozen=True, slots=True)
class ConsultRow:
    conv_id: ConversationId
    visitor_id: UserId
    status: ConsultStatus
    queue: str
    roles: tuple[Role, ...]
    assignee_id: UserId | None
    language: str
    source: str
    tag: str | None
    page_url: str | None
    sku: str | None
    created_at_ms: int
    opened_at_ms: int
    waiting_since_ms: int | None
    first_response_at_ms: int | None
    escalated_at_ms: int | None
    closed_at_ms: int | None
    order_id: OrderId | None


@dataclass(frozen=True, slots=True)
class VisitorFlags:
    """A customer's standing as a visitor: vouched for by an order, blocked, erased."""

    user_id: UserId
    verified: bool
    blocked: bool
    erased: bool


def _row(row: Row[Any]) -> ConsultRow:
    return ConsultRow(
        conv_id=ConversationId(row.conv_id),
        visitor_id=UserId(row.visitor_id),
        status=ConsultStatus(row.status),
        queue=row.queue,
        roles=tuple(Role(r) for r in row.roles.split(",") if r),
        assignee_id=None if row.assignee_id is None else UserId(row.assignee_id),
        language=row.language,
        source=row.source,
        tag=row.tag,
        page_url=row.page_url,
        sku=row.sku,
        created_at_ms=row.created_at_ms,
        opened_at_ms=row.opened_at_ms,
        waiting_since_ms=row.waiting_since_ms,
        first_response_at_ms=row.first_response_at_ms,
        escalated_at_ms=row.escalated_at_ms,
        closed_at_ms=row.closed_at_ms,
        order_id=None if row.order_id is None else OrderId(row.order_id),
    )


def _changing(row: ConsultRow) -> dict[str, object]:
    """The columns a consult's life changes."""
    return {
        "status": row.status.value,
        "queue": row.queue,
        "roles": ",".join(r.value for r in row.roles),
        "assignee_id": row.assignee_id,
        "opened_at_ms": row.opened_at_ms,
        "waiting_since_ms": row.waiting_since_ms,
        "first_response_at_ms": row.first_response_at_ms,
        "escalated_at_ms": row.escalated_at_ms,
        "closed_at_ms": row.closed_at_ms,
        "order_id": row.order_id,
    }


async def insert_consult_txn(conn: AsyncConnection, row: ConsultRow) -> None:
    await conn.execute(
        consults.insert().values(
            conv_id=row.conv_id,
            visitor_id=row.visitor_id,
            language=row.language,
            source=row.source,
            tag=row.tag,
            page_url=row.page_url,
            sku=row.sku,
            created_at_ms=row.created_at_ms,
            **_changing(row),
        )
    )


async def save_consult_txn(conn: AsyncConnection, row: ConsultRow) -> None:
    """Write back every field a consult's life changes."""
    await conn.execute(
        update(consults).where(consults.c.conv_id == row.conv_id).values(**_changing(row))
    )


async def get_consult(conn: AsyncConnection, conv_id: str) -> ConsultRow:
    row = (await conn.execute(select(consults).where(consults.c.conv_id == conv_id))).first()
    if row is None:
        raise NotFound(say("consults.no_consult", consult=conv_id))
    return _row(row)


async def find_consult(conn: AsyncConnection, conv_id: str) -> ConsultRow | None:
    row = (await conn.execute(select(consults).where(consults.c.conv_id == conv_id))).first()
    return None if row is None else _row(row)


async def open_counts(conn: AsyncConnection, agents: Sequence[UserId]) -> dict[UserId, int]:
    """How many open consults each agent owns now; an agent with none is 0."""
    if not agents:
        return {}
    query = (
        select(consults.c.assignee_id, func.count())
        .where(consults.c.assignee_id.in_(agents), consults.c.status == ConsultStatus.OPEN.value)
        .group_by(consults.c.assignee_id)
    )
    found = {UserId(a): int(n) for a, n in await conn.execute(query)}
    return {a: found.get(a, 0) for a in agents}


async def last_given(conn: AsyncConnection, queue: str) -> UserId | None:
    query = select(consult_queues.c.last_given).where(consult_queues.c.name == queue)
    value = (await conn.execute(query)).scalar_one_or_none()
    return None if value is None else UserId(value)


async def set_last_given_txn(conn: AsyncConnection, queue: str, agent: UserId) -> None:
    done = await conn.execute(
        update(consult_queues).where(consult_queues.c.name == queue).values(last_given=agent)
    )
    if done.rowcount == 0:
        await conn.execute(consult_queues.insert().values(name=queue, last_given=agent))


async def last_agent_of(conn: AsyncConnection, visitor_id: UserId) -> UserId | None:
    """Who owned the visitor's most recent consult that had an agent."""
    query = (
        select(consults.c.assignee_id)
        .where(consults.c.visitor_id == visitor_id, consults.c.assignee_id.is_not(None))
        .order_by(consults.c.created_at_ms.desc())
        .limit(1)
    )
    value = (await conn.execute(query)).scalar_one_or_none()
    return None if value is None else UserId(value)


async def position(conn: AsyncConnection, row: ConsultRow) -> int | None:
    """1 for the next consult out of its queue; None when it is not queued."""
    if row.status is not ConsultStatus.QUEUED:
        return None
    query = select(func.count()).where(
        consults.c.status == ConsultStatus.QUEUED.value,
        consults.c.queue == row.queue,
        or_(
            consults.c.opened_at_ms < row.opened_at_ms,
            and_(consults.c.opened_at_ms == row.opened_at_ms, consults.c.conv_id < row.conv_id),
        ),
    )
    return int((await conn.execute(query)).scalar_one()) + 1


async def oldest_queued(conn: AsyncConnection, queues: Sequence[str], limit: int) -> list[str]:
    """The consults waiting longest in these queues, first out first."""
    if not queues:
        return []
    query = (
        select(consults.c.conv_id)
        .where(consults.c.status == ConsultStatus.QUEUED.value, consults.c.queue.in_(queues))
        .order_by(consults.c.opened_at_ms, consults.c.conv_id)
        .limit(limit)
    )
    return [r.conv_id for r in await conn.execute(query)]


@dataclass(frozen=True, slots=True)
class InboxQuery:
    """Which consults a staff member's inbox lists (docs/consults.md §3)."""

    assignee: UserId | None = None  # mine
    unassigned: bool = False
    roles: tuple[Role, ...] | None = None  # the queues of these roles; None: every queue
    statuses: tuple[ConsultStatus, ...] = (ConsultStatus.QUEUED, ConsultStatus.OPEN)
    visitor: UserId | None = None
    limit: int = 50
    offset: int = 0


def _waiting_order() -> tuple[Any, ...]:
    """Waiting longest first: those waiting on staff by how long, then the rest newest first."""
    waiting = consults.c.waiting_since_ms
    return (waiting.is_(None), waiting, consults.c.opened_at_ms.desc(), consults.c.conv_id)


async def inbox(conn: AsyncConnection, wanted: InboxQuery) -> tuple[list[ConsultRow], int]:
    """One page of the inbox, and how many consults it holds in all."""
    where: list[Any] = [consults.c.status.in_([s.value for s in wanted.statuses])]
    if wanted.assignee is not None:
        where.append(consults.c.assignee_id == wanted.assignee)
    if wanted.unassigned:
        where.append(consults.c.assignee_id.is_(None))
    if wanted.visitor is not None:
        where.append(consults.c.visitor_id == wanted.visitor)
    if wanted.roles is not None:
        where.append(or_(*[_serves(r) for r in wanted.roles]) if wanted.roles else False)
    total = (await conn.execute(select(func.count()).where(*where))).scalar_one()
    query = (
        select(consults)
        .where(*where)
        .order_by(*_waiting_order())
        .limit(wanted.limit)
        .offset(wanted.offset)
    )
    return [_row(r) for r in await conn.execute(query)], int(total)


def _serves(role: Role) -> Any:
    """The role is one of the comma-separated `roles` of a consult."""
    text = "," + consults.c.roles + ","
    return text.like(f"%,{role.value},%")


async def consults_of_visitor(conn: AsyncConnection, visitor_id: str) -> list[ConsultRow]:
    query = (
        select(consults)
        .where(consults.c.visitor_id == visitor_id)
        .order_by(consults.c.created_at_ms.desc())
        .limit(200)
    )
    return [_row(r) for r in await conn.execute(query)]


async def consults_of_order(conn: AsyncConnection, order_id: str) -> list[ConsultRow]:
    query = (
        select(consults).where(consults.c.order_id == order_id).order_by(consults.c.created_at_ms)
    )
    return [_row(r) for r in await conn.execute(query)]


async def overdue(conn: AsyncConnection, now_ms: int, first_response_ms: int) -> list[str]:
    """Consults nobody on staff has answered in time, not yet escalated."""
    query = (
        select(consults.c.conv_id)
        .where(
            consults.c.status != ConsultStatus.CLOSED.value,
            consults.c.first_response_at_ms.is_(None),
            consults.c.escalated_at_ms.is_(None),
            consults.c.opened_at_ms <= now_ms - first_response_ms,
        )
        .order_by(consults.c.opened_at_ms)
        .limit(200)
    )
    return [r.conv_id for r in await conn.execute(query)]


# --- visitors ------------------------------------------------------------------------


async def visitor_flags(conn: AsyncConnection, user_id: str) -> VisitorFlags | None:
    """None for someone with no customer record (staff)."""
    query = select(customers.c.verified, customers.c.blocked_at_ms, customers.c.erased_at_ms).where(
        customers.c.user_id == user_id
    )
    row = (await conn.execute(query)).first()
    if row is None:
        return None
    return VisitorFlags(
        UserId(user_id),
        bool(row.verified),
        row.blocked_at_ms is not None,
        row.erased_at_ms is not None,
    )


@dataclass(frozen=True, slots=True)
class VisitorRecord:
    """What a consult shows of its visitor, read for a whole page at once."""

    user_id: UserId
    name: str
    language: str
    phone: str | None
    email: str | None
    flags: VisitorFlags


async def visitor_records(conn: AsyncConnection, ids: Sequence[str]) -> dict[UserId, VisitorRecord]:
    if not ids:
        return {}
    rows = await conn.execute(select(customers).where(customers.c.user_id.in_(sorted(set(ids)))))
    return {
        UserId(r.user_id): VisitorRecord(
            UserId(r.user_id),
            r.name,
            r.language,
            r.phone,
            r.email,
            VisitorFlags(
                UserId(r.user_id),
                bool(r.verified),
                r.blocked_at_ms is not None,
                r.erased_at_ms is not None,
            ),
        )
        for r in rows
    }


async def display_names(conn: AsyncConnection, ids: Sequence[str]) -> dict[UserId, str]:
    if not ids:
        return {}
    rows = await conn.execute(
        select(users.c.id, users.c.display_name).where(users.c.id.in_(sorted(set(ids))))
    )
    return {UserId(r.id): r.display_name for r in rows}


async def order_numbers(conn: AsyncConnection, ids: Sequence[str]) -> dict[str, str]:
    if not ids:
        return {}
    rows = await conn.execute(
        select(orders.c.id, orders.c.number).where(orders.c.id.in_(sorted(set(ids))))
    )
    return {r.id: r.number for r in rows}


async def set_verified_txn(conn: AsyncConnection, user_id: UserId, verified: bool = True) -> None:
    await conn.execute(
        update(customers).where(customers.c.user_id == user_id).values(verified=verified)
    )


async def set_blocked_txn(
    conn: AsyncConnection, user_id: UserId, by: UserId | None, now_ms: int | None
) -> None:
    await conn.execute(
        update(customers)
        .where(customers.c.user_id == user_id)
        .values(blocked_at_ms=now_ms, blocked_by=by)
    )


async def erase_visitor_txn(conn: AsyncConnection, user_id: UserId, name: str, now_ms: int) -> None:
    """Blank what identifies the person; the rows stay for the links to them."""
    await conn.execute(
        update(customers)
        .where(customers.c.user_id == user_id)
        .values(name=name, phone=None, email=None, company=None, erased_at_ms=now_ms)
    )
    await conn.execute(
        update(users).where(users.c.id == user_id).values(display_name=name, disabled=True)
    )


async def insert_link_txn(
    conn: AsyncConnection, token_hash: str, user_id: UserId, now_ms: int, expires_at_ms: int
) -> None:
    await conn.execute(
        visitor_links.insert().values(
            token_hash=token_hash,
            user_id=user_id,
            created_at_ms=now_ms,
            expires_at_ms=expires_at_ms,
            used_at_ms=None,
        )
    )


async def use_link_txn(conn: AsyncConnection, token_hash: str, now_ms: int) -> UserId | None:
    """The visitor a link signs in, once: a link used or expired signs in nobody."""
    done = await conn.execute(
        update(visitor_links)
        .where(
            visitor_links.c.token_hash == token_hash,
            visitor_links.c.used_at_ms.is_(None),
            visitor_links.c.expires_at_ms > now_ms,
        )
        .values(used_at_ms=now_ms)
        .returning(visitor_links.c.user_id)
    )
    value = done.scalar_one_or_none()
    return None if value is None else UserId(value)


# --- a visitor's messages, for export and erasure ------------------------------------


async def sent_messages(conn: AsyncConnection, visitor: UserId, limit: int) -> list[dict[str, Any]]:
    """What the visitor wrote and is still there, for their data export."""
    rows = await conn.execute(
        select(messages.c.conv_id, messages.c.seq, messages.c.ts, messages.c.kind, messages.c.text)
        .where(messages.c.sender_id == visitor, messages.c.purged_at_ms.is_(None))
        .order_by(messages.c.conv_id, messages.c.seq)
        .limit(limit)
    )
    return [
        {"conv": r.conv_id, "seq": r.seq, "ts": r.ts, "kind": r.kind, "text": r.text} for r in rows
    ]


async def message_runs(conn: AsyncConnection, visitor: UserId) -> list[retention_store.Due]:
    """The visitor's unpurged messages as runs of consecutive links: a purge finds each
    link's predecessor by walking a run, so a run must not skip anyone else's message."""
    rows = await conn.execute(
        select(messages.c.id, messages.c.conv_id, messages.c.seq, messages.c.sender_id)
        .where(
            messages.c.conv_id.in_(
                select(messages.c.conv_id).where(messages.c.sender_id == visitor)
            ),
            messages.c.purged_at_ms.is_(None),
        )
        .order_by(messages.c.conv_id, messages.c.seq)
    )
    runs: list[retention_store.Due] = []
    current: list[Any] = []
    for row in rows:
        breaks = current and (row.conv_id != current[-1].conv_id or row.seq != current[-1].seq + 1)
        if row.sender_id != visitor or breaks:
            if current:
                runs.append(_due(current))
            current = []
        if row.sender_id == visitor:
            current.append(row)
    if current:
        runs.append(_due(current))
    return runs


def _due(rows: list[Any]) -> retention_store.Due:
    return retention_store.Due(rows[0].conv_id, [r.id for r in rows], rows[0].seq, rows[-1].seq)
