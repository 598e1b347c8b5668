"""Uploads and blobs: who sent which bytes where, and what previews exist."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Row, and_, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from orderchat.core.ids import ConversationId, MessageId, UploadId, UserId
from orderchat.core.media import PreviewStatus
from orderchat.core.model import MessageKind
from orderchat.storage.schema import blobs, forwarded_uploads, members, messages, uploads


@dataclass(frozen=True, slots=True)
class BlobRow:
    sha256: str
    size: int
    type: str
    preview_status: PreviewStatus
    preview_error: str | None
    preview: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class UploadRow:
    id: UploadId
    owner_id: UserId
    conv_id: ConversationId
    filename: str
    type: str
    length: int
    created_at_ms: int
    expires_at_ms: int
    finished_at_ms: int | None
    sha256: str | None
    message_id: MessageId | None
    seq: int | None
    blob: BlobRow | None

    @property
    def finished(self) -> bool:
        return self.finished_at_ms is not None


@dataclass(frozen=True, slots=True)
class SentFile:
    """A file as the conversation's library shows it: with its message."""

    upload: UploadRow
    sender: UserId
    ts: int
    kind: MessageKind
    internal: bool
    recalled: bool


def _blob(row: Any) -> BlobRow | None:
    if row.blob_sha256 is None:
        return None
    return BlobRow(
        sha256=row.blob_sha256,
        size=row.blob_size,
        type=row.blob_type,
        preview_status=PreviewStatus(row.preview_status),
        preview_error=row.preview_error,
        preview=None if row.preview is None else orjson.loads(row.preview),
    )


def _upload(row: Row[Any]) -> UploadRow:
    return UploadRow(
        id=UploadId(row.id),
        owner_id=UserId(row.owner_id),
        conv_id=ConversationId(row.conv_id),
        filename=row.filename,
        type=row.type,
        length=row.length,
        created_at_ms=row.created_at_ms,
        expires_at_ms=row.expires_at_ms,
        finished_at_ms=row.finished_at_ms,
        sha256=row.sha256,
        message_id=None if row.message_id is None else MessageId(row.message_id),
        seq=row.seq,
        blob=_blob(row),
    )


_BLOB_COLUMNS = (
    blobs.c.sha256.label("blob_sha256"),
    blobs.c.size.label("blob_size"),
    blobs.c.type.label("blob_type"),
    blobs.c.preview_status,
    blobs.c.preview_error,
    blobs.c.preview,
)
_UPLOAD_COLUMNS = (uploads, *_BLOB_COLUMNS)


def _uploads_with_blobs() -> Any:
    return select(*_UPLOAD_COLUMNS).select_from(
        uploads.outerjoin(blobs, blobs.c.sha256 == uploads.c.sha256)
    )


async def insert_upload_txn(conn: AsyncConnection, row: dict[str, Any]) -> None:
    await conn.execute(insert(uploads).values(**row, finished_at_ms=None, sha256=None))


async def get_upload(conn: AsyncConnection, upload_id: UploadId) -> UploadRow | None:
    row = (await conn.execute(_uploads_with_blobs().where(uploads.c.id == upload_id))).first()
    return None if row is None else _upload(row)


async def get_uploads(conn: AsyncConnection, ids: Sequence[str]) -> dict[str, UploadRow]:
    if not ids:
        return {}
    rows = await conn.execute(_uploads_with_blobs().where(uploads.c.id.in_(list(ids))))
    return {row.id: _upload(row) for row in rows}


async def bytes_held(conn: AsyncConnection, owner: UserId) -> int:
    """Everything a user's uploads take, finished or not: what the quota counts."""
    query = select(func.coalesce(func.sum(uploads.c.length), 0)).where(uploads.c.owner_id == owner)
    return int((await conn.execute(query)).scalar_one())


async def finish_upload_txn(
    conn: AsyncConnection, upload_id: UploadId, sha256: str, mime: str, now_ms: int
) -> None:
    await conn.execute(
        update(uploads)
        .where(uploads.c.id == upload_id)
        .values(finished_at_ms=now_ms, sha256=sha256, type=mime)
    )


async def ensure_blob_txn(
    conn: AsyncConnection, sha256: str, size: int, mime: str, status: PreviewStatus, now_ms: int
) -> bool:
    """Record a blob unless it is known; True when this call recorded it.

    Finishing uploads is serialised in the process, and SQLite's write lock
    serialises the check and the insert.
    """
    found = await conn.execute(select(blobs.c.sha256).where(blobs.c.sha256 == sha256))
    if found.first() is not None:
        return False
    await conn.execute(
        insert(blobs).values(
            sha256=sha256,
            size=size,
            type=mime,
            created_at_ms=now_ms,
            preview_status=status.value,
            preview_error=None,
            preview=None,
        )
    )
    return True


async def get_blob(conn: AsyncConnection, sha256: str) -> BlobRow | None:
    query = select(*_BLOB_COLUMNS).where(blobs.c.sha256 == sha256)
    row = (await conn.execute(query)).first()
    return None if row is None else _blob(row)


async def set_preview_txn(
    conn: AsyncConnection,
    sha256: str,
    status: PreviewStatus,
    error: str | None,
    preview: dict[str, Any] | None,
) -> None:
    await conn.execute(
        update(blobs)
        .where(blobs.c.sha256 == sha256)
        .values(
            preview_status=status.value,
            preview_error=error,
            preview=None if preview is None else orjson.dumps(preview).decode(),
        )
    )


