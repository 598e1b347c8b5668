"""Serving files: who may see an upload, and which file on disk answers a download.

A file nobody may see is answered like one that does not exist (404), so its
id tells an outsider nothing. The bytes themselves are streamed by the HTTP
layer from the path given here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from orderchat.core.errors import Conflict, NotFound
from orderchat.core.ids import UploadId
from orderchat.core.media import PreviewStatus, served_type
from orderchat.core.model import User, UserKind
from orderchat.core.texts import say
from orderchat.media.blobstore import BlobStore
from orderchat.services.media.views import upload_descriptor
from orderchat.storage import media as media_store
from orderchat.storage.engine import Database
from orderchat.storage.media import SentFile, UploadRow


class Variant(StrEnum):
    ORIGINAL = "original"
    PREVIEW = "preview"
    PLAYBACK = "playback"


@dataclass(frozen=True, slots=True)
class Download:
    path: Path
    type: str
    filename: str
    etag: str


class Downloads:
    def __init__(self, db: Database, store: BlobStore) -> None:
        self._db = db
        self._store = store

    async def info(self, user: User, media_id: UploadId) -> dict[str, object]:
        row, _ = await self._visible(user, media_id)
        return upload_descriptor(row)

    async def download(self, user: User, media_id: UploadId, variant: Variant) -> Download:
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
            raise Conflict(say("serving.preview_still_being_made_try"))
        if blob.preview_status is PreviewStatus.FAILED:
            raise NotFound(say("serving.no_preview", preview_error=blob.preview_error))
        file_key, type_key = (
            ("preview_file", "preview_type")
            if variant is Variant.PREVIEW
            else ("playback_file", "playback_type")
        )
        name, mime = made.get(file_key), made.get(type_key)
        if not isinstance(name, str) or not isinstance(mime, str):
            raise NotFound(say("serving.file_has_no", value=variant.value))
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
            raise NotFound(say("serving.file_not_in_storage"))
        return Download(path, mime, filename, etag)

    async def _visible(self, user: User, media_id: UploadId) -> tuple[UploadRow, SentFile | None]:
        """The upload, if this user may see its content: 404 for everyone else."""
        async with self._db.read() as conn:
            row = await media_store.get_upload(conn, media_id)
            if row is None or not row.finished:
                raise NotFound(say("serving.no_file", media_id=media_id))
            if row.message_id is None:  # not sent yet: its uploader's alone
                if row.owner_id != user.id:
                    raise NotFound(say("serving.no_file", media_id=media_id))
                return row, None
            sent = await media_store.sent_file(conn, media_id)
            assert sent is not None
            if user.is_admin:  # the record is evidence: admins see recalled files too
                return row, sent
            member = await media_store.is_current_member(conn, row.conv_id, user.id)
            hidden = sent.recalled or (sent.internal and user.kind is UserKind.CUSTOMER)
            # A forward shares the file with its own readers, wherever it was first sent.
            if (hidden or not member) and not await media_store.forward_visible(
                conn, media_id, user.id, include_internal=user.kind is UserKind.STAFF
            ):
                raise NotFound(say("serving.no_file", media_id=media_id))
        return row, sent
