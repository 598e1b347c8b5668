"""Previews: made in a child process, one blob at a time, after the upload finished.

A blob waiting for its previews is recorded as pending, so a restart picks it
up again. When they are made (or fail), the `media` event tells every
conversation already showing the file.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orderchat.core.media import PreviewStatus
from orderchat.media.blobstore import BlobStore
from orderchat.media.processor import PreviewLimits, run_preview
from orderchat.protocol.events import MediaUpdated
from orderchat.services.media.views import upload_descriptor
from orderchat.services.writer import GroupCommitWriter, WriteTxn
from orderchat.storage import media as media_store
from orderchat.storage.engine import Database

logger = logging.getLogger(__name__)


class Previews:
    def __init__(
        self,
        db: Database,
        writer: GroupCommitWriter,
        store: BlobStore,
        work_dir: Path,
        limits: PreviewLimits,
    ) -> None:
        self._db = db
        self._writer = writer
        self._store = store
        self._work_dir = work_dir
        self._limits = limits
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        # Checked as well as cancelling: a cancellation swallowed deep in a
        # library must not leave a shutdown waiting for this loop forever.
        self._stopping = False

    def request(self, sha256: str) -> None:
        """Queue a blob whose previews are pending."""
        self._queue.put_nowait(sha256)

    async def start(self) -> None:
        """Queue the blobs left pending by the last run, then make previews in the background."""
        async with self._db.read() as conn:
            for blob in await media_store.pending_previews(conn):
                self._queue.put_nowait(blob.sha256)
        self._task = asyncio.create_task(self._make_previews(), name="media-previews")

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None

    async def _make_previews(self) -> None:
        while not self._stopping:
            sha256 = await self._queue.get()
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
            outcome = await run_preview(source, blob.type, out, self._limits)
            if outcome.ok:
                await self._store.put_previews(sha256, out)
        finally:
            shutil.rmtree(out, ignore_errors=True)
        if outcome.ok:
            done = PreviewDone(sha256, PreviewStatus.READY, None, outcome.fields)
        else:
            done = PreviewDone(sha256, PreviewStatus.FAILED, outcome.error, None)
        await self._writer.submit(done)


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
            preview = upload_descriptor(upload)["preview"]
            # A sent file always has its message; the checks narrow the row's types.
            if upload.seq is None or upload.message_id is None or not isinstance(preview, dict):
                continue
            members = await tx.member_set(upload.conv_id)
            event = MediaUpdated(
                conv=upload.conv_id,
                seq=upload.seq,
                message=upload.message_id,
                id=upload.id,
                preview=preview,
                ts=tx.now_ms,
            )
            audience = members.staff if sent.internal else frozenset(members.roles)
            await tx.append_event(upload.conv_id, event, audience, about=upload.message_id)
