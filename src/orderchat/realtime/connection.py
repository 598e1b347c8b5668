"""One WebSocket connection: thin glue between the socket, the protocol session
and the services.

The connection's own task reads frames and calls services. Writing is done by
a sender task that exists only while frames are waiting: it drains a bounded
queue and ends, so an idle connection costs one task and no buffers. Memory
per idle connection is what lets one small machine hold thousands of them.
Durable events carry their stream position; the sender skips any at or below
the last position it sent, which is what makes "resume, then go live" free of
both gaps and duplicates:

    attach to hub (live events are held)  ->  backlog from the database
    -> synced (floor = head)  ->  release held events (those <= floor skipped)

A connection that cannot keep up (queue full) is dropped with close code 4008;
its client reconnects with its cursor and catches up from the database (G7).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from dataclasses import dataclass
from functools import partial
from typing import Any

import orjson

from orderchat.core.cursor import decode_cursor, encode_cursor
from orderchat.core.errors import DomainError, ErrorCode
from orderchat.core.ids import SessionId, UserId, new_id
from orderchat.core.model import User
from orderchat.protocol.codec import FrameError, error_frame, error_frame_for
from orderchat.protocol.frames import (
    ClientFrame,
    CloseCode,
    Hello,
    MarkRead,
    Ping,
    PostMessage,
    RecallMessage,
    Typing,
)
from orderchat.protocol.session import ServerSession
from orderchat.realtime.hub import Hub
from orderchat.realtime.socket import AsgiSocket
from orderchat.services.accounts import Accounts, Authenticated
from orderchat.services.chat.messaging import Ack, Backlog, Messaging
from orderchat.services.ports import Clock

logger = logging.getLogger(__name__)

# Sends a connection may have waiting for commit before we stop reading from it:
# TCP then pushes back on the client instead of our memory growing. Never more
# than a quarter of the queue, so that one commit's acks and echoes for a client
# that pipelines its sends cannot by themselves fill its queue.
MAX_INFLIGHT_SENDS = 1000
CLOSE_TIMEOUT_S = 2.0
# Frames framed together into one write to the socket, at most.
WRITE_BATCH_FRAMES = 64

_PONG = '{"op":"pong"}'


@dataclass(frozen=True, slots=True)
class ConnectionConfig:
    queue_frames: int
    hello_timeout_s: float
    resume_page: int


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ is several times slower
class _Out:
    pos: int  # stream position of a durable event, 0 for anything else
    data: str
    floor: int = 0  # after sending, skip durable events at or below this


class Connection:
    __slots__ = (
        "_accounts",
        "_auth",
        "_clock",
        "_close_code",
        "_close_reason",
        "_config",
        "_expiry",
        "_held",
        "_hub",
        "_messaging",
        "_out",
        "_protocol",
        "_room",
        "_send_slot",
        "_sender",
        "_sends_left",
        "_sent_pos",
        "_task",
        "_ws",
        "id",
        "session_id",
        "user_id",
    )

    def __init__(
        self,
        ws: AsgiSocket,
        hub: Hub,
        accounts: Accounts,
        messaging: Messaging,
        clock: Clock,
        config: ConnectionConfig,
    ) -> None:
        self.id = new_id("w")
        self.user_id = UserId("")
        self.session_id = SessionId("")
        self._ws = ws
        self._hub = hub
        self._accounts = accounts
        self._messaging = messaging
        self._clock = clock
        self._config = config
        self._protocol = ServerSession()
        self._auth: Authenticated | None = None
        # Frames waiting for the socket, and the task writing them: both only while needed.
        self._out: deque[_Out] | None = None
        self._sender: asyncio.Task[None] | None = None
        self._room: asyncio.Event | None = None  # set when the queue has room again
        # Live events held while the backlog is sent; None when not syncing.
        self._held: deque[_Out] | None = None
        self._sent_pos = 0
        # Sends this connection may still start before one of them commits. A count
        # and one waiter, not a Semaphore: only the reading task ever waits, and
        # asyncio's Semaphore scans its waiters on every acquire.
        self._sends_left = max(1, min(MAX_INFLIGHT_SENDS, config.queue_frames // 4))
        self._send_slot: asyncio.Future[None] | None = None
        self._close_code: int | None = None
        self._close_reason = ""
        self._task: asyncio.Task[Any] | None = None
        self._expiry: asyncio.TimerHandle | None = None

    # --- the hub's side (Sink) ----------------------------------------------------

    def offer(self, pos: int, data: str) -> None:
        if self._close_code is not None:
            return
        item = _Out(pos, data)
        if self._held is not None:
            if len(self._held) >= self._config.queue_frames:
                self._drop(CloseCode.TOO_SLOW, "too far behind; reconnect with your cursor")
            else:
                self._held.append(item)
            return
        self._enqueue(item)

    def revoke(self) -> None:
        self._drop(CloseCode.SESSION_ENDED, "signed out")

    def _enqueue(self, item: _Out) -> None:
        if self._close_code is not None:
            return
        out = self._out
        if out is None:
            out = self._out = deque()
        if len(out) >= self._config.queue_frames:
            logger.warning("connection %s of user %s too slow; dropping", self.id, self.user_id)
            self._drop(CloseCode.TOO_SLOW, "too far behind; reconnect with your cursor")
            return
        out.append(item)
        if self._sender is None:
            self._sender = asyncio.get_running_loop().create_task(self._drain(out))

    def _drop(self, code: int, reason: str) -> None:
        """Close the connection with `code`: the reading task ends and closes the socket."""
        if self._close_code is not None:
            return
        self._close_code = code
        self._close_reason = reason
        task = self._task
        if task is not None and task is not asyncio.current_task():
            task.cancel()  # it may be waiting for a frame that never comes

    def _reply(self, frame: dict[str, Any]) -> None:
        self._enqueue(_Out(0, orjson.dumps(frame).decode()))

    # --- the connection's life -----------------------------------------------------

    async def run(self) -> None:
        self._task = task = asyncio.current_task()
        if not await self._ws.accept():
            return
        try:
            await self._receive_loop()
        except asyncio.CancelledError:
            if self._close_code is None:  # not ours: the server is stopping
                raise
            if task is not None:
                task.uncancel()
        except Exception:
            logger.exception("connection %s failed", self.id)
        finally:
            await self._finish()

    async def _finish(self) -> None:
        self._hub.detach(self)
        if self._expiry is not None:
            self._expiry.cancel()
        sender = self._sender
        if sender is not None:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sender
        if self._close_code is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(CLOSE_TIMEOUT_S):
                    await self._ws.close(self._close_code, self._close_reason)
        # Per-connection lines are debug: a reconnect storm must not be a logging storm.
        logger.debug("disconnected connection=%s user=%s", self.id, self.user_id or "-")

    async def _drain(self, out: deque[_Out]) -> None:
        """Write what is queued, in order, then end: a new frame starts a new sender.

        Whatever has piled up since the last write goes out in one write.
        """
        try:
            while out:
                frames: list[str] = []
                while out and len(frames) < WRITE_BATCH_FRAMES:
                    item = out.popleft()
                    if 0 < item.pos <= self._sent_pos:
                        continue  # already sent from the backlog
                    frames.append(item.data)
                    if item.pos:
                        self._sent_pos = item.pos
                    if item.floor:
                        self._sent_pos = max(self._sent_pos, item.floor)
                if self._room is not None:
                    self._room.set()
                if frames:
                    await self._ws.send_texts(frames)
        except Exception:  # the socket is gone: reading ends the connection
            logger.debug("connection %s could not write", self.id, exc_info=True)
            out.clear()
        finally:
            self._sender = None

    async def _receive_loop(self) -> None:
        loop = asyncio.get_running_loop()
        hello_deadline = loop.time() + self._config.hello_timeout_s
        while self._close_code is None:
            if self._auth is None:
                timeout = hello_deadline - loop.time()
                if timeout <= 0:
                    self._drop(CloseCode.POLICY, "no hello in time")
                    return
                try:
                    async with asyncio.timeout(timeout):
                        message = await self._ws.receive()
                except TimeoutError:
                    self._drop(CloseCode.POLICY, "no hello in time")
                    return
            else:
                message = await self._ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            data = message.get("text")
            if data is None:
                data = message.get("bytes") or b""
            await self._handle(data)

    async def _handle(self, data: str | bytes) -> None:
        try:
            frame = self._protocol.receive(data)
        except FrameError as exc:
            self._reply(error_frame(exc.code, exc.message, exc.ref))
            return
        if self._auth is not None and self._auth.session.expires_at_ms <= self._clock.now_ms():
            self._reply(error_frame(ErrorCode.UNAUTHORIZED, "this session has expired"))
            self._drop(CloseCode.SESSION_ENDED, "session expired")
            return
        try:
            await self._dispatch(frame)
        except DomainError as exc:
            self._reply(error_frame_for(exc, getattr(frame, "ref", None)))

    async def _dispatch(self, frame: ClientFrame) -> None:
        match frame:
            case Hello():
                await self._hello(frame)
            case PostMessage():
                while self._sends_left <= 0:  # TCP pushes back on the client meanwhile
                    self._send_slot = asyncio.get_running_loop().create_future()
                    await self._send_slot
                self._sends_left -= 1
                try:
                    future = self._messaging.post(self._user, frame)
                except DomainError:
                    self._free_send_slot()
                    raise
                future.add_done_callback(partial(self._answer, ref=frame.ref))
            case RecallMessage():
                future = self._messaging.recall(self._user, frame)
                future.add_done_callback(partial(self._answer, ref=frame.ref, release=False))
            case MarkRead():
                self._messaging.mark_read(self._user, frame).add_done_callback(self._read_done)
            case Typing():
                await self._messaging.typing(self._user, frame.conv, self.id)
            case Ping():
                self._enqueue(_Out(0, _PONG))

    @property
    def _user(self) -> User:
        assert self._auth is not None, "frames past hello need a session"
        return self._auth.user

    def _free_send_slot(self) -> None:
        self._sends_left += 1
        waiter, self._send_slot = self._send_slot, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _answer(self, future: asyncio.Future[Ack], ref: str, release: bool = True) -> None:
        if release:
            self._free_send_slot()
        if future.cancelled():
            return
        exc = future.exception()
        if isinstance(exc, DomainError):
            self._reply(error_frame_for(exc, ref))
        elif exc is not None:
            logger.error("send failed on connection %s", self.id, exc_info=exc)
            self._reply(error_frame(ErrorCode.INTERNAL, "the message could not be stored", ref))
        else:
            ack = future.result()
            self._reply(
                {
                    "op": "ack",
                    "ref": ref,
                    "conv": ack.conv,
                    "seq": ack.seq,
                    "id": ack.id,
                    "ts": ack.ts,
                }
            )

    def _read_done(self, future: asyncio.Future[int | None]) -> None:
        if future.cancelled():
            return
        exc = future.exception()
        if isinstance(exc, DomainError):
            self._reply(error_frame_for(exc))
        elif exc is not None:
            logger.error("read mark failed on connection %s", self.id, exc_info=exc)
            self._reply(error_frame(ErrorCode.INTERNAL, "the read mark could not be stored"))

    async def _hello(self, hello: Hello) -> None:
        auth = await self._accounts.authenticate(hello.token)
        after = None if hello.cursor is None else decode_cursor(hello.cursor)
        self.user_id = auth.user.id
        self.session_id = auth.session.id
        self._held = deque()
        self._hub.attach(self)  # before reading the database: nothing falls in between
        try:
            if after is None:
                head = await self._messaging.head()
                backlog = None
            else:
                backlog = await self._messaging.backlog(auth.user, after, self._config.resume_page)
        except DomainError:
            self._hub.detach(self)
            self._held = None
            raise
        self._auth = auth
        self._protocol.accept_hello()
        expires_in_s = (auth.session.expires_at_ms - self._clock.now_ms()) / 1000
        self._expiry = asyncio.get_running_loop().call_later(
            max(0.0, expires_in_s), self._drop, CloseCode.SESSION_ENDED, "session expired"
        )
        logger.debug(
            "connected connection=%s user=%s device=%s resume=%s",
            self.id,
            auth.user.id,
            hello.device,
            after is not None,
        )
        welcome_cursor = hello.cursor if hello.cursor is not None else encode_cursor(head)
        await self._put(
            _Out(
                0,
                orjson.dumps(
                    {
                        "op": "welcome",
                        "user": _user_fields(auth),
                        "cursor": welcome_cursor,
                        "server_ts": self._clock.now_ms(),
                    }
                ).decode(),
                floor=0 if backlog is not None else head,
            )
        )
        if backlog is not None:
            await self._send_backlog(auth, backlog)
        await self._release_held()

    async def _send_backlog(self, auth: Authenticated, backlog: Backlog) -> None:
        while True:
            for pos, data in backlog.events:
                await self._put(_Out(pos, data))
            if backlog.complete:
                break
            backlog = await self._messaging.backlog(
                auth.user, backlog.last_pos, self._config.resume_page
            )
        synced = orjson.dumps({"op": "synced", "cursor": encode_cursor(backlog.last_pos)})
        await self._put(_Out(0, synced.decode(), floor=backlog.last_pos))

    async def _put(self, item: _Out) -> None:
        """Queue a frame, waiting for room: used for our own backlog, never for the hub."""
        while self._out is not None and len(self._out) >= self._config.queue_frames:
            if self._room is None:
                self._room = asyncio.Event()
            self._room.clear()
            await self._room.wait()
        self._enqueue(item)

    async def _release_held(self) -> None:
        held = self._held
        while held:
            await self._put(held.popleft())
        self._held = None  # no await since the loop saw it empty: nothing is left behind
        self._room = None


def _user_fields(auth: Authenticated) -> dict[str, Any]:
    user = auth.user
    return {
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "roles": [r.value for r in user.roles],
        "kind": user.kind.value,
    }
