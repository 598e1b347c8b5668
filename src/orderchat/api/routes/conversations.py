"""Conversations, their members and their history over HTTP."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict

from orderchat.api.openapi import NON_BLANK, errors, rule
from orderchat.api.responses import Json
from orderchat.api.routes.views import summary_view
from orderchat.api.runtime import AuthDep, RuntimeDep
from orderchat.core.errors import BadRequest
from orderchat.core.model import (
    MAX_MEMBERS_PER_REQUEST,
    MAX_TITLE_CHARS,
    parse_member_ids,
    parse_new_conversation,
)
from orderchat.core.permissions import require_staff
from orderchat.core.texts import say
from orderchat.protocol.server_codec import message_fields
from orderchat.services.chat.conversations import conversation_fields

router = APIRouter(prefix="/api/conversations", tags=["conversations"])

MAX_PAGE = 200
MAX_SEQ = 2**62


Members = Annotated[
    list[str], rule(maxItems=MAX_MEMBERS_PER_REQUEST, items={"type": "string", "minLength": 1})
]


class NewConversationBody(BaseModel):
    """A channel needs a title; a direct conversation is the caller and one other user."""

    model_config = ConfigDict(
        strict=True,
        extra="forbid",
        json_schema_extra={
            "oneOf": [
                {
                    "properties": {
                        "kind": {"const": "channel"},
                        "title": {"type": "string", "pattern": NON_BLANK},
                    },
                    "required": ["kind", "title"],
                },
                {
                    "properties": {
                        "kind": {"const": "direct"},
                        "members": {"minItems": 1, "maxItems": 2},
                    },
                    "required": ["kind", "members"],
                },
            ]
        },
    )
    kind: Annotated[str, rule(enum=["channel", "direct"])]
    title: Annotated[str | None, rule(maxLength=MAX_TITLE_CHARS)] = None
    members: Members = []


class MembersBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    members: Members


@router.post("", status_code=201, responses=errors(400, 401, 403, 413))
async def create_conversation(
    body: NewConversationBody, auth: AuthDep, runtime: RuntimeDep
) -> Json:
    # Staff only, checked before the body's rules as the use case does (it checks again).
    require_staff(auth.user)
    new = parse_new_conversation(body.kind, body.title, body.members)
    view = await runtime.conversations.create(auth.user, new)
    return Json(
        conversation_fields(view.conv, view.members), status_code=201 if view.created else 200
    )


@router.get("", responses=errors(401))
async def list_conversations(auth: AuthDep, runtime: RuntimeDep) -> Json:
    summaries = await runtime.conversations.list_for(auth.user)
    return Json({"conversations": [summary_view(s) for s in summaries]})


@router.get("/{conv_id}", responses=errors(401, 403, 404))
async def get_conversation(conv_id: str, auth: AuthDep, runtime: RuntimeDep) -> Json:
    summary, reads = await runtime.conversations.get(auth.user, conv_id)
    return Json({**summary_view(summary), "member_reads": reads})


@router.get("/{conv_id}/messages", responses=errors(400, 401, 403, 404))
async def messages(
    conv_id: str,
    auth: AuthDep,
    runtime: RuntimeDep,
    after: Annotated[int | None, Query(ge=0, le=MAX_SEQ)] = None,
    before: Annotated[int | None, Query(ge=1, le=MAX_SEQ)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
) -> Json:
    if after is not None and before is not None:
        raise BadRequest(say("api_conversations.give_after_before_not_both"))
    found = await runtime.conversations.history(auth.user, conv_id, after, before, limit)
    return Json({"messages": [message_fields(m) for m in found]})


@router.get("/{conv_id}/messages/{seq}/audit", responses=errors(400, 401, 403, 404))
async def audit_message(conv_id: str, seq: int, auth: AuthDep, runtime: RuntimeDep) -> Json:
    stored = await runtime.conversations.audit_message(auth.user, conv_id, seq)
    # message_fields hides a recalled message's content; the audit trail must not.
    original = message_fields(replace(stored.message, recalled=False))
    return Json(
        {
            "message": {**original, "recalled": stored.message.recalled},
            "recalled_by": stored.recalled_by,
            "recalled_ts": stored.recalled_at_ms,
            "hash": stored.hash,
        }
    )


@router.post("/{conv_id}/members", responses=errors(400, 401, 403, 404, 409, 413))
async def add_members(conv_id: str, body: MembersBody, auth: AuthDep, runtime: RuntimeDep) -> Json:
    members = parse_member_ids(body.members)
    view = await runtime.conversations.add_members(auth.user, conv_id, members)
    return Json(conversation_fields(view.conv, view.members))


@router.delete("/{conv_id}/members/{user_id}", responses=errors(401, 403, 404, 409))
async def remove_member(conv_id: str, user_id: str, auth: AuthDep, runtime: RuntimeDep) -> Json:
    view = await runtime.conversations.remove_member(auth.user, conv_id, user_id)
    return Json(conversation_fields(view.conv, view.members))


@router.post("/{conv_id}/leave", status_code=204, responses=errors(401, 403, 404, 409))
async def leave(conv_id: str, auth: AuthDep, runtime: RuntimeDep) -> Response:
    await runtime.conversations.remove_member(auth.user, conv_id, auth.user.id)
    return Response(status_code=204)
