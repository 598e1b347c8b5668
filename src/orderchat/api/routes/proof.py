"""The record as evidence: an admin checks a conversation's hash chain, and whoever may
see an order downloads its dossier (docs/proof.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.background import BackgroundTask
from starlette.responses import FileResponse

from orderchat.api.errors import reader_language, request_language
from orderchat.api.openapi import errors
from orderchat.api.responses import Json
from orderchat.api.runtime import AuthDep, RuntimeDep
from orderchat.core.ids import OrderId
from orderchat.services.dossier.service import remove_quietly

router = APIRouter()

ConvParam = Annotated[
    str, Query(min_length=1, max_length=64, description="the conversation whose chain to check")
]


@router.get("/api/admin/verify", tags=["admin"], responses=errors(400, 401, 403, 404))
async def verify_chain(
    conv: ConvParam, auth: AuthDep, runtime: RuntimeDep, request: Request
) -> Json:
    """Whether the conversation's stored hash chain holds, and where it first breaks."""
    verified = await runtime.proofs.verify(auth.user, conv)
    report, head = verified.report, verified.head
    broken = report.broken
    return Json(
        {
            "conv": head.conv_id,
            "holds": report.holds,
            "links": report.links,
            "last_seq": head.last_seq,
            "head": report.head,
            "stored_head": head.last_hash,
            "broken": None
            if broken is None
            else {
                "link": broken.ref.kind.value,
                "seq": broken.ref.seq,
                "version": broken.ref.version,
                "reason": broken.reason.value,
                "message": broken.text(report.head, head.last_hash).render(
                    request_language(request.scope)
                ),
            },
        }
    )


@router.get("/api/orders/{order_id}/dossier", tags=["orders"], responses=errors(401, 404))
async def order_dossier(
    order_id: OrderId, auth: AuthDep, runtime: RuntimeDep, request: Request
) -> FileResponse:
    """The order's dossier ZIP, as the caller may see it: staff who may see the order get
    everything, its customer everything but what is staff-only."""
    language = await reader_language(request)
    written = await runtime.dossiers.export(auth.user, order_id, language)
    return FileResponse(
        written.path,
        media_type="application/zip",
        filename=f"dossier-{written.number}.zip",
        headers={"Cache-Control": "no-store", "X-Chain-Head": written.head},
        background=BackgroundTask(remove_quietly, written.path),
    )
