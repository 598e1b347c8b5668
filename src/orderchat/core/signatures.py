"""Signed webhook deliveries: the HMAC and the timestamp window, with no I/O.

An order platform signs each delivery with the secret it shares with the shop::

    X-OrderChat-Timestamp: 1718000000
    X-OrderChat-Signature: sha256=<hex HMAC-SHA256(secret, "1718000000." + raw body)>

Rules:
- The signature covers the timestamp as sent and the body byte for byte, so a
  re-encoded body or a moved timestamp no longer matches.
- Digests are compared in constant time (`hmac.compare_digest`), so the time an
  answer takes tells a forger nothing about how much of a guess was right.
- A timestamp more than `TOLERANCE_S` away from the receiver's clock is refused,
  which bounds how long a captured delivery stays usable. Within the window the
  caller must still refuse a signature it has seen before (`digest` is the key
  to remember: it is canonical lower-case hex, whatever case the sender used).

The clock is an argument: nothing here reads the time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from enum import StrEnum

from orderchat.core.errors import Unauthorized
from orderchat.core.texts import Text, say

SCHEME = "sha256"
# Five minutes either way: enough for clock drift and a platform's retry
# queue, short enough that a captured delivery soon goes stale.
TOLERANCE_S = 300
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"sha256=([0-9a-fA-F]{64})")


class Rejection(StrEnum):
    MISSING = "missing"
    MALFORMED = "malformed"
    STALE = "stale"
    MISMATCH = "mismatch"


class SignatureRejected(Unauthorized):
    """The delivery is not provably from the platform; `reason` says which check failed."""

    def __init__(self, reason: Rejection, text: Text) -> None:
        super().__init__(text)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Verified:
    timestamp_s: int
    digest: str  # lower-case hex: the delivery's identity for replay checks


def signed_payload(timestamp: str, body: bytes) -> bytes:
    return timestamp.encode("ascii") + b"." + body


def digest(secret: str, timestamp: str, body: bytes) -> str:
    """The hex HMAC-SHA256 of `"{timestamp}.{body}"` under `secret`."""
    mac = hmac.new(secret.encode("utf-8"), signed_payload(timestamp, body), hashlib.sha256)
    return mac.hexdigest()


def sign(secret: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The two headers a sender attaches; the tests and the docs' examples use it."""
    stamp = str(timestamp)
    return {
        "X-OrderChat-Timestamp": stamp,
        "X-OrderChat-Signature": f"{SCHEME}={digest(secret, stamp, body)}",
    }


def verify(
    secret: str,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    now_s: float,
    tolerance_s: float = TOLERANCE_S,
) -> Verified:
    """Check a delivery's signature and timestamp.

    Raises:
        SignatureRejected: a header is missing or malformed, the timestamp is
            outside the window, or the signature does not match.
    """
    if not timestamp or not signature:
        raise SignatureRejected(Rejection.MISSING, say("signatures.send_x_orderchat_timestamp_x"))
    if not _TIMESTAMP.fullmatch(timestamp):
        raise SignatureRejected(
            Rejection.MALFORMED, say("signatures.x_orderchat_timestamp_must_unix")
        )
    found = _SIGNATURE.fullmatch(signature)
    if found is None:
        raise SignatureRejected(
            Rejection.MALFORMED, say("signatures.x_orderchat_signature_must_sha256")
        )
    stamp = int(timestamp)
    if abs(now_s - stamp) > tolerance_s:
        raise SignatureRejected(
            Rejection.STALE, say("signatures.timestamp_more_than_s_from", tolerance_s=tolerance_s)
        )
    expected = digest(secret, timestamp, body)
    if not hmac.compare_digest(expected, found.group(1).lower()):
        raise SignatureRejected(Rejection.MISMATCH, say("signatures.signature_does_not_match"))
    return Verified(stamp, expected)
