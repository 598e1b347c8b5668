"""Domain errors with stable wire codes.

The hierarchy::

    DomainError                 code: one of ErrorCode
    ├── BadRequest              bad_request   malformed or invalid input
    ├── Unauthorized            unauthorized  no, wrong, expired or revoked credentials
    ├── Forbidden               forbidden     authenticated, but not allowed
    ├── NotFound                not_found
    ├── Conflict                conflict      the state does not allow it (now)
    ├── RateLimited             rate_limited  carries retry_after_s
    ├── TooLarge                too_large
    └── CursorExpired           cursor_expired

Edges map these once: `api/errors.py` to HTTP statuses, `realtime/connection.py`
to `error` frames. Nothing in core knows about HTTP.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    BAD_REQUEST = "bad_request"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    RATE_LIMITED = "rate_limited"
    TOO_LARGE = "too_large"
    CURSOR_EXPIRED = "cursor_expired"
    INTERNAL = "internal"


class DomainError(Exception):
    """An expected failure the caller should be told about, never a bug."""

    code: ErrorCode = ErrorCode.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(DomainError):
    code = ErrorCode.BAD_REQUEST


class Unauthorized(DomainError):
    code = ErrorCode.UNAUTHORIZED


class Forbidden(DomainError):
    code = ErrorCode.FORBIDDEN


class NotFound(DomainError):
    code = ErrorCode.NOT_FOUND


class Conflict(DomainError):
    code = ErrorCode.CONFLICT


class RateLimited(DomainError):
    code = ErrorCode.RATE_LIMITED

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class TooLarge(DomainError):
    code = ErrorCode.TOO_LARGE


class CursorExpired(DomainError):
    code = ErrorCode.CURSOR_EXPIRED
