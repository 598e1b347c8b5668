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
    ├── CursorExpired           cursor_expired
    └── Unavailable             unavailable   retry later: the database restarts, a node stops

Edges map these once: `api/errors.py` to HTTP statuses, `realtime/connection.py`
to `error` frames. Nothing in core knows about HTTP.

Every error carries a catalogue `Text` (core/texts.py), never a sentence: the
edge renders it in the reader's language and also sends its key as `reason`
with its `params`, so clients can tell failures apart without parsing words::

    raise NotFound(say("orders.no_order", order_id=order_id))
"""

from __future__ import annotations

from enum import StrEnum

from orderchat.core.texts import Text


class ErrorCode(StrEnum):
    BAD_REQUEST = "bad_request"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    RATE_LIMITED = "rate_limited"
    TOO_LARGE = "too_large"
    CURSOR_EXPIRED = "cursor_expired"
    UNAVAILABLE = "unavailable"
    INTERNAL = "internal"


class DomainError(Exception):
    """An expected failure the caller should be told about, never a bug."""

    code: ErrorCode = ErrorCode.INTERNAL

    def __init__(self, text: Text) -> None:
        super().__init__(text.key)
        self.text = text

    @property
    def message(self) -> str:
        """The English sentence, for logs and command-line tools; people get `text` rendered."""
        return self.text.render("en")

    def __str__(self) -> str:
        return self.message


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

    def __init__(self, text: Text, retry_after_s: float) -> None:
        super().__init__(text)
        self.retry_after_s = retry_after_s


class TooLarge(DomainError):
    code = ErrorCode.TOO_LARGE


class CursorExpired(DomainError):
    code = ErrorCode.CURSOR_EXPIRED


class Unavailable(DomainError):
    """A failure that is nobody's fault and passes: the client should simply retry.

    Nothing was stored (the transaction was rolled back or never began).
    """

    code = ErrorCode.UNAVAILABLE

    def __init__(self, text: Text, retry_after_s: float = 1.0, *, conflict: bool = False) -> None:
        super().__init__(text)
        self.retry_after_s = retry_after_s
        # Lost a race with a concurrent transaction (deadlock, serialization):
        # running the same work again at once is likely to succeed.
        self.conflict = conflict
