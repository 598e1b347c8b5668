"""Per-connection protocol state: what a frame may do, given what came before.

Sans-I/O: bytes and events go in, actions come out; the caller does the I/O
(checks the token, reads the backlog, writes frames, closes the socket) and
reports back. So every rule here is tested in memory, without a socket.

    AWAITING_HELLO --hello--> AUTHENTICATING --accepted--> SYNCING --synced--> LIVE
          ^                        |
          +--------refused---------+            any state --close--> CLOSING

Rules:
- Before a hello is accepted only `hello` and `ping` mean anything; any other
  frame is answered `unauthorized` and ignored. A refused hello leaves the
  connection open, so a client with an expired token can sign in again and
  say hello once more.
- Once a hello is accepted, another is `bad_request`.
- While SYNCING the client's missed events are being sent; the connection
  holds live events back until `synced`, then releases them (duplicates of
  the backlog skipped by stream position).
- A frame that arrives after the session's expiry is answered `unauthorized`
  and the connection closes with SESSION_ENDED.
- The first close wins; a CLOSING connection acts on nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, auto

from orderchat.core.errors import ErrorCode
from orderchat.core.model import User
from orderchat.core.texts import DEFAULT_LANGUAGE, say
from orderchat.protocol.codec import FrameError, decode_client_frame
from orderchat.protocol.events import ErrorReport, Pong, ServerFrame
from orderchat.protocol.frames import ClientFrame, CloseCode, Hello, Ping


class SessionState(Enum):
    AWAITING_HELLO = auto()
    AUTHENTICATING = auto()
    SYNCING = auto()
    LIVE = auto()
    CLOSING = auto()


@dataclass(frozen=True, slots=True)
class Reply:
    """Send this frame to the client."""

    frame: ServerFrame


@dataclass(frozen=True, slots=True)
class Authenticate:
    """Check the hello's token, then call `accept_hello` or `refuse_hello`."""

    hello: Hello


@dataclass(frozen=True, slots=True)
class Perform:
    """Carry out a request of the signed-in user (send, read, recall, typing)."""

    frame: ClientFrame


@dataclass(frozen=True, slots=True)
class Close:
    """Close the connection with this code; nothing more is read."""

    code: CloseCode
    reason: str


Action = Reply | Authenticate | Perform | Close

_PONG = Reply(Pong())
_NOTHING: tuple[Action, ...] = ()


class LocalProtocolError(RuntimeError):
    """Our own code misused the session (a bug), as opposed to a peer's bad frame."""


class ServerSession:
    __slots__ = ("close_code", "close_reason", "expires_at_ms", "language", "state", "user")

    def __init__(self) -> None:
        self.state = SessionState.AWAITING_HELLO
        self.user: User | None = None
        self.expires_at_ms = 0
        # What error frames are worded in: the hello's language once one came.
        self.language = DEFAULT_LANGUAGE
        self.close_code: CloseCode | None = None
        self.close_reason = ""

    def receive(self, data: str | bytes, now_ms: int) -> tuple[Action, ...]:
        """What one frame from the client leads to."""
        state = self.state
        if state is SessionState.CLOSING:
            return _NOTHING
        try:
            frame = decode_client_frame(data)
        except FrameError as exc:
            return (Reply(ErrorReport.of(exc.code, exc.text, self.language, exc.ref)),)
        if isinstance(frame, Ping):
            return (_PONG,)
        if state is SessionState.AWAITING_HELLO:
            if isinstance(frame, Hello):
                self.state = SessionState.AUTHENTICATING
                self.language = frame.language or DEFAULT_LANGUAGE
                return (Authenticate(frame),)
            error = ErrorReport.of(
                ErrorCode.UNAUTHORIZED, say("session.hello_first"), self.language, _ref_of(frame)
            )
            return (Reply(error),)
        if isinstance(frame, Hello):
            again = say("session.hello_already_accepted")
            return (Reply(ErrorReport.of(ErrorCode.BAD_REQUEST, again, self.language)),)
        if self.expires_at_ms <= now_ms:
            expired = ErrorReport.of(ErrorCode.UNAUTHORIZED, say("session.expired"), self.language)
            return (Reply(expired), self._close(CloseCode.SESSION_ENDED, "session expired"))
        return (Perform(frame),)

    def accept_hello(self, user: User, expires_at_ms: int) -> None:
        """The hello's token is good: the backlog (if any) goes out next."""
        self._expect(SessionState.AUTHENTICATING, "accept a hello")
        self.user = user
        self.expires_at_ms = expires_at_ms
        self.state = SessionState.SYNCING

    def refuse_hello(self) -> None:
        """The hello was answered with an error (a bad token, a cursor that cannot
        be served): the client may say hello again."""
        if self.state in (SessionState.AUTHENTICATING, SessionState.SYNCING):
            self.state = SessionState.AWAITING_HELLO
            self.user = None
            self.expires_at_ms = 0

    def synced(self) -> None:
        """The backlog and the events held meanwhile are queued: the connection is live."""
        if self.state is SessionState.SYNCING:
            self.state = SessionState.LIVE

    def hello_overdue(self) -> Close | None:
        """The time for a hello has passed: close unless one was accepted."""
        if self.state in (SessionState.AWAITING_HELLO, SessionState.AUTHENTICATING):
            return self._close(CloseCode.POLICY, "no hello in time")
        return None

    def close(self, code: CloseCode, reason: str) -> Close | None:
        """Decide to close; None when a close was already decided (the first one wins)."""
        if self.state is SessionState.CLOSING:
            return None
        return self._close(code, reason)

    @property
    def signed_in_user(self) -> User:
        if self.user is None:
            raise LocalProtocolError("frames past hello need a signed-in user")
        return self.user

    def _close(self, code: CloseCode, reason: str) -> Close:
        self.state = SessionState.CLOSING
        self.close_code = code
        self.close_reason = reason
        return Close(code, reason)

    def _expect(self, state: SessionState, what: str) -> None:
        if self.state is not state:
            raise LocalProtocolError(f"cannot {what} in state {self.state.name}")


def _ref_of(frame: ClientFrame) -> str | None:
    ref = getattr(frame, "ref", None)
    return ref if isinstance(ref, str) else None
