"""The realtime client: one WebSocket that outlives network failures and restarts.

Rules this module keeps:

- One supervisor task owns the connection. When the connection ends for any
  reason but a revoked session, it reconnects after a capped, jittered,
  exponential backoff and says hello with the cursor of the last event it
  put in the application's buffer, so the server replays exactly what is
  missing (G4).
- Every send and recall stays pending until its ack or error and is written
  again, with the same ref, after a reconnect (`_outbox`): the server answers
  a repeated ref with the first ack (G2), so a retry can never post twice.
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
from collections.abc import AsyncIterator, Coroutine, Mapping, Sequence
from functools import partial
from types import TracebackType
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from orderchat.client import _requests as req
from orderchat.client._backoff import backoff_delay_s
from orderchat.client._buffer import EventBuffer
from orderchat.client._errors import (
    AckTimeoutError,
    ClientClosedError,
    ClientError,
    ProtocolError,
    TransportError,
    UnauthorizedError,
    server_error,
)
from orderchat.client._http import HttpApi
from orderchat.client._ledger import DeliveryLedger
from orderchat.client._models import (
    Ack,
    CommandReply,
    Event,
    JsonObject,
    MessageReceived,
    Session,
    SettingsChanged,
    User,
    parse_frame_json,
    strict,
)
from orderchat.client._options import ClientOptions
from orderchat.client._outbox import Outbox, Request
from orderchat.client._recovery import Recovery
from orderchat.client._verdicts import Reconnect, Stop, on_close, on_hello_refused
from orderchat.core.ids import ConversationId
from orderchat.protocol import events as wire
from orderchat.protocol.codec import encode_client_frame
from orderchat.protocol.events import ErrorReport, Pong, ServerFrame, Synced, UserTyping, Welcome
from orderchat.protocol.frames import ClientFrame, Hello, MarkRead, Ping, RecallMessage, Typing
from orderchat.protocol.server_codec import MalformedFrame, decode_server_frame, frame_cursor

logger = logging.getLogger(__name__)

# The server's own frames are small (a 10,000-character message is at most
# ~40 kB of UTF-8), but the limit must never be what drops a connection.
MAX_SERVER_FRAME_BYTES = 4 * 1024 * 1024


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
        options = self._options = options or ClientOptions()
        self._api = HttpApi(session, timeout_s=options.http_timeout_s, language=options.language)
        self._ledger = DeliveryLedger(last_seqs)
        self._recovery = Recovery(self._api, self._ledger)
        # The cursor of the last item put in the buffer: what hello resumes from.
        self._resume_cursor = cursor
        self._needs_resync = False
        self._sees_staff_notes = True  # until a welcome says this is a customer
        self._buffer = EventBuffer(self._options.max_buffered_events, cursor, last_seqs)
        self._outbox = Outbox()
        self._ws: ClientConnection | None = None
        self._live: ClientConnection | None = None
        self._connection_no = 0
        self._attempt = 0
        self._wakeup = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None
        self._side_tasks: set[asyncio.Task[None]] = set()
        self._fatal: ClientError | None = None
        self._closed = False

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
        return self._buffer.cursor

    @property
    def last_seqs(self) -> dict[ConversationId, int]:
        """Per conversation, the highest message seq the application took."""
        return dict(self._buffer.taken_seqs)

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
    ) -> Ack | CommandReply:
        """Post a text message and wait for its ack, across reconnects.

        Passing the `ref` of an earlier attempt (see `AckTimeoutError.ref`) is
        safe: the server answers a repeated ref with the first ack. `urgent`
        asks members to deal with it first; `internal` makes it a staff-only note.
        A private query (`/stock tent`) is not stored: its answer, a
        `CommandReply` for this user alone, is returned instead of an ack.

        Raises:
            ServerError: the server refused it (e.g. `ForbiddenError`).
            AckTimeoutError: no answer within `timeout_s` (default `ack_timeout_s`).
            ClientClosedError: the client was closed first.
        """
        post = req.text_post(
            conv, text, mentions, reply_to, ref=ref, urgent=urgent, internal=internal
        )
        return await self._request(post, timeout_s)

    async def ask(
        self, conv: str, query: str, *, ref: str | None = None, timeout_s: float | None = None
    ) -> CommandReply:
        """Ask a private query such as `/stock tent 2`; raises `ProtocolError` if it was posted."""
        return req.replied(await self.send(conv, query, ref=ref, timeout_s=timeout_s), query)

    async def edit(
        self,
        conv: str,
        seq: int,
        text: str,
        *,
        ref: str | None = None,
        timeout_s: float | None = None,
    ) -> Ack:
        """Replace the text (or caption) of one's own message, within the recall window."""
        return req.acked(await self._request(req.edit_request(conv, seq, text, ref=ref), timeout_s))

    async def forward(
        self,
        conv: str,
        from_conv: str,
        seq: int,
        *,
        internal: bool = False,
        ref: str | None = None,
        timeout_s: float | None = None,
    ) -> Ack:
        """Forward message `seq` of `from_conv` into `conv` (a staff-only note: `internal=True`)."""
        post = req.forward_post(conv, from_conv, seq, internal=internal, ref=ref)
        return req.acked(await self._request(post, timeout_s))

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
        frame = req.files_post(conv, upload_ids, kind, text, ref=ref)
        return req.acked(await self._request(frame, timeout_s))

    async def recall(
        self, conv: str, seq: int, *, ref: str | None = None, timeout_s: float | None = None
    ) -> Ack:
        """Recall a message; raises like `send` (e.g. `ForbiddenError` when not allowed)."""
        return req.acked(
            await self._request(
                RecallMessage(ref=ref or req.new_ref(), conv=conv, seq=seq), timeout_s
            )
        )

    async def mark_read(self, conv: str, seq: int) -> None:
        """Mark `conv` read up to `seq`; sent now, or as soon as connected again."""
        self._check_usable()
        key = ConversationId(conv)
        self._outbox.keep_read(key, seq)
        if await self._try_write(MarkRead(conv=conv, seq=seq)):
            self._outbox.read_written(key, seq)

    async def typing(self, conv: str) -> None:
        """Tell the other members the user is typing; dropped when not connected."""
        self._check_usable()
        await self._try_write(Typing(conv=conv))

    def events(self) -> AsyncIterator[Event]:
        """Durable events in order, each once, and typing notices.

        Ends after `close()`; raises the reason when the client stops for good
        (`SessionRevokedError`, `UnauthorizedError`).
        """
        return self._buffer

    async def _hand_on(self, event: Event | None, cursor: str | None) -> None:
        """Buffer an event (or only a cursor to move past) for the application."""
        if event is None and cursor is None:
            return
        await self._buffer.put(event, cursor)
        if cursor is not None:
            self._resume_cursor = cursor

    async def _request(self, frame: Request, timeout_s: float | None) -> req.Answer:
        self._check_usable()
        entry = self._outbox.open(frame)
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
            self._outbox.close(frame.ref)

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
                except Reconnect as exc:
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
        except Exception as exc:
            if isinstance(exc, UnauthorizedError | Stop):
                error = exc.error if isinstance(exc, Stop) else exc
                logger.warning("the server refused this client: %s", error)
            else:
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
        hello = Hello(self.session.token, self._options.device, resume_from, self._options.language)
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
            for event in await self._recovery.all_missed():
                await self._hand_on(event, None)
            self._needs_resync = False
        if resume_from is None:
            await self._hand_on(None, welcome.cursor)
        await self._outbox.flush(partial(self._write, ws), self._connection_no)
        self._live = ws
        self._wakeup.set()

    def _on_hello_refused(self, frame: ErrorReport, *, resumed: bool) -> None:
        """Act on a hello answered with an error; always raises."""
        verdict = on_hello_refused(frame, resumed=resumed)
        if verdict.reload:
            logger.warning("the server cannot resume from this cursor (%s); reloading", frame)
            self._resume_cursor = None
            self._needs_resync = True
        raise verdict.ending

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
            raise Reconnect(f"no frame from the server for {timeout_s:g} s") from None
        except ConnectionClosed as exc:
            raise self._closed_reason(exc) from exc
        return parse_frame_json(data)

    def _closed_reason(self, exc: ConnectionClosed) -> Exception:
        code = exc.rcvd.code if exc.rcvd is not None else None
        verdict = on_close(code, exc.rcvd.reason if exc.rcvd is not None else "")
        if verdict.fresh_start:
            logger.warning("the server dropped this connection as too slow; resuming")
            self._attempt = 0
        return verdict.ending

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
                self._outbox.answer(frame)
            case CommandReply():
                self._outbox.answer(frame)
                self._buffer.offer_typing(frame)
            case ErrorReport():
                self._on_error(frame)
            case Pong() | SettingsChanged() | wire.CallState() | wire.CallSignal():  # no calls here
                pass
            case UserTyping():
                self._buffer.offer_typing(frame)
            case Synced():
                await self._hand_on(None, frame.cursor)
            case Welcome():
                raise ProtocolError("a second welcome on one connection")
            case MessageReceived(message=message):
                for missed in await self._recovery.gap(message, self._sees_staff_notes):
                    await self._hand_on(missed, None)
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
        if self._outbox.refuse(frame):
            return
        code, message = frame.code, frame.message
        if code == "cursor_expired":
            logger.warning("the server cannot resume from this cursor; reloading over HTTP")
            self._resume_cursor = None
            self._needs_resync = True
            raise Reconnect("cursor expired")
        if code == "unauthorized":
            raise server_error(code, message or "the server refused the token")
        logger.warning("the server reported %s: %s", code, message)

    def _check_usable(self) -> None:
        if self._fatal is not None:
            raise self._fatal
        if self._closed:
            raise ClientClosedError("the client is closed")

    def _end(self, error: ClientError, *, stream_error: ClientError | None) -> None:
        """Fail what waits, wake who waits, and end the event stream (once)."""
        self._outbox.fail_all(error)
        self._wakeup.set()
        self._buffer.end(stream_error)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._side_tasks.add(task)
        task.add_done_callback(self._side_task_done)

    def _side_task_done(self, task: asyncio.Task[None]) -> None:
        self._side_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.warning("a background close failed: %r", task.exception())
