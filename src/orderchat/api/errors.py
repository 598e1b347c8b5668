"""Every failure leaves as `{"error": {"code", "message", "reason", "params"}}`.

The status fits the code (`STATUS`, and `_OWN_STATUS` for the upload protocol).

`message` is the error's catalogue text rendered in the request's language
(`request_language`); `reason` is the text's stable key and `params` its
values, for clients that word failures themselves. See docs/texts.md.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import Scope

from orderchat.api.responses import Json
from orderchat.core.errors import DomainError, ErrorCode, RateLimited, Unavailable
from orderchat.core.media import (
    TUS_VERSION,
    ChecksumMismatch,
    PreconditionFailed,
    RangeNotSatisfiable,
    UnsupportedMediaType,
)
from orderchat.core.model import UserKind
from orderchat.core.texts import DEFAULT_LANGUAGE, Text, normalize_language, pick_language, say

logger = logging.getLogger(__name__)

STATUS = {
    ErrorCode.BAD_REQUEST: 400,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.CONFLICT: 409,
    ErrorCode.CURSOR_EXPIRED: 410,
    ErrorCode.TOO_LARGE: 413,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.INTERNAL: 500,
    ErrorCode.UNAVAILABLE: 503,
}
_BY_STATUS = {status: code for code, status in STATUS.items()}


def request_language(scope: Scope) -> str:
    """The language a request's words are rendered in: its Accept-Language, else zh-CN.

    The web app and the customer page send the language their reader chose
    with every call, so a person's choice there is what the server answers in.
    """
    return pick_language(Headers(scope=scope).get("accept-language"))


async def reader_language(request: Request) -> str:
    """`request_language`, except that a signed-in customer who sent no
    Accept-Language gets the language stored with them (`customers.language`).

    Staff have no stored language. The lookup happens only here, on a refused
    request without the header, so no successful request pays for it.
    """
    if request.headers.get("accept-language"):
        return request_language(request.scope)
    return await _customer_language(request) or DEFAULT_LANGUAGE


async def _customer_language(request: Request) -> str | None:
    runtime = getattr(request.app.state, "runtime", None)
    authorization = request.headers.get("authorization", "")
    if runtime is None or not authorization.startswith("Bearer "):
        return None
    try:
        auth = await runtime.accounts.authenticate(authorization[len("Bearer ") :].strip())
        if auth.user.kind is not UserKind.CUSTOMER:
            return None
        customer = await runtime.orders.customer(auth.user, auth.user.id)
    except DomainError:
        return None
    return normalize_language(customer.language)


def error_body(code: ErrorCode, text: Text, language: str) -> dict[str, object]:
    """The `error` object of a failed response, the same shape an `error` frame carries."""
    wire = text.to_json()
    return {
        "code": code.value,
        "message": text.render(language),
        "reason": wire["key"],
        "params": wire["params"],
    }


def error_response(
    code: ErrorCode, text: Text, language: str, headers: dict[str, str] | None = None
) -> Json:
    return Json(
        {"error": error_body(code, text, language)}, status_code=STATUS[code], headers=headers
    )


# Errors whose HTTP status is more precise than their code's: the upload
# protocol and Range requests have statuses of their own.
_OWN_STATUS: tuple[tuple[type[DomainError], int], ...] = (
    (UnsupportedMediaType, 415),
    (ChecksumMismatch, 460),
    (PreconditionFailed, 412),
    (RangeNotSatisfiable, 416),
)


async def _domain(request: Request, exc: Exception) -> Json:
    assert isinstance(exc, DomainError)
    headers = None
    if isinstance(exc, RateLimited | Unavailable):
        headers = {"Retry-After": str(max(1, round(exc.retry_after_s)))}
    if exc.code is ErrorCode.UNAUTHORIZED:
        headers = {"WWW-Authenticate": "Bearer"}
    if isinstance(exc, PreconditionFailed):
        headers = {"Tus-Version": TUS_VERSION}
    response = error_response(exc.code, exc.text, await reader_language(request), headers)
    for kind, status in _OWN_STATUS:
        if isinstance(exc, kind):
            response.status_code = status
    return response


async def _validation(request: Request, exc: Exception) -> Json:
    """A request the schema refuses: which fields, in words the reader reads.

    The schema's own explanations are English only, so the message names the
    fields to check and leaves the why to the API documentation.
    """
    assert isinstance(exc, RequestValidationError)
    fields: list[str] = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
        if where and where not in fields:
            fields.append(where)
    text = say("request.invalid_fields", fields=fields[:5]) if fields else say("request.invalid")
    return error_response(ErrorCode.BAD_REQUEST, text, await reader_language(request))


_HTTP_TEXTS = {404: "request.not_found", 405: "request.method_not_allowed"}


async def _http(request: Request, exc: Exception) -> Json:
    assert isinstance(exc, StarletteHTTPException)
    code = _BY_STATUS.get(exc.status_code, ErrorCode.BAD_REQUEST)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(allowed_methods(request.app, request.scope))
    key = _HTTP_TEXTS.get(exc.status_code)
    text = say(key) if key else say("request.failed", status=exc.status_code)
    response = error_response(code, text, request_language(request.scope), headers or None)
    response.status_code = exc.status_code
    return response


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def is_routed(app: Starlette, scope: Scope) -> bool:
    """Whether some route of the app takes this request's method at its path."""
    return any(route.matches(scope)[0] is Match.FULL for route in app.router.routes)


def allowed_methods(app: FastAPI, scope: Scope) -> list[str]:
    """The methods of the resource the path names, for the Allow header (RFC 9110 §10.2.1).

    The router left the route whose path matched in `scope["route"]`; the
    document lists every method of that path template, while the route alone
    knows only its own (GET and PATCH of one path are two routes here). A path
    such as /api/skus/export that another template (/api/skus/{sku}) also
    matches is the resource of its own template.
    """
    route = scope.get("route")
    template = getattr(route, "path", None)
    documented = app.openapi().get("paths", {}).get(template) if template else None
    if documented:
        return [m for m in _METHODS if m.lower() in documented]
    return [m for m in _METHODS if m in (getattr(route, "methods", None) or ())]


async def _unexpected(request: Request, exc: Exception) -> Json:
    logger.error("unhandled error", exc_info=exc)
    return error_response(
        ErrorCode.INTERNAL, say("server.internal_error"), request_language(request.scope)
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)
