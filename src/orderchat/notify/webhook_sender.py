"""Posting one webhook delivery to the shop's endpoint, and saying how it went.

The URL was checked when the endpoint was registered; here its host is
resolved again and every address checked before anything is sent, so a name
that has come to point inside the network is refused (core/targets.py).
Redirects are not followed: a 3xx is an answer like any other, and a failed
try. What the answer means for the delivery (retry, give up) is decided by
the worker; this module only reports.
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass

import httpx

from orderchat.core.errors import BadRequest
from orderchat.core.targets import parse_target, refused_addresses
from orderchat.core.texts import say

# Enough of an answer to log; a receiver's long error page is not kept.
ANSWER_BYTES = 2048


@dataclass(frozen=True, slots=True)
class Posted:
    ok: bool
    status: int | None
    reason: str
    answer: bytes = b""
    retry_after_s: float | None = None


class WebhookSender:
    def __init__(self, *, allow_private: bool, timeout_s: float = 10.0) -> None:
        self._allow_private = allow_private
        self._client = httpx.AsyncClient(
            follow_redirects=False,
            timeout=httpx.Timeout(timeout_s),
            headers={"User-Agent": "OrderChat-Webhook/1"},
            trust_env=False,
        )

    async def post(self, url: str, headers: dict[str, str], body: bytes) -> Posted:
        try:
            target = parse_target(url, allow_private=self._allow_private)
            await self._check_resolved(target.host, target.port)
        except BadRequest as refused:
            return Posted(False, None, refused.text.render("en"))
        try:
            response = await self._client.post(url, content=body, headers=headers)
        except httpx.TimeoutException:
            return Posted(False, None, "timed out")
        except httpx.HTTPError as exc:
            return Posted(False, None, f"{type(exc).__name__}: {exc}"[:300])
        answer = response.content[:ANSWER_BYTES]
        if 200 <= response.status_code < 300:
            return Posted(True, response.status_code, "ok", answer)
        return Posted(
            False,
            response.status_code,
            f"HTTP {response.status_code}",
            answer,
            _retry_after(response.headers.get("Retry-After")),
        )

    async def _check_resolved(self, host: str, port: int) -> None:
        if self._allow_private:
            return
        loop = asyncio.get_running_loop()
        try:
            found = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError:
            raise BadRequest(say("targets.does_not_resolve", host=host)) from None
        addresses = [str(info[4][0]) for info in found]
        if not addresses or refused_addresses(addresses, allow_private=False):
            raise BadRequest(say("targets.resolves_to_private", host=host))

    async def aclose(self) -> None:
        await self._client.aclose()


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, min(float(value), 3600.0))
    except ValueError:
        return None
