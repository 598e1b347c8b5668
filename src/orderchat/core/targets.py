"""Where the server may send a request of its own: public addresses only, unless allowed.

A webhook URL is typed by an admin, and a push endpoint comes from a browser:
either could name the server's own loopback, the database's port or a cloud
metadata address (SSRF). A target is refused when its host is, or resolves
to, an address that is not globally routable. The check runs when the target
is registered (literal addresses) and again before every request (names are
resolved then), so a name that later points inside is caught too.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from orderchat.core.errors import BadRequest
from orderchat.core.texts import say

MAX_URL = 2048


@dataclass(frozen=True, slots=True)
class Target:
    url: str
    host: str
    port: int


def parse_target(url: str, *, allow_private: bool) -> Target:
    """A URL the server may post to: http(s), a host, no credentials in it.

    Raises:
        BadRequest: not such a URL, or its host is a literal non-public address
            (unless `allow_private`).
    """
    if not isinstance(url, str) or not 0 < len(url) <= MAX_URL:
        raise BadRequest(say("targets.url_needed", limit=MAX_URL))
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise BadRequest(say("targets.url_needed", limit=MAX_URL)) from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise BadRequest(say("targets.url_needed", limit=MAX_URL))
    if parts.username is not None or parts.password is not None:
        raise BadRequest(say("targets.no_credentials_in_url"))
    if parts.scheme == "http" and not allow_private:
        raise BadRequest(say("targets.https_needed"))
    host = parts.hostname
    literal = _literal(host)
    if literal is not None and not allow_private and not is_public(literal):
        raise BadRequest(say("targets.private_address", host=host))
    return Target(url, host, port or (443 if parts.scheme == "https" else 80))


def refused_addresses(addresses: Iterable[str], *, allow_private: bool) -> list[str]:
    """The addresses a resolved name gave that the server must not reach."""
    if allow_private:
        return []
    refused = []
    for address in addresses:
        literal = _literal(address)
        if literal is None or not is_public(literal):
            refused.append(address)
    return refused


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return is_public(address.ipv4_mapped)
    return address.is_global and not address.is_multicast


def _literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None
