"""What the server's refusals and closes mean for the connection: decided here,
without I/O, so each rule reads as one table.

- A refused hello: a bad token is final (`UnauthorizedError`); a busy or
  failing server is worth another try; a refused cursor means reloading
  without one; anything else would be refused again, so the client stops.
- A close: 4001 (session ended) is final; anything else is a reconnect.
"""

from __future__ import annotations

from dataclasses import dataclass

from orderchat.client._errors import (
    ClientError,
    SessionRevokedError,
    UnauthorizedError,
    server_error,
)
from orderchat.core.errors import ErrorCode
from orderchat.protocol.events import ErrorReport
from orderchat.protocol.frames import CloseCode


class Reconnect(Exception):
    """This connection is over; open another after the backoff."""


class Stop(Exception):
    """Reconnecting cannot help; the client stops with `error`."""

    def __init__(self, error: ClientError) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass(frozen=True, slots=True)
class Verdict:
    """The exception to end the connection with, and whether to drop the cursor."""

    ending: Exception
    reload: bool = False
    # True after a 4008: the server was fine, the client was slow; no backoff growth.
    fresh_start: bool = False


def on_hello_refused(report: ErrorReport, *, resumed: bool) -> Verdict:
    error = server_error(report.code, report.message, reason=report.reason, params=report.params)
    if isinstance(error, UnauthorizedError):
        return Verdict(error)
    if report.code in (ErrorCode.RATE_LIMITED, ErrorCode.INTERNAL):
        return Verdict(Reconnect(f"hello refused for now ({error})"))
    if resumed or report.code == ErrorCode.CURSOR_EXPIRED:
        # The cursor is the only part of hello that changes between tries,
        # so without it the next hello may pass: reload as for cursor_expired.
        return Verdict(Reconnect("cursor refused"), reload=True)
    # The same hello would be refused again: retrying would loop for ever.
    return Verdict(Stop(error))


def on_close(code: int | None, reason: str) -> Verdict:
    if code == CloseCode.SESSION_ENDED:
        return Verdict(SessionRevokedError(reason or "the session was revoked or expired"))
    return Verdict(
        Reconnect(f"closed with code {code} {reason!r}"), fresh_start=code == CloseCode.TOO_SLOW
    )
