"""Uploads, downloads, previews and the file library.

An upload's life: created for one conversation (quota and size checked), its
bytes appended by as many requests as the network needs (the file on disk is
the offset), finished when the last byte arrives (hashed, type checked against
the bytes, moved into the content-addressed store), then sent in exactly one
message. Previews are made in a child process after that, and a `media` event
tells the conversation when one is ready after its message went out.

Finishing and cancelling run one at a time in this process, so a blob is
never deleted while another upload of the same bytes is being finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from orderchat.core.errors import (
    BadRequest,
    Conflict,
    DomainError,
    Forbidden,
    NotFound,
    TooLarge,
)
from orderchat.core.ids import new_id
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
    served_type,
    verified_type,
)
from orderchat.core.model import MessageKind, User, UserKind
from orderchat.core.ratelimit import Rate, RateLimiter
from orderchat.media.blobstore import BlobStore
from orderchat.media.partials import PartialFiles
from orderchat.media.processor import PreviewLimits, run_preview
from orderchat.media.sniff import SNIFF_BYTES, sniff_bytes, sniff_file
from orderchat.services.media.views import upload_descriptor
from orderchat.services.ports import Clock
from orderchat.services.writer import GroupCommitWriter, WriteTxn
from orderchat.storage import conversations as conv_store
from orderchat.storage import media as media_store
from orderchat.storage.engine import Database
from orderchat.storage.media import SentFile, UploadRow

logger = logging.getLogger(__name__)

# New uploads per user: a photo album at once, then a steady trickle.
UPLOAD_RATE = Rate(burst=30, per_s=2)
# Bytes gathered before one write to disk: few thread hops, little memory.
WRITE_BYTES = 4 * 1024 * 1024
# A request body that sends nothing for this long is treated as cut off.
BODY_IDLE_S = 60.0
SWEEP_EVERY_S = 600.0
# The first bytes are sniffed as soon as this many are in (or the whole file).
HEAD_CHECK_BYTES = 1024
MAX_LIBRARY_PAGE = 200


class ConnectionCut(Exception):
    """The client went away in the middle of a request body."""


class Variant(StrEnum):
    ORIGINAL = "original"
    PREVIEW = "preview"
    PLAYBACK = "playback"


@dataclass(frozen=True, slots=True)
class Progress:
    id: str
    offset: int
    length: int
    expires_at_ms: int | None  # None once finished


@dataclass(frozen=True, slots=True)
class Download:
    path: Path
    type: str
    filename: str
    etag: str


@dataclass(frozen=True, slots=True)
class MediaLimits:
    max_upload_bytes: int
    quota_bytes: int
    upload_ttl_s: float
    preview: PreviewLimits


class Media:
    def __init__(
        self,
        db: Database,
        writer: GroupCommitWriter,
        clock: Clock,
        store: BlobStore,
        partials: PartialFiles,
        work_dir: Path,
        limits: MediaLimits,
        *,
        rate_limits: bool,
    ) -> None:
        self._db = db
        self._writer = writer
        self._clock = clock
        self._store = store
        self._partials = partials
        self._work_dir = work_dir
        self.limits = limits
        self._create_limiter = RateLimiter(UPLOAD_RATE, enabled=rate_limits)
        self._busy: set[str] = set()  # uploads with a PATCH running
        self._head_checked: set[str] = set()  # uploads whose first bytes were sniffed
        # The running SHA-256 of uploads received in this process: (bytes hashed, state).
        self._hashes: dict[str, tuple[int, Any]] = {}
        self._finish_lock = asyncio.Lock()
        self._previews: asyncio.Queue[str] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        # Checked as well as cancelling: a cancellation swallowed deep in a
        # library must not leave a shutdown waiting for this loop forever.
        self._stopping = False

    # --- lifecycle -----------------------------------------------------------

    async def start(self) -> None:
        """Finish what a crash interrupted, then make previews and sweep in the background."""
        await self._recover()
        async with self._db.read() as conn:
            for blob in await media_store.pending_previews(conn):
                self._previews.put_nowait(blob.sha256)
        self._tasks = [
            asyncio.create_task(self._make_previews(), name="media-previews"),
            asyncio.create_task(self._sweep_forever(), name="media-sweep"),
        ]

    async def stop(self) -> None:
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def _recover(self) -> None:
        for upload_id in self._partials.ids():
            async with self._db.read() as conn:
                row = await media_store.get_upload(conn, upload_id)
            if row is None:  # cancelled or expired while its file was being written
                await self._partials.delete(upload_id)
            elif row.finished and row.sha256 is not None:  # recorded, not yet moved
                await self._store.put(row.sha256, self._partials.path(upload_id))

    # --- uploading -------------------------------------------------------------

    async def create_upload(self, user: User, length: int, metadata: dict[str, str]) -> Progress:
        """Start an upload for a conversation the user belongs to.

        Raises:
            BadRequest: metadata is missing or wrong, or the file is empty.
            TooLarge: over the size limit or the user's quota.
            Forbidden / NotFound: the conversation is not the user's.
            RateLimited: too many new uploads.
        """
        check_upload_length(length, self.limits.max_upload_bytes)
        conv_id = metadata.get("conv")
        if not conv_id:
            raise BadRequest("Upload-Metadata must name the conversation: 'conv BASE64ID'")
        name = clean_filename(metadata.get("filename") or metadata.get("name") or "")
        declared = normalize_type(metadata.get("filetype") or metadata.get("type"))
        self._create_limiter.hit(user.id, self._clock.monotonic_s(), "uploads")
        now = self._clock.now_ms()
        upload_id = new_id("up", now)
        expires = now + int(self.limits.upload_ttl_s * 1000)
        await self._partials.create(upload_id)
        try:
            async with self._db.write("create_upload") as conn:
                await conv_store.get_conversation(conn, conv_id)
                if not await media_store.is_current_member(conn, conv_id, user.id):
                    raise Forbidden("you are not a member of this conversation")
                used = await media_store.bytes_held(conn, user.id)
                check_quota(used, length, self.limits.quota_bytes)
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

    async def progress(self, user: User, upload_id: str) -> Progress:
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
        upload_id: str,
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
            raise Conflict("this upload is finished")
        if upload_id in self._busy:
            raise Conflict("another request is appending to this upload")
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
        remaining = row.length - start
        known = self._hashes.get(row.id)
        content = known[1] if known is not None and known[0] == start else None
        before = None if content is None else content.copy()
        request_hash = None if checksum is None else hashlib.new(checksum.algorithm)
        hashers = [h for h in (content, request_hash) if h is not None]
        appender = await self._partials.appender(row.id, start)
        buffer = bytearray()
        received = 0  # bytes handed to the writer
        cut = False
        failure: DomainError | None = None
        # One write (and its hashing) runs in a thread while the next bytes arrive.
        writing: asyncio.Future[None] | None = None

        async def settle() -> None:
            nonlocal writing
            if writing is not None:
                done, writing = writing, None
                await done

        async def hand_over(data: bytearray) -> None:
            nonlocal writing, received
            await settle()
            writing = asyncio.ensure_future(appender.write(data, hashers))
            received += len(data)

        try:
            chunks = aiter(body)
            while True:
                try:
                    async with asyncio.timeout(BODY_IDLE_S):
                        chunk = await anext(chunks)
                except StopAsyncIteration:
                    break
                except (ConnectionCut, TimeoutError):
                    cut = True
                    break
                if received + len(buffer) + len(chunk) > remaining:
                    failure = TooLargeBody(row.length - start)
                    break
                buffer += chunk
                if len(buffer) >= WRITE_BYTES:
                    await hand_over(buffer)
                    buffer = bytearray()
            if buffer and failure is None:
                await hand_over(buffer)
            await settle()
        finally:
            if writing is not None:  # an error on the way: let the thread finish first
                with contextlib.suppress(Exception):
                    await writing
            await appender.close()
        if failure is None and checksum is not None:
            assert request_hash is not None
            if cut or request_hash.digest() != checksum.digest:
                failure = ChecksumMismatch(
                    "the body was cut off" if cut else "the body does not match Upload-Checksum"
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
                raise NotFound(f"no upload {row.id!r}")
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
            # `_recover`, and the blob is never visible half-written.
            await self._store.put(sha256, part)
            self._head_checked.discard(row.id)
        if new_blob and status is PreviewStatus.PENDING:
            self._previews.put_nowait(sha256)
        return Progress(row.id, row.length, row.length, None)

    async def cancel(self, user: User, upload_id: str) -> None:
        """tus termination: an unsent upload and its bytes go away.

        Raises:
            Conflict: a message carries the upload; the record keeps it.
        """
        row = await self._own_upload(user, upload_id, include_expired=True)
        if row.message_id is not None:
            raise Conflict("this file was sent in a message and stays with the conversation")
        if row.id in self._busy:
            raise Conflict("a request is appending to this upload")
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

    async def upload_state(self, user: User, upload_id: str) -> dict[str, object]:
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
        self, user: User, upload_id: str, *, include_expired: bool = False
    ) -> UploadRow:
        async with self._db.read() as conn:
            row = await media_store.get_upload(conn, upload_id)
        # Someone else's upload is answered like one that does not exist.
        if row is None or row.owner_id != user.id:
            raise NotFound(f"no upload {upload_id!r}")
        expired = not row.finished and row.expires_at_ms < self._clock.now_ms()
        if expired and not include_expired:
            raise NotFound(f"upload {upload_id!r} expired")
        return row

    async def _offset(self, row: UploadRow) -> int:
        size = await self._partials.size(row.id)
        if size is None:
            raise NotFound(f"the data of upload {row.id!r} is gone")
        return size

    # --- downloading -------------------------------------------------------------

    async def info(self, user: User, media_id: str) -> dict[str, object]:
        row, _ = await self._visible(user, media_id)
        return upload_descriptor(row)

    async def download(self, user: User, media_id: str, variant: Variant) -> Download:
        """A file the user may see, as a local path with the headers it goes out with.

        Raises:
            NotFound: no such file for this user, or no such preview.
            Conflict: the preview is still being made.
        """
        row, _ = await self._visible(user, media_id)
        blob = row.blob
        assert blob is not None and row.sha256 is not None
        if variant is Variant.ORIGINAL or (
            variant is Variant.PLAYBACK
            and blob.preview_status is PreviewStatus.READY
            and not (blob.preview or {}).get("playback_file")
            and blob.type.startswith("audio/")
        ):
            return self._local(row.sha256, None, served_type(row.type), row.filename, row.sha256)
        made = blob.preview or {}
        if blob.preview_status is PreviewStatus.PENDING:
            raise Conflict("the preview is still being made; try again shortly")
        if blob.preview_status is PreviewStatus.FAILED:
            raise NotFound(f"no preview: {blob.preview_error}")
        file_key, type_key = (
            ("preview_file", "preview_type")
            if variant is Variant.PREVIEW
            else ("playback_file", "playback_type")
        )
        name, mime = made.get(file_key), made.get(type_key)
        if not isinstance(name, str) or not isinstance(mime, str):
            raise NotFound(f"this file has no {variant.value}")
        stem = row.filename.rsplit(".", 1)[0] or "file"
        filename = f"{stem}-{variant.value}.{name.rsplit('.', 1)[-1]}"
        return self._local(row.sha256, name, served_type(mime), filename, f"{row.sha256}.{name}")

    def _local(
        self, sha256: str, preview: str | None, mime: str, filename: str, etag: str
    ) -> Download:
        path = (
            self._store.local_path(sha256)
            if preview is None
            else self._store.preview_path(sha256, preview)
        )
        if path is None or not path.is_file():
            raise NotFound("the file is not in storage")
        return Download(path, mime, filename, etag)

    async def _visible(self, user: User, media_id: str) -> tuple[UploadRow, SentFile | None]:
        """The upload, if this user may see its content: 404 for everyone else."""
        async with self._db.read() as conn:
            row = await media_store.get_upload(conn, media_id)
            if row is None or not row.finished:
                raise NotFound(f"no file {media_id!r}")
            if row.message_id is None:  # not sent yet: its uploader's alone
                if row.owner_id != user.id:
                    raise NotFound(f"no file {media_id!r}")
                return row, None
            sent = await media_store.sent_file(conn, media_id)
            assert sent is not None
            if user.is_admin:  # the record is evidence: admins see recalled files too
                return row, sent
            member = await media_store.is_current_member(conn, row.conv_id, user.id)
        hidden = sent.recalled or (sent.internal and user.kind is UserKind.CUSTOMER)
        if hidden or not member:
            raise NotFound(f"no file {media_id!r}")
        return row, sent

    # --- the library ---------------------------------------------------------------

    async def library(
        self,
        user: User,
        conv_id: str,
        kinds: list[MessageKind],
        before: int | None,
        limit: int,
    ) -> dict[str, object]:
        """Every file sent in a conversation that the user may see, newest first."""
        if not 1 <= limit <= MAX_LIBRARY_PAGE:
            raise BadRequest(f"limit must be 1-{MAX_LIBRARY_PAGE}")
        async with self._db.read() as conn:
            await conv_store.get_conversation(conn, conv_id)
            member = await media_store.is_current_member(conn, conv_id, user.id)
            if not member and not user.is_admin:
                raise Forbidden("you are not a member of this conversation")
            found = await media_store.conversation_files(
                conn,
                conv_id,
                kinds=kinds,
                before=before,
                limit=limit + 1,
                include_internal=user.kind is UserKind.STAFF,
                include_recalled=user.is_admin,
            )
        page = found[:limit]
        files = [_library_entry(f) for f in page]
        more = len(found) > limit
        return {"files": files, "next": page[-1].upload.seq if more and page else None}

    # --- previews ----------------------------------------------------------------

    async def _make_previews(self) -> None:
        while not self._stopping:
            sha256 = await self._previews.get()
            try:
                await self._make_preview(sha256)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("making the previews of %s failed", sha256)

    async def _make_preview(self, sha256: str) -> None:
        async with self._db.read() as conn:
            blob = await media_store.get_blob(conn, sha256)
        source = self._store.local_path(sha256)
        if blob is None or blob.preview_status is not PreviewStatus.PENDING or source is None:
            return
        out = self._work_dir / f"{sha256}-{secrets.token_hex(4)}"
        out.mkdir(parents=True)
        try:
            outcome = await run_preview(source, blob.type, out, self.limits.preview)
            if outcome.ok:
                await self._store.put_previews(sha256, out)
        finally:
            shutil.rmtree(out, ignore_errors=True)
        if outcome.ok:
            done = PreviewDone(sha256, PreviewStatus.READY, None, outcome.fields)
        else:
            done = PreviewDone(sha256, PreviewStatus.FAILED, outcome.error, None)
        await self._writer.submit(done)

    # --- housekeeping --------------------------------------------------------------

    async def sweep(self) -> int:
        """Delete unfinished uploads past their expiry; how many went."""
        async with self._db.read() as conn:
            ids = await media_store.expired_uploads(conn, self._clock.now_ms(), 500)
        for upload_id in ids:
            if upload_id in self._busy:
                continue
            async with self._db.read() as conn:
                row = await media_store.get_upload(conn, upload_id)
            if row is not None:
                await self._discard(row)
        return len(ids)

    async def _sweep_forever(self) -> None:
        while True:
            try:
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("sweeping expired uploads failed")
            await asyncio.sleep(SWEEP_EVERY_S)


class TooLargeBody(TooLarge):
    """A PATCH body longer than what is left of the upload."""

    def __init__(self, left: int) -> None:
        super().__init__(f"the body is longer than the {left} bytes left of this upload")


@dataclass(frozen=True, slots=True)
class PreviewDone:
    """Record a blob's previews and tell the conversations that already show it."""

    sha256: str
    status: PreviewStatus
    error: str | None
    preview: dict[str, Any] | None

    async def apply(self, tx: WriteTxn) -> None:
        await media_store.set_preview_txn(
            tx.conn, self.sha256, self.status, self.error, self.preview
        )
        for sent in await media_store.sent_files_of_blob(tx.conn, self.sha256):
            if sent.recalled:
                continue
            upload = sent.upload
            members = await tx.member_set(upload.conv_id)
            payload = {
                "conv": upload.conv_id,
                "seq": upload.seq,
                "message": upload.message_id,
                "id": upload.id,
                "preview": upload_descriptor(upload)["preview"],
                "ts": tx.now_ms,
            }
            audience = members.staff if sent.internal else frozenset(members.roles)
            tx.append_event(upload.conv_id, "media", payload, audience, about=upload.message_id)


def _library_entry(sent: SentFile) -> dict[str, object]:
    entry: dict[str, object] = {
        **upload_descriptor(sent.upload),
        "message": sent.upload.message_id,
        "seq": sent.upload.seq,
        "sender": sent.sender,
        "ts": sent.ts,
        "message_kind": sent.kind.value,
    }
    if sent.recalled:
        entry["recalled"] = True
    return entry
