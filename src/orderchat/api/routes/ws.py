"""The WebSocket endpoint: one Connection per socket."""

from __future__ import annotations

from starlette.websockets import WebSocket

from orderchat.api.runtime import Runtime
from orderchat.realtime.connection import Connection

PATH = "/ws"


async def serve_websocket(ws: WebSocket, runtime: Runtime) -> None:
    connection = Connection(
        ws,
        runtime.hub,
        runtime.accounts,
        runtime.messaging,
        runtime.clock,
        runtime.connection_config,
    )
    await connection.run()
