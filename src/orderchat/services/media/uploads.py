"""Uploads: created, appended to by as many requests as the network needs, finished.

An upload's life: created for one conversation (quota and size checked), its
bytes appended by as many requests as the network needs (the file on disk is
the offset), finished when the last byte arrives (hashed, type checked against
the bytes, moved into the content-addressed store), then sent in exactly one
message. Its previews are asked for once it is finished (`previews.py`).

Finishing and cancelling run one at a time in this process, so a blob is
never deleted while another upload of the same bytes is being finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from orderchat.core.consults import check_visitor_file
from orderchat.core.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
)
from orderchat.core.ids import IdMinter, UploadId
from orderchat.core.media import (
    OCTET_STREAM,
    Checksum,
    ChecksumMismatch,
    PreviewStatus,
    UnsupportedMediaType,
    check_offset,
    check_quota,
    check_upload_length,
    clean_filename,
    normalize_type,
    previewable,
    verified_type,
)
from orderchat.core.model import User, UserKind
from orderchat.core.ratelimit import Rate
from orderchat.core.texts import say
from orderchat.media.blobstore import BlobStore
from orderchat.media.partials import PartialFiles
from orderchat.media.sniff import SNIFF_BYTES, sniff_bytes, sniff_file
from orderchat.services.limits import ClusterRateLimiter, SharedBuckets
from orderchat.services.media.limits import MediaLimits
from orderchat.services.media.previews import Previews
from orderchat.services.media.receiving import write_body
from orderchat.services.media.views import upload_descriptor
from orderchat.services.ports import Clock
from orderchat.storage import consults as consult_store
from orderchat.storage import conversations as conv_store
from orderchat.storage import media as media_store
from orderchat.storage.engine import Database
from orderchat.storage.media import UploadRow

# New uploads per user: a photo album at once, then a steady trickle.
UPLOAD_RATE = Rate(burst=30, per_s=2)
# The first bytes are sniffed as soon as this many are in (or the whole file).
HEAD_CHECK_BYTES = 1024


@dataclass(frozen=True, slots=True)
class Progress:
    id: UploadId
    offset: int
    length: int
    expires_at_ms: int | None  # None once finished


class Uploads:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        ids: IdMinter,
        store: BlobStore,
        partials: PartialFiles,
        previews: Previews,
        limits: MediaLimits,
        *,
        rate_limits: bool,
        shared_limits: SharedBuckets | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._ids = ids
        self._store = store
        self._partials = partials
        self._previews = previews
        self._limits = limits
        self._create_limiter = ClusterRateLimiter(
            "uploads", UPLOAD_RATE, enabled=rate_limits, shared=shared_limits
        )
        self._busy: set[str] = set()  # uploads with a PATCH running
        self._head_checked: set[str] = set()  # uploads whose first bytes were sniffed
        # The running SHA-256 of uploads received in this process: (bytes hashed, state).
        self._hashes: dict[str, tuple[int, Any]] = {}
        self._finish_lock = asyncio.Lock()

    async def create(self, user: User, length: int, metadata: dict[str, str]) -> Progress:
        """Start an upload for a conversation the user belongs to.

        Raises:
            BadRequest: metadata is missing or wrong, or the file is empty.
            TooLarge: over the size limit or the user's quota.
            Forbidden / NotFound: the conversation is not the user's.
            RateLimited: too many new uploads.
        """
        check_upload_length(length, self._limits.max_upload_bytes)
        conv_id = metadata.get("conv")
        if not conv_id:
            raise BadRequest(say("uploads.upload_metadata_must_name_conversation"))
        name = clean_filename(metadata.get("filename") or metadata.get("name") or "")
        declared = normalize_type(metadata.get("filetype") or metadata.get("type"))
        await self._create_limiter.hit(user.id, self._clock.monotonic_s(), say("ratelimit.uploads"))
        now = self._clock.now_ms()
        upload_id = self._ids.upload(now)
        expires = now + int(self._limits.upload_ttl_s * 1000)
        await self._partials.create(upload_id)
        try:
            async with self._db.write("create_upload") as conn:
                await conv_store.get_conversation(conn, conv_id)
                if not await media_store.is_current_member(conn, conv_id, user.id):
                    raise Forbidden(say("conversations.you_are_not_member_conversation"))
                if user.kind is UserKind.CUSTOMER:
                    flags = await consult_store.visitor_flags(conn, user.id)
                    if flags is not None and not flags.verified:
                        limit = self._limits.visitor_max_upload_bytes
                        check_visitor_file(declared, length, limit)
                used = await media_store.bytes_held(conn, user.id)
                check_quota(used, length, self._limits.quota_bytes)
                await media_store.insert_upload_txn(
                    conn,
                    {
                        "id": upload_id,
                        "owner_id": user.id,
                        "conv_id": conv_id,
                        "filename": name,
                        "type": declared,
                        "length": length,
                        "created_at_ms": now,
                        "expires_at_ms": expires,
                    },
                )
        except BaseException:
            await self._partials.delete(upload_id)
            raise
        self._hashes[upload_id] = (0, hashlib.sha256())
        return Progress(upload_id, 0, length, expires)

    async def progress(self, user: User, upload_id: UploadId) -> Progress:
        row = await self._own_upload(user, upload_id)
        if row.finished:
            return Progress(row.id, row.length, row.length, None)
        offset = await self._offset(row)
        if offset == row.length:  # the last byte came, the finishing did not: do it now
            return await self._finish(row)
        return Progress(row.id, offset, row.length, row.expires_at_ms)

    async def append(
        self,
        user: User,
        upload_id: UploadId,
        offset: int,
        checksum: Checksum | None,
        body: AsyncIterator[bytes],
    ) -> Progress:
        """Append one request's body at `offset`.

        Without a checksum, whatever arrived before a cut is kept and the client
        resumes after it. With one, the body is all or nothing.

        Raises:
            Conflict: `offset` is not where the upload is, or another request
                is appending to it right now.
            ChecksumMismatch: the body is not what its checksum says.
            TooLarge: the body goes past the declared length.
            UnsupportedMediaType: the bytes are not of the declared type; the
                upload is deleted.
        """
        row = await self._own_upload(user, upload_id)
        if row.finished:
            if offset == row.length:  # a retry of the last request: nothing to do
                return Progress(row.id, row.length, row.length, None)
            raise Conflict(say("uploads.upload_finished"))
        if upload_id in self._busy:
            raise Conflict(say("uploads.another_request_appending_upload"))
        self._busy.add(upload_id)
        try:
            start = await self._offset(row)
            check_offset(offset, start, row.length)
            received = await self._receive(row, start, checksum, body)
        finally:
            self._busy.discard(upload_id)
        end = start + received
        if row.id not in self._head_checked and end >= min(row.length, HEAD_CHECK_BYTES):
            self._head_checked.add(row.id)
            await self._check_head(row, await self._partials.head(row.id, SNIFF_BYTES))
        if end == row.length:
            return await self._finish(row)
        return Progress(row.id, end, row.length, row.expires_at_ms)

    async def _receive(
        self, row: UploadRow, start: int, checksum: Checksum | None, body: AsyncIterator[bytes]
    ) -> int:
        """Write the body after `start`; how many bytes were kept."""
        known = self._hashes.get(row.id)
        content = known[1] if known is not None and known[0] == start else None
        before = None if content is None else content.copy()
        request_hash = None if checksum is None else hashlib.new(checksum.algorithm)
        hashers = [h for h in (content, request_hash) if h is not None]
        appender = await self._partials.appender(row.id, start)
        try:
            received, cut, failure = await write_body(appender, hashers, body, row.length - start)
        finally:
            await appender.close()
        if failure is None and checksum is not None:
            assert request_hash is not None
            if cut or request_hash.digest() != checksum.digest:
                failure = ChecksumMismatch(
                    say("uploads.body_cut_off" if cut else "uploads.body_does_not_match_checksum")
                )
        if failure is not None:  # all or nothing: the upload is as it was before
            await self._partials.truncate(row.id, start)
            if before is not None:
                self._hashes[row.id] = (start, before)
            else:
                self._hashes.pop(row.id, None)
            raise failure
        if content is not None:
            self._hashes[row.id] = (start + received, content)
        return received

    async def _check_head(self, row: UploadRow, head: bytes) -> None:
        """Refuse a lie as soon as its first bytes show it, not after a gigabyte."""
        sniffed = await sniff_bytes(head)
        if sniffed == OCTET_STREAM:  # too little to tell: the whole file is checked at the end
            return
        try:
            verified_type(row.type, sniffed)
        except UnsupportedMediaType:
            await self._discard(row)
            raise

    async def _finish(self, row: UploadRow) -> Progress:
        async with self._finish_lock:
            async with self._db.read() as conn:  # another request may have finished it
                now_row = await media_store.get_upload(conn, row.id)
            if now_row is None:
                raise NotFound(say("uploads.no_upload", id=row.id))
            if now_row.finished:
                return Progress(row.id, row.length, row.length, None)
            known = self._hashes.pop(row.id, None)
            if known is not None and known[0] == row.length:
                await self._partials.flush(row.id)
                sha256 = known[1].hexdigest()
            else:
                sha256 = await self._partials.flush_and_hash(row.id)
            part = self._partials.path(row.id)
            try:
                mime = verified_type(row.type, await sniff_file(part))
            except UnsupportedMediaType:
                await self._discard(row, locked=True)
                raise
            status = PreviewStatus.PENDING if previewable(mime) else PreviewStatus.NONE
            now = self._clock.now_ms()
            async with self._db.write("finish_upload") as conn:
                await media_store.finish_upload_txn(conn, row.id, sha256, mime, now)
                new_blob = await media_store.ensure_blob_txn(
                    conn, sha256, row.length, mime, status, now
                )
            # Recorded first, moved second: a crash in between is finished by
            # `Sweeper.recover`, and the blob is never visible half-written.
            await self._store.put(sha256, part)
            self._head_checked.discard(row.id)
        if new_blob and status is PreviewStatus.PENDING:
            self._previews.request(sha256)
        return Progress(row.id, row.length, row.length, None)

    async def cancel(self, user: User, upload_id: UploadId) -> None:
        """tus termination: an unsent upload and its bytes go away.

        Raises:
            Conflict: a message carries the upload; the record keeps it.
        """
        row = await self._own_upload(user, upload_id, include_expired=True)
        if row.message_id is not None:
            raise Conflict(say("uploads.file_was_sent_in_message"))
        if row.id in self._busy:
            raise Conflict(say("uploads.request_appending_upload"))
        await self._discard(row)

    async def discard_expired(self, upload_id: UploadId) -> None:
        """Delete an expired upload, unless a request is appending to it right now."""
        if upload_id in self._busy:
            return
        async with self._db.read() as conn:
            row = await media_store.get_upload(conn, upload_id)
        if row is not None:
            await self._discard(row)

    async def _discard(self, row: UploadRow, *, locked: bool = False) -> None:
        """Delete an upload, and its blob when no other upload has the same bytes."""
        async with contextlib.AsyncExitStack() as stack:
            if not locked:
                await stack.enter_async_context(self._finish_lock)
            async with self._db.write("discard_upload") as conn:
                await media_store.delete_upload_txn(conn, row.id)
                orphan = row.sha256 is not None and await media_store.blob_unused(conn, row.sha256)
                if orphan and row.sha256 is not None:
                    await media_store.delete_blob_txn(conn, row.sha256)
            await self._partials.delete(row.id)
            self._hashes.pop(row.id, None)
            self._head_checked.discard(row.id)
            if orphan and row.sha256 is not None:
                await self._store.delete(row.sha256)

    async def state(self, user: User, upload_id: UploadId) -> dict[str, object]:
        row = await self._own_upload(user, upload_id)
        offset = row.length if row.finished else await self._offset(row)
        return {
            **upload_descriptor(row),
            "offset": offset,
            "state": "finished" if row.finished else "receiving",
            "conv": row.conv_id,
            "message": row.message_id,
        }

    async def _own_upload(
        self, user: User, upload_id: UploadId, *, include_expired: bool = False
    ) -> UploadRow:
        async with self._db.read() as conn:
            row = await media_store.get_upload(conn, upload_id)
        # Someone else's upload is answered like one that does not exist.
        if row is None or row.owner_id != user.id:
            raise NotFound(say("messaging.no_upload", upload_id=upload_id))
        expired = not row.finished and row.expires_at_ms < self._clock.now_ms()
        if expired and not include_expired:
            raise NotFound(say("uploads.upload_expired", upload_id=upload_id))
        return row

    async def _offset(self, row: UploadRow) -> int:
        size = await self._partials.size(row.id)
        if size is None:
            raise NotFound(say("uploads.data_upload_gone", id=row.id))
        return size
