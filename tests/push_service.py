"""A browser and its push service in one, on a loopback port: what web push is tested against.

It speaks the real protocol and trusts nothing of ours. Like a browser, it
makes subscriptions (a P-256 key pair and a 16-byte auth secret each, an
endpoint `http://127.0.0.1:<port>/push/<id>`) and opens what arrives
(RFC 8291, `aes128gcm`, with http_ece). Like a push service, it checks
every request's VAPID token itself (RFC 8292: an ES256 JWT verified with
`cryptography` against the `k` the request names; `aud` its own origin; `exp`
ahead and at most 24 h ahead; a `sub`) and answers as real services do:
401 for a missing or bad token, 403 for a key other than the one the
subscription was made with, 400 for a body it cannot open, 413 for one over
4096 bytes, 410 for a subscription that is gone, and whatever it is told to.

    with PushService() as service:
        subscription = service.subscribe(application_server_key=keys.public_key)
        ...  # post to subscription.endpoint
        (delivery,) = await service.wait_for(1)
        assert delivery.payload == b"..."

The server runs on a thread of its own, so it answers whether the test is
async or not and whichever event loop the sender runs on. A module's fixture
(as in tests/integration/test_push.py)::

    @pytest.fixture
    def push_service() -> Iterator[PushService]:
        with PushService() as service:
            yield service

A server under test posts to it only when allowed to reach private
addresses over plain http (`PushSender(..., allow_private=True)`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import datetime
import ipaddress
import itertools
import json
import re
import secrets
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import http_ece
import uvicorn
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

MAX_BODY_BYTES = 4096
MAX_TOKEN_LIFETIME_S = 24 * 3600
URGENCIES = ("very-low", "low", "normal", "high")
START_TIMEOUT_S = 10.0
_TOPIC = re.compile(r"[A-Za-z0-9_-]{1,32}")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Subscription:
    """What `PushManager.subscribe()` gives a page: the endpoint and the keys to encrypt to."""

    id: str
    endpoint: str
    p256dh: str
    auth: str
    application_server_key: str | None
    private_key: ec.EllipticCurvePrivateKey = field(repr=False)

    def to_json(self) -> dict[str, Any]:
        """The shape of `PushSubscription.toJSON()`, as a page posts it to its server."""
        return {
            "endpoint": self.endpoint,
            "expirationTime": None,
            "keys": {"p256dh": self.p256dh, "auth": self.auth},
        }


@dataclass(frozen=True)
class Delivery:
    """One push message accepted and opened."""

    subscription_id: str
    ttl: int
    urgency: str | None  # as sent; None when the header was left out
    topic: str | None
    payload: bytes
    claims: dict[str, Any]  # the VAPID token's claims, checked
    vapid_key: str  # the `k` the request named
    connection: int  # the sender's port: the same one for requests on one connection
    # When the request reached the service (time.time()), before it was checked and
    # opened: what a benchmark sets against the message's commit.
    received_at: float = 0.0


@dataclass(frozen=True)
class Refusal:
    """A request answered with an error, and why: for tests that expect one, and for failures."""

    subscription_id: str | None
    status: int
    reason: str


class Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass
class _Script:
    """Answers the service was told to give before handling requests properly."""

    failures: list[tuple[int, str | None]] = field(default_factory=list)
    stalls: list[float] = field(default_factory=list)
    gone: set[str] = field(default_factory=set)


class PushService:
    """The receiver; `with PushService() as service:` starts and stops it.

    It listens on 127.0.0.1 whatever its `name`; a test that gives it a name of
    its own resolves that name to 127.0.0.1, and the name is then what its
    endpoints say and what it expects as the tokens' audience.
    """

    def __init__(
        self, name: str = "127.0.0.1", *, tls: bool = False, certificate_name: str | None = None
    ) -> None:
        """`tls` serves https with a certificate for `certificate_name` (else `name`) from a
        CA of its own, which `client_ssl_context()` trusts."""
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self.port = int(self._socket.getsockname()[1])
        self.origin = f"{'https' if tls else 'http'}://{name}:{self.port}"
        self._files = tempfile.TemporaryDirectory(prefix="push-service-")
        self._ca_path: Path | None = None
        tls_files: dict[str, Any] = {}
        if tls:
            self._ca_path, cert, key = make_certificate(
                certificate_name or name, Path(self._files.name)
            )
            tls_files = {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._subscriptions: dict[str, Subscription] = {}
        self._deliveries: list[Delivery] = []
        self._refusals: list[Refusal] = []
        self._script = _Script()
        self._messages = itertools.count(1)
        self.requests = 0
        app = Starlette(routes=[Route("/push/{subscription_id}", self._push, methods=["POST"])])
        config = uvicorn.Config(
            app,
            log_config=None,
            access_log=False,
            lifespan="off",
            loop="asyncio",
            http="h11",
            ws="none",
            timeout_graceful_shutdown=1,
            **tls_files,
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    def __enter__(self) -> PushService:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        self._socket.listen(64)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the push service did not start")
            time.sleep(0.005)

    def close(self) -> None:
        """Stop answering: a sender then finds nobody listening, as when a service is down."""
        self._closing.set()
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._socket.close()
        self._files.cleanup()

    def client_ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts this service's CA, and nothing else."""
        assert self._ca_path is not None, "the service was started without tls"
        return ssl.create_default_context(cafile=str(self._ca_path))

    # What a test sets up.

    def subscribe(self, application_server_key: str | None = None) -> Subscription:
        """A new subscription, bound to `application_server_key` when given, as browsers bind it."""
        private_key = ec.generate_private_key(ec.SECP256R1())
        point = private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        subscription_id = secrets.token_urlsafe(12)
        subscription = Subscription(
            id=subscription_id,
            endpoint=f"{self.origin}/push/{subscription_id}",
            p256dh=b64url(point),
            auth=b64url(secrets.token_bytes(16)),
            application_server_key=application_server_key,
            private_key=private_key,
        )
        with self._lock:
            self._subscriptions[subscription_id] = subscription
        return subscription

    def make_gone(self, subscription: Subscription) -> None:
        """From now on the subscription answers 410, as when the user revoked the permission."""
        with self._lock:
            self._script.gone.add(subscription.id)

    def fail_next(self, count: int, status: int, retry_after: str | None = None) -> None:
        """Answer the next `count` requests with `status` (and Retry-After), whatever they hold."""
        with self._lock:
            self._script.failures.extend([(status, retry_after)] * count)

    def stall_next(self, count: int, seconds: float) -> None:
        """Hold the next `count` requests this long before handling them, as an overloaded
        service does; the sender may give up first, and the message may arrive all the same."""
        with self._lock:
            self._script.stalls.extend([seconds] * count)

    # What a test reads.

    @property
    def deliveries(self) -> list[Delivery]:
        with self._lock:
            return list(self._deliveries)

    @property
    def refusals(self) -> list[Refusal]:
        with self._lock:
            return list(self._refusals)

    async def wait_for(
        self, count: int, *, subscription_id: str | None = None, timeout_s: float = 5.0
    ) -> list[Delivery]:
        """The first `count` deliveries (to one subscription, if named) once they are in.

        Fails the test with what did arrive, and what was refused, after `timeout_s`.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            found = self._matching(subscription_id)
            if len(found) >= count:
                return found[:count]
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{len(found)} of {count} pushes arrived in {timeout_s} s;"
                    f" refused: {self.refusals}"
                )
            await asyncio.sleep(0.01)

    def _matching(self, subscription_id: str | None) -> list[Delivery]:
        return [
            d
            for d in self.deliveries
            if subscription_id is None or d.subscription_id == subscription_id
        ]

    # The push service.

    async def _push(self, request: Request) -> Response:
        received_at = time.time()
        subscription_id = request.path_params["subscription_id"]
        with self._lock:
            self.requests += 1
            subscription = self._subscriptions.get(subscription_id)
            failure = self._script.failures.pop(0) if self._script.failures else None
            stall = self._script.stalls.pop(0) if self._script.stalls else 0.0
            gone = subscription_id in self._script.gone
        await self._stall(stall)
        try:
            if subscription is None:
                raise Refused(404, "no such subscription")
            if gone:
                raise Refused(410, "the subscription has expired or was revoked")
            if failure is not None:
                status, retry_after = failure
                headers = {"Retry-After": retry_after} if retry_after is not None else {}
                self._refuse(subscription_id, status, "told to fail")
                return Response("told to fail", status_code=status, headers=headers)
            delivery = _accept(
                subscription, request, await request.body(), self.origin, received_at
            )
        except Refused as refusal:
            self._refuse(subscription_id, refusal.status, refusal.reason)
            return Response(refusal.reason, status_code=refusal.status)
        with self._lock:
            self._deliveries.append(delivery)
            message = next(self._messages)
        return Response(
            status_code=201,
            headers={"Location": f"{self.origin}/message/{message}", "TTL": str(delivery.ttl)},
        )

    async def _stall(self, seconds: float) -> None:
        """Sleep, but not past `close()`: a stalled request must not hold the shutdown up."""
        deadline = time.monotonic() + seconds
        # A thread's Event, not the loop's: close() sets it from the test's thread.
        while time.monotonic() < deadline and not self._closing.is_set():  # noqa: ASYNC110
            await asyncio.sleep(0.01)

    def _refuse(self, subscription_id: str | None, status: int, reason: str) -> None:
        with self._lock:
            self._refusals.append(Refusal(subscription_id, status, reason))


def _accept(
    subscription: Subscription,
    request: Request,
    body: bytes,
    origin: str,
    received_at: float = 0.0,
) -> Delivery:
    """Check a push request as a push service does, then open it as the browser does."""
    claims, key = check_vapid(request.headers.get("authorization"), origin)
    if subscription.application_server_key not in (None, key):
        raise Refused(403, "the VAPID key is not the one the subscription was made with")
    ttl = request.headers.get("ttl", "")
    if not ttl.isdigit():
        raise Refused(400, "a TTL header is required")
    urgency = request.headers.get("urgency")
    if urgency is not None and urgency not in URGENCIES:
        raise Refused(400, f"unknown urgency {urgency!r}")
    topic = request.headers.get("topic")
    if topic is not None and not _TOPIC.fullmatch(topic):
        raise Refused(400, f"bad topic {topic!r}")
    return Delivery(
        subscription_id=subscription.id,
        ttl=int(ttl),
        urgency=urgency,
        topic=topic,
        payload=_open(subscription, request.headers.get("content-encoding"), body),
        claims=claims,
        vapid_key=key,
        connection=request.client.port if request.client else 0,
        received_at=received_at,
    )


def _open(subscription: Subscription, encoding: str | None, body: bytes) -> bytes:
    """Decrypt as a browser does: with the subscription's own private key and auth secret."""
    if len(body) > MAX_BODY_BYTES:
        raise Refused(413, f"a body of {len(body)} bytes is over {MAX_BODY_BYTES}")
    if not body:
        return b""
    if encoding != "aes128gcm":
        raise Refused(400, f"content encoding {encoding!r} is not aes128gcm")
    if len(body) < 21 or body[20] != 65:
        raise Refused(400, "the aes128gcm header does not carry the sender's 65-byte key")
    try:
        payload = http_ece.decrypt(
            body,
            private_key=subscription.private_key,
            auth_secret=unb64url(subscription.auth),
            version="aes128gcm",
        )
    except Exception as exc:  # http_ece raises assorted errors for a body it cannot open
        raise Refused(400, f"cannot decrypt: {exc!r}") from None
    return bytes(payload)


