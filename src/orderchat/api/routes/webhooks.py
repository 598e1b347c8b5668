"""Inbound webhooks from order platforms: signed, not bearer-authenticated."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request

from orderchat.api.openapi import errors
from orderchat.api.responses import Json
from orderchat.api.runtime import RuntimeDep
from orderchat.core.errors import NotFound, TooLarge
from orderchat.core.texts import say
from orderchat.services.orders.events import order_fields
from orderchat.services.webhooks import MAX_BODY_BYTES, ORDER_CREATED, ORDER_STATUS

router = APIRouter(prefix="/api/webhooks", tags=["webhooks"])

_ORDER_BODY = {"type": "object", "description": "the same object POST /api/orders takes"}
_DELIVERY_SCHEMA: dict[str, Any] = {
    "oneOf": [
        {
            "type": "object",
            "required": ["event", "order"],
            "properties": {"event": {"const": ORDER_CREATED}, "order": _ORDER_BODY},
        },
        {
            "type": "object",
            "required": ["event", "number", "to"],
            "properties": {
                "event": {"const": ORDER_STATUS},
                "number": {"type": "string"},
                "to": {"type": "string"},
                "note": {"type": "string"},
                "photos": {"type": "array"},
                "carrier": {"type": "string"},
                "tracking_no": {"type": "string"},
            },
        },
    ]
}


async def _body(request: Request) -> bytes:
    """The raw body, exactly as signed, read no further than the limit."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise TooLarge(say("webhooks.delivery_may_carry_at_most", max_body_bytes=MAX_BODY_BYTES))
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > MAX_BODY_BYTES:
            raise TooLarge(
                say("webhooks.delivery_may_carry_at_most", max_body_bytes=MAX_BODY_BYTES)
            )
    return bytes(body)


@router.post(
    "/orders",
    status_code=201,
    responses={
        200: {"description": "an order.status delivery: the order's new state"},
        **errors(400, 401, 404, 409, 413),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _DELIVERY_SCHEMA}},
        }
    },
)
async def receive_order_webhook(
    request: Request,
    runtime: RuntimeDep,
    x_orderchat_timestamp: Annotated[
        str | None, Header(description="Unix seconds when the delivery was signed")
    ] = None,
    x_orderchat_signature: Annotated[
        str | None,
        Header(description='"sha256=" + hex HMAC-SHA256(secret, "{timestamp}.{raw body}")'),
    ] = None,
) -> Json:
    """An order platform creates an order (201) or moves one (200).

    Answers 404 when the server has no webhook secret, 401 for a missing,
    stale or wrong signature, and 409 for a delivery received before.
    """
    if not runtime.webhooks.enabled:
        raise NotFound(say("webhooks.order_webhooks_are_not_enabled"))
    body = await _body(request)
    received = await runtime.webhooks.receive(x_orderchat_timestamp, x_orderchat_signature, body)
    view = {"event": received.event, "order": order_fields(received.order, received.workflow)}
    return Json(view, status_code=201 if received.event == ORDER_CREATED else 200)
