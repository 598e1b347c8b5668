"""HTTP routes of pre-sales consults: a visitor's way in, staff's inbox and actions
(docs/consults.md)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from orderchat.api.openapi import errors
from orderchat.api.responses import Json
from orderchat.api.routes.orders import JsonBody, consult_order_body, order_view_for
from orderchat.api.routes.views import user_view
from orderchat.api.runtime import AuthDep, RuntimeDep
from orderchat.core.consults import ConsultStatus, Source
from orderchat.core.errors import BadRequest
from orderchat.core.ids import UserId
from orderchat.core.model import MAX_TEXT_CHARS, Role
from orderchat.core.order_requests import parse_order_spec
from orderchat.core.texts import say
from orderchat.services.consults.ops import Arrival, NewVisitor
from orderchat.services.consults.service import INBOX_VIEWS

router = APIRouter(prefix="/api", tags=["consults"])

Name = Annotated[str, Field(min_length=1, max_length=100, pattern=r"\S")]
Phone = Annotated[str | None, Field(max_length=40)]
Email = Annotated[str | None, Field(max_length=200, pattern=r"^[^@\s]+@[^@\s]+$")]
Tag = Annotated[str | None, Field(max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]
PageUrl = Annotated[str | None, Field(max_length=500, pattern=r"^https?://\S+$")]
SkuCode = Annotated[str | None, Field(min_length=1, max_length=64)]
FirstText = Annotated[str | None, Field(max_length=MAX_TEXT_CHARS)]
Language = Literal["zh-CN", "en"]
Device = Annotated[str | None, Field(min_length=1, max_length=64)]


class ArrivalBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    source: Literal["page", "widget", "qr"] = "page"
    tag: Tag = None
    page_url: PageUrl = None
    sku: SkuCode = None
    text: FirstText = None
    language: Language | None = None

    def arrival(self) -> Arrival:
        text = (self.text or "").strip() or None
        return Arrival(Source(self.source), self.tag, self.page_url, self.sku, text, self.language)


class StartBody(ArrivalBody):
    name: Name
    phone: Phone = None
    email: Email = None
    device: Device = None


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.post("/consults/start", status_code=201, responses=errors(400, 429))
async def start_consult(body: StartBody, request: Request, runtime: RuntimeDep) -> Json:
    """A visitor's first consult: who they are, where they came from, a session."""
    language = body.language or "zh-CN"
    new = NewVisitor(body.name.strip(), body.phone or None, body.email or None, language)
    signed, consult = await runtime.consults.start(
        new, body.arrival(), _address(request), body.device
    )
    return Json(
        {
            "token": signed.token,
            "user": user_view(signed.user),
            "expires_ts": signed.expires_at_ms,
            "consult": consult,
        },
        status_code=201,
    )


@router.post("/consults", status_code=201, responses=errors(400, 401, 403))
async def open_consult(body: ArrivalBody, auth: AuthDep, runtime: RuntimeDep) -> Json:
    """A returning visitor: their consult still open (200), else a new one (201)."""
    fresh, consult = await runtime.consults.open_another(auth.user, body.arrival())
    return Json(consult, status_code=201 if fresh else 200)


@router.get("/me/consults", responses=errors(401, 403))
async def my_consults(auth: AuthDep, runtime: RuntimeDep) -> Json:
    return Json(await runtime.consults.mine(auth.user))


