"""Conversations, their members and their history over HTTP."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
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
    validate_title,
)
from orderchat.core.permissions import require_staff
from orderchat.core.texts import say
from orderchat.protocol.server_codec import message_fields
from orderchat.services.chat.attention import handled_by, parse_settings_change
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
    stored, edits = await runtime.conversations.audit_message(auth.user, conv_id, seq)
    # message_fields hides a recalled message's content; the audit trail must not.
    original = message_fields(replace(stored.message, recalled=False))
    return Json(
        {
            "message": {**original, "recalled": stored.message.recalled},
            "recalled_by": stored.recalled_by,
            "recalled_ts": stored.recalled_at_ms,
            "hash": stored.hash,
            # Every later text, oldest first; the message above is version 0.
            "edits": [
                {
                    "version": e.edit.version,
                    "text": e.edit.text,
                    "by": e.edit.by,
                    "ts": e.edit.ts,
                    "hash": e.hash,
                }
                for e in edits
            ],
        }
    )


@router.post("/{conv_id}/members", responses=errors(400, 401, 403, 404, 409, 413))
async def add_members(conv_id: str, body: MembersBody, auth: AuthDep, runtime: RuntimeDep) -> Json:
    members = parse_member_ids(body.members, allow_repeats=False)
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


class RenameBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    title: Annotated[str, rule(maxLength=MAX_TITLE_CHARS, pattern=NON_BLANK)]


@router.patch("/{conv_id}", responses=errors(400, 401, 403, 404, 409, 413))
async def rename(conv_id: str, body: RenameBody, auth: AuthDep, runtime: RuntimeDep) -> Json:
    """Rename a group; every member sees a `member` event with action `renamed`."""
    require_staff(auth.user)
    title = validate_title(body.title, required=True)
    assert title is not None  # required=True raises instead
    view = await runtime.conversations.rename(auth.user, conv_id, title)
    return Json(conversation_fields(view.conv, view.members))


class SettingsBody(BaseModel):
    """Either or both; a field left out stays as it is."""

    model_config = ConfigDict(
        strict=True,
        extra="forbid",
        json_schema_extra={
            "minProperties": 1,
            "properties": {"pinned": {"type": "boolean"}, "muted": {"type": "boolean"}},
        },
    )
    pinned: bool | None = None
    muted: bool | None = None


@router.post("/{conv_id}/settings", responses=errors(400, 401, 403, 404))
async def change_settings(
    conv_id: str, body: SettingsBody, auth: AuthDep, runtime: RuntimeDep
) -> Json:
    """Pin or mute a conversation for the caller only; their devices get a `settings` frame."""
    change = parse_settings_change(body.model_dump(exclude_unset=True))
    frame = await runtime.conversations.change_settings(auth.user, conv_id, change)
    return Json(
        {
            "conv": frame.conv,
            "pinned": frame.pinned,
            "muted": frame.muted,
            "pinned_ts": frame.pinned_ts,
        }
    )


@router.get("/{conv_id}/urgent", responses=errors(400, 401, 403, 404))
async def urgent(
    conv_id: str,
    auth: AuthDep,
    runtime: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> Json:
    found = await runtime.conversations.urgent(auth.user, conv_id, limit)
    return Json({"urgent": handled_by(found)})


@router.post("/{conv_id}/messages/{seq}/handled", responses=errors(400, 401, 403, 404, 409))
async def mark_handled(
    conv_id: str,
    seq: Annotated[int, Path(ge=1, le=MAX_SEQ)],
    auth: AuthDep,
    runtime: RuntimeDep,
) -> Json:
    """Say an urgent message has been dealt with; members get a durable `handled` event."""
    event = await runtime.conversations.mark_handled(auth.user, conv_id, seq)
    return Json({"conv": event.conv, "seq": event.seq, "by": event.by, "ts": event.ts})
