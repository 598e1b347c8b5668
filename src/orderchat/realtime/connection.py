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

from orderchat.core.cursor import decode_cursor, encode_cursor
from orderchat.core.errors import DomainError, ErrorCode, RateLimited, Unavailable
from orderchat.core.ids import IdMinter, SessionId, UserId
from orderchat.core.model import User
from orderchat.core.texts import say
from orderchat.protocol import events as wire
from orderchat.protocol.calls import CallMediaChange, CallRequest, CallSignalOut
from orderchat.protocol.frames import (
    ClientFrame,
    CloseCode,
    EditMessage,
    Hello,
    MarkRead,
    PostMessage,
    RecallMessage,
    Typing,
)
from orderchat.protocol.server_codec import encode_server_frame, wire_user
from orderchat.protocol.session import (
    Authenticate,
    Close,
    Perform,
    Reply,
    ServerSession,
    SessionState,
)
from orderchat.realtime.hub import Hub
from orderchat.realtime.socket import AsgiSocket
from orderchat.services.accounts import Accounts
from orderchat.services.calls import Calls
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
    """The socket, the outgoing queue and the timers of one client; the protocol's
    rules live in `protocol.session.ServerSession`."""

    __slots__ = (
        "_accounts",
        "_calls",
        "_catch_up_to",
        "_clock",
        "_config",
        "_expiry",
        "_held",
        "_hub",
        "_messaging",
        "_offered_pos",
        "_out",
        "_room",
        "_send_slot",
        "_sender",
        "_sends_left",
        "_sent_pos",
        "_session",
        "_task",
        "_ws",
        "connected_at_ms",
        "device",
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
        ids: IdMinter,
        config: ConnectionConfig,
        calls: Calls,
    ) -> None:
        self.id = ids.connection()
        self.user_id = UserId("")
        self.session_id = SessionId("")
        self.device = ""
        self.connected_at_ms = 0
        self._ws = ws
        self._hub = hub
        self._accounts = accounts
        self._messaging = messaging
        self._calls = calls
        self._clock = clock
        self._config = config
        self._session = ServerSession()
        # Frames waiting for the socket, and the task writing them: both only while needed.
        self._out: deque[_Out] | None = None
        self._sender: asyncio.Task[None] | None = None
        self._room: asyncio.Event | None = None  # set when the queue has room again
        # Live events that arrive while SYNCING wait here, behind the backlog. Made
        # when the first one arrives and dropped once released: an idle connection
        # keeps no buffer (see W5 in docs/benchmarks.md).
        self._held: deque[_Out] | None = None
        self._sent_pos = 0
        # The highest position queued for this connection (sent or not), and how
        # far the node asked it to catch up from the database (see catch_up).
        self._offered_pos = 0
        self._catch_up_to = 0
        # Sends this connection may still start before one of them commits. A count
        # and one waiter, not a Semaphore: only the reading task ever waits, and
        # asyncio's Semaphore scans its waiters on every acquire.
        self._sends_left = max(1, min(MAX_INFLIGHT_SENDS, config.queue_frames // 4))
        self._send_slot: asyncio.Future[None] | None = None
        self._task: asyncio.Task[Any] | None = None
        self._expiry: asyncio.TimerHandle | None = None

    # --- the hub's side (Sink) ----------------------------------------------------

    def offer(self, pos: int, data: str) -> None:
        state = self._session.state
        if state is SessionState.LIVE:
            if 0 < pos <= self._offered_pos:
                return  # already queued, from the database (see catch_up)
            self._enqueue(_Out(pos, data))
        elif state is SessionState.SYNCING:
            held = self._held
            if held is None:
                held = self._held = deque()
            if len(held) >= self._config.queue_frames:
                self._too_slow()
            else:
                held.append(_Out(pos, data))

    def revoke(self) -> None:
        self._drop(CloseCode.SESSION_ENDED, "signed out")

    async def catch_up(self, upto: int) -> None:
        """Queue, from the database, the events up to `upto` this connection was not offered.

        The node calls this when events were committed that never reached it as
        publications (realtime/ordering.py), before it offers anything later.
        A connection still syncing does it between its backlog and its held events.
        """
        self._catch_up_to = max(self._catch_up_to, upto)
        if self._session.state is SessionState.LIVE:
            await self._read_missed()

    async def _read_missed(self, *, patient: bool = False) -> None:
        """Read pages no bigger than the room left in the queue.

        A node may learn of a poll's worth of events at once, far more than a
        small queue holds. Between two pages the sender writes what the socket
        takes, so only a reader whose socket has not taken the last page is too
        slow. A connection still syncing (`patient`) waits for room instead, as
        it does for its backlog: it is its own task that reads, not the node's.
        """
        user = self._session.user
        while user is not None and self._offered_pos < self._catch_up_to:
            room = self._config.queue_frames - (len(self._out) if self._out else 0)
            if room <= 0:
                if not patient:
                    self._too_slow()
                    return
                await self._wait_for_room()
                continue
            backlog = await self._messaging.backlog(
                user, self._offered_pos, min(room, self._config.resume_page), upto=self._catch_up_to
            )
            for pos, data in backlog.events:
                self._enqueue(_Out(pos, data))
            self._offered_pos = max(self._offered_pos, backlog.last_pos)
            if backlog.complete:
                break
            await asyncio.sleep(0)  # the sender's turn: it writes what the socket takes

    def _enqueue(self, item: _Out) -> None:
        if self._session.state is SessionState.CLOSING:
            return
        out = self._out
        if out is None:
            out = self._out = deque()
        if len(out) >= self._config.queue_frames:
            self._too_slow()
            return
        out.append(item)
        if item.pos > self._offered_pos:
            self._offered_pos = item.pos
        if item.floor > self._offered_pos:
            self._offered_pos = item.floor
        if self._sender is None:
            self._sender = asyncio.get_running_loop().create_task(self._drain(out))

    def _too_slow(self) -> None:
        logger.warning("connection %s of user %s too slow; dropping", self.id, self.user_id)
        self._drop(CloseCode.TOO_SLOW, "too far behind; reconnect with your cursor")

    def _drop(self, code: CloseCode, reason: str) -> None:
        if self._session.close(code, reason) is not None:
            self._stop_reading()

    def _stop_reading(self) -> None:
        """The reading task ends and closes the socket with the session's close code."""
        task = self._task
        if task is not None and task is not asyncio.current_task():
            task.cancel()  # it may be waiting for a frame that never comes

    def _reply(self, frame: wire.ServerFrame) -> None:
        self._enqueue(_Out(0, encode_server_frame(frame)))

    # --- the connection's life -----------------------------------------------------

    async def run(self) -> None:
        self._task = task = asyncio.current_task()
        if not await self._ws.accept():
            return
        try:
            await self._receive_loop()
        except asyncio.CancelledError:
            if self._session.close_code is None:  # not ours: the server is stopping
                raise
            if task is not None:
                task.uncancel()
        except Exception:
            logger.exception("connection %s failed", self.id)
        finally:
            await self._finish()

    async def _finish(self) -> None:
        self._hub.detach(self)
        self._calls.dropped(self.id)
        if self._expiry is not None:
            self._expiry.cancel()
        sender = self._sender
        if sender is not None:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sender
        code = self._session.close_code
        if code is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(CLOSE_TIMEOUT_S):
                    await self._ws.close(code, self._session.close_reason)
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
        session = self._session
        while session.state is not SessionState.CLOSING:
            if session.user is None:
                try:
                    async with asyncio.timeout_at(hello_deadline):
                        message = await self._ws.receive()
                except TimeoutError:
                    session.hello_overdue()
                    return
            else:
                message = await self._ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            data = message.get("text")
            if data is None:
                data = message.get("bytes") or b""
            for action in session.receive(data, self._clock.now_ms()):
                await self._act(action)

    async def _act(self, action: Reply | Authenticate | Perform | Close) -> None:
        match action:
            case Perform(frame=frame):
                try:
                    await self._perform(frame)
                except DomainError as exc:
                    self._reply(
                        _error_report(exc, self._session.language, getattr(frame, "ref", None))
                    )
            case Reply(frame=frame):
                self._reply(frame)
            case Authenticate(hello=hello):
                try:
                    await self._hello(hello)
                except DomainError as exc:
                    self._session.refuse_hello()
                    self._reply(_error_report(exc, self._session.language))
            case Close():
                self._stop_reading()

    async def _perform(self, frame: ClientFrame) -> None:
        user = self._session.signed_in_user
        match frame:
            case PostMessage() if (query := self._messaging.query_of(user, frame)) is not None:
                await self._messaging.ask(user, frame, query, self._session.language)
            case PostMessage():
                while self._sends_left <= 0:  # TCP pushes back on the client meanwhile
                    self._send_slot = asyncio.get_running_loop().create_future()
                    await self._send_slot
                self._sends_left -= 1
                try:
                    future = self._messaging.post(user, frame)
                except DomainError:
                    self._free_send_slot()
                    raise
                future.add_done_callback(partial(self._answer, ref=frame.ref))
            case RecallMessage():
                future = self._messaging.recall(user, frame)
                future.add_done_callback(partial(self._answer, ref=frame.ref, release=False))
            case EditMessage():
                future = self._messaging.edit(user, frame)
                future.add_done_callback(partial(self._answer, ref=frame.ref, release=False))
            case MarkRead():
                self._messaging.mark_read(user, frame).add_done_callback(self._read_done)
            case Typing():
                await self._messaging.typing(user, frame.conv, self.id)
            case CallSignalOut():
                await self._calls.signal(user, self.id, frame)
            case CallMediaChange():
                await self._calls.media(user, self.id, frame)
            case _ if isinstance(frame, CallRequest):
                # Awaited, not queued: a signal sent right after an accept finds it joined.
                self._reply(await self._calls.request(user, self.id, frame))

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
            self._reply(_error_report(exc, self._session.language, ref))
        elif exc is not None:
            logger.error("send failed on connection %s", self.id, exc_info=exc)
            self._reply(
                wire.ErrorReport.of(
                    ErrorCode.INTERNAL,
                    say("server.message_not_stored"),
                    self._session.language,
                    ref,
                )
            )
        else:
            ack = future.result()
            self._reply(wire.Ack(ref, ack.conv, ack.seq, ack.id, ack.ts))

    def _read_done(self, future: asyncio.Future[int | None]) -> None:
        if future.cancelled():
            return
        exc = future.exception()
        if isinstance(exc, DomainError):
            self._reply(_error_report(exc, self._session.language))
        elif exc is not None:
            logger.error("read mark failed on connection %s", self.id, exc_info=exc)
            failed = say("server.read_mark_not_stored")
            self._reply(wire.ErrorReport.of(ErrorCode.INTERNAL, failed, self._session.language))

    async def _hello(self, hello: Hello) -> None:
        auth = await self._accounts.authenticate(hello.token)
        after = None if hello.cursor is None else decode_cursor(hello.cursor)
        self.user_id = auth.user.id
        self.session_id = auth.session.id
        self.device = hello.device or ""
        self.connected_at_ms = self._clock.now_ms()
        self._session.accept_hello(auth.user, auth.session.expires_at_ms)
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
        welcome = wire.Welcome(
            user=wire_user(auth.user),
            cursor=hello.cursor if hello.cursor is not None else encode_cursor(head),
            server_ts=self._clock.now_ms(),
        )
        await self._put(
            _Out(0, encode_server_frame(welcome), floor=0 if backlog is not None else head)
        )
        if backlog is not None:
            await self._send_backlog(auth.user, backlog)
        await self._release_held()

    async def _send_backlog(self, user: User, backlog: Backlog) -> None:
        while True:
            for pos, data in backlog.events:
                await self._put(_Out(pos, data))
            if backlog.complete:
                break
            backlog = await self._messaging.backlog(
                user, backlog.last_pos, self._config.resume_page
            )
        synced = wire.Synced(encode_cursor(backlog.last_pos))
        await self._put(_Out(0, encode_server_frame(synced), floor=backlog.last_pos))

    async def _put(self, item: _Out) -> None:
        """Queue a frame, waiting for room: used for our own backlog, never for the hub."""
        while self._out is not None and len(self._out) >= self._config.queue_frames:
            await self._wait_for_room()
        self._enqueue(item)

    async def _wait_for_room(self) -> None:
        if self._room is None:
            self._room = asyncio.Event()
        self._room.clear()
        await self._room.wait()

    async def _release_held(self) -> None:
        while True:
            if self._catch_up_to > self._offered_pos:
                await self._read_missed(patient=True)
            if not self._held:
                break
            await self._put(self._held.popleft())
        # No await since the loop saw it empty: nothing is left behind.
        self._held = None
        self._session.synced()
        self._room = None
        for call in await self._calls.live_for(self.user_id):
            self._reply(call)  # a device that connects while its user is rung rings too


def _error_report(exc: DomainError, language: str, ref: str | None = None) -> wire.ErrorReport:
    retry = exc.retry_after_s if isinstance(exc, RateLimited | Unavailable) else None
    return wire.ErrorReport.of(exc.code, exc.text, language, ref, retry)
