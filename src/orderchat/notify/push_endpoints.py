"""Where a push may go: subscriptions as browsers give them, and the guard on every connection.

Endpoints come from browsers, which means from anyone who can sign in, so
they are checked twice: when a subscription is stored (`check_subscription`)
and again on every connection, where the host is resolved, every address
must be public, and the connection goes to exactly the address that was
checked. A name that resolves to a public address when stored and to
127.0.0.1 later (DNS rebinding) is refused at connect time.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import re
import socket
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, cast
from urllib.parse import urlsplit

import httpcore
import httpx
from cryptography.hazmat.primitives.asymmetric import ec

from orderchat.core.errors import BadRequest
from orderchat.core.targets import refused_addresses
from orderchat.core.texts import say

MAX_ENDPOINT_CHARS: Final = 2048
AUTH_SECRET_BYTES: Final = 16

_B64URL = re.compile(r"[A-Za-z0-9_-]*={0,2}")
_HOSTNAME = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?")


def b64url_decode(value: str) -> bytes | None:
    """Base64url with or without padding, as browsers' `toJSON()` gives it; None if it is not."""
    if not _B64URL.fullmatch(value):
        return None
    bare = value.rstrip("=")
    try:
        return base64.urlsafe_b64decode(bare + "=" * (-len(bare) % 4))
    except (binascii.Error, ValueError):
        return None


@dataclass(frozen=True, slots=True)
class PushTarget:
    """Where one browser is reached, as its `PushSubscription.toJSON()` gave it."""

    endpoint: str
    p256dh: str
    auth: str


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A push endpoint taken apart: the origin is the VAPID audience."""

    scheme: str
    host: str
    port: int
    origin: str
    literal: bool  # the host is an IP address, so nothing is to be resolved


def is_public_address(address: str) -> bool:
    """Whether an address is somewhere on the internet, not this machine or a private network."""
    return not refused_addresses([address], allow_private=False)


def _ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def parse_endpoint(endpoint: str, *, allow_private: bool) -> Endpoint:
    """An endpoint's parts, refused when it cannot be one; a literal IP is judged here.

    `allow_private` lets a test or a closed network use plain http and local
    addresses; nowhere else may a browser make the server post to them.
    """
    if len(endpoint) > MAX_ENDPOINT_CHARS:
        raise BadRequest(say("push.endpoint_too_long", max_chars=MAX_ENDPOINT_CHARS))
    not_url = BadRequest(say("push.endpoint_not_url"))
    if not endpoint.isascii() or not endpoint.isprintable() or " " in endpoint:
        raise not_url
    try:
        parts = urlsplit(endpoint)
        port = parts.port
    except ValueError:
        raise not_url from None
    if port == 0:
        raise not_url
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise not_url if not scheme else BadRequest(say("push.endpoint_not_encrypted"))
    if scheme == "http" and not allow_private:
        raise BadRequest(say("push.endpoint_not_encrypted"))
    host = parts.hostname or ""
    literal = _ip_literal(host)
    if not (literal or _HOSTNAME.fullmatch(host)) or len(host) > 253:
        raise not_url
    if parts.username is not None or parts.password is not None or parts.fragment:
        raise not_url
    if literal and not allow_private and not is_public_address(host):
        raise BadRequest(say("push.endpoint_host_not_public"))
    default_port = 443 if scheme == "https" else 80
    shown = f"[{host}]" if ":" in host else host
    origin = f"{scheme}://{shown}" + (f":{port}" if port not in (None, default_port) else "")
    return Endpoint(scheme, host, port or default_port, origin, literal)


def check_p256dh(value: str) -> bytes:
    """The subscription's public key as the 65 bytes of an uncompressed point on P-256."""
    raw = b64url_decode(value)
    if raw is None or len(raw) != 65 or raw[0] != 0x04:
        raise BadRequest(say("push.public_key_invalid"))
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
    except ValueError:  # not on the curve
        raise BadRequest(say("push.public_key_invalid")) from None
    return raw


def check_auth(value: str) -> bytes:
    raw = b64url_decode(value)
    if raw is None or len(raw) != AUTH_SECRET_BYTES:
        raise BadRequest(say("push.auth_secret_invalid"))
    return raw