async def pending_previews(conn: AsyncConnection) -> list[BlobRow]:
    query = select(*_BLOB_COLUMNS).where(blobs.c.preview_status == PreviewStatus.PENDING.value)
    return [b for b in map(_blob, await conn.execute(query)) if b is not None]


async def attach_txn(conn: AsyncConnection, links: Sequence[tuple[str, MessageId, int]]) -> None:
    """Tie uploads to the message that carries them; each upload to one message only."""
    for upload_id, message_id, seq in links:
        result = await conn.execute(
            update(uploads)
            .where(and_(uploads.c.id == upload_id, uploads.c.message_id.is_(None)))
            .values(message_id=message_id, seq=seq)
        )
        if result.rowcount != 1:
            raise RuntimeError(f"upload {upload_id} was attached twice")


async def sent_files_of_blob(conn: AsyncConnection, sha256: str) -> list[SentFile]:
    """Every sent file with these bytes: all of them show the blob's previews."""
    return await _sent_files(conn, uploads.c.sha256 == sha256, limit=10_000)


async def delete_upload_txn(conn: AsyncConnection, upload_id: UploadId) -> None:
    await conn.execute(delete(uploads).where(uploads.c.id == upload_id))


async def blob_unused(conn: AsyncConnection, sha256: str) -> bool:
    query = select(func.count()).select_from(uploads).where(uploads.c.sha256 == sha256)
    return int((await conn.execute(query)).scalar_one()) == 0


async def delete_blob_txn(conn: AsyncConnection, sha256: str) -> None:
    await conn.execute(delete(blobs).where(blobs.c.sha256 == sha256))


async def expired_uploads(conn: AsyncConnection, now_ms: int, limit: int) -> list[UploadId]:
    query = (
        select(uploads.c.id)
        .where(and_(uploads.c.finished_at_ms.is_(None), uploads.c.expires_at_ms < now_ms))
        .limit(limit)
    )
    return [UploadId(row.id) for row in await conn.execute(query)]


async def sent_file(conn: AsyncConnection, upload_id: UploadId) -> SentFile | None:
    """An attached upload with its message, or None when it was never sent."""
    found = await _sent_files(conn, uploads.c.id == upload_id, limit=1)
    return found[0] if found else None


async def conversation_files(
    conn: AsyncConnection,
    conv_id: str,
    *,
    kinds: Sequence[MessageKind],
    before: int | None,
    limit: int,
    include_internal: bool,
    include_recalled: bool,
) -> list[SentFile]:
    where = [uploads.c.conv_id == conv_id, uploads.c.message_id.is_not(None)]
    if kinds:
        wanted: ColumnElement[bool] = messages.c.kind.in_([k.value for k in kinds])
        if MessageKind.IMAGE in kinds:
            # An order step's photos ride on its event message: they are pictures too.
            step_photo = and_(
                messages.c.kind == MessageKind.ORDER_EVENT.value, uploads.c.type.like("image/%")
            )
            wanted = or_(wanted, step_photo)
        where.append(wanted)
    if before is not None:
        where.append(uploads.c.seq < before)
    if not include_internal:
        where.append(messages.c.internal.is_(False))
    if not include_recalled:
        where.append(messages.c.recalled_at_ms.is_(None))
    return await _sent_files(conn, and_(*where), limit=limit)


async def _sent_files(conn: AsyncConnection, where: Any, limit: int) -> list[SentFile]:
    query = (
        select(
            *_UPLOAD_COLUMNS,
            messages.c.sender_id,
            messages.c.ts,
            messages.c.kind.label("message_kind"),
            messages.c.internal,
            messages.c.recalled_at_ms,
        )
        .select_from(
            uploads.join(messages, messages.c.id == uploads.c.message_id).outerjoin(
                blobs, blobs.c.sha256 == uploads.c.sha256
            )
        )
        .where(where)
        .order_by(uploads.c.seq.desc(), uploads.c.id)
        .limit(limit)
    )
    return [
        SentFile(
            upload=_upload(row),
            sender=UserId(row.sender_id),
            ts=row.ts,
            kind=MessageKind(row.message_kind),
            internal=bool(row.internal),
            recalled=row.recalled_at_ms is not None,
        )
        for row in await conn.execute(query)
    ]


async def is_current_member(conn: AsyncConnection, conv_id: str, user_id: UserId) -> bool:
    query = select(members.c.user_id).where(
        and_(
            members.c.conv_id == conv_id,
            members.c.user_id == user_id,
            members.c.left_pos.is_(None),
        )
    )
    return (await conn.execute(query)).first() is not None


async def insert_forwarded_txn(
    conn: AsyncConnection, links: Sequence[tuple[str, MessageId, ConversationId]]
) -> None:
    await conn.execute(
        insert(forwarded_uploads),
        [{"upload_id": u, "message_id": m, "conv_id": c} for u, m, c in links],
    )


async def forward_visible(
    conn: AsyncConnection, upload_id: str, user_id: UserId, *, include_internal: bool
) -> bool:
    """Whether the user may see a forward that carries this upload (so may open the file)."""
    where = [
        forwarded_uploads.c.upload_id == upload_id,
        messages.c.recalled_at_ms.is_(None),
        members.c.left_pos.is_(None),
    ]
    if not include_internal:
        where.append(messages.c.internal.is_(False))
    query = (
        select(forwarded_uploads.c.message_id)
        .select_from(
            forwarded_uploads.join(messages, messages.c.id == forwarded_uploads.c.message_id).join(
                members,
                and_(
                    members.c.conv_id == forwarded_uploads.c.conv_id,
                    members.c.user_id == user_id,
                ),
            )
        )
        .where(*where)
        .limit(1)
    )
    return (await conn.execute(query)).first() is not None
