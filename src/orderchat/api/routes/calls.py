"""Calls over HTTP: what a page needs besides the WebSocket (docs/calls.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from orderchat.api.openapi import errors
from orderchat.api.responses import Json
from orderchat.api.runtime import AuthDep, RuntimeDep
from orderchat.protocol.server_codec import frame_json

router = APIRouter(prefix="/api/calls", tags=["calls"])


@router.get("/ice-servers", responses=errors(400, 401, 404))
async def ice_servers(
    auth: AuthDep,
    runtime: RuntimeDep,
    call: Annotated[str | None, Query(max_length=64)] = None,
) -> Json:
    """STUN and TURN servers, with a TURN credential made for this user (and call).

    The credential expires on its own (`ttl_s`); the secret it is signed with
    never leaves the server.
    """
    if call is not None:
        await runtime.calls.state_for(auth.user.id, call)  # a party's, or 404
    return Json(
        {
            "ice_servers": runtime.calls.ice_servers(auth.user.id, call),
            "ttl_s": runtime.settings.ice.credential_ttl_s,
            "ice_transport_policy": runtime.settings.ice.transport_policy,
        }
    )


@router.get("/{call_id}", responses=errors(401, 404))
async def get_call(call_id: str, auth: AuthDep, runtime: RuntimeDep) -> Json:
    """A call's state as its `call` frame shows it, for its parties only."""
    state = frame_json(await runtime.calls.state_for(auth.user.id, call_id))
    state.pop("op")
    return Json(state)
