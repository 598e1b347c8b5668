"""Every failure leaves as `{"error": {"code", "message"}}` with a fitting status."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import Scope

from orderchat.api.responses import Json
from orderchat.core.errors import DomainError, ErrorCode, RateLimited
from orderchat.core.media import (
    TUS_VERSION,
    ChecksumMismatch,
    PreconditionFailed,
    RangeNotSatisfiable,
    UnsupportedMediaType,
)

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
}
_BY_STATUS = {status: code for code, status in STATUS.items()}


def error_response(code: ErrorCode, message: str, headers: dict[str, str] | None = None) -> Json:
    return Json(
        {"error": {"code": code.value, "message": message}},
        status_code=STATUS[code],
        headers=headers,
    )


# Errors whose HTTP status is more precise than their code's: the upload
# protocol and Range requests have statuses of their own.
_OWN_STATUS: tuple[tuple[type[DomainError], int], ...] = (
    (UnsupportedMediaType, 415),
    (ChecksumMismatch, 460),
    (PreconditionFailed, 412),
    (RangeNotSatisfiable, 416),
)


async def _domain(_: Request, exc: Exception) -> Json:
    assert isinstance(exc, DomainError)
    headers = None
    if isinstance(exc, RateLimited):
        headers = {"Retry-After": str(max(1, round(exc.retry_after_s)))}
    if exc.code is ErrorCode.UNAUTHORIZED:
        headers = {"WWW-Authenticate": "Bearer"}
    if isinstance(exc, PreconditionFailed):
        headers = {"Tus-Version": TUS_VERSION}
    response = error_response(exc.code, exc.message, headers)
    for kind, status in _OWN_STATUS:
        if isinstance(exc, kind):
            response.status_code = status
    return response


async def _validation(_: Request, exc: Exception) -> Json:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
        problems.append(f"{where}: {error.get('msg', 'invalid')}" if where else error.get("msg"))
    return error_response(ErrorCode.BAD_REQUEST, "; ".join(map(str, problems)) or "invalid request")


async def _http(request: Request, exc: Exception) -> Json:
    assert isinstance(exc, StarletteHTTPException)
    code = _BY_STATUS.get(exc.status_code, ErrorCode.BAD_REQUEST)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(allowed_methods(request.app, request.scope))
    response = error_response(code, str(exc.detail), headers or None)
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


async def _unexpected(_: Request, exc: Exception) -> Json:
    logger.error("unhandled error", exc_info=exc)
    return error_response(ErrorCode.INTERNAL, "internal error")


def install(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)
