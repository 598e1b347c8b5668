"""Resumable uploads with the tus 1.0 protocol (core, creation, termination,
checksum and expiration).

Bodies are streamed to disk as they arrive, never held whole in memory; a
client cut off half-way asks `HEAD` where to go on from.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from email.utils import formatdate
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response
from starlette.requests import ClientDisconnect

from orderchat.api.openapi import errors
from orderchat.api.responses import Json
from orderchat.api.runtime import AuthDep, RuntimeDep
from orderchat.core.errors import BadRequest
from orderchat.core.ids import UploadId
from orderchat.core.media import (
    CHECKSUM_ALGORITHMS,
    TUS_VERSION,
    UnsupportedMediaType,
    parse_checksum,
    parse_length,
    parse_metadata,
    tus_version,
)
from orderchat.core.texts import say
from orderchat.services.media.receiving import ConnectionCut
from orderchat.services.media.uploads import Progress

router = APIRouter(prefix="/api/uploads", tags=["uploads"])

TUS_EXTENSIONS = "creation,termination,checksum,expiration"
OFFSET_TYPE = "application/offset+octet-stream"
# The routes read their tus headers themselves, so that a missing or wrong one
# gets the status tus prescribes (412 for the version) rather than a generic 400;
# the document states the headers below instead.
OptionalHeader = Annotated[str | None, Header(include_in_schema=False)]
_BASE64 = "([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?"


def _header(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "in": "header",
        "required": True,
        "description": description,
        "schema": {"type": "string", **schema},
    }


TUS_RESUMABLE = _header(
    "Tus-Resumable",
    "The tus version the client speaks; any other answers 412.",
    {"enum": [TUS_VERSION]},
)
UPLOAD_LENGTH = _header(
    "Upload-Length",
    "The file's size in bytes; over the server's limit (see OPTIONS) answers 413.",
    {"pattern": "^[1-9][0-9]{0,18}$"},
)
UPLOAD_METADATA = _header(
    "Upload-Metadata",
    "Comma-separated 'key base64value' pairs: 'conv' (the conversation's id) is required, "
    "'filename' and 'filetype' are optional.",
    {"pattern": f"^conv {_BASE64}(,(filename|filetype) {_BASE64})*$", "maxLength": 4096},
)
UPLOAD_OFFSET = _header(
    "Upload-Offset",
    "Where this chunk starts: the upload's present offset (HEAD tells it); any other is 409.",
    {"pattern": "^[0-9]{1,19}$"},
)
UPLOAD_CHECKSUM = {
    **_header(
        "Upload-Checksum",
        "'ALGORITHM BASE64DIGEST' of this chunk; a mismatch answers 460.",
        {"pattern": f"^(sha1|sha256|md5) {_BASE64}$"},
    ),
    "required": False,
    # The SHA-256 of no bytes: a generator that cannot build the pattern uses this.
    "example": "sha256 47DEQpj8HBSa+/TImW5JCeuQeRkm5NMpJWZG3hSuFU4=",
}


def _tus_headers(progress: Progress | None = None) -> dict[str, str]:
    headers = {"Tus-Resumable": TUS_VERSION, "Cache-Control": "no-store"}
    if progress is not None:
        headers["Upload-Offset"] = str(progress.offset)
        headers["Upload-Length"] = str(progress.length)
        if progress.expires_at_ms is not None:
            headers["Upload-Expires"] = formatdate(progress.expires_at_ms / 1000, usegmt=True)
    return headers


@router.options(
    "", status_code=204, responses={204: {"description": "the tus capabilities, in headers"}}
)
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


@router.post(
    "",
    status_code=201,
    responses=errors(400, 401, 403, 404, 412, 413, 429),
    openapi_extra={"parameters": [TUS_RESUMABLE, UPLOAD_LENGTH, UPLOAD_METADATA]},
)
async def create_upload(
    request: Request,
    auth: AuthDep,
    runtime: RuntimeDep,
    tus_resumable: OptionalHeader = None,
    upload_length: OptionalHeader = None,
    upload_metadata: OptionalHeader = None,
) -> Json:
    tus_version(tus_resumable)
    if "upload-defer-length" in request.headers:
        raise BadRequest(say("uploads.upload_defer_length_not_supported"))
    length = parse_length(upload_length, "Upload-Length")
    metadata = parse_metadata(upload_metadata)
    progress = await runtime.media.uploads.create(auth.user, length, metadata)
    headers = {**_tus_headers(progress), "Location": f"/api/uploads/{progress.id}"}
    body = {"id": progress.id, "offset": 0, "length": progress.length}
    return Json(body, status_code=201, headers=headers)


@router.head(
    "/{upload_id}",
    response_class=Response,
    responses={
        200: {"description": "Upload-Offset and Upload-Length say how far the upload is"},
        **errors(401, 404, 412),
    },
    openapi_extra={"parameters": [TUS_RESUMABLE]},
)
async def upload_offset(
    upload_id: UploadId, auth: AuthDep, runtime: RuntimeDep, tus_resumable: OptionalHeader = None
) -> Response:
    tus_version(tus_resumable)
    progress = await runtime.media.uploads.progress(auth.user, upload_id)
    return Response(status_code=200, headers=_tus_headers(progress))


@router.patch(
    "/{upload_id}",
    status_code=204,
    responses=errors(400, 401, 404, 409, 412, 413, 415, 460),
    openapi_extra={
        "parameters": [TUS_RESUMABLE, UPLOAD_OFFSET, UPLOAD_CHECKSUM],
        "requestBody": {
            "required": True,
            "content": {OFFSET_TYPE: {"schema": {"type": "string", "format": "binary"}}},
        },
    },
)
async def append(
    upload_id: UploadId,
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
        raise UnsupportedMediaType(say("uploads.upload_s_body_must_sent", offset_type=OFFSET_TYPE))
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


@router.delete(
    "/{upload_id}",
    status_code=204,
    responses=errors(401, 404, 409, 412),
    openapi_extra={"parameters": [TUS_RESUMABLE]},
)
async def cancel(
    upload_id: UploadId, auth: AuthDep, runtime: RuntimeDep, tus_resumable: OptionalHeader = None
) -> Response:
    tus_version(tus_resumable)
    await runtime.media.uploads.cancel(auth.user, upload_id)
    return Response(status_code=204, headers=_tus_headers())


@router.get("/{upload_id}", responses=errors(401, 404))
async def upload_state(upload_id: UploadId, auth: AuthDep, runtime: RuntimeDep) -> Json:
    return Json(await runtime.media.uploads.state(auth.user, upload_id))
