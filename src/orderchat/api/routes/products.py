"""HTTP routes of product cards and of the QR code that brings visitors in."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from orderchat.api.openapi import errors
from orderchat.api.responses import Json
from orderchat.api.routes.orders import JsonBody
from orderchat.api.runtime import AuthDep, RuntimeDep
from orderchat.core.errors import Forbidden, TooLarge
from orderchat.core.ids import ConversationId
from orderchat.core.qr import chat_url, qr_image
from orderchat.core.texts import say
from orderchat.services.products import MAX_PICTURE_BYTES

router = APIRouter(prefix="/api", tags=["products"])

SkuPath = Annotated[str, Field(min_length=1, max_length=64)]


class ShareBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    sku: Annotated[str, Field(min_length=1, max_length=64)]
    ref: Annotated[str | None, Field(min_length=1, max_length=64)] = None


@router.post(
    "/conversations/{conv_id}/products", status_code=201, responses=errors(400, 401, 403, 404)
)
async def share_product(conv_id: str, body: ShareBody, auth: AuthDep, runtime: RuntimeDep) -> Json:
    """Share a catalogue product into the conversation as a card."""
    seq, message_id = await runtime.consults.share_product(
        auth.user, ConversationId(conv_id), body.sku, body.ref
    )
    return Json({"conv": conv_id, "seq": seq, "id": message_id}, status_code=201)


@router.get("/products/{sku}", responses=errors(401, 404))
async def product(sku: str, auth: AuthDep, runtime: RuntimeDep) -> Json:
    """A card with the stock available now, for anyone signed in."""
    return Json(await runtime.products.card(sku))


@router.get("/products/{sku}/picture", responses=errors(404))
async def product_picture(sku: str, runtime: RuntimeDep) -> FileResponse:
    """The shop's own product photo: public, as on its website."""
    path, sha = await runtime.products.picture(sku)
    headers = {"Cache-Control": "public, max-age=300", "ETag": f'"{sha}"'}
    return FileResponse(path, media_type="image/jpeg", headers=headers)


@router.put("/products/{sku}/picture", responses=errors(400, 401, 403, 404, 413))
async def set_product_picture(
    sku: str, request: Request, auth: AuthDep, runtime: RuntimeDep
) -> Json:
    """The picture as the request's body (JPEG, PNG or WebP), re-encoded for cards."""
    declared = int(request.headers.get("content-length") or 0)
    if declared > MAX_PICTURE_BYTES:
        raise TooLarge(say("products.picture_too_large", mb=MAX_PICTURE_BYTES // 2**20))
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > MAX_PICTURE_BYTES:
            raise TooLarge(say("products.picture_too_large", mb=MAX_PICTURE_BYTES // 2**20))
    return Json(await runtime.products.set_picture(auth.user, sku, bytes(data)))


@router.put("/products/{sku}/options", responses=errors(400, 401, 403, 404))
async def set_product_options(sku: str, body: JsonBody, auth: AuthDep, runtime: RuntimeDep) -> Json:
    """`{"options": [{"name": "颜色", "values": ["红", "蓝"]}]}`."""
    return Json(await runtime.products.set_options(auth.user, sku, body.get("options")))


@router.get("/admin/qr", responses=errors(400, 401, 403))
async def qr_code(
    auth: AuthDep,
    runtime: RuntimeDep,
    format: Annotated[Literal["svg", "png"], Query()] = "svg",
    tag: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    """The code for a counter, a product tag or a packing slip: it opens /chat."""
    if not auth.user.is_admin:
        raise Forbidden(say("consults.admins_only"))
    url = chat_url(runtime.settings.link_base, tag or None)
    image = await asyncio.to_thread(qr_image, url, format)
    media_type = "image/svg+xml" if format == "svg" else "image/png"
    name = f"orderchat-qr{'-' + tag if tag else ''}.{format}"
    headers = {"Content-Disposition": f'inline; filename="{name}"', "X-Chat-Url": url}
    return Response(image, media_type=media_type, headers=headers)