def _auth_params(header: str | None) -> dict[str, str]:
    """`vapid t=…, k=…` (RFC 8292 section 3) as its parameters."""
    if header is None:
        raise Refused(401, "no Authorization header")
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != "vapid":
        raise Refused(401, f"Authorization scheme {scheme!r} is not vapid")
    params: dict[str, str] = {}
    for part in rest.split(","):
        name, equals, value = part.strip().partition("=")
        if equals:
            params[name.strip().lower()] = value.strip()
    if "t" not in params or "k" not in params:
        raise Refused(401, "the vapid Authorization needs t= and k=")
    return params


def check_vapid(
    header: str | None, origin: str, now: Callable[[], float] = time.time
) -> tuple[dict[str, Any], str]:
    """The claims and key of a valid VAPID Authorization header, else Refused(401)."""
    params = _auth_params(header)
    token, key = params["t"], params["k"]
    try:
        public_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(key))
        head_part, claims_part, signature_part = token.split(".")
        head = json.loads(unb64url(head_part))
        claims = json.loads(unb64url(claims_part))
        signature = unb64url(signature_part)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise Refused(401, "the VAPID token or key is malformed") from None
    if not isinstance(head, dict) or head.get("alg") != "ES256" or len(signature) != 64:
        raise Refused(401, "the VAPID token is not ES256")
    der = utils.encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )
    try:
        public_key.verify(der, f"{head_part}.{claims_part}".encode(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise Refused(401, "the VAPID signature does not match its key") from None
    _check_claims(claims, origin, now())
    return claims, key


def _check_claims(claims: object, origin: str, now: float) -> None:
    if not isinstance(claims, dict):
        raise Refused(401, "the VAPID claims are not an object")
    if claims.get("aud") != origin:
        raise Refused(401, f"aud {claims.get('aud')!r} is not {origin!r}")
    expires = claims.get("exp")
    if not isinstance(expires, int) or not now < expires <= now + MAX_TOKEN_LIFETIME_S:
        raise Refused(401, f"exp {expires!r} is not within 24 h from now")
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject.startswith(("mailto:", "https:")):
        raise Refused(401, f"sub {subject!r} is not a mailto: or https: URL")


def fake_dns(answers: dict[str, list[str]]) -> Callable[..., Any]:
    """A `socket.getaddrinfo` that answers the names in `answers` (read at each call, so a
    test can change an answer) and asks the real one about any other. An empty list is
    a name that does not resolve."""
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name not in answers:
            return real(host, port, *args, **kwargs)
        if not answers[name]:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (ip, int(port or 0), 0, 0))
            if ":" in ip
            else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, int(port or 0)))
            for ip in answers[name]
        ]

    return getaddrinfo


def make_certificate(name: str, directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for `name` signed by it: (CA, certificate, key) files."""
    now = datetime.datetime.now(datetime.UTC)

    def build(subject: str, issuer: str, public: Any, signer: Any, ca: bool) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()),
                critical=False,
            )
        )
        if ca:
            usage = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
            builder = builder.add_extension(usage, critical=True)
        else:
            san: x509.GeneralName = x509.DNSName(name)
            with contextlib.suppress(ValueError):
                san = x509.IPAddress(ipaddress.ip_address(name))
            builder = builder.add_extension(x509.SubjectAlternativeName([san]), critical=False)
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
            )
        return builder.sign(signer, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    key = ec.generate_private_key(ec.SECP256R1())
    ca = build("push service test CA", "push service test CA", ca_key.public_key(), ca_key, True)
    certificate = build(name, "push service test CA", key.public_key(), ca_key, False)
    paths = directory / "ca.pem", directory / "server.pem", directory / "server-key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths
