"""Downloads of sent files and their previews, and the file library.

Everything uploaded is served so that a browser can show it but never run it:
`attachment` disposition, `nosniff`, a sandboxing CSP, and active types as
opaque bytes. Range requests (seeking in a video, resuming a download) and
conditional requests are answered by Starlette's FileResponse, after the
headers are checked here so that bad ones get the API's JSON errors.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request, Response
from starlette.responses import FileResponse

from orderchat.api.openapi import errors
from orderchat.api.responses import Json
from orderchat.api.runtime import AuthDep, MediaAuthDep, RuntimeDep
from orderchat.core.errors import BadRequest
from orderchat.core.ids import OrderId, UploadId
from orderchat.core.media import parse_ranges
from orderchat.core.model import MessageKind
from orderchat.core.texts import say
from orderchat.services.media.library import MAX_LIBRARY_PAGE
from orderchat.services.media.serving import Download, Variant

router = APIRouter(tags=["media"])

OptionalHeader = Annotated[str | None, Header()]
SANDBOX = "default-src 'none'; sandbox"
MAX_SEQ = 2**62


class BlobResponse(FileResponse):
    """Starlette's file response, reading 1 MiB per thread hop instead of 64 KiB."""

    chunk_size = 1024 * 1024


def _serve(download: Download, request: Request, if_none_match: str | None) -> Response:
    etag = f'"{download.etag}"'
    headers = {
        "ETag": etag,
        # The bytes behind a media id never change; only access can.
        "Cache-Control": "private, max-age=31536000, immutable",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": SANDBOX,
        "Cross-Origin-Resource-Policy": "same-origin",
    }
    if if_none_match is not None and etag in {t.strip() for t in if_none_match.split(",")}:
        return Response(status_code=304, headers=headers)
    size = download.path.stat().st_size
    range_header = request.headers.get("range")
    if range_header is not None:
        parse_ranges(range_header, size)  # a bad range gets a JSON error, not plain text
    return BlobResponse(
        download.path,
        media_type=download.type,
        filename=download.filename,
        content_disposition_type="attachment",
        headers=headers,
    )


_FILE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the file's bytes, as an attachment",
        "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
    },
    206: {
        "description": "the byte ranges the Range header asked for",
        "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
    },
    304: {"description": "If-None-Match named the file's ETag: the copy the client has is current"},
}


@router.get(
    "/api/media/{media_id}",
    response_class=Response,
    responses={**_FILE_RESPONSES, **errors(401, 404, 409, 416)},
)
async def original(
    media_id: UploadId,
    request: Request,
    auth: MediaAuthDep,
    runtime: RuntimeDep,
    if_none_match: OptionalHeader = None,
) -> Response:
    download = await runtime.media.downloads.download(auth.user, media_id, Variant.ORIGINAL)
    return _serve(download, request, if_none_match)


@router.get("/api/media/{media_id}/info", responses=errors(401, 404))
async def info(media_id: UploadId, auth: AuthDep, runtime: RuntimeDep) -> Json:
    return Json(await runtime.media.downloads.info(auth.user, media_id))


@router.get(
    "/api/media/{media_id}/{made}",
    response_class=Response,
    responses={**_FILE_RESPONSES, **errors(400, 401, 404, 409, 416)},
)
async def made_from(
    media_id: UploadId,
    made: Literal["preview", "playback"],
    request: Request,
    auth: MediaAuthDep,
    runtime: RuntimeDep,
    if_none_match: OptionalHeader = None,
) -> Response:
    """A file made from the original: its preview image, or a voice message's playback copy."""
    download = await runtime.media.downloads.download(auth.user, media_id, Variant(made))
    return _serve(download, request, if_none_match)


def _kinds(raw: str | None) -> list[MessageKind]:
    if not raw:
        return []
    kinds: list[MessageKind] = []
    for name in raw.split(","):
        try:
            kind = MessageKind(name.strip())
        except ValueError:
            raise BadRequest(say("api_media.kind_must_image_voice_video", name=name)) from None
        if kind not in (MessageKind.IMAGE, MessageKind.VOICE, MessageKind.VIDEO, MessageKind.FILE):
            raise BadRequest(say("api_media.kind_must_image_voice_video", name=name))
        kinds.append(kind)
    return kinds


LibraryLimit = Annotated[int, Query(ge=1, le=MAX_LIBRARY_PAGE)]
_KIND = "(image|voice|video|file)"
Kinds = Annotated[
    str | None,
    Query(
        description="comma-separated kinds of file to list; all when absent or empty",
        json_schema_extra={"pattern": f"^$|^{_KIND}(,{_KIND})*$"},
    ),
]
Before = Annotated[int | None, Query(ge=1, le=MAX_SEQ)]


@router.get("/api/conversations/{conv_id}/files", responses=errors(400, 401, 403, 404))
async def conversation_files(
    conv_id: str,
    auth: AuthDep,
    runtime: RuntimeDep,
    kind: Kinds = None,
    before: Before = None,
    limit: LibraryLimit = 50,
) -> Json:
    found = await runtime.media.library.page(auth.user, conv_id, _kinds(kind), before, limit)
    return Json(found)


@router.get("/api/orders/{order_id}/files", responses=errors(400, 401, 403, 404))
async def order_files(
    order_id: OrderId,
    auth: AuthDep,
    runtime: RuntimeDep,
    kind: Kinds = None,
    before: Before = None,
    limit: LibraryLimit = 50,
) -> Json:
    detail = await runtime.orders.get(auth.user, order_id)
    found = await runtime.media.library.page(
        auth.user, detail.order.conv_id, _kinds(kind), before, limit
    )
    return Json(found)
