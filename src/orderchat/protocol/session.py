"""Per-connection protocol state: what a frame may do, given what came before.

Rules:
- The first frame that does anything must be `hello`; anything else before it
  is answered with an error and ignored (the connection stays open, so a client
  with an expired token can sign in again and say hello once more).
- After a successful hello, another hello is an error.
- A connection that the server has closed accepts nothing.
"""

from __future__ import annotations

from enum import Enum, auto

from orderchat.core.errors import ErrorCode
from orderchat.protocol.codec import FrameError, decode_client_frame
from orderchat.protocol.frames import ClientFrame, Hello, Ping


class SessionState(Enum):
    AWAITING_HELLO = auto()
    OPEN = auto()
    CLOSED = auto()


class ServerSession:
    def __init__(self) -> None:
        self.state = SessionState.AWAITING_HELLO

    def receive(self, data: str | bytes) -> ClientFrame:
        """Decode a frame and check it is allowed now.

        Raises:
            FrameError: the frame is malformed or not allowed in this state.
        """
        if self.state is SessionState.CLOSED:
            raise FrameError(ErrorCode.BAD_REQUEST, "connection is closed")
        frame = decode_client_frame(data)
        if self.state is SessionState.AWAITING_HELLO:
            if not isinstance(frame, Hello | Ping):
                raise FrameError(
                    ErrorCode.UNAUTHORIZED, "say hello with a valid token first", _ref_of(frame)
                )
        elif isinstance(frame, Hello):
            raise FrameError(ErrorCode.BAD_REQUEST, "hello was already accepted")
        return frame

    def accept_hello(self) -> None:
        self.state = SessionState.OPEN

    def close(self) -> None:
        self.state = SessionState.CLOSED


def _ref_of(frame: ClientFrame) -> str | None:
    ref = getattr(frame, "ref", None)
    return ref if isinstance(ref, str) else None
