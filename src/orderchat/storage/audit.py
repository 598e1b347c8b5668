"""The audit log's rows: appended in the action's transaction, read newest first."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import insert, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from orderchat.core.audit import AuditAction, AuditEntry, AuditQuery
from orderchat.storage.schema import audit_log, users


async def record_txn(conn: AsyncConnection, entry: AuditEntry) -> None:
    await record_many_txn(conn, [entry])


async def record_many_txn(conn: AsyncConnection, entries: Sequence[AuditEntry]) -> None:
    if not entries:
        return
    await conn.execute(
        insert(audit_log),
        [
            {
                "ts": e.ts,
                "actor_id": e.actor,
                "action": e.action.value,
                "target": e.target,
                "conv_id": e.conv,
                "details": orjson.dumps(e.details, option=orjson.OPT_SORT_KEYS).decode(),
            }
            for e in entries
        ],
    )


@dataclass(frozen=True, slots=True)
class LoggedEntry:
    id: int
    entry: AuditEntry
    actor_name: str | None


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def entries(
    conn: AsyncConnection, query: AuditQuery, before_id: int | None, limit: int
) -> list[LoggedEntry]:
    """A page of entries, newest first, below `before_id`."""
    where: list[Any] = []
    if query.actions:
        where.append(audit_log.c.action.in_(sorted(a.value for a in query.actions)))
    if query.actor is not None:
        where.append(audit_log.c.actor_id == query.actor)
    if query.target is not None:
        where.append(audit_log.c.target == query.target)
    if query.since_ms is not None:
        where.append(audit_log.c.ts >= query.since_ms)
    if query.until_ms is not None:
        where.append(audit_log.c.ts < query.until_ms)
    if before_id is not None:
        where.append(audit_log.c.id < before_id)
    if query.text:
        pattern = _like(query.text)
        where.append(
            or_(
                *(
                    column.like(pattern, escape="\\")
                    for column in (
                        audit_log.c.target,
                        audit_log.c.details,
                        audit_log.c.actor_id,
                        audit_log.c.conv_id,
                        users.c.display_name,
                        users.c.username,
                    )
                )
            )
        )
    rows = await conn.execute(
        select(audit_log, users.c.display_name)
        .outerjoin(users, users.c.id == audit_log.c.actor_id)
        .where(*where)
        .order_by(audit_log.c.id.desc())
        .limit(limit)
    )
    return [
        LoggedEntry(
            id=row.id,
            entry=AuditEntry(
                action=AuditAction(row.action),
                actor=row.actor_id,
                target=row.target,
                ts=row.ts,
                conv=row.conv_id,
                details=orjson.loads(row.details),
            ),
            actor_name=row.display_name,
        )
        for row in rows
    ]
