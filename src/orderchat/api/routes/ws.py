"""The WebSocket endpoint: one Connection per socket."""

from __future__ import annotations

from fastapi import APIRouter, WebSocket

from orderchat.api.runtime import Runtime
from orderchat.realtime.connection import Connection

router = APIRouter()


@router.websocket("/ws")
async def websocket(ws: WebSocket) -> None:
    runtime: Runtime = ws.app.state.runtime
    connection = Connection(
        ws,
        runtime.hub,
        runtime.accounts,
        runtime.messaging,
        runtime.clock,
        runtime.connection_config,
    )
    await connection.run()
