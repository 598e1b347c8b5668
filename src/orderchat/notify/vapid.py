"""The server's VAPID identity (RFC 8292): its key, and how a token is spelled."""

from __future__ import annotations

import base64
import logging
import os
import secrets
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

logger = logging.getLogger(__name__)

KEY_FILE: Final = "vapid_private.pem"


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class VapidKeys:
    """The server's VAPID identity, kept for the life of the installation.

    Browsers bind each subscription to the `applicationServerKey` they were
    given, and push services refuse (403) a request signed with any other key,
    so a key made anew at every start would silently orphan every subscription.
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
    def load_or_create(cls, data_dir: Path) -> VapidKeys:
        """The key in `data_dir`, made there on the first start.

        Nodes sharing a data directory may start together: the key is written
        to a file of its own and linked into place, so exactly one key wins and
        every node loads that one. A file that does not hold a P-256 key stops
        the start rather than being replaced, for the reason the class gives.
        """
        path = data_dir / KEY_FILE
        if not path.exists():
            data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            keys = cls.generate()
            if _write_new(path, keys._private_pem()):
                return keys
        return cls._load(path)

    @classmethod
    def _load(cls, path: Path) -> VapidKeys:
        _restrict(path)
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except ValueError as exc:
            raise ValueError(f"{path} does not hold a PEM private key: {exc}") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{path} does not hold an EC private key")
        return cls(key)

    @classmethod
    def from_pem(cls, pem: str) -> VapidKeys:
        """The key as `private_pem` wrote it (kept in the database, shared by every node)."""
        key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
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


def _write_new(path: Path, content: bytes) -> bool:
    """Put `content` at `path` unless a file is there already; False if one was.

    Written whole and synced before it is linked in, so nobody ever reads half a key.
    """
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as file:
            os.fchmod(file.fileno(), 0o600)  # whatever the umask
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return False
    finally:
        temporary.unlink(missing_ok=True)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return True


def _restrict(path: Path) -> None:
    """A key others can read is narrowed to its owner, not refused: refusing stops push for all."""
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        try:
            path.chmod(0o600)
            logger.warning("%s was readable by others (mode %o); now 0600", path, mode)
        except OSError as exc:
            logger.warning("%s is readable by others (mode %o): %s", path, mode, exc)


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
