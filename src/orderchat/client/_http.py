"""Signing in and the HTTP half of the API: conversations, history, users.

Everything here is a single request with a timeout; nothing retries, because
only the caller knows whether a retry is safe. httpx errors are translated to
`TransportError` here and nowhere else, and error bodies become the same
`ServerError` subclasses that WebSocket `error` frames do.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from orderchat.client._errors import ProtocolError, ServerError, TransportError, server_error
from orderchat.client._models import (
    Conversation,
    JsonObject,
    Message,
    Session,
    User,
    parse_conversation,
    parse_message,
    parse_user,
)
from orderchat.core.ids import ConversationId, UserId

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 10.0
# The server's largest history page; asking for more gets this many.
MAX_PAGE = 200


async def login(
    base_url: str,
    username: str,
    password: str,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    language: str | None = None,
) -> Session:
    """Sign in with a password and return the session (token and user).

    `language` ("zh-CN" or "en") is what a refusal is worded in; None, zh-CN.

    Raises:
        UnauthorizedError: wrong username or password.
        RateLimitedError: too many attempts; see `retry_after_s`.
        TransportError: the server could not be reached in time.
    """
    base_url = base_url.rstrip("/")
    headers = {} if language is None else {"Accept-Language": language}
    async with httpx.AsyncClient(base_url=base_url, timeout=timeout_s, headers=headers) as http:
        body = await _request(
            http, "POST", "/api/auth/login", json={"username": username, "password": password}
        )
    token = body.get("token")
    if not isinstance(token, str) or not token:
        raise ProtocolError("login answered without a token")
    return Session(base_url=base_url, token=token, user=parse_user(body.get("user")))


class HttpApi:
    """The HTTP calls a chat client needs, as one signed-in user.

    Use as an async context manager, or call `aclose()`.
    """

    def __init__(
        self, session: Session, *, timeout_s: float = DEFAULT_TIMEOUT_S, language: str | None = None
    ) -> None:
        self.session = session
        headers = {"Authorization": f"Bearer {session.token}"}
        if language is not None:
            headers["Accept-Language"] = language  # the language of the server's errors
        self._http = httpx.AsyncClient(
            base_url=session.base_url, headers=headers, timeout=timeout_s
        )

    async def __aenter__(self) -> HttpApi:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def me(self) -> User:
        return parse_user(await _request(self._http, "GET", "/api/me"))

    async def users(self) -> list[User]:
        body = await _request(self._http, "GET", "/api/users")
        return [parse_user(u) for u in _items(body, "users")]

    async def conversations(self) -> list[Conversation]:
        """The caller's conversations, most recent activity first."""
        body = await _request(self._http, "GET", "/api/conversations")
        return [parse_conversation(c) for c in _items(body, "conversations")]

    async def conversation(self, conv: str) -> Conversation:
        return parse_conversation(await _request(self._http, "GET", _conv_path(conv)))

    async def create_conversation(
        self, kind: str, members: Sequence[str], title: str | None = None
    ) -> Conversation:
        """Create a channel, or open the direct conversation with one other user
        (asking again for the same pair returns the existing one)."""
        body: JsonObject = {"kind": kind, "members": list(members)}
        if title is not None:
            body["title"] = title
        return parse_conversation(
            await _request(self._http, "POST", "/api/conversations", json=body)
        )

    async def direct(self, user: UserId | str) -> Conversation:
        """The direct conversation with `user`, created if it does not exist yet."""
        return await self.create_conversation("direct", [user])

    async def messages(
        self,
        conv: ConversationId | str,
        *,
        after: int | None = None,
        before: int | None = None,
        limit: int | None = None,
    ) -> list[Message]:
        """One page of history in ascending `seq`: after `after`, before `before`,
        or (with neither) the newest page."""
        params: dict[str, int] = {}
        if after is not None:
            params["after"] = after
        if before is not None:
            params["before"] = before
        if limit is not None:
            params["limit"] = limit
        body = await _request(self._http, "GET", _conv_path(conv) + "/messages", params=params)
        return [parse_message(m) for m in _items(body, "messages")]

    async def messages_after(
        self, conv: ConversationId | str, after: int, *, until: int | None = None
    ) -> list[Message]:
        """Every message with `after < seq` (and `seq < until` when given), page by page."""
        found: list[Message] = []
        while until is None or after + 1 < until:
            page = await self.messages(conv, after=after, limit=MAX_PAGE)
            found.extend(m for m in page if until is None or m.seq < until)
            if len(page) < MAX_PAGE:
                break
            after = page[-1].seq
        return found

    async def upload(
        self,
        conv: str,
        source: bytes | Path,
        *,
        filename: str | None = None,
        content_type: str | None = None,
    ) -> str:
        """Upload a file for a conversation (resuming after network cuts); its id.

        Send it with `Client.send_files`. See `orderchat.client.upload`.
        """
        from orderchat.client._uploads import upload

        return await upload(self._http, conv, source, filename=filename, content_type=content_type)

    async def files(self, conv: str, kind: str | None = None, limit: int = 50) -> list[JsonObject]:
        """The newest files sent in a conversation, as the server describes them."""
        params: dict[str, int | str] = {"limit": limit}
        if kind:
            params["kind"] = kind
        body = await _request(self._http, "GET", _conv_path(conv) + "/files", params=params)
        files = body.get("files")
        if not isinstance(files, list):
            raise ProtocolError("the file library answered without a list of files")
        return [f for f in files if isinstance(f, dict)]

    async def logout(self) -> None:
        """Revoke this session's token; its live WebSockets are closed with 4001."""
        await _request(self._http, "POST", "/api/auth/logout")


