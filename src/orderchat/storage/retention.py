"""Retention's rows: the rules, legal holds, and purging a batch of messages.

A purge blanks content in place (messages, their edits, their index rows) and
keeps every hash; the files that only purged messages carried are let go.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, insert, not_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from orderchat.core.chain import GENESIS, chain_hash, edit_hash
from orderchat.core.model import ConversationKind
from orderchat.core.retention import RetentionRule
from orderchat.storage.messages import stored_edit, stored_message
from orderchat.storage.schema import (
    conversations,
    forwarded_uploads,
    message_edits,
    messages,
    orders,
    purges,
    retention_rules,
    search_docs,
    uploads,
)


async def rules(conn: AsyncConnection) -> dict[ConversationKind, int | None]:
    found: dict[ConversationKind, int | None] = dict.fromkeys(ConversationKind)
    for row in await conn.execute(select(retention_rules)):
        found[ConversationKind(row.kind)] = row.days
    return found


async def set_rule_txn(
    conn: AsyncConnection, rule: RetentionRule, by: str | None, now_ms: int
) -> None:
    await conn.execute(delete(retention_rules).where(retention_rules.c.kind == rule.kind.value))
    if rule.days is not None:
        await conn.execute(
            insert(retention_rules).values(
                kind=rule.kind.value, days=rule.days, updated_at_ms=now_ms, updated_by=by
            )
        )


async def set_legal_hold_txn(conn: AsyncConnection, order_id: str, hold: bool) -> None:
    await conn.execute(update(orders).where(orders.c.id == order_id).values(legal_hold=hold))


async def held_orders(conn: AsyncConnection) -> list[tuple[str, str]]:
    rows = await conn.execute(
        select(orders.c.id, orders.c.number)
        .where(orders.c.legal_hold.is_(True))
        .order_by(orders.c.number)
    )
    return [(r.id, r.number) for r in rows]


@dataclass(frozen=True, slots=True)
class Due:
    """Messages of one conversation past their rule, oldest first."""

    conv_id: str
    message_ids: list[str]
    first_seq: int
    last_seq: int


async def due(
    conn: AsyncConnection, kind: ConversationKind, cutoff_ms: int, limit: int
) -> list[Due]:
    """Up to `limit` unpurged messages sent before `cutoff_ms` in conversations of
    `kind`, leaving out order conversations under legal hold."""
    held = select(orders.c.conv_id).where(orders.c.legal_hold.is_(True))
    rows = await conn.execute(
        select(messages.c.id, messages.c.conv_id, messages.c.seq)
        .join(conversations, conversations.c.id == messages.c.conv_id)
        .where(
            conversations.c.kind == kind.value,
            messages.c.ts < cutoff_ms,
            messages.c.purged_at_ms.is_(None),
            not_(messages.c.conv_id.in_(held)),
        )
        .order_by(messages.c.conv_id, messages.c.seq)
        .limit(limit)
    )
    by_conv: dict[str, list[Any]] = {}
    for row in rows:
        by_conv.setdefault(row.conv_id, []).append(row)
    return [
        Due(conv_id, [r.id for r in found], found[0].seq, found[-1].seq)
        for conv_id, found in by_conv.items()
    ]


async def purge_txn(
    conn: AsyncConnection, batch: Due, cutoff_ms: int, now_ms: int
) -> list[tuple[str, str | None]]:
    """Blank the batch's content and record it; the uploads only it carried, to let go."""
    ids = batch.message_ids
    message_prevs, edit_prevs = await _predecessors(conn, batch)
    # One statement each, run for every row at once: only the predecessor differs.
    await conn.execute(
        update(messages)
        .where(messages.c.id == bindparam("b_id"))
        .values(
            text="",
            attachments="[]",
            mentions="[]",
            meta=None,
            forwarded_from=None,
            purged_at_ms=now_ms,
            purged_prev=bindparam("b_prev"),
        ),
        [{"b_id": m, "b_prev": p} for m, p in message_prevs.items()],
    )
    if edit_prevs:
        await conn.execute(
            update(message_edits)
            .where(
                message_edits.c.message_id == bindparam("b_id"),
                message_edits.c.version == bindparam("edit_version"),
            )
            .values(text="", purged_prev=bindparam("b_prev")),
            [{"b_id": m, "edit_version": v, "b_prev": p} for (m, v), p in edit_prevs.items()],
        )
    await conn.execute(delete(search_docs).where(search_docs.c.message_id.in_(ids)))
    await conn.execute(delete(forwarded_uploads).where(forwarded_uploads.c.message_id.in_(ids)))
    files = await _files_only_of(conn, ids)
    if files:
        await conn.execute(delete(uploads).where(uploads.c.id.in_([f[0] for f in files])))
    await conn.execute(
        insert(purges).values(
            ts=now_ms,
            conv_id=batch.conv_id,
            first_seq=batch.first_seq,
            last_seq=batch.last_seq,
            messages=len(ids),
            files=len(files),
            cutoff_ms=cutoff_ms,
        )
    )
    return files


