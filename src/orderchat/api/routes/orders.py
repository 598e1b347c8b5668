"""Orders over HTTP: create, read, move through the workflow, exceptions, invitations."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query

from orderchat.api.responses import Json
from orderchat.api.routes.views import for_viewer, order_view
from orderchat.api.runtime import AuthDep, RuntimeDep
from orderchat.core.affordances import order_affordances
from orderchat.core.workflows import Workflow
from orderchat.services.orders.events import order_fields
from orderchat.storage.orders import CustomerRow, IssueRow

router = APIRouter(prefix="/api", tags=["orders"])

JsonBody = Annotated[dict[str, Any], Body()]


def issue_view(issue: IssueRow) -> dict[str, Any]:
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
                "guards": list(t.guards),
                "text": dict(t.text),
            }
            for t in workflow.transitions
        ],
    }


def customer_view(customer: CustomerRow) -> dict[str, Any]:
    return {
        "id": customer.user_id,
        "name": customer.name,
        "phone": customer.phone,
        "email": customer.email,
        "company": customer.company,
        "segment": customer.segment,
        "language": customer.language,
    }


@router.get("/workflows")
async def list_workflows(auth: AuthDep, runtime: RuntimeDep) -> Json:
    return Json({"workflows": [workflow_view(w) for w in runtime.workflows.all()]})


@router.post("/orders", status_code=201)
async def create_order(body: JsonBody, auth: AuthDep, runtime: RuntimeDep) -> Json:
    order = await runtime.orders.create(auth.user, body)
    return Json(
        order_view(auth.user, order, runtime.workflows.get(order.workflow)), status_code=201
    )


@router.get("/orders")
async def list_orders(
    auth: AuthDep,
    runtime: RuntimeDep,
    status: str | None = None,
    workflow: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Json:
    found = await runtime.orders.list(auth.user, status=status, workflow=workflow, limit=limit)
    return Json({"orders": [order_view(auth.user, o, w) for o, w in found]})


@router.get("/orders/{order_id}")
async def get_order(order_id: str, auth: AuthDep, runtime: RuntimeDep) -> Json:
    detail = await runtime.orders.get(auth.user, order_id)
    view = order_fields(detail.order, detail.workflow)
    if detail.issues:
        view["issues"] = [issue_view(i) for i in detail.issues]
    view["allowed"] = order_affordances(auth.user, detail.workflow, detail.order.status)
    # The states and moves the order's pages draw its progress from, so a page needs
    # no state names of its own and no second call (customers included).
    view["workflow_detail"] = workflow_view(detail.workflow)
    return Json(for_viewer(auth.user, view))


@router.patch("/orders/{order_id}")
async def update_order(order_id: str, body: JsonBody, auth: AuthDep, runtime: RuntimeDep) -> Json:
    order = await runtime.orders.update(auth.user, order_id, body)
    return Json(order_view(auth.user, order, runtime.workflows.get(order.workflow)))


@router.post("/orders/{order_id}/status")
async def advance_order(order_id: str, body: JsonBody, auth: AuthDep, runtime: RuntimeDep) -> Json:
    order = await runtime.orders.advance(auth.user, order_id, body)
    return Json(order_view(auth.user, order, runtime.workflows.get(order.workflow)))


@router.post("/orders/{order_id}/issues", status_code=201)
async def raise_issue(order_id: str, body: JsonBody, auth: AuthDep, runtime: RuntimeDep) -> Json:
    issue = await runtime.orders.raise_issue(auth.user, order_id, body)
    return Json(issue_view(issue), status_code=201)


@router.post("/orders/{order_id}/issues/{issue_id}/settle")
async def settle_issue(
    order_id: str, issue_id: str, body: JsonBody, auth: AuthDep, runtime: RuntimeDep
) -> Json:
    issue = await runtime.orders.settle_issue(
        auth.user, order_id, issue_id, body.get("outcome"), body.get("note")
    )
    return Json(issue_view(issue))


@router.post("/orders/{order_id}/address")
async def change_address(order_id: str, body: JsonBody, auth: AuthDep, runtime: RuntimeDep) -> Json:
    issue_id = body.get("issue")
    order = await runtime.orders.change_address(
        auth.user, order_id, body.get("address"), issue_id if isinstance(issue_id, str) else None
    )
    return Json(order_view(auth.user, order, runtime.workflows.get(order.workflow)))


@router.post("/orders/{order_id}/invitations", status_code=201)
async def invite_customer(order_id: str, auth: AuthDep, runtime: RuntimeDep) -> Json:
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


@router.get("/customers/{customer_id}")
async def get_customer(customer_id: str, auth: AuthDep, runtime: RuntimeDep) -> Json:
    return Json(customer_view(await runtime.orders.customer(auth.user, customer_id)))
