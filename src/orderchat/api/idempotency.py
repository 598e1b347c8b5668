"""The `Idempotency-Key` header on creating calls, for every route at once.

An ASGI middleware rather than a per-route dependency: it must see the raw
body (to bind the key to the request), hold the key while the route runs, and
capture the route's whole response to keep it, none of which a dependency can
do. Routes need no change to be covered.

Which requests: POST and PATCH under `/api/` that carry both a bearer token
and the header. Sign-in (`/api/auth/`) and webhooks (`/api/webhooks/`) have no
bearer token to scope a key to; webhooks refuse replays by signature instead.
Uploads (`/api/uploads`) are idempotent by their own protocol: a retried
append names its offset.
A request whose token does not authenticate passes through untouched, and the
route answers 401 as it would without a key.

A response with `Cache-Control: no-store` (one that hands out a secret) is not
kept: a repeat of its request is refused with 409 instead of replayed, so the
secret never rests in the key table. The rules are in `core/idempotency.py`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orderchat.api.errors import error_response, is_routed, request_language
from orderchat.api.openapi import error_response_entry
from orderchat.core.errors import DomainError, TooLarge
from orderchat.core.idempotency import HEADER, MAX_KEY_CHARS, is_kept, parse_key, request_hash
from orderchat.core.ids import UserId
from orderchat.core.texts import say
from orderchat.services.accounts import Authenticated
from orderchat.services.idempotency import Answer, IdempotencyKeys

logger = logging.getLogger(__name__)

METHODS = frozenset({"POST", "PATCH"})
# Uploads resume by offset (tus) and must stream their bodies, never buffer them.
UNKEYED_PREFIXES = ("/api/auth/", "/api/webhooks/", "/api/uploads")
REPLAYED_HEADER = "Idempotent-Replayed"
# A keyed body is held in memory to hash it. This is above the largest body
# any route takes (the SKU CSV import's 20 MiB), so a key never refuses a call
# the route would accept.
MAX_BODY_BYTES = 32 * 1024 * 1024
# Response headers not kept: recomputed or meaningless when the answer is replayed.
_NOT_KEPT = frozenset({b"content-length", b"date", b"server", b"transfer-encoding"})

Authenticate = Callable[[str], Awaitable[Authenticated]]


def is_keyed_route(method: str, path: str) -> bool:
    """Whether a request to this method and path honours `Idempotency-Key`."""
    return method in METHODS and path.startswith("/api/") and not path.startswith(UNKEYED_PREFIXES)


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp, keys: IdempotencyKeys, authenticate: Authenticate) -> None:
        self.app = app
        self.keys = keys
        self.authenticate = authenticate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or not is_keyed_route(scope["method"], scope["path"])
            or not _routed(scope)
        ):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        raw_key = headers.get(HEADER)
        if raw_key is None:
            await self.app(scope, receive, send)
            return
        try:
            key = parse_key(raw_key)
            user_id = await self._user(headers)
            body = await _read_body(receive, headers) if user_id is not None else None
        except DomainError as exc:
            await error_response(exc.code, exc.text, request_language(scope))(scope, receive, send)
            return
        if user_id is None:
            await self.app(scope, receive, send)
            return
        if body is None:
            return  # the client went away before it finished sending
        await self._keyed(scope, _replay_body(body, receive), send, user_id, key, body)

    async def _user(self, headers: Headers) -> UserId | None:
        authorization = headers.get("authorization", "")
        if not authorization.startswith("Bearer "):
            return None
        try:
            auth = await self.authenticate(authorization[len("Bearer ") :].strip())
        except DomainError:
            return None
        return auth.user.id

    async def _keyed(
        self, scope: Scope, receive: Receive, send: Send, user_id: UserId, key: str, body: bytes
    ) -> None:
        query = scope["query_string"].decode("latin-1")
        target = f"{scope['path']}?{query}" if query else scope["path"]
        hashed = request_hash(scope["method"], target, body)
        try:
            async with self.keys.hold(user_id, key):
                stored = await self.keys.claim(user_id, key, hashed)
                if stored is None:
                    answer = await self._run(scope, receive, user_id, key)
                else:
                    answer = stored
        except DomainError as exc:
            await error_response(exc.code, exc.text, request_language(scope))(scope, receive, send)
            return
        if stored is not None:
            logger.info("idempotent replay user=%s status=%d", user_id, stored.status)
        await _send_answer(send, answer, replayed=stored is not None)

    async def _run(self, scope: Scope, receive: Receive, user_id: UserId, key: str) -> Answer:
        """Run the route with the key claimed; keep a 2xx answer, release the key otherwise."""
        recorder = _Recorder()
        try:
            await self.app(scope, receive, recorder)
        except (Exception, asyncio.CancelledError):
            await self._settle(self.keys.release(user_id, key), user_id)
            raise
        answer = recorder.answer()
        if is_kept(answer.status):
            await self._settle(self.keys.keep(user_id, key, _for_keeping(answer)), user_id)
        else:
            await self._settle(self.keys.release(user_id, key), user_id)
        return answer

    async def _settle(self, step: Awaitable[None], user_id: UserId) -> None:
        """Keep or release a claim; shielded, so a client going away cannot stop it half-way.

        A failure here is logged, never raised: the call itself is over and its
        answer (or error) must still go out. The claim then stays in flight
        until stale, which is the safe side of losing track of it.
        """
        try:
            await asyncio.shield(step)
        except Exception:
            logger.exception("could not settle an idempotency key user=%s", user_id)


def _routed(scope: Scope) -> bool:
    """Whether some route takes this method at this path.

    A method the path does not take must reach the router, which answers 405;
    keyed, it would be refused as a reused key instead.
    """
    app = scope.get("app")
    return app is None or is_routed(app, scope)


class _Recorder:
    """Collects what the route sends, so it can be kept before it goes out."""

    def __init__(self) -> None:
        self.status = 500
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = bytearray()

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = int(message["status"])
            self.headers = [(bytes(k), bytes(v)) for k, v in message.get("headers", [])]
        elif message["type"] == "http.response.body":
            self.body.extend(message.get("body", b""))

    def answer(self) -> Answer:
        headers = tuple((k.lower(), v) for k, v in self.headers if k.lower() not in _NOT_KEPT)
        return Answer(self.status, headers, bytes(self.body))


def _for_keeping(answer: Answer) -> Answer:
    no_store = any(k == b"cache-control" and b"no-store" in v.lower() for k, v in answer.headers)
    return Answer(answer.status, answer.headers, b"", withheld=True) if no_store else answer


async def _send_answer(send: Send, answer: Answer, *, replayed: bool) -> None:
    headers = [*answer.headers, (b"content-length", str(len(answer.body)).encode("ascii"))]
    if replayed:
        headers.append((REPLAYED_HEADER.lower().encode("ascii"), b"true"))
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body})


async def _read_body(receive: Receive, headers: Headers) -> bytes | None:
    """The whole request body, or None when the client went away.

    Raises:
        TooLarge: the body is over MAX_BODY_BYTES.
    """
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise TooLarge(
            say(
                "idempotency.body_too_large",
                header=HEADER,
                max_body_bytes=MAX_BODY_BYTES,
            )
        )
    chunks = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.extend(message.get("body", b""))
        if len(chunks) > MAX_BODY_BYTES:
            raise TooLarge(
                say(
                    "idempotency.body_too_large",
                    header=HEADER,
                    max_body_bytes=MAX_BODY_BYTES,
                )
            )
        if not message.get("more_body", False):
            return bytes(chunks)


def _replay_body(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands the app the body already read, then the client's own."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


# --- the OpenAPI document -------------------------------------------------------------

_PARAMETER: dict[str, Any] = {
    "name": HEADER,
    "in": "header",
    "required": False,
    "description": (
        "Makes a retry safe: a repeat of the same request with the same key (per user, for "
        "24 h) answers with the first successful answer and the header "
        f"`{REPLAYED_HEADER}: true`, without doing the work again. The same key with a "
        "different request, or while the first is still running, answers 409."
    ),
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_KEY_CHARS,
        "pattern": "^[!-~]([ -~]*[!-~])?$",
    },
}


# A malformed key (400), a key reused for another request or still running (409),
# a keyed body over MAX_BODY_BYTES (413).
_KEY_ERRORS = (400, 409, 413)


def install(app: FastAPI, keys: IdempotencyKeys, authenticate: Authenticate) -> None:
    """Honour `Idempotency-Key` on every keyed route, and say so in /openapi.json."""
    app.add_middleware(IdempotencyMiddleware, keys=keys, authenticate=authenticate)
    build = app.openapi

    def openapi() -> dict[str, Any]:
        schema = build()
        for path, item in schema.get("paths", {}).items():
            for method, operation in item.items():
                if not is_keyed_route(method.upper(), path):
                    continue
                parameters = operation.setdefault("parameters", [])
                if all(p.get("name") != HEADER for p in parameters):
                    parameters.append(dict(_PARAMETER))
                responses = operation.setdefault("responses", {})
                for status in _KEY_ERRORS:
                    responses.setdefault(str(status), error_response_entry(status))
        return schema

    # FastAPI's documented way to extend the schema is to replace this method.
    app.openapi = openapi  # type: ignore[method-assign]
