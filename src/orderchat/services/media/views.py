"""Stored uploads as clients see them."""

from __future__ import annotations

from orderchat.core.media import PreviewStatus, media_descriptor
from orderchat.storage.media import UploadRow


def upload_descriptor(upload: UploadRow) -> dict[str, object]:
    blob = upload.blob
    if blob is None:  # still receiving: no content to describe yet
        return media_descriptor(
            upload.id,
            upload.filename,
            upload.type,
            upload.length,
            None,
            PreviewStatus.PENDING,
            None,
            None,
        )
    return media_descriptor(
        upload.id,
        upload.filename,
        upload.type,
        blob.size,
        blob.sha256,
        blob.preview_status,
        blob.preview_error,
        blob.preview,
    )