@router.get("/consults", responses=errors(400, 401, 403))
async def inbox(
    auth: AuthDep,
    runtime: RuntimeDep,
    view: Annotated[Literal["unassigned", "mine", "role", "all"], Query()] = "role",
    status: Annotated[list[Literal["queued", "open", "closed"]] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> Json:
    """Staff's inbox, waiting longest first (docs/consults.md §3)."""
    assert view in INBOX_VIEWS
    statuses = [ConsultStatus(s) for s in status] if status else None
    chosen = statuses or [ConsultStatus.QUEUED, ConsultStatus.OPEN]
    return Json(await runtime.consults.inbox(auth.user, view, chosen, limit, offset))


class LinkBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    email: Email = None


# Before the routes of one consult: a method this path does not take is told POST, not
# taken for a consult named "email-link".
@router.post("/consults/email-link", responses=errors(400, 401, 403, 409))
async def email_link(body: LinkBody, auth: AuthDep, runtime: RuntimeDep) -> Json:
    """Mail the visitor a link that signs another device in as them."""
    return Json({"sent_to": await runtime.visitors.mail_link(auth.user, body.email)})


@router.get("/consults/{consult_id}", responses=errors(401, 404))
async def get_consult(consult_id: str, auth: AuthDep, runtime: RuntimeDep) -> Json:
    return Json(await runtime.consults.get(auth.user, consult_id))


@router.post("/consults/{consult_id}/take", responses=errors(401, 403, 404, 409))
async def take(consult_id: str, auth: AuthDep, runtime: RuntimeDep) -> Json:
    return Json(await runtime.consults.take(auth.user, consult_id))


class TransferBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    to_user: Annotated[str | None, Field(min_length=1, max_length=64)] = None
    to_role: (
        Literal[
            "customer_service",
            "sales",
            "purchasing",
            "warehouse",
            "logistics",
            "finance",
            "production",
            "qc",
        ]
        | None
    ) = None
    note: Annotated[str | None, Field(max_length=500)] = None


@router.post("/consults/{consult_id}/transfer", responses=errors(400, 401, 403, 404, 409))
async def transfer(consult_id: str, body: TransferBody, auth: AuthDep, runtime: RuntimeDep) -> Json:
    """To a colleague or a role's queue; the note is for staff only."""
    to_user = UserId(body.to_user) if body.to_user else None
    to_role = Role(body.to_role) if body.to_role else None
    note = (body.note or "").strip() or None
    return Json(await runtime.consults.transfer(auth.user, consult_id, to_user, to_role, note))


@router.post("/consults/{consult_id}/close", responses=errors(401, 403, 404))
async def close(consult_id: str, auth: AuthDep, runtime: RuntimeDep) -> Json:
    return Json(await runtime.consults.close(auth.user, consult_id))


@router.post(
    "/consults/{consult_id}/order",
    status_code=201,
    responses=errors(400, 401, 403, 404, 409, 413),
    openapi_extra=consult_order_body(),
)
async def order_from_consult(
    consult_id: str, body: JsonBody, auth: AuthDep, runtime: RuntimeDep
) -> Json:
    """The visitor becomes the order's customer, with the identity they already have."""
    if "customer" in body or "customer_id" in body:
        unknown = sorted({"customer", "customer_id"} & set(body))
        raise BadRequest(say("order_requests.unknown_order_fields", unknown=unknown))
    spec = parse_order_spec({**body, "customer_id": "-"}, runtime.workflows.get)
    order = await runtime.consults.order(auth.user, consult_id, spec)
    return Json(order_view_for(auth.user, runtime, order), status_code=201)


@router.get("/customers/{customer_id}/history", responses=errors(401, 403, 404))
async def customer_history(customer_id: str, auth: AuthDep, runtime: RuntimeDep) -> Json:
    """A customer's consults and orders together."""
    return Json(await runtime.consults.history(auth.user, UserId(customer_id)))


# --- visitors ------------------------------------------------------------------------


@router.post("/visitors/{visitor_id}/block", status_code=204, responses=errors(401, 403, 409))
async def block(visitor_id: str, auth: AuthDep, runtime: RuntimeDep) -> Response:
    await runtime.consults.set_blocked(auth.user, UserId(visitor_id), True)
    return Response(status_code=204)


@router.delete("/visitors/{visitor_id}/block", status_code=204, responses=errors(401, 403, 409))
async def unblock(visitor_id: str, auth: AuthDep, runtime: RuntimeDep) -> Response:
    await runtime.consults.set_blocked(auth.user, UserId(visitor_id), False)
    return Response(status_code=204)


@router.get("/visitors/{visitor_id}/export", responses=errors(401, 403, 404))
async def export_visitor(visitor_id: str, auth: AuthDep, runtime: RuntimeDep) -> Json:
    return Json(await runtime.visitors.export(auth.user, UserId(visitor_id)))


@router.post("/visitors/{visitor_id}/erase", responses=errors(401, 403, 404))
async def erase_visitor(visitor_id: str, auth: AuthDep, runtime: RuntimeDep) -> Json:
    return Json(await runtime.visitors.erase(auth.user, UserId(visitor_id)))


class VisitorLinkBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    token: Annotated[str, Field(min_length=1, max_length=256)]
    device: Device = None


@router.post("/auth/visitor-link", responses=errors(400, 401, 429))
async def sign_in_with_link(body: VisitorLinkBody, request: Request, runtime: RuntimeDep) -> Json:
    signed = await runtime.visitors.sign_in_with_link(body.token, _address(request), body.device)
    answer: dict[str, Any] = {
        "token": signed.token,
        "user": user_view(signed.user),
        "expires_ts": signed.expires_at_ms,
    }
    return Json(answer)
