"""The realtime client: one WebSocket that outlives network failures and restarts.

Rules this module keeps:

- One supervisor task owns the connection. When the connection ends for any
  reason but a revoked session, it reconnects after a capped, jittered,
  exponential backoff and says hello with the cursor of the last event it
  put in the application's buffer, so the server replays exactly what is
  missing (G4).
- Every send and recall carries a `ref` and stays pending until its ack or
  error. After a reconnect, every pending request is written again with the
  same ref before anything new; the server answers a repeated ref with the
  first ack and stores nothing new (G2), so a retry can never post twice.
- Durable events reach the application through one bounded buffer, in the
  order the server sent them, each once (`DeliveryLedger` drops repeats).
  `Client.cursor` moves only when the application takes an event, so a cursor
  the application persists never runs ahead of what it has seen.
- `cursor_expired` means the server cannot replay: the client reconnects with
  no cursor and reloads, over HTTP, every conversation it has seen after the
  last seq it handed on; anything that then also arrives live is dropped.
- Close code 4001 (session revoked) and a refused hello are final: the client
  stops and raises, instead of retrying with a token that will never work.
- Silence is death: a ping goes out every `heartbeat_interval_s`, and a
  connection that delivers no frame for `dead_after_s` is dropped.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import AsyncIterator, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from orderchat.client._backoff import backoff_delay_s
from orderchat.client._errors import (
    AckTimeoutError,
    ClientClosedError,
    ClientError,
    ForbiddenError,
    NotFoundError,
    ProtocolError,
    SessionRevokedError,
    TransportError,
    UnauthorizedError,
    server_error,
)
from orderchat.client._http import HttpApi
from orderchat.client._ledger import DeliveryLedger
from orderchat.client._models import (
    Ack,
    Event,
    JsonObject,
    Message,
    MessageReceived,
    Session,
    User,
    strict,
)
from orderchat.core.errors import ErrorCode
from orderchat.core.ids import ConversationId
from orderchat.core.model import MessageKind
from orderchat.protocol.codec import encode_client_frame
from orderchat.protocol.events import ErrorReport, Pong, ServerFrame, Synced, UserTyping, Welcome
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
from orderchat.protocol.server_codec import MalformedFrame, decode_server_frame, frame_cursor

logger = logging.getLogger(__name__)

# The server's own frames are small (a 10,000-character message is at most
# ~40 kB of UTF-8), but the limit must never be what drops a connection.
MAX_SERVER_FRAME_BYTES = 4 * 1024 * 1024
MAX_DEVICE_CHARS = 64


@dataclass(frozen=True, slots=True)
class ClientOptions:
    """Tuning for a `Client`; the defaults suit an interactive application."""

    # Names this connection among the user's devices (1-64 characters).
    device: str = "python-sdk"
    # Opening the socket and getting `welcome`; also how long entering
    # `async with Client(...)` waits for the first connection.
    connect_timeout_s: float = 10.0
    # How long `send`/`recall` wait for the ack, across reconnects.
    ack_timeout_s: float = 60.0
    write_timeout_s: float = 10.0
    # A ping every ~15 s keeps NATs and proxies from idling the socket out. A
    # live server answers each ping, so 45 s without any frame (three missed
    # pongs) means the connection is dead even when TCP has not noticed.
    heartbeat_interval_s: float = 15.0
    dead_after_s: float = 45.0
    # Reconnect waits start near `backoff_initial_s` and double up to `backoff_max_s`.
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    close_timeout_s: float = 2.0
    http_timeout_s: float = 10.0
    # Events buffered for the application; when full, the client stops reading
    # and the server eventually drops it (4008) to be resumed later (G7).
    max_buffered_events: int = 10_000

    def __post_init__(self) -> None:
        # Caught here, a bad device name is a clear error; sent in hello, it
        # would be refused again on every reconnect.
        if not 1 <= len(self.device) <= MAX_DEVICE_CHARS:
            raise ValueError(f"device must be 1-{MAX_DEVICE_CHARS} characters")
        if self.max_buffered_events < 1:
            raise ValueError("max_buffered_events must be at least 1")


class _Reconnect(Exception):
    """This connection is over; open another after the backoff."""


class _Stop(Exception):
    """Reconnecting cannot help; the client stops with `error`."""

    def __init__(self, error: ClientError) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass(frozen=True, slots=True)
class _End:
    """The last item in the buffer: the stream ends, with `error` if it failed."""

    error: ClientError | None


_Item = tuple[Event | None, str | None] | _End


@dataclass(slots=True)
class _Pending:
    frame: PostMessage | RecallMessage
    future: asyncio.Future[Ack]
    # The connection number it was last written on; 0 when never written.
    sent_on: int = 0


class Client:
    """A realtime connection for one signed-in user.

    Use as `async with Client(session) as client:`; entering waits for the first
    connection. Read events with `async for event in client.events()` (one
    reader at a time). Persist `client.cursor` and `client.last_seqs` to resume
    in a later process by passing them back to the constructor.
    """

    def __init__(
        self,
        session: Session,
        *,
        cursor: str | None = None,
        last_seqs: Mapping[ConversationId, int] | None = None,
        options: ClientOptions | None = None,
    ) -> None:
        self.session = session
        self._options = options or ClientOptions()
        self._api = HttpApi(session, timeout_s=self._options.http_timeout_s)
        self._ledger = DeliveryLedger(last_seqs)
        # The cursor of the last item put in the buffer: what hello resumes from.
        self._resume_cursor = cursor
        # The cursor of the last item the application took: what it may persist.
        self._cursor = cursor
        self._app_seqs: dict[ConversationId, int] = dict(last_seqs or {})
        self._needs_resync = False
        self._sees_staff_notes = True  # until a welcome says this is a customer
        self._buffer: asyncio.Queue[_Item] = asyncio.Queue()
        self._room = asyncio.Event()
        self._pending: dict[str, _Pending] = {}
        self._unsent_reads: dict[ConversationId, int] = {}
        self._ws: ClientConnection | None = None
        self._live: ClientConnection | None = None
        self._connection_no = 0
        self._attempt = 0
        self._wakeup = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None
        self._side_tasks: set[asyncio.Task[None]] = set()
        self._fatal: ClientError | None = None
        self._closed = False
        self._ended = False

    # --- lifecycle -----------------------------------------------------------

    async def __aenter__(self) -> Client:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def start(self) -> None:
        """Start connecting and wait for the first connection.

        Raises:
            UnauthorizedError: the token was refused.
            TransportError: no connection within `connect_timeout_s`.
        """
        if self._supervisor is not None or self._closed:
            raise RuntimeError("a Client can be started once")
        self._supervisor = asyncio.create_task(self._supervise(), name="orderchat-client")
        try:
            await self.wait_connected()
        except BaseException:
            await self.close()
            raise

    async def wait_connected(self, timeout_s: float | None = None) -> None:
        """Wait until a connection is open and every pending request was resent.

        Raises:
            TransportError: not connected within the timeout
                (default `connect_timeout_s`).
            ClientError: the client stopped for good (see `events()`).
        """
        limit_s = self._options.connect_timeout_s if timeout_s is None else timeout_s
        try:
            async with asyncio.timeout(limit_s):
                while self._live is None:
                    self._check_usable()
                    self._wakeup.clear()
                    await self._wakeup.wait()
        except TimeoutError:
            raise TransportError(f"not connected within {limit_s:g} s") from None

    async def close(self) -> None:
        """Close the connection; pending requests fail with `ClientClosedError`
        and `events()` ends after the events already buffered."""
        if self._closed:
            return
        self._closed = True
        tasks = [t for t in (self._supervisor, *self._side_tasks) if t is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            _, stuck = await asyncio.wait(tasks, timeout=self._options.close_timeout_s + 1)
            if stuck:
                logger.warning("%d client task(s) did not stop in time", len(stuck))
        self._end(ClientClosedError("the client was closed"), stream_error=None)
        await self._api.aclose()

    async def reconnect(self) -> None:
        """Drop the current connection; the client reconnects and resumes by itself
        (for example after the application learns the network changed)."""
        self._check_usable()
        ws = self._ws
        if ws is not None:
            await ws.close()

    # --- state -----------------------------------------------------------------

    @property
    def user(self) -> User:
        return self.session.user

    @property
    def api(self) -> HttpApi:
        """HTTP calls as the same user; closed with the client."""
        return self._api

    @property
    def connected(self) -> bool:
        return self._live is not None

    @property
    def cursor(self) -> str | None:
        """The cursor after the last event the application took from `events()`."""
        return self._cursor

    @property
    def last_seqs(self) -> dict[ConversationId, int]:
        """Per conversation, the highest message seq the application took."""
        return dict(self._app_seqs)

    # --- operations --------------------------------------------------------------

    async def send(
        self,
        conv: str,
        text: str,
        mentions: Sequence[str] | None = None,
        reply_to: int | None = None,
        *,
        ref: str | None = None,
        urgent: bool = False,
        internal: bool = False,
        timeout_s: float | None = None,
    ) -> Ack:
        """Post a text message and wait for its ack, across reconnects.

        Passing the `ref` of an earlier attempt (see `AckTimeoutError.ref`) is
        safe: the server answers a repeated ref with the first ack. `urgent`
        asks members to deal with it first; `internal` makes it a staff-only note.

        Raises:
            ServerError: the server refused it (e.g. `ForbiddenError`).
            AckTimeoutError: no answer within `timeout_s` (default `ack_timeout_s`).
            ClientClosedError: the client was closed first.
        """
        frame = PostMessage(
            ref=ref or _new_ref(),
            conv=conv,
            kind=MessageKind.TEXT,
            text=text,
            attachments=(),
            mentions=tuple(mentions or ()),
            reply_to=reply_to,
            internal=internal,
            urgent=urgent,
        )
        return await self._request(frame, timeout_s)

    async def send_files(
        self,
        conv: str,
        upload_ids: Sequence[str],
        kind: str = "file",
        text: str = "",
        *,
        ref: str | None = None,
        timeout_s: float | None = None,
    ) -> Ack:
        """Send finished uploads (see `HttpApi.upload`) as an image, voice, video or file message.

        Raises:
            ServerError: refused, e.g. `ConflictError` for an upload sent before.
        """
        frame = PostMessage(
            ref=ref or _new_ref(),
            conv=conv,
            kind=MessageKind(kind),
            text=text,
            attachments=tuple(upload_ids),
            mentions=(),
            reply_to=None,
        )
        return await self._request(frame, timeout_s)

    async def recall(
        self, conv: str, seq: int, *, ref: str | None = None, timeout_s: float | None = None
    ) -> Ack:
        """Recall a message; raises like `send` (e.g. `ForbiddenError` when not allowed)."""
        return await self._request(
            RecallMessage(ref=ref or _new_ref(), conv=conv, seq=seq), timeout_s
        )

    async def mark_read(self, conv: str, seq: int) -> None:
        """Mark `conv` read up to `seq`; sent now, or as soon as connected again."""
        self._check_usable()
        key = ConversationId(conv)
        self._unsent_reads[key] = max(seq, self._unsent_reads.get(key, 0))
        if (
            await self._try_write(MarkRead(conv=conv, seq=seq))
            and self._unsent_reads.get(key) == seq
        ):
            del self._unsent_reads[key]

    async def typing(self, conv: str) -> None:
        """Tell the other members the user is typing; dropped when not connected."""
        self._check_usable()
        await self._try_write(Typing(conv=conv))

    def events(self) -> AsyncIterator[Event]:
        """Durable events in order, each once, and typing notices.

        Ends after `close()`; raises the reason when the client stops for good
        (`SessionRevokedError`, `UnauthorizedError`).
        """
        return _EventStream(self)

    # --- the application's side of the buffer -------------------------------------

    async def _next_event(self) -> Event:
        while True:
            item = await self._buffer.get()
            self._room.set()
            if isinstance(item, _End):
                self._buffer.put_nowait(item)  # every later call ends the same way
                if item.error is not None:
                    raise item.error
                raise StopAsyncIteration
            event, cursor = item
            if cursor is not None:
                self._cursor = cursor
            if isinstance(event, MessageReceived):
                message = event.message
                if message.seq > self._app_seqs.get(message.conv, 0):
                    self._app_seqs[message.conv] = message.seq
            if event is not None:
                return event

    async def _hand_on(self, event: Event | None, cursor: str | None) -> None:
        """Buffer an event (or only a cursor to move past) for the application."""
        if event is None and cursor is None:
            return
        while self._buffer.qsize() >= self._options.max_buffered_events:
            self._room.clear()
            await self._room.wait()
        self._buffer.put_nowait((event, cursor))
        if cursor is not None:
            self._resume_cursor = cursor

    # --- requests ----------------------------------------------------------------

    async def _request(self, frame: PostMessage | RecallMessage, timeout_s: float | None) -> Ack:
        self._check_usable()
        if frame.ref in self._pending:
            raise ValueError(f"ref {frame.ref!r} is already waiting for its answer")
        entry = _Pending(frame, asyncio.get_running_loop().create_future())
        self._pending[frame.ref] = entry
        limit_s = self._options.ack_timeout_s if timeout_s is None else timeout_s
        try:
            connection_no = self._connection_no
            if await self._try_write(frame):
                entry.sent_on = connection_no
            try:
                async with asyncio.timeout(limit_s):
                    return await entry.future
            except TimeoutError:
                raise AckTimeoutError(frame.ref, limit_s) from None
        finally:
            self._pending.pop(frame.ref, None)

    async def _try_write(self, frame: ClientFrame) -> bool:
        """Write on the live connection if there is one; False when not written.
        A failed write is not an error here: the reader notices the dead
        connection and pending requests are written again after reconnecting."""
        ws = self._live
        if ws is None:
            return False
        try:
            await self._write(ws, frame)
        except ConnectionClosed:
            return False
        except TimeoutError:
            logger.warning(
                "a write took over %g s; dropping the connection", self._options.write_timeout_s
            )
            self._spawn(ws.close())
            return False
        return True

    async def _write(self, ws: ClientConnection, frame: ClientFrame) -> None:
        # Text frames: the contract speaks JSON text, and bytes would go out binary.
        data = encode_client_frame(frame).decode()
        async with asyncio.timeout(self._options.write_timeout_s):
            await ws.send(data)

    # --- the connection ------------------------------------------------------------

    async def _supervise(self) -> None:
        try:
            while True:
                reason = "the connection ended"
                try:
                    await self._run_connection()
                except UnauthorizedError:
                    raise
                except _Reconnect as exc:
                    reason = str(exc)
                except (OSError, TimeoutError, WebSocketException, ClientError) as exc:
                    reason = repr(exc)
                # Loud once per outage; the retries that follow are routine.
                level = logging.WARNING if self._attempt == 0 else logging.INFO
                logger.log(level, "connection lost (%s); reconnecting", reason)
                delay_s = backoff_delay_s(
                    self._attempt, self._options.backoff_initial_s, self._options.backoff_max_s
                )
                self._attempt += 1
                logger.info("reconnecting in %.2f s (attempt %d)", delay_s, self._attempt)
                await asyncio.sleep(delay_s)
        except UnauthorizedError as exc:
            logger.warning("the server refused this session: %s", exc)
            self._fatal = exc
            self._end(exc, stream_error=exc)
        except _Stop as stop:
            logger.warning("the server refused this client: %s", stop.error)
            self._fatal = stop.error
            self._end(stop.error, stream_error=stop.error)
        except Exception as exc:
            logger.exception("the client connection task failed")
            error = ClientError(f"the connection task failed: {exc!r}")
            self._fatal = error
            self._end(error, stream_error=error)

    async def _run_connection(self) -> None:
        async with asyncio.timeout(self._options.connect_timeout_s):
            ws = await connect(
                self.session.ws_url,
                open_timeout=None,  # the enclosing timeout bounds the whole opening
                ping_interval=None,  # liveness is the application-level heartbeat
                close_timeout=self._options.close_timeout_s,
                max_size=MAX_SERVER_FRAME_BYTES,
            )
        self._ws = ws
        self._connection_no += 1
        try:
            await self._open(ws)
            heartbeat = asyncio.create_task(self._heartbeat(ws), name="orderchat-heartbeat")
            try:
                await self._read_forever(ws)
            finally:
                heartbeat.cancel()
                await asyncio.wait([heartbeat])
        finally:
            self._live = None
            self._ws = None
            await ws.close()

    async def _open(self, ws: ClientConnection) -> None:
        """Say hello, recover what HTTP must recover, then resend what is pending."""
        resume_from = self._resume_cursor
        hello = Hello(token=self.session.token, device=self._options.device, cursor=resume_from)
        await self._write(ws, hello)
        answer = strict(
            decode_server_frame, await self._receive(ws, self._options.connect_timeout_s)
        )
        if isinstance(answer, ErrorReport):
            self._on_hello_refused(answer, resumed=resume_from is not None)
        if not isinstance(answer, Welcome):
            raise ProtocolError(f"expected welcome, got {answer!r}")
        welcome = answer
        self._sees_staff_notes = welcome.user.kind != "customer"
        logger.info(
            "connected as %s (device %s, connection %d, resumed %s)",
            self.session.user.id,
            self._options.device,
            self._connection_no,
            resume_from is not None,
        )
        self._attempt = 0
        if self._needs_resync:
            await self._resync()
            self._needs_resync = False
        if resume_from is None:
            await self._hand_on(None, welcome.cursor)
        await self._flush(ws)
        self._live = ws
        self._wakeup.set()

    def _on_hello_refused(self, frame: ErrorReport, *, resumed: bool) -> None:
        """Decide what a hello answered with an error leads to; always raises."""
        code = frame.code
        error = server_error(code, frame.message)
        if isinstance(error, UnauthorizedError):
            raise error
        if code in (ErrorCode.RATE_LIMITED, ErrorCode.INTERNAL):
            raise _Reconnect(f"hello refused for now ({error})")
        if resumed or code == ErrorCode.CURSOR_EXPIRED:
            # The cursor is the only part of hello that changes between tries,
            # so without it the next hello may pass: reload as for cursor_expired.
            logger.warning("the server cannot resume from this cursor (%s); reloading", error)
            self._resume_cursor = None
            self._needs_resync = True
            raise _Reconnect("cursor refused")
        # The same hello would be refused again: retrying would loop for ever.
        raise _Stop(error)

    async def _flush(self, ws: ClientConnection) -> None:
        """Write every pending request not yet written on this connection, oldest
        first; requests made meanwhile join the loop, so none overtakes another."""
        connection_no = self._connection_no
        while unsent := [
            p for p in self._pending.values() if p.sent_on != connection_no and not p.future.done()
        ]:
            for entry in unsent:
                await self._write(ws, entry.frame)
                entry.sent_on = connection_no
        if unsent_count := len(self._unsent_reads):
            logger.debug("sending %d read marks kept while offline", unsent_count)
        for conv, seq in list(self._unsent_reads.items()):
            await self._write(ws, MarkRead(conv=conv, seq=seq))
            if self._unsent_reads.get(conv) == seq:
                del self._unsent_reads[conv]

    async def _heartbeat(self, ws: ClientConnection) -> None:
        while True:
            # Jitter, so clients that connected together do not ping together.
            await asyncio.sleep(self._options.heartbeat_interval_s * random.uniform(0.8, 1.2))
            try:
                await self._write(ws, Ping())
            except ConnectionClosed:
                return
            except TimeoutError:
                logger.warning("a ping could not be written in time; dropping the connection")
                await ws.close()
                return

    async def _read_forever(self, ws: ClientConnection) -> None:
        while True:
            frame = await self._receive(ws, self._options.dead_after_s)
            await self._dispatch(frame)

    async def _receive(self, ws: ClientConnection, timeout_s: float) -> JsonObject:
        try:
            async with asyncio.timeout(timeout_s):
                data = await ws.recv()
        except TimeoutError:
            raise _Reconnect(f"no frame from the server for {timeout_s:g} s") from None
        except ConnectionClosed as exc:
            raise self._closed_reason(exc) from exc
        try:
            frame = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise ProtocolError("the server sent a frame that is not JSON") from exc
        if not isinstance(frame, dict):
            raise ProtocolError("the server sent a frame that is not a JSON object")
        return frame

    def _closed_reason(self, exc: ConnectionClosed) -> Exception:
        code = exc.rcvd.code if exc.rcvd is not None else None
        reason = exc.rcvd.reason if exc.rcvd is not None else ""
        if code == CloseCode.SESSION_ENDED:
            return SessionRevokedError(reason or "the session was revoked or expired")
        if code == CloseCode.TOO_SLOW:
            logger.warning("the server dropped this connection as too slow; resuming")
            self._attempt = 0
        return _Reconnect(f"closed with code {code} {reason!r}")

    # --- frames from the server --------------------------------------------------------

    async def _dispatch(self, obj: JsonObject) -> None:
        cursor = frame_cursor(obj)
        try:
            frame = decode_server_frame(obj)
        except MalformedFrame as exc:
            if cursor is None:
                raise ProtocolError(str(exc)) from exc
            # Retrying cannot help: the replay would bring the same bytes back,
            # and the stream would stop here for good. Skip it, loudly.
            logger.error("skipping an unreadable %r event at %s: %s", obj.get("op"), cursor, exc)
            await self._hand_on(None, cursor)
            return
        await self._on_frame(frame, cursor)

    async def _on_frame(self, frame: ServerFrame | None, cursor: str | None) -> None:
        match frame:
            case Ack():
                entry = self._pending.get(frame.ref)
                if entry is not None and not entry.future.done():
                    entry.future.set_result(frame)
            case ErrorReport():
                self._on_error(frame)
            case Pong():
                pass
            case UserTyping():
                if self._buffer.qsize() < self._options.max_buffered_events:
                    self._buffer.put_nowait((frame, None))
            case Synced():
                await self._hand_on(None, frame.cursor)
            case Welcome():
                raise ProtocolError("a second welcome on one connection")
            case MessageReceived(message=message):
                last_seq = self._ledger.gap_before(message.conv, message.seq)
                # A customer's view of an order thread skips the staff-only notes:
                # gaps there are expected, and fetching them would return nothing.
                if last_seq is not None and self._sees_staff_notes:
                    logger.warning(
                        "conversation %s skipped from seq %d to %d; fetching the gap",
                        message.conv,
                        last_seq,
                        message.seq,
                    )
                    await self._hand_on_missed(message.conv, last_seq, until=message.seq)
                fresh = self._ledger.admit_message(message.conv, message.seq)
                await self._hand_on(frame if fresh else None, cursor)
            case None if cursor is not None:  # a newer server's event: its cursor still counts
                await self._hand_on(None, cursor)
            case None:
                logger.debug("ignoring a frame of an op this version does not know")
            case _:
                assert cursor is not None, "every other frame is a durable event"
                fresh = self._ledger.admit_cursor(cursor)
                await self._hand_on(frame if fresh else None, cursor)

    def _on_error(self, frame: ErrorReport) -> None:
        code, message = frame.code, frame.message
        entry = self._pending.get(frame.ref) if frame.ref is not None else None
        if entry is not None:
            if not entry.future.done():
                entry.future.set_exception(
                    server_error(
                        code, message, ref=entry.frame.ref, retry_after_s=frame.retry_after_s
                    )
                )
            return
        if code == "cursor_expired":
            logger.warning("the server cannot resume from this cursor; reloading over HTTP")
            self._resume_cursor = None
            self._needs_resync = True
            raise _Reconnect("cursor expired")
        if code == "unauthorized":
            raise server_error(code, message or "the server refused the token")
        logger.warning("the server reported %s: %s", code, message)

    # --- recovery over HTTP ----------------------------------------------------------------

    async def _resync(self) -> None:
        """After `cursor_expired`: hand on what each known conversation gained."""
        known = self._ledger.last_seqs()
        if not known:
            logger.warning("no conversation known yet; nothing to reload after cursor_expired")
        for conv, last_seq in known.items():
            await self._hand_on_missed(conv, last_seq)

    async def _hand_on_missed(
        self, conv: ConversationId, after: int, *, until: int | None = None
    ) -> None:
        try:
            missed: list[Message] = await self._api.messages_after(conv, after, until=until)
        except (ForbiddenError, NotFoundError) as exc:
            # No longer a member, or gone: nothing there is ours to see.
            logger.warning("cannot reload conversation %s: %s", conv, exc)
            return
        for message in missed:
            if self._ledger.admit_message(message.conv, message.seq):
                await self._hand_on(MessageReceived(message, None), None)

    # --- endings ---------------------------------------------------------------------------

    def _check_usable(self) -> None:
        if self._fatal is not None:
            raise self._fatal
        if self._closed:
            raise ClientClosedError("the client is closed")

    def _end(self, error: ClientError, *, stream_error: ClientError | None) -> None:
        """Fail what waits, wake who waits, and end the event stream (once)."""
        for entry in self._pending.values():
            if not entry.future.done():
                entry.future.set_exception(error)
        self._wakeup.set()
        if not self._ended:
            self._ended = True
            self._buffer.put_nowait(_End(stream_error))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._side_tasks.add(task)
        task.add_done_callback(self._side_task_done)

    def _side_task_done(self, task: asyncio.Task[None]) -> None:
        self._side_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.warning("a background close failed: %r", task.exception())


class _EventStream:
    """`async for` over a client's events; see `Client.events`."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def __aiter__(self) -> _EventStream:
        return self

    async def __anext__(self) -> Event:
        return await self._client._next_event()


def _new_ref() -> str:
    return uuid.uuid4().hex
