"""The WebSocket endpoint: one Connection per socket."""

from __future__ import annotations

from orderchat.api.runtime import Runtime
from orderchat.realtime.connection import Connection
from orderchat.realtime.socket import AsgiSocket

PATH = "/ws"


async def serve_websocket(ws: AsgiSocket, runtime: Runtime) -> None:
    connection = Connection(
        ws,
        runtime.hub,
        runtime.accounts,
        runtime.messaging,
        runtime.clock,
        runtime.ids,
        runtime.connection_config,
        runtime.calls,
    )
    await connection.run()
