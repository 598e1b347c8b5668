"""The server's VAPID identity (RFC 8292): its key, and how a token is spelled."""

from __future__ import annotations

import base64
import logging
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

logger = logging.getLogger(__name__)


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class VapidKeys:
    """The server's VAPID identity, kept for the life of the installation.

    Browsers bind each subscription to the `applicationServerKey` they were
    given, and push services refuse (403) a request signed with any other key,
    so a key made anew at every start would silently orphan every subscription.
    It is kept in the database (services/notify/wiring.py), where every node of
    a cluster finds the same one and backups include it.
    """

    def __init__(self, private_key: ec.EllipticCurvePrivateKey) -> None:
        if not isinstance(private_key.curve, ec.SECP256R1):
            raise ValueError("a VAPID key is a P-256 key")
        self.private_key = private_key
        point = private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        self._public_key = b64url_encode(point)

    @classmethod
    def generate(cls) -> VapidKeys:
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @classmethod
    def from_pem(cls, pem: str) -> VapidKeys:
        """The key as `private_pem` wrote it (kept in the database, shared by every node)."""
        try:
            key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
        except ValueError:
            raise ValueError("the stored VAPID key is not a PEM private key") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError("the stored VAPID key is not an EC private key")
        return cls(key)

    def private_pem(self) -> str:
        return self._private_pem().decode("ascii")

    @property
    def public_key(self) -> str:
        """What browsers take as `applicationServerKey`: base64url of the uncompressed point."""
        return self._public_key

    def _private_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def check_subject(subject: str) -> None:
    """RFC 8292's `sub`: how a push service's operator reaches ours when something goes wrong."""
    if subject.startswith("mailto:") and "@" in subject:
        return
    if subject.startswith("https://") and urlsplit(subject).hostname:
        return
    raise ValueError(f"the VAPID subject is a mailto: or https: URL, not {subject!r}")


def vapid_header(signed: str) -> str:
    """py_vapid's `vapid t=…,k=…` in the spelling of RFC 8292's own example, `t=…, k=…`."""
    scheme, _, rest = signed.partition(" ")
    params = dict(part.strip().split("=", 1) for part in rest.split(","))
    return f"{scheme} t={params['t']}, k={params['k']}"
