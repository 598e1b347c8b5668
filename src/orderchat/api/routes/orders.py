"""Orders over HTTP: create, read, move through the workflow, exceptions, invitations."""

from __future__ import annotations

from typing import Annotated, Any, cast

from fastapi import APIRouter, Body, Query

from orderchat.api.openapi import NON_BLANK, errors
from orderchat.api.responses import Json
from orderchat.api.routes.views import for_viewer, order_view
from orderchat.api.runtime import AuthDep, Runtime, RuntimeDep
from orderchat.core.affordances import order_affordances
from orderchat.core.ids import IssueId, OrderId
from orderchat.core.model import User
from orderchat.core.order_requests import (
    LANGUAGES,
    MAX_MS,
    SEGMENTS,
    IssueReport,
    issue_details,
    issue_kind,
    parse_address_change,
    parse_order_changes,
    parse_order_spec,
    parse_settlement,
    parse_status_change,
)
from orderchat.core.orders import (
    ADDRESS_FIELDS,
    CURRENCIES,
    MAX_ITEMS,
    MAX_NOTE_CHARS,
    MAX_PRICE_CENTS,
    MAX_QUANTITY,
    Customer,
    Issue,
    Order,
)
from orderchat.core.permissions import Action, check, require_staff
from orderchat.core.workflows import Workflow
from orderchat.services.orders.events import order_fields

router = APIRouter(prefix="/api", tags=["orders"])

# The order routes parse their bodies with `core.order_requests` (it reports every
# problem in the words of the order) and hand the services the values; these
# schemas state the same rules for clients. Where the use case decides who may
# before reading the body, the route checks that first too (the use case checks
# again), so a caller who may not learns nothing about the body's rules.
JsonBody = Annotated[dict[str, Any], Body()]

_TEXT_64 = {"type": "string", "minLength": 1, "maxLength": 64}
_NOTE = {"type": "string", "maxLength": MAX_NOTE_CHARS}
_ETA = {
    "type": ["integer", "null"],
    "minimum": 0,
    "maximum": MAX_MS,
    "description": "ms since the epoch",
}
_ADDRESS: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {field: {"type": "string", "maxLength": 200} for field in ADDRESS_FIELDS},
}
_ITEM = {
    "type": "object",
    "required": ["sku", "quantity", "unit_price_cents"],
    "properties": {
        "sku": {"type": "string", "maxLength": 64, "pattern": NON_BLANK},
        "name": {"type": "string", "maxLength": 200, "pattern": NON_BLANK},
        "quantity": {"type": "integer", "minimum": 1, "maximum": MAX_QUANTITY},
        "unit_price_cents": {"type": "integer", "minimum": 0, "maximum": MAX_PRICE_CENTS},
    },
}
_NEW_CUSTOMER = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "maxLength": 100, "pattern": NON_BLANK},
        "phone": {"type": ["string", "null"], "maxLength": 200},
        "email": {"type": ["string", "null"], "maxLength": 200},
        "company": {"type": ["string", "null"], "maxLength": 200},
        "segment": {"enum": sorted(SEGMENTS)},
        "language": {"enum": sorted(LANGUAGES)},
    },
}
_NEW_ORDER = {
    "type": "object",
    "additionalProperties": False,
    "required": ["number", "items"],
    "properties": {
        "number": {"type": "string", "pattern": "^[A-Za-z0-9_./#-]{1,64}$"},
        "workflow": {"type": "string", "description": "a workflow's name (GET /api/workflows)"},
        "customer": _NEW_CUSTOMER,
        "customer_id": {"type": "string"},
        "items": {"type": "array", "minItems": 1, "maxItems": MAX_ITEMS, "items": _ITEM},
        "address": _ADDRESS,
        "note": _NOTE,
        "currency": {"enum": sorted(CURRENCIES)},
        "eta_ts": _ETA,
    },
    # A new customer, or the id of one the shop knows: exactly one of the two.
    "oneOf": [{"required": ["customer"]}, {"required": ["customer_id"]}],
}
_ORDER_CHANGES = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": {
        "carrier": {**_TEXT_64, "type": ["string", "null"]},
        "tracking_no": {**_TEXT_64, "type": ["string", "null"]},
        "eta_ts": _ETA,
        "note": _NOTE,
    },
}
_UPLOAD_ID = {"type": "string", "minLength": 1, "maxLength": 64}
_PHOTO = {
    "anyOf": [
        _UPLOAD_ID,
        {
            "type": "object",
            "required": ["id"],
            "additionalProperties": False,
            "properties": {"id": _UPLOAD_ID},
        },
    ]
}
_STATUS_CHANGE = {
    "type": "object",
    "additionalProperties": False,
    "required": ["to"],
    "properties": {
        "to": {**_TEXT_64, "description": "the next status, one the workflow allows"},
        "note": _NOTE,
        "photos": {
            "type": "array",
            "maxItems": 20,
            "items": _PHOTO,
            "description": "the step's photos: the caller's finished picture uploads "
            "for the order's conversation; a step marked `photos = true` needs one",
        },
        "carrier": _TEXT_64,
        "tracking_no": _TEXT_64,
    },
}
_ADDRESS_CHANGE = {
    "type": "object",
    "required": ["address"],
    "properties": {
        "address": {
            **_ADDRESS,
            "minProperties": 1,
            "properties": {
                field: {"type": "string", "maxLength": 200, "pattern": NON_BLANK}
                for field in ADDRESS_FIELDS
            },
        },
        "issue": {
            "type": "string",
            "minLength": 1,
            "description": "the open address-change issue of this order that this settles",
        },
    },
}
_SETTLEMENT = {
    "type": "object",
    "required": ["outcome"],
    "properties": {
        "outcome": {"type": "string", "minLength": 1, "maxLength": 32},
        "note": _NOTE,
    },
}
_ISSUE = {
    "type": "object",
    "required": ["kind"],
    "properties": {"kind": {"type": "string", "description": "the kind of exception"}},
}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"content": {"application/json": {"schema": schema}}}}


