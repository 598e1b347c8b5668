"""Confirmation items over HTTP: add, list, propose a version, decide one version."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from orderchat.api.openapi import NON_BLANK, errors, rule
from orderchat.api.responses import Json
from orderchat.api.runtime import AuthDep, RuntimeDep
from orderchat.core.confirmations import (
    KINDS,
    MAX_ATTACHMENTS,
    MAX_COMMENT_CHARS,
    MAX_TITLE_CHARS,
    MAX_VERSION_TEXT_CHARS,
    ConfirmationItem,
    ConfirmationVersion,
    parse_new_item,
    parse_verdict,
    parse_version_proposal,
)
from orderchat.core.ids import ConfirmationItemId, OrderId
from orderchat.services.orders.confirmations import (
    item_fields,
    version_fields,
)

router = APIRouter(prefix="/api", tags=["confirmations"])


class NewItemBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    kind: Annotated[str, rule(enum=sorted(KINDS))]
    title: Annotated[str, rule(maxLength=MAX_TITLE_CHARS, pattern=NON_BLANK)]
    required: bool = True


class VersionBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    text: Annotated[str, rule(maxLength=MAX_VERSION_TEXT_CHARS, pattern=NON_BLANK)]
    attachments: Annotated[list[dict[str, Any]], rule(maxItems=MAX_ATTACHMENTS)] = []


class DecisionBody(BaseModel):
    """A rejection says in its comment what should change."""

    model_config = ConfigDict(
        strict=True,
        extra="forbid",
        json_schema_extra={
            "anyOf": [
                {"properties": {"decision": {"const": "approved"}}},
                {"properties": {"comment": {"pattern": NON_BLANK}}},
            ]
        },
    )
    decision: Literal["approved", "rejected"]
    comment: Annotated[str, rule(maxLength=MAX_COMMENT_CHARS)]


def _item_and_version(
    item: ConfirmationItem, version: ConfirmationVersion, status_code: int
) -> Json:
    return Json(
        {"item": item_fields(item), "version": version_fields(item, version)},
        status_code=status_code,
    )


@router.post(
    "/orders/{order_id}/confirmations",
    status_code=201,
    responses=errors(400, 401, 403, 404, 409, 413),
)
async def add_item(
    order_id: OrderId, body: NewItemBody, auth: AuthDep, runtime: RuntimeDep
) -> Json:
    new = parse_new_item(body.kind, body.title, body.required)
    item = await runtime.confirmations.add_item(auth.user, order_id, new)
    return Json(item_fields(item), status_code=201)


@router.get("/orders/{order_id}/confirmations", responses=errors(401, 403, 404))
async def list_items(order_id: OrderId, auth: AuthDep, runtime: RuntimeDep) -> Json:
    found = await runtime.confirmations.list_for_order(auth.user, order_id)
    return Json(
        {"items": [item_fields(i) for i in found.items], "required_open": found.required_open}
    )


@router.post(
    "/confirmations/{item_id}/versions",
    status_code=201,
    responses=errors(400, 401, 403, 404, 409, 413),
)
async def propose_version(
    item_id: ConfirmationItemId, body: VersionBody, auth: AuthDep, runtime: RuntimeDep
) -> Json:
    proposal = parse_version_proposal(body.text, body.attachments)
    item, version = await runtime.confirmations.propose(auth.user, item_id, proposal)
    return _item_and_version(item, version, 201)


@router.post(
    "/confirmations/{item_id}/versions/{number}/decision",
    responses=errors(400, 401, 403, 404, 409, 413),
)
async def decide_version(
    item_id: ConfirmationItemId, number: int, body: DecisionBody, auth: AuthDep, runtime: RuntimeDep
) -> Json:
    verdict = parse_verdict(body.decision, body.comment)
    item, version = await runtime.confirmations.decide(auth.user, item_id, number, verdict)
    return _item_and_version(item, version, 200)
