"""The per-connection state machine, in memory: frames in, actions out, no socket."""

from __future__ import annotations

import orjson
import pytest

from orderchat.core.errors import ErrorCode
from orderchat.core.ids import UserId
from orderchat.core.model import MessageKind, Role, User, UserKind
from orderchat.protocol.codec import encode_client_frame
from orderchat.protocol.events import ErrorReport, Pong
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
from orderchat.protocol.session import (
    Authenticate,
    Close,
    LocalProtocolError,
    Perform,
    Reply,
    ServerSession,
    SessionState,
)

NOW_MS = 1_000_000
LATER_MS = NOW_MS + 3_600_000
ANN = User(UserId("u_ann"), "ann", "Ann", (Role.SALES,), UserKind.STAFF)
HELLO = Hello("token", "phone", None)
RESUME = Hello("token", "phone", "v1.42")
REQUESTS: list[ClientFrame] = [
    PostMessage("r1", "c_1", MessageKind.TEXT, "hi", (), (), None, urgent=True),
    MarkRead("c_1", 3),
    RecallMessage("r2", "c_1", 3),
    Typing("c_1"),
]


def _data(frame: ClientFrame) -> bytes:
    return encode_client_frame(frame)


def _live() -> ServerSession:
    session = ServerSession()
    session.receive(_data(HELLO), NOW_MS)
    session.accept_hello(ANN, LATER_MS)
    session.synced()
    return session


def _error_code(actions: tuple[object, ...]) -> str:
    (reply,) = actions
    assert isinstance(reply, Reply) and isinstance(reply.frame, ErrorReport)
    return reply.frame.code


def test_hello_is_handed_on_to_be_checked() -> None:
    session = ServerSession()
    assert session.receive(_data(RESUME), NOW_MS) == (Authenticate(RESUME),)
    assert session.state is SessionState.AUTHENTICATING
    assert session.user is None


def test_resume_then_go_live() -> None:
    session = ServerSession()
    session.receive(_data(RESUME), NOW_MS)
    session.accept_hello(ANN, LATER_MS)
    assert session.state is SessionState.SYNCING
    # Requests pipelined behind the hello are carried out while the backlog goes out.
    assert session.receive(_data(REQUESTS[0]), NOW_MS) == (Perform(REQUESTS[0]),)
    session.synced()
    assert session.state is SessionState.LIVE
    assert session.signed_in_user == ANN


@pytest.mark.parametrize("frame", REQUESTS, ids=lambda f: type(f).__name__)
def test_requests_before_hello_are_unauthorized_and_keep_their_ref(frame: ClientFrame) -> None:
    session = ServerSession()
    (reply,) = session.receive(_data(frame), NOW_MS)
    assert isinstance(reply, Reply) and isinstance(reply.frame, ErrorReport)
    assert reply.frame.code == ErrorCode.UNAUTHORIZED
    assert reply.frame.ref == getattr(frame, "ref", None)
    assert session.state is SessionState.AWAITING_HELLO


@pytest.mark.parametrize(
    "state", [SessionState.AWAITING_HELLO, SessionState.SYNCING, SessionState.LIVE]
)
def test_ping_is_answered_in_every_open_state(state: SessionState) -> None:
    session = ServerSession()
    if state is not SessionState.AWAITING_HELLO:
        session.receive(_data(HELLO), NOW_MS)
        session.accept_hello(ANN, LATER_MS)
    if state is SessionState.LIVE:
        session.synced()
    assert session.receive(_data(Ping()), NOW_MS) == (Reply(Pong()),)
    assert session.state is state


@pytest.mark.parametrize("state", [SessionState.SYNCING, SessionState.LIVE])
def test_a_second_hello_is_a_bad_request(state: SessionState) -> None:
    session = ServerSession()
    session.receive(_data(HELLO), NOW_MS)
    session.accept_hello(ANN, LATER_MS)
    if state is SessionState.LIVE:
        session.synced()
    assert _error_code(session.receive(_data(HELLO), NOW_MS)) == ErrorCode.BAD_REQUEST
    assert session.state is state


@pytest.mark.parametrize("frame", REQUESTS, ids=lambda f: type(f).__name__)
def test_live_requests_are_performed(frame: ClientFrame) -> None:
    assert _live().receive(_data(frame), NOW_MS) == (Perform(frame),)


def test_a_refused_hello_may_be_said_again() -> None:
    session = ServerSession()
    session.receive(_data(HELLO), NOW_MS)
    session.refuse_hello()
    assert session.state is SessionState.AWAITING_HELLO
    assert session.receive(_data(HELLO), NOW_MS) == (Authenticate(HELLO),)


def test_a_cursor_refused_after_acceptance_starts_over() -> None:
    session = ServerSession()
    session.receive(_data(RESUME), NOW_MS)
    session.accept_hello(ANN, LATER_MS)
    session.refuse_hello()  # the backlog could not be served
    assert (session.state, session.user) == (SessionState.AWAITING_HELLO, None)


def test_malformed_frames_are_answered_in_every_open_state() -> None:
    for session in (ServerSession(), _live()):
        assert _error_code(session.receive(b"{nope", NOW_MS)) == ErrorCode.BAD_REQUEST
        big = orjson.dumps({"op": "send", "text": "x" * (1024 * 1024)})
        assert _error_code(session.receive(big, NOW_MS)) == ErrorCode.TOO_LARGE


def test_a_frame_after_expiry_is_refused_and_closes() -> None:
    session = _live()
    reply, close = session.receive(_data(REQUESTS[0]), LATER_MS)
    assert isinstance(reply, Reply) and isinstance(reply.frame, ErrorReport)
    assert reply.frame.code == ErrorCode.UNAUTHORIZED
    assert close == Close(CloseCode.SESSION_ENDED, "session expired")
    assert session.state is SessionState.CLOSING


@pytest.mark.parametrize("frame", [HELLO, Ping(), *REQUESTS], ids=lambda f: type(f).__name__)
def test_a_closing_session_acts_on_nothing(frame: ClientFrame) -> None:
    session = _live()
    assert session.close(CloseCode.TOO_SLOW, "behind") == Close(CloseCode.TOO_SLOW, "behind")
    assert session.receive(_data(frame), NOW_MS) == ()
    assert session.receive(b"{nope", NOW_MS) == ()


def test_the_first_close_wins() -> None:
    session = _live()
    session.close(CloseCode.SESSION_ENDED, "signed out")
    assert session.close(CloseCode.TOO_SLOW, "behind") is None
    assert (session.close_code, session.close_reason) == (CloseCode.SESSION_ENDED, "signed out")


def test_hello_overdue_closes_only_before_acceptance() -> None:
    waiting = ServerSession()
    assert waiting.hello_overdue() == Close(CloseCode.POLICY, "no hello in time")
    checking = ServerSession()
    checking.receive(_data(HELLO), NOW_MS)
    assert checking.hello_overdue() is not None
    assert _live().hello_overdue() is None


def test_misuse_by_our_own_code_is_a_local_error() -> None:
    session = ServerSession()
    with pytest.raises(LocalProtocolError):
        session.accept_hello(ANN, LATER_MS)
    with pytest.raises(LocalProtocolError):
        _ = session.signed_in_user
