"""`GET /api/search`: the messages a person may see, by what they would type (docs/search.md)."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Query

from orderchat.api.openapi import errors
from orderchat.api.responses import Json
from orderchat.api.runtime import AuthDep, RuntimeDep
from orderchat.core.errors import BadRequest
from orderchat.core.model import MessageKind
from orderchat.core.search import (
    MAX_PAGE,
    MAX_QUERY_CHARS,
    SEARCHABLE_KINDS,
    SearchFilters,
    SortBy,
)
from orderchat.core.texts import say
from orderchat.protocol.server_codec import message_fields
from orderchat.services.search import SearchHit, SearchRequest

router = APIRouter(prefix="/api/search", tags=["search"])

MAX_MS = 2**53


def _kinds(raw: list[str]) -> frozenset[MessageKind]:
    """`kind` repeated or comma-separated: text, image, file, voice, video, order_event, call."""
    names = {name.strip() for item in raw for name in item.split(",") if name.strip()}
    known = {k.value: k for k in SEARCHABLE_KINDS}
    unknown = sorted(names - known.keys())
    if unknown:
        raise BadRequest(say("search.unknown_kind", kind=unknown[0]))
    return frozenset(known[n] for n in names)


def _hit_json(hit: SearchHit, audit: bool) -> dict[str, object]:
    message = hit.message
    # An audit shows what a recalled message said; members never get here with one.
    shown = replace(message, recalled=False) if audit else message
    return {
        "message": message_fields(shown),
        "snippet": {"text": hit.snippet.text, "marks": [list(m) for m in hit.snippet.marks]},
        "conversation": {"id": message.conv, "kind": hit.conv_kind, "title": hit.conv_title},
        "sender_name": hit.sender_name,
        "order": (
            None
            if hit.order_id is None or hit.order_number is None
            else {"id": hit.order_id, "number": hit.order_number}
        ),
        "recalled": message.recalled,
    }


@router.get("", responses=errors(400, 401, 403, 404))
async def search(
    auth: AuthDep,
    runtime: RuntimeDep,
    q: Annotated[str, Query(min_length=1, max_length=MAX_QUERY_CHARS)],
    conv: Annotated[str | None, Query(max_length=64)] = None,
    order: Annotated[str | None, Query(max_length=64)] = None,
    sender: Annotated[str | None, Query(max_length=64)] = None,
    kind: Annotated[list[str] | None, Query(max_length=200)] = None,
    since: Annotated[int | None, Query(ge=0, le=MAX_MS, description="ms since the epoch")] = None,
    until: Annotated[int | None, Query(ge=0, le=MAX_MS, description="ms, exclusive")] = None,
    has_file: bool | None = None,
    sort: SortBy = SortBy.TIME,
    cursor: Annotated[str | None, Query(pattern=r"^[tr][0-9]{1,18}$")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 20,
    audit: bool = False,
) -> Json:
    """Messages matching every term of `q`, newest first or best first, a page at a time.

    Chinese words of two characters or more, English words (any form: tents
    finds tent), codes and order numbers exactly. `audit` (administrators
    only) searches every conversation and keeps recalled messages.
    """
    filters = SearchFilters(
        conv=conv,
        order=order,
        sender=sender,
        kinds=_kinds(kind or []),
        since_ms=since,
        until_ms=until,
        has_file=has_file,
    )
    request = SearchRequest(q, filters, sort, cursor, limit, audit)
    page = await runtime.search.find(auth.user, request)
    return Json({"results": [_hit_json(h, audit) for h in page.hits], "next": page.next_cursor})
