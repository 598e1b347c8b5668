"""Liveness for load balancers and for `make run` users checking the server is up."""

from __future__ import annotations

from fastapi import APIRouter

from orderchat.api.openapi import errors
from orderchat.api.responses import Json
from orderchat.api.runtime import AuthDep, RuntimeDep
from orderchat.services.accounts import Accounts

router = APIRouter()


@router.get("/healthz")
async def healthz() -> Json:
    return Json({"status": "ok"})


@router.get("/api/admin/stats", tags=["admin"], responses=errors(401, 403))
async def stats(auth: AuthDep, runtime: RuntimeDep) -> Json:
    """Live figures an operator watches: connections and group-commit batching."""
    Accounts.require_admin(auth.user)
    writer = runtime.writer
    return Json(
        {
            "connections": runtime.hub.connection_count,
            "commit_batches": writer.batches,
            "committed_ops": writer.ops,
            "ops_per_batch": round(writer.ops / writer.batches, 2) if writer.batches else 0,
        }
    )
