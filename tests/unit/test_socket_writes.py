"""Frames queued for one connection leave in one write, framed as uvicorn frames them."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState
from websockets.client import ClientProtocol
from websockets.frames import Opcode
from websockets.protocol import State
from websockets.uri import parse_uri

from orderchat.realtime.socket import AsgiSocket, SocketGone, sans_io_server


class RecordingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closing

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 1) if name in ("peername", "sockname") else default


async def _app(scope: Any, receive: Any, send: Any) -> None:  # never called here
    raise AssertionError


def _uvicorn_socket() -> tuple[WebSocketsSansIOProtocol, RecordingTransport]:
    config = Config(app=_app, ws="websockets-sansio", lifespan="off")
    config.load()
    server = WebSocketsSansIOProtocol(config, ServerState(), {}, asyncio.get_running_loop())
    transport = RecordingTransport()
    server.transport = transport
    server.handshake_complete = True
    server.conn.state = State.OPEN  # as after the handshake
    return server, transport


def _frames(data: bytes) -> list[str]:
    """The text frames in `data`, read as a client reads them."""
    client = ClientProtocol(parse_uri("ws://127.0.0.1/ws"), state=State.OPEN)
    client.receive_data(data)
    frames = client.events_received()
    assert all(f.opcode is Opcode.TEXT and f.fin for f in frames)
    return [f.data.decode() for f in frames]


async def test_uvicorns_protocol_is_recognised() -> None:
    server, _ = _uvicorn_socket()
    assert sans_io_server(server.send) is server

    async def plain_send(message: Any) -> None:
        return None

    assert sans_io_server(plain_send) is None


async def test_queued_frames_go_out_in_one_write_in_order() -> None:
    server, transport = _uvicorn_socket()
    socket = AsgiSocket(server.receive, server.send)
    frames = [f'{{"op":"message","seq":{i},"text":"你好"}}' for i in range(20)]
    await socket.send_texts(frames)
    assert len(transport.writes) == 1
    assert _frames(transport.writes[0]) == frames


async def test_a_closed_socket_is_not_written() -> None:
    server, transport = _uvicorn_socket()
    socket = AsgiSocket(server.receive, server.send)
    transport.closing = True
    with pytest.raises(SocketGone):
        await socket.send_texts(["{}"])
    assert transport.writes == []


async def test_a_full_buffer_is_waited_for() -> None:
    server, transport = _uvicorn_socket()
    socket = AsgiSocket(server.receive, server.send)
    server.writable.clear()  # as after pause_writing
    sending = asyncio.create_task(socket.send_texts(["a", "b"]))
    await asyncio.sleep(0.01)
    assert not sending.done() and transport.writes == []
    server.writable.set()
    await sending
    assert _frames(transport.writes[0]) == ["a", "b"]
