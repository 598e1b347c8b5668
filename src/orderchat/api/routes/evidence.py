"""Retention, legal hold and the chain anchors over HTTP (docs/proof.md)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from orderchat.api.openapi import errors
from orderchat.api.responses import Json
from orderchat.api.routes.views import order_view
from orderchat.api.runtime import AuthDep, RuntimeDep
from orderchat.core.anchor import SignedAnchor
from orderchat.core.ids import OrderId
from orderchat.core.retention import MAX_DAYS, MIN_DAYS

router = APIRouter(prefix="/api", tags=["evidence"])


class RuleBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    kind: Literal["channel", "direct", "order", "consult"]
    days: Annotated[int, Field(ge=MIN_DAYS, le=MAX_DAYS)] | None


class HoldBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    hold: bool


@router.get("/admin/retention", responses=errors(401, 403))
async def retention(auth: AuthDep, runtime: RuntimeDep) -> Json:
    """How long each kind of conversation keeps its content (null: forever), the orders
    under legal hold, and what the recent purges removed."""
    return Json(await runtime.retention.overview(auth.user))


@router.put("/admin/retention", responses=errors(400, 401, 403))
async def set_retention(body: RuleBody, auth: AuthDep, runtime: RuntimeDep) -> Json:
    return Json(await runtime.retention.set_rule(auth.user, body.kind, body.days))


@router.post("/admin/retention/run", responses=errors(401, 403))
async def run_retention(auth: AuthDep, runtime: RuntimeDep) -> Json:
    """Purge what is past its rule now, rather than at the day's run."""
    report = await runtime.retention.run(auth.user)
    return Json(
        {
            "conversations": report.conversations,
            "messages": report.messages,
            "files": report.files,
        }
    )


@router.post("/orders/{order_id}/legal-hold", responses=errors(400, 401, 403, 404))
async def legal_hold(order_id: str, body: HoldBody, auth: AuthDep, runtime: RuntimeDep) -> Json:
    """Keep an order's conversation from any purge (or let retention apply again)."""
    await runtime.retention.set_hold(auth.user, OrderId(order_id), body.hold)
    detail = await runtime.orders.get(auth.user, OrderId(order_id))
    return Json(order_view(auth.user, detail.order, detail.workflow))


def _anchor_json(anchor: SignedAnchor) -> dict[str, object]:
    return {
        "id": anchor.id,
        "ts": anchor.ts,
        "digest": anchor.digest,
        "conversations": anchor.conversations,
        "key_id": anchor.key_id,
        "signature": anchor.signature,
    }


@router.get("/admin/anchors", responses=errors(401, 403))
async def anchors(auth: AuthDep, runtime: RuntimeDep) -> Json:
    """The server's public key and its recent signed digests of every chain head."""
    key, found = await runtime.anchors.recent(auth.user)
    return Json(
        {
            "public_key": key.public,
            "key_id": key.key_id,
            "anchors": [_anchor_json(a) for a in found],
        }
    )


@router.post("/admin/anchors", status_code=201, responses=errors(401, 403))
async def anchor_now(auth: AuthDep, runtime: RuntimeDep) -> Json:
    """Sign every chain head now and post it to #audit, besides the daily anchor."""
    made = await runtime.anchors.anchor(auth.user)
    return Json(_anchor_json(made), status_code=201)
