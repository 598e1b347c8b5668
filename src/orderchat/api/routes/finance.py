"""Money over HTTP: payments, refunds, shipping approvals, invoices, the daily digest."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict

from orderchat.api.openapi import NON_BLANK, WholeNumber, errors, rule
from orderchat.api.responses import Json
from orderchat.api.routes.views import order_view
from orderchat.api.runtime import AuthDep, RuntimeDep
from orderchat.core.ids import OrderId
from orderchat.core.model import User
from orderchat.core.orders import MAX_NOTE_CHARS, MAX_PRICE_CENTS, parse_note
from orderchat.core.payments import (
    MAX_INVOICE_CODE_CHARS,
    MAX_INVOICE_TITLE_CHARS,
    MAX_METHOD_CHARS,
    MAX_REFERENCE_CHARS,
    PaymentKind,
    invoice_number,
    parse_invoice_request,
    parse_money,
)
from orderchat.services.money.digest import digest_fields, parse_day, payment_fields
from orderchat.services.money.finance import (
    InvoiceResult,
    Recorded,
    invoice_fields,
)

router = APIRouter(prefix="/api", tags=["finance"])


class MoneyBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    amount_cents: Annotated[WholeNumber, rule(minimum=1, maximum=MAX_PRICE_CENTS)]
    method: Annotated[str, rule(maxLength=MAX_METHOD_CHARS, pattern=NON_BLANK)]
    reference: Annotated[str, rule(maxLength=MAX_REFERENCE_CHARS, pattern=NON_BLANK)]


class ShipApprovalBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    note: Annotated[str, rule(maxLength=MAX_NOTE_CHARS)] = ""


class InvoiceRequestBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    title: Annotated[str, rule(maxLength=MAX_INVOICE_TITLE_CHARS, pattern=NON_BLANK)]
    tax_id: Annotated[str | None, rule(maxLength=MAX_INVOICE_CODE_CHARS, pattern=NON_BLANK)] = None


class InvoiceIssueBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    number: Annotated[str, rule(maxLength=MAX_INVOICE_CODE_CHARS, pattern=NON_BLANK)]


def _recorded(done: Recorded, viewer: User) -> Json:
    return Json(
        {
            "payment": payment_fields(done.payment, done.order.currency),
            "order": order_view(viewer, done.order, done.workflow),
        },
        status_code=201,
    )


def _invoice(done: InvoiceResult, status_code: int, viewer: User) -> Json:
    return Json(
        {
            "invoice": invoice_fields(done.invoice),
            "order": order_view(viewer, done.order, done.workflow),
        },
        status_code=status_code,
    )


@router.post(
    "/orders/{order_id}/payments", status_code=201, responses=errors(400, 401, 403, 404, 409, 413)
)
async def record_payment(
    order_id: OrderId, body: MoneyBody, auth: AuthDep, runtime: RuntimeDep
) -> Json:
    money = parse_money(PaymentKind.PAYMENT, body.amount_cents, body.method, body.reference)
    done = await runtime.finance.record_money(auth.user, order_id, money)
    return _recorded(done, auth.user)


@router.post(
    "/orders/{order_id}/refunds", status_code=201, responses=errors(400, 401, 403, 404, 409, 413)
)
async def record_refund(
    order_id: OrderId, body: MoneyBody, auth: AuthDep, runtime: RuntimeDep
) -> Json:
    money = parse_money(PaymentKind.REFUND, body.amount_cents, body.method, body.reference)
    done = await runtime.finance.record_money(auth.user, order_id, money)
    return _recorded(done, auth.user)


@router.get("/orders/{order_id}/payments", responses=errors(401, 403, 404))
async def order_money(order_id: OrderId, auth: AuthDep, runtime: RuntimeDep) -> Json:
    found = await runtime.finance.money(auth.user, order_id)
    currency = found.order.currency
    return Json(
        {
            "payments": [payment_fields(p, currency) for p in found.payments],
            "invoice": None if found.invoice is None else invoice_fields(found.invoice),
            "order": order_view(auth.user, found.order, found.workflow),
        }
    )


@router.post("/orders/{order_id}/ship-approval", responses=errors(400, 401, 403, 404, 409, 413))
async def approve_shipping(
    order_id: OrderId, body: ShipApprovalBody, auth: AuthDep, runtime: RuntimeDep
) -> Json:
    order, workflow = await runtime.finance.approve_shipping(
        auth.user, order_id, parse_note(body.note)
    )
    return Json(order_view(auth.user, order, workflow))


@router.post(
    "/orders/{order_id}/invoice", status_code=201, responses=errors(400, 401, 403, 404, 409, 413)
)
async def request_invoice(
    order_id: OrderId, body: InvoiceRequestBody, auth: AuthDep, runtime: RuntimeDep
) -> Json:
    request = parse_invoice_request(body.title, body.tax_id)
    done = await runtime.finance.request_invoice(auth.user, order_id, request)
    return _invoice(done, 201, auth.user)


@router.post("/orders/{order_id}/invoice/issue", responses=errors(400, 401, 403, 404, 409, 413))
async def issue_invoice(
    order_id: OrderId, body: InvoiceIssueBody, auth: AuthDep, runtime: RuntimeDep
) -> Json:
    done = await runtime.finance.issue_invoice(auth.user, order_id, invoice_number(body.number))
    return _invoice(done, 200, auth.user)


@router.get("/finance/digest", responses=errors(400, 401, 403))
async def digest(
    auth: AuthDep,
    runtime: RuntimeDep,
    date: Annotated[str | None, Query(json_schema_extra={"format": "date"})] = None,
) -> Json:
    """The reconciliation digest of `date` (YYYY-MM-DD, default yesterday), not posted."""
    day = None if date is None else parse_day(date)
    return Json(digest_fields(await runtime.finance.digest(day, user=auth.user)))
