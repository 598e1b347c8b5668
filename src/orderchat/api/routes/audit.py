"""The admin audit log over HTTP: `GET /api/admin/audit` and its CSV export."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from orderchat.api.openapi import errors
from orderchat.api.responses import Json
from orderchat.api.runtime import AuthDep, RuntimeDep
from orderchat.core.audit import MAX_AUDIT_TEXT, AuditQuery, parse_actions
from orderchat.services.audit import MAX_PAGE, entry_json

router = APIRouter(prefix="/api/admin/audit", tags=["audit"])

MAX_MS = 2**53
MAX_ID = 2**62


Text = Annotated[str | None, Query(max_length=MAX_AUDIT_TEXT)]
Actions = Annotated[list[str] | None, Query(max_length=400)]
Id = Annotated[str | None, Query(max_length=64)]
Ms = Annotated[int | None, Query(ge=0, le=MAX_MS, description="ms since the epoch")]


def _filters(
    q: Text = None,
    action: Actions = None,
    actor: Id = None,
    target: Id = None,
    since: Ms = None,
    until: Ms = None,
) -> AuditQuery:
    """The filters both the page and the CSV take, read once."""
    return AuditQuery(
        text=q or None,
        actions=parse_actions(action or []),
        actor=actor,
        target=target,
        since_ms=since,
        until_ms=until,
    )


Filters = Annotated[AuditQuery, Depends(_filters)]


@router.get("", responses=errors(400, 401, 403))
async def audit_log(
    auth: AuthDep,
    runtime: RuntimeDep,
    query: Filters,
    cursor: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
) -> Json:
    """Sensitive actions, newest first: recalls, exports, roles, members, invitations,
    webhooks, sign-outs of others, audit searches, retention. `action` may be a
    family (`staff.*`); `q` searches targets, details and actors' names."""
    page = await runtime.audit.page(auth.user, query, cursor, limit)
    return Json({"entries": [entry_json(e) for e in page.entries], "next": page.next_cursor})


@router.get(
    ".csv",
    responses={
        **errors(400, 401, 403),
        200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "CSV"},
    },
    response_class=Response,
)
async def audit_csv(auth: AuthDep, runtime: RuntimeDep, query: Filters) -> Response:
    """The same entries, all of them (up to 100,000), as CSV for a spreadsheet."""
    body = await runtime.audit.export_csv(auth.user, query)
    return Response(
        body.encode("utf-8-sig"),  # the BOM makes Excel read the Chinese right
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="audit-log.csv"'},
    )