def consult_order_body() -> dict[str, Any]:
    """An order from a consult: a new order's body without its customer (the visitor)."""
    schema = {k: v for k, v in _NEW_ORDER.items() if k != "oneOf"}
    every = cast(dict[str, Any], _NEW_ORDER["properties"])
    properties = {k: v for k, v in every.items() if k not in ("customer", "customer_id")}
    return _body({**schema, "properties": properties})


def issue_view(issue: Issue) -> dict[str, Any]:
    return {
        "id": issue.id,
        "order": issue.order_id,
        "kind": issue.kind,
        "detail": issue.detail,
        "raised_by": issue.raised_by,
        "raised_ts": issue.raised_at_ms,
        "outcome": issue.outcome,
        "outcome_detail": issue.outcome_detail,
        "settled_by": issue.settled_by,
        "settled_ts": issue.settled_at_ms,
    }


def workflow_view(workflow: Workflow) -> dict[str, Any]:
    return {
        "name": workflow.name,
        "title": dict(workflow.title),
        "initial": workflow.initial,
        "states": [
            {
                "name": s,
                "label": dict(workflow.labels.get(s, {})),
                "terminal": s in workflow.terminal,
            }
            for s in workflow.states
        ],
        "transitions": [
            {
                "from": sorted(t.sources),
                "to": t.target,
                "roles": sorted(r.value for r in t.roles),
                "notify": sorted(r.value for r in t.notify),
                "customer": t.customer,
                "photos": t.photos,
                "photos_required": t.photos_required,
                "guards": list(t.guards),
                "text": dict(t.text),
                "action": dict(t.action),
            }
            for t in workflow.transitions
        ],
    }


def customer_view(customer: Customer) -> dict[str, Any]:
    return {
        "id": customer.user_id,
        "name": customer.name,
        "phone": customer.phone,
        "email": customer.email,
        "company": customer.company,
        "segment": customer.segment,
        "language": customer.language,
    }


@router.get("/workflows", responses=errors(401))
async def list_workflows(auth: AuthDep, runtime: RuntimeDep) -> Json:
    return Json({"workflows": [workflow_view(w) for w in runtime.workflows.all()]})


@router.post(
    "/orders",
    status_code=201,
    responses=errors(400, 401, 403, 409, 413),
    openapi_extra=_body(_NEW_ORDER),
)
async def create_order(body: JsonBody, auth: AuthDep, runtime: RuntimeDep) -> Json:
    spec = parse_order_spec(body, runtime.workflows.get)
    order = await runtime.orders.create(auth.user, spec)
    return _order_answer(auth.user, runtime, order, status_code=201)