async def _predecessors(
    conn: AsyncConnection, batch: Due
) -> tuple[dict[str, str | None], dict[tuple[str, int], str | None]]:
    """The hash before each link of the batch, found from the content while it is there.

    A message follows the message before it or an edit; an edit follows the
    newest message of its time or another edit. Each candidate is tried by
    hashing the content after it; a link whose content no longer hashes to its
    stored value (tampered) keeps None, and verify goes on reporting it.
    """
    rows = list(
        await conn.execute(
            select(messages).where(messages.c.id.in_(batch.message_ids)).order_by(messages.c.seq)
        )
    )
    edits = [
        stored_edit(r)
        for r in await conn.execute(
            select(message_edits).where(message_edits.c.conv_id == batch.conv_id)
        )
    ]
    edit_hashes = [e.hash for e in edits]
    before = await _hash_at(conn, batch.conv_id, batch.first_seq - 1)
    message_prevs: dict[str, str | None] = {}
    for row in rows:
        stored = stored_message(row)
        candidates = [before, *edit_hashes]
        message_prevs[row.id] = next(
            (c for c in candidates if chain_hash(c, stored.message) == stored.hash), None
        )
        before = stored.hash
    edit_prevs: dict[tuple[str, int], str | None] = {}
    for found in edits:
        if found.edit.message_id not in message_prevs:
            continue
        near = await _hashes_before(conn, batch.conv_id, found.edit.ts)
        candidates = [*near, *edit_hashes]
        edit_prevs[(found.edit.message_id, found.edit.version)] = next(
            (c for c in candidates if edit_hash(c, found.edit) == found.hash), None
        )
    return message_prevs, edit_prevs


async def _hash_at(conn: AsyncConnection, conv_id: str, seq: int) -> str:
    if seq < 1:
        return GENESIS
    found = (
        await conn.execute(
            select(messages.c.hash).where(messages.c.conv_id == conv_id, messages.c.seq == seq)
        )
    ).scalar()
    return GENESIS if found is None else str(found)


async def _hashes_before(conn: AsyncConnection, conv_id: str, ts: int) -> list[str]:
    """The newest messages' hashes at `ts`: what an edit made then chained after."""
    rows = await conn.execute(
        select(messages.c.hash)
        .where(messages.c.conv_id == conv_id, messages.c.ts <= ts)
        .order_by(messages.c.seq.desc())
        .limit(3)
    )
    return [str(r.hash) for r in rows]


async def _files_only_of(
    conn: AsyncConnection, message_ids: Sequence[str]
) -> list[tuple[str, str | None]]:
    """The uploads these messages carried that no other message shows (forwards do)."""
    forwarded = select(forwarded_uploads.c.upload_id)
    rows = await conn.execute(
        select(uploads.c.id, uploads.c.sha256).where(
            and_(uploads.c.message_id.in_(list(message_ids)), not_(uploads.c.id.in_(forwarded)))
        )
    )
    return [(r.id, r.sha256) for r in rows]


async def recent_purges(conn: AsyncConnection, limit: int = 50) -> list[dict[str, Any]]:
    rows = await conn.execute(select(purges).order_by(purges.c.id.desc()).limit(limit))
    return [
        {
            "ts": r.ts,
            "conv": r.conv_id,
            "first_seq": r.first_seq,
            "last_seq": r.last_seq,
            "messages": r.messages,
            "files": r.files,
        }
        for r in rows
    ]


async def purged_count(conn: AsyncConnection, conv_id: str) -> int:
    query = select(func.count()).where(
        messages.c.conv_id == conv_id, messages.c.purged_at_ms.is_not(None)
    )
    return int((await conn.execute(query)).scalar_one())
