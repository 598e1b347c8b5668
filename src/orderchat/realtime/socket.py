"""A WebSocket as the ASGI server hands it over: the calls a connection makes.

Every frame of every connection passes here, so it is the raw ASGI exchange
with nothing in between: no per-call state checks, no wrappers.

ASGI sends one frame per call, and uvicorn writes each to the socket at once:
one system call per frame. When a group commit hands a connection several
frames, they are better framed together and written with one call, so with
uvicorn's sans-I/O WebSocket protocol (the one `orderchat serve` runs) the
frames go straight to its framing and transport, after the same checks its
own send makes. Any other server gets the plain ASGI path.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any, Protocol

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class SocketGone(ConnectionError):
    """The peer left or the socket is closing: nothing more can be written."""


class _Framer(Protocol):
    def send_text(self, data: bytes) -> None: ...
    def data_to_send(self) -> list[bytes]: ...


class _Transport(Protocol):
    def write(self, data: bytes) -> None: ...
    def is_closing(self) -> bool: ...


class _Writable(Protocol):
    def is_set(self) -> bool: ...
    async def wait(self) -> Any: ...


class _SansIOServer(Protocol):
    """What is used of uvicorn's WebSocketsSansIOProtocol, checked for at run time."""

    conn: _Framer
    transport: _Transport
    writable: _Writable
    disconnected: bool
    close_sent: bool
    handshake_complete: bool


_SANS_IO_FIELDS = ("conn", "transport", "writable", "disconnected", "close_sent")


def sans_io_server(send: Send) -> _SansIOServer | None:
    """uvicorn's protocol behind `send`, when it is the sans-I/O one."""
    server = getattr(send, "__self__", None)
    if server is None or not all(hasattr(server, name) for name in _SANS_IO_FIELDS):
        return None
    conn = server.conn
    if not (hasattr(conn, "send_text") and hasattr(conn, "data_to_send")):
        return None
    found: _SansIOServer = server
    return found


class AsgiSocket:
    __slots__ = ("_direct", "_receive", "_send")

    def __init__(self, receive: Receive, send: Send) -> None:
        self._receive = receive
        self._send = send
        self._direct = sans_io_server(send)

    async def accept(self) -> bool:
        """Complete the handshake; False when the client left before it."""
        message = await self._receive()
        if message["type"] != "websocket.connect":
            return False
        await self._send({"type": "websocket.accept"})
        return True

    async def receive(self) -> Message:
        return await self._receive()

    async def send_texts(self, frames: Sequence[str]) -> None:
        """Send text frames in order; with uvicorn, in one write to the socket.

        Raises:
            SocketGone: the peer left or the socket is closing.
        """
        server = self._direct
        if server is None or not server.handshake_complete:
            for data in frames:
                await self._send({"type": "websocket.send", "text": data})
            return
        if not server.writable.is_set():  # the peer reads slowly: wait for the buffer to drain
            await server.writable.wait()
        if server.disconnected or server.close_sent or server.transport.is_closing():
            raise SocketGone("the connection is closed")
        conn = server.conn
        for data in frames:
            conn.send_text(data.encode())
        server.transport.write(b"".join(conn.data_to_send()))

    async def close(self, code: int, reason: str) -> None:
        await self._send({"type": "websocket.close", "code": code, "reason": reason})
