"""The exceptions the SDK raises, and the one place server error codes become them.

The hierarchy::

    ClientError                     anything this SDK raises on purpose
    ├── TransportError              the network failed or timed out (HTTP, first connect)
    ├── ProtocolError               the server sent something this SDK cannot read
    ├── ClientClosedError           the Client was closed before the operation finished
    ├── AckTimeoutError             no ack in time; whether it was stored is unknown
    └── ServerError                 the server answered with an error code
        ├── BadRequestError         bad_request
        ├── UnauthorizedError       unauthorized
        │   └── SessionRevokedError WebSocket closed with 4001: sign in again
        ├── ForbiddenError          forbidden
        ├── NotFoundError           not_found
        ├── ConflictError           conflict
        ├── RateLimitedError        rate_limited, with retry_after_s when known
        ├── TooLargeError           too_large
        ├── CursorExpiredError      cursor_expired (the Client handles it itself)
        └── InternalServerError     internal, or a code this SDK does not know

HTTP answers and WebSocket `error` frames are both mapped by `server_error`,
so an application catches the same class whichever way it asked.
"""

from __future__ import annotations

from collections.abc import Mapping

from orderchat.core.errors import ErrorCode


class ClientError(Exception):
    """Base of every exception the SDK raises deliberately."""


class TransportError(ClientError):
    """The server could not be reached, or did not answer in time."""


class ProtocolError(ClientError):
    """The server sent a frame or body that does not follow the contract."""


class ClientClosedError(ClientError):
    """The operation was still waiting when the Client was closed."""


class AckTimeoutError(ClientError, TimeoutError):
    """No ack arrived in time. The request may or may not have been stored;
    sending again with the same `ref` is safe and tells which."""

    def __init__(self, ref: str, timeout_s: float) -> None:
        super().__init__(f"no answer for ref {ref!r} within {timeout_s:g} s")
        self.ref = ref
        self.timeout_s = timeout_s


class ServerError(ClientError):
    """The server refused a request; `code` is the contract's error code."""

    code: ErrorCode = ErrorCode.INTERNAL

    def __init__(
        self,
        message: str,
        *,
        ref: str | None = None,
        status: int | None = None,
        raw_code: str | None = None,
        reason: str | None = None,
        params: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.ref = ref
        self.status = status
        # The catalogue key the server worded `message` from, and its values:
        # stable across languages, for code that tells refusals apart.
        self.reason = reason
        self.params = dict(params or {})
        # The code exactly as the server sent it, even one this SDK does not know.
        self.raw_code = raw_code if raw_code is not None else str(self.code)

    def __str__(self) -> str:
        return f"{self.raw_code}: {self.message}"


class BadRequestError(ServerError):
    code = ErrorCode.BAD_REQUEST


class UnauthorizedError(ServerError):
    code = ErrorCode.UNAUTHORIZED


class SessionRevokedError(UnauthorizedError):
    """The server closed the WebSocket with 4001: the token is no longer valid."""


class ForbiddenError(ServerError):
    code = ErrorCode.FORBIDDEN


class NotFoundError(ServerError):
    code = ErrorCode.NOT_FOUND


class ConflictError(ServerError):
    code = ErrorCode.CONFLICT


class RateLimitedError(ServerError):
    code = ErrorCode.RATE_LIMITED

    def __init__(
        self,
        message: str,
        *,
        ref: str | None = None,
        status: int | None = None,
        raw_code: str | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message, ref=ref, status=status, raw_code=raw_code)
        self.retry_after_s = retry_after_s


class TooLargeError(ServerError):
    code = ErrorCode.TOO_LARGE


class CursorExpiredError(ServerError):
    code = ErrorCode.CURSOR_EXPIRED


class InternalServerError(ServerError):
    code = ErrorCode.INTERNAL


_BY_CODE: dict[str, type[ServerError]] = {
    cls.code.value: cls
    for cls in (
        BadRequestError,
        UnauthorizedError,
        ForbiddenError,
        NotFoundError,
        ConflictError,
        RateLimitedError,
        TooLargeError,
        CursorExpiredError,
        InternalServerError,
    )
}


def server_error(
    code: str,
    message: str,
    *,
    ref: str | None = None,
    status: int | None = None,
    retry_after_s: float | None = None,
    reason: str | None = None,
    params: Mapping[str, object] | None = None,
) -> ServerError:
    """The exception for an error code from an HTTP body or an `error` frame."""
    cls = _BY_CODE.get(code, InternalServerError)
    if cls is RateLimitedError:
        error: ServerError = RateLimitedError(
            message, ref=ref, status=status, raw_code=code, retry_after_s=retry_after_s
        )
    else:
        error = cls(message, ref=ref, status=status, raw_code=code)
    error.reason = reason
    error.params = dict(params or {})
    return error