def _checked(endpoint: str, p256dh: str, auth: str, allow_private: bool) -> Endpoint:
    parsed = parse_endpoint(endpoint, allow_private=allow_private)
    check_p256dh(p256dh)
    check_auth(auth)
    return parsed


def _require_public(addresses: Iterable[str]) -> None:
    found = list(addresses)
    if not found:
        raise BadRequest(say("push.endpoint_host_unknown"))
    if not all(is_public_address(address) for address in found):
        raise BadRequest(say("push.endpoint_host_not_public"))


def _addresses(infos: Iterable[tuple[object, ...]]) -> list[str]:
    """The distinct addresses of `getaddrinfo` results, in its order."""
    seen: dict[str, None] = {}
    for info in infos:
        sockaddr = cast(tuple[str, int], info[4])
        seen.setdefault(sockaddr[0], None)
    return list(seen)


def check_subscription(endpoint: str, p256dh: str, auth: str, *, allow_private: bool) -> PushTarget:
    """A subscription fit to store, or BadRequest saying what is wrong with it.

    Resolves the endpoint's host name with a blocking call: on the event loop,
    use `check_subscription_async`.
    """
    parsed = _checked(endpoint, p256dh, auth, allow_private)
    if not (parsed.literal or allow_private):
        try:
            infos = socket.getaddrinfo(parsed.host, parsed.port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            infos = []
        _require_public(_addresses(infos))
    return PushTarget(endpoint, p256dh, auth)


async def check_subscription_async(
    endpoint: str, p256dh: str, auth: str, *, allow_private: bool, timeout_s: float = 5.0
) -> PushTarget:
    """`check_subscription` without blocking the loop; a name that takes over `timeout_s`
    to resolve counts as one that does not resolve."""
    parsed = _checked(endpoint, p256dh, auth, allow_private)
    if not (parsed.literal or allow_private):
        try:
            async with asyncio.timeout(timeout_s):
                infos = await asyncio.get_running_loop().getaddrinfo(
                    parsed.host, parsed.port, type=socket.SOCK_STREAM
                )
        except (OSError, UnicodeError, TimeoutError):
            infos = []
        _require_public(_addresses(infos))
    return PushTarget(endpoint, p256dh, auth)


class EndpointBlocked(Exception):
    """The endpoint's host resolved to an address this server may not post to."""


class _PinnedBackend(httpcore.AsyncNetworkBackend):
    """Resolves, checks, and connects to the very address it checked.

    httpx resolves names itself, after any check made beforehand, so a check
    outside the connection can be raced by a changing DNS answer. TLS still
    verifies the certificate against the endpoint's host name: httpcore gives
    that name, not the address, to the handshake.
    """

    def __init__(self, allow_private: bool) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._allow_private = allow_private

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's signature)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await _resolve(host, port, timeout)
        if not self._allow_private and not all(map(is_public_address, addresses)):
            raise EndpointBlocked(host)
        failure: Exception = httpcore.ConnectError(f"{host} does not resolve")
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's signature)
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise EndpointBlocked(path)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


async def _resolve(host: str, port: int, timeout_s: float | None) -> list[str]:
    if _ip_literal(host):
        return [host]
    try:
        async with asyncio.timeout(timeout_s):
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
    except TimeoutError:
        raise httpcore.ConnectTimeout(f"resolving {host} timed out") from None
    except (OSError, UnicodeError):
        return []
    return _addresses(infos)


def guarded_transport(
    allow_private: bool, ssl_context: ssl.SSLContext | None = None
) -> httpx.AsyncHTTPTransport:
    """httpx's transport on a pool that connects through `_PinnedBackend`.

    httpx takes no network backend, so its pool is replaced by one built the
    same way with ours. No proxy from the environment: a proxy would do the
    resolving, out of the guard's reach.
    """
    transport = httpx.AsyncHTTPTransport(trust_env=False)
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=ssl_context or httpx.create_ssl_context(trust_env=False),
        max_connections=64,
        max_keepalive_connections=16,
        keepalive_expiry=30.0,
        network_backend=_PinnedBackend(allow_private),
    )
    return transport