@router.get("/orders", responses=errors(400, 401))
async def list_orders(
    auth: AuthDep,
    runtime: RuntimeDep,
    status: str | None = None,
    workflow: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Json:
    found = await runtime.orders.list(auth.user, status=status, workflow=workflow, limit=limit)
    return Json({"orders": [order_view(auth.user, o, w) for o, w in found]})


@router.get("/orders/{order_id}", responses=errors(401, 403, 404))
async def get_order(order_id: OrderId, auth: AuthDep, runtime: RuntimeDep) -> Json:
    detail = await runtime.orders.get(auth.user, order_id)
    view = order_fields(detail.order, detail.workflow)
    if detail.issues:
        view["issues"] = [issue_view(i) for i in detail.issues]
    view["allowed"] = order_affordances(auth.user, detail.workflow, detail.order.status)
    # The states and moves the order's pages draw its progress from, so a page needs
    # no state names of its own and no second call (customers included).
    view["workflow_detail"] = workflow_view(detail.workflow)
    # Both names of each product, so an English page can say it in English.
    view["item_names"] = await runtime.inventory.catalogue_names(i.sku for i in detail.order.items)
    shown = for_viewer(auth.user, view)
    # The consults the order came from: what was said before it (docs/consults.md §5).
    shown["consults"] = await runtime.consults.of_order(detail.order.id)
    return Json(shown)


def _order_answer(viewer: User, runtime: Runtime, order: Order, status_code: int = 200) -> Json:
    """An order as its viewer may see it, under its own workflow."""
    return Json(order_view_for(viewer, runtime, order), status_code=status_code)


def order_view_for(viewer: User, runtime: Runtime, order: Order) -> dict[str, Any]:
    return order_view(viewer, order, runtime.workflows.get(order.workflow))


@router.patch(
    "/orders/{order_id}",
    responses=errors(400, 401, 403, 404, 409, 413),
    openapi_extra=_body(_ORDER_CHANGES),
)
async def update_order(
    order_id: OrderId, body: JsonBody, auth: AuthDep, runtime: RuntimeDep
) -> Json:
    check(auth.user, Action.UPDATE_ORDER)
    order = await runtime.orders.update(auth.user, order_id, parse_order_changes(body))
    return _order_answer(auth.user, runtime, order)


@router.post(
    "/orders/{order_id}/status",
    responses=errors(400, 401, 403, 404, 409, 413),
    openapi_extra=_body(_STATUS_CHANGE),
)
async def advance_order(
    order_id: OrderId, body: JsonBody, auth: AuthDep, runtime: RuntimeDep
) -> Json:
    order = await runtime.orders.advance(auth.user, order_id, parse_status_change(body))
    return _order_answer(auth.user, runtime, order)


@router.post(
    "/orders/{order_id}/issues",
    status_code=201,
    responses=errors(400, 401, 403, 404, 409, 413),
    openapi_extra=_body(_ISSUE),
)
async def raise_issue(
    order_id: OrderId, body: JsonBody, auth: AuthDep, runtime: RuntimeDep
) -> Json:
    kind = issue_kind(body)
    require_staff(auth.user)
    report = IssueReport(kind, issue_details(kind, body))
    issue = await runtime.orders.raise_issue(auth.user, order_id, report)
    return Json(issue_view(issue), status_code=201)


@router.post(
    "/orders/{order_id}/issues/{issue_id}/settle",
    responses=errors(400, 401, 403, 404, 409, 413),
    openapi_extra=_body(_SETTLEMENT),
)
async def settle_issue(
    order_id: OrderId, issue_id: IssueId, body: JsonBody, auth: AuthDep, runtime: RuntimeDep
) -> Json:
    settlement = parse_settlement(body)
    issue = await runtime.orders.settle_issue(auth.user, order_id, issue_id, settlement)
    return Json(issue_view(issue))


@router.post(
    "/orders/{order_id}/address",
    responses=errors(400, 401, 403, 404, 409, 413),
    openapi_extra=_body(_ADDRESS_CHANGE),
)
async def change_address(
    order_id: OrderId, body: JsonBody, auth: AuthDep, runtime: RuntimeDep
) -> Json:
    check(auth.user, Action.CHANGE_ADDRESS)
    change = parse_address_change(body)
    order = await runtime.orders.change_address(auth.user, order_id, change)
    return _order_answer(auth.user, runtime, order)


@router.post(
    "/orders/{order_id}/invitations", status_code=201, responses=errors(401, 403, 404, 409)
)
async def invite_customer(order_id: OrderId, auth: AuthDep, runtime: RuntimeDep) -> Json:
    invitation = await runtime.orders.invite(auth.user, order_id)
    return Json(
        {
            "token": invitation.token,
            "url": f"/c#{invitation.token}",
            "order": invitation.order_id,
            "expires_ts": invitation.expires_at_ms,
        },
        status_code=201,
        # The link signs the customer in: never cached, never kept by idempotency keys.
        headers={"Cache-Control": "no-store"},
    )


@router.get("/customers/{customer_id}", responses=errors(401, 403, 404))
async def get_customer(customer_id: str, auth: AuthDep, runtime: RuntimeDep) -> Json:
    return Json(customer_view(await runtime.orders.customer(auth.user, customer_id)))
