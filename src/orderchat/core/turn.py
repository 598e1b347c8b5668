"""ICE servers for a call, with TURN credentials that expire on their own.

coturn's `use-auth-secret` ("TURN REST API") checks a password the server can
make without telling coturn anything: the username is `EXPIRY:ANYTHING` and
the password base64(HMAC-SHA1(shared secret, username)). We put the user and
the call in ANYTHING, so a credential names whom it was made for, and the
secret never leaves the server.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class IceConfig:
    stun_urls: tuple[str, ...] = ()
    turn_urls: tuple[str, ...] = ()
    turn_secret: str | None = None
    # Long enough for a call: coturn checks it on every allocation refresh.
    credential_ttl_s: int = 4 * 3600
    # Media only through TURN: no party learns another's addresses (a customer
    # never sees where the staff sit), at the cost of the relay's bandwidth.
    relay_only: bool = False

    @property
    def transport_policy(self) -> str:
        """RTCConfiguration.iceTransportPolicy for browsers."""
        return "relay" if self.relay_only else "all"


def turn_password(secret: str, username: str) -> str:
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def turn_username(expires_s: int, user: str, call: str | None) -> str:
    return f"{expires_s}:{user}" if call is None else f"{expires_s}:{user}:{call}"


def ice_servers(
    config: IceConfig, user: str, call: str | None, now_s: int
) -> list[dict[str, object]]:
    """The RTCIceServer list a browser is given: STUN as is, TURN with a fresh credential.

    TURN URLs without a secret are left out: a TURN server that cannot check
    our credentials would only make every call wait for it to refuse.
    """
    servers: list[dict[str, object]] = []
    if config.stun_urls:
        servers.append({"urls": list(config.stun_urls)})
    if config.turn_urls and config.turn_secret:
        username = turn_username(now_s + config.credential_ttl_s, user, call)
        servers.append(
            {
                "urls": list(config.turn_urls),
                "username": username,
                "credential": turn_password(config.turn_secret, username),
            }
        )
    return servers