def _conv_path(conv: str) -> str:
    return f"/api/conversations/{quote(conv, safe='')}"


def _items(body: JsonObject, name: str) -> list[Any]:
    items = body.get(name)
    if not isinstance(items, list):
        raise ProtocolError(f"the answer has no {name!r} list")
    return items


async def _request(
    http: httpx.AsyncClient,
    method: str,
    path: str,
    *,
    json: JsonObject | None = None,
    params: Mapping[str, int | str] | None = None,
) -> JsonObject:
    """One call; the decoded JSON object, or the mapped error."""
    try:
        response = await http.request(method, path, json=json, params=params)
    except httpx.HTTPError as exc:
        raise TransportError(f"{method} {path} failed: {exc!r}") from exc
    if response.is_success:
        if response.status_code == 204 or not response.content:
            return {}
        return _decode(response)
    raise error_for(response)


def _decode(response: httpx.Response) -> JsonObject:
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(f"{response.url.path} answered with invalid JSON") from exc
    if not isinstance(body, dict):
        raise ProtocolError(f"{response.url.path} answered with JSON that is not an object")
    return body


def error_for(response: httpx.Response) -> ServerError:
    code, message = _status_code_name(response.status_code), response.reason_phrase
    try:
        error = orjson.loads(response.content).get("error")
    except (orjson.JSONDecodeError, AttributeError):
        error = None
    reason, params = None, None
    if isinstance(error, dict):
        code = str(error.get("code") or code)
        message = str(error.get("message") or message)
        reason = error.get("reason") if isinstance(error.get("reason"), str) else None
        params = error.get("params") if isinstance(error.get("params"), dict) else None
    logger.debug("%s answered %d %s", response.url.path, response.status_code, code)
    return server_error(
        code,
        message,
        status=response.status_code,
        retry_after_s=_retry_after(response),
        reason=reason,
        params=params,
    )


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return None if value is None else float(value)
    except ValueError:
        return None


def _status_code_name(status: int) -> str:
    """A code for an error answer without a JSON body (a proxy's, say)."""
    return {
        400: "bad_request",
        401: "unauthorized",
        403: "forbidden",
        404: "not_found",
        409: "conflict",
        413: "too_large",
        429: "rate_limited",
    }.get(status, "internal")
