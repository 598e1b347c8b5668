"""Resumable uploads with the tus 1.0 protocol (core, creation, termination,
checksum and expiration).

Bodies are streamed to disk as they arrive, never held whole in memory; a
client cut off half-way asks `HEAD` where to go on from.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from email.utils import formatdate
from typing import Annotated

from fastapi import APIRouter, Header, Request, Response
from starlette.requests import ClientDisconnect

from orderchat.api.responses import Json
from orderchat.api.runtime import AuthDep, RuntimeDep
from orderchat.core.errors import BadRequest
from orderchat.core.media import (
    CHECKSUM_ALGORITHMS,
    TUS_VERSION,
    UnsupportedMediaType,
    parse_checksum,
    parse_length,
    parse_metadata,
    tus_version,
)
from orderchat.services.media.receiving import ConnectionCut
from orderchat.services.media.uploads import Progress

router = APIRouter(prefix="/api/uploads", tags=["uploads"])

TUS_EXTENSIONS = "creation,termination,checksum,expiration"
OFFSET_TYPE = "application/offset+octet-stream"
OptionalHeader = Annotated[str | None, Header()]


def _tus_headers(progress: Progress | None = None) -> dict[str, str]:
    headers = {"Tus-Resumable": TUS_VERSION, "Cache-Control": "no-store"}
    if progress is not None:
        headers["Upload-Offset"] = str(progress.offset)
        headers["Upload-Length"] = str(progress.length)
        if progress.expires_at_ms is not None:
            headers["Upload-Expires"] = formatdate(progress.expires_at_ms / 1000, usegmt=True)
    return headers


@router.options("")
async def capabilities(runtime: RuntimeDep) -> Response:
    """What this server speaks; tus clients ask before they start."""
    headers = {
        "Tus-Resumable": TUS_VERSION,
        "Tus-Version": TUS_VERSION,
        "Tus-Extension": TUS_EXTENSIONS,
        "Tus-Max-Size": str(runtime.media.limits.max_upload_bytes),
        "Tus-Checksum-Algorithm": ",".join(CHECKSUM_ALGORITHMS),
    }
    return Response(status_code=204, headers=headers)


@router.post("", status_code=201)
async def create_upload(
    auth: AuthDep,
    runtime: RuntimeDep,
    tus_resumable: OptionalHeader = None,
    upload_length: OptionalHeader = None,
    upload_metadata: OptionalHeader = None,
    upload_defer_length: OptionalHeader = None,
) -> Json:
    tus_version(tus_resumable)
    if upload_defer_length is not None:
        raise BadRequest("Upload-Defer-Length is not supported: send Upload-Length")
    length = parse_length(upload_length, "Upload-Length")
    metadata = parse_metadata(upload_metadata)
    progress = await runtime.media.uploads.create(auth.user, length, metadata)
    headers = {**_tus_headers(progress), "Location": f"/api/uploads/{progress.id}"}
    body = {"id": progress.id, "offset": 0, "length": progress.length}
    return Json(body, status_code=201, headers=headers)


@router.head("/{upload_id}")
async def upload_offset(
    upload_id: str, auth: AuthDep, runtime: RuntimeDep, tus_resumable: OptionalHeader = None
) -> Response:
    tus_version(tus_resumable)
    progress = await runtime.media.uploads.progress(auth.user, upload_id)
    return Response(status_code=200, headers=_tus_headers(progress))


@router.patch("/{upload_id}", status_code=204)
async def append(
    upload_id: str,
    request: Request,
    auth: AuthDep,
    runtime: RuntimeDep,
    tus_resumable: OptionalHeader = None,
    upload_offset: OptionalHeader = None,
    upload_checksum: OptionalHeader = None,
    content_type: OptionalHeader = None,
) -> Response:
    tus_version(tus_resumable)
    if (content_type or "").split(";", 1)[0].strip().lower() != OFFSET_TYPE:
        raise UnsupportedMediaType(f"an upload's body must be sent as {OFFSET_TYPE}")
    offset = parse_length(upload_offset, "Upload-Offset")
    checksum = parse_checksum(upload_checksum)
    progress = await runtime.media.uploads.append(
        auth.user, upload_id, offset, checksum, _body(request)
    )
    return Response(status_code=204, headers=_tus_headers(progress))


async def _body(request: Request) -> AsyncIterator[bytes]:
    try:
        async for chunk in request.stream():
            if chunk:
                yield chunk
    except ClientDisconnect:
        raise ConnectionCut from None


@router.delete("/{upload_id}", status_code=204)
async def cancel(
    upload_id: str, auth: AuthDep, runtime: RuntimeDep, tus_resumable: OptionalHeader = None
) -> Response:
    tus_version(tus_resumable)
    await runtime.media.uploads.cancel(auth.user, upload_id)
    return Response(status_code=204, headers=_tus_headers())


@router.get("/{upload_id}")
async def upload_state(upload_id: str, auth: AuthDep, runtime: RuntimeDep) -> Json:
    return Json(await runtime.media.uploads.state(auth.user, upload_id))
