"""Confirmation items of factory orders, their versions and the decisions on them.

A version is never deleted or rewritten once decided: the decision columns are
the record of who approved or rejected what, and when. A version that was
never decided and has a newer sibling is *superseded*; that is derived from
the version numbers, not stored, so proposing a version writes one row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import Row, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from orderchat.core.confirmations import ConfirmationItem, ConfirmationVersion, Decision, ItemStatus
from orderchat.core.errors import NotFound
from orderchat.core.ids import ConfirmationItemId, OrderId, UserId
from orderchat.core.texts import say
from orderchat.storage.schema import confirmation_items, confirmation_versions


def _item(row: Row[Any], versions: Sequence[ConfirmationVersion] = ()) -> ConfirmationItem:
    return ConfirmationItem(
        id=row.id,
        order_id=row.order_id,
        kind=row.kind,
        title=row.title,
        required=bool(row.required),
        status=ItemStatus(row.status),
        approved_version=row.approved_version,
        created_by=UserId(row.created_by),
        created_at_ms=row.created_at_ms,
        versions=tuple(versions),
    )


def _version(row: Row[Any]) -> ConfirmationVersion:
    return ConfirmationVersion(
        item_id=row.item_id,
        number=row.number,
        text=row.text,
        attachments=orjson.loads(row.attachments),
        proposed_by=UserId(row.proposed_by),
        proposed_at_ms=row.proposed_at_ms,
        decision=None if row.decision is None else Decision(row.decision),
        comment=row.comment,
        decided_by=None if row.decided_by is None else UserId(row.decided_by),
        decided_at_ms=row.decided_at_ms,
    )


async def count_required_open(conn: AsyncConnection, order_id: OrderId) -> int:
    """Required items of the order that are not approved yet."""
    query = select(func.count()).where(
        confirmation_items.c.order_id == order_id,
        confirmation_items.c.required.is_(True),
        confirmation_items.c.status != ItemStatus.APPROVED.value,
    )
    return int((await conn.execute(query)).scalar_one())


async def _versions(
    conn: AsyncConnection, item_ids: Sequence[str]
) -> dict[str, list[ConfirmationVersion]]:
    found: dict[str, list[ConfirmationVersion]] = {i: [] for i in item_ids}
    if item_ids:
        query = (
            select(confirmation_versions)
            .where(confirmation_versions.c.item_id.in_(list(item_ids)))
            .order_by(confirmation_versions.c.item_id, confirmation_versions.c.number)
        )
        for row in await conn.execute(query):
            found[row.item_id].append(_version(row))
    return found


async def get_item(conn: AsyncConnection, item_id: ConfirmationItemId) -> ConfirmationItem:
    """The item with all its versions, oldest first.

    Raises:
        NotFound: no such item.
    """
    row = (
        await conn.execute(select(confirmation_items).where(confirmation_items.c.id == item_id))
    ).first()
    if row is None:
        raise NotFound(say("confirmations.no_confirmation_item", item_id=item_id))
    return _item(row, (await _versions(conn, [row.id]))[row.id])


async def list_items(conn: AsyncConnection, order_id: OrderId) -> list[ConfirmationItem]:
    """The order's items in the order they were added, each with its versions."""
    query = (
        select(confirmation_items)
        .where(confirmation_items.c.order_id == order_id)
        .order_by(confirmation_items.c.created_at_ms, confirmation_items.c.id)
    )
    rows = list(await conn.execute(query))
    versions = await _versions(conn, [r.id for r in rows])
    return [_item(r, versions[r.id]) for r in rows]


async def insert_item_txn(conn: AsyncConnection, item: ConfirmationItem) -> None:
    await conn.execute(
        confirmation_items.insert().values(
            id=item.id,
            order_id=item.order_id,
            kind=item.kind,
            title=item.title,
            required=item.required,
            status=item.status.value,
            approved_version=item.approved_version,
            created_by=item.created_by,
            created_at_ms=item.created_at_ms,
        )
    )


async def set_item_status_txn(
    conn: AsyncConnection,
    item_id: ConfirmationItemId,
    status: ItemStatus,
    approved_version: int | None,
) -> None:
    await conn.execute(
        update(confirmation_items)
        .where(confirmation_items.c.id == item_id)
        .values(status=status.value, approved_version=approved_version)
    )


async def insert_version_txn(conn: AsyncConnection, version: ConfirmationVersion) -> None:
    await conn.execute(
        confirmation_versions.insert().values(
            item_id=version.item_id,
            number=version.number,
            text=version.text,
            attachments=orjson.dumps(version.attachments).decode(),
            proposed_by=version.proposed_by,
            proposed_at_ms=version.proposed_at_ms,
        )
    )


async def decide_version_txn(
    conn: AsyncConnection,
    item_id: ConfirmationItemId,
    number: int,
    decision: Decision,
    comment: str,
    by: UserId,
    now_ms: int,
) -> None:
    """Record the decision; only an undecided version is touched, so a decision
    is never overwritten even if a caller skipped its check."""
    await conn.execute(
        update(confirmation_versions)
        .where(
            confirmation_versions.c.item_id == item_id,
            confirmation_versions.c.number == number,
            confirmation_versions.c.decision.is_(None),
        )
        .values(decision=decision.value, comment=comment, decided_by=by, decided_at_ms=now_ms)
    )
