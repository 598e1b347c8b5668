"""A real SMTP server on 127.0.0.1 for the mail tests, and a certificate for its TLS.

The server (aiosmtpd, in a thread of the test process) records what reached
each stage, so a test can tell "refused at RCPT" from "never got as far as
MAIL" — the difference between a refusal and nothing sent in the clear.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support import free_port

HOST = "127.0.0.1"
USERNAME = "orders"
PASSWORD = "correct horse"


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for localhost and 127.0.0.1, and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def server_tls_context(cert: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*cert)
    return context


@dataclass
class Received:
    """One mail the server took, parsed back as a reader's client would."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    over_tls: bool
    signed_in: bool
    received_at: float = 0.0  # time.time() once the whole mail was in (end of DATA)


@dataclass
class Recorder:
    """An aiosmtpd handler that keeps every stage a client reached."""

    refuse_rcpt: str | None = None
    received: list[Received] = field(default_factory=list)
    mail_commands: list[str] = field(default_factory=list)
    sign_ins: list[tuple[bytes, bool]] = field(default_factory=list)

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        self.mail_commands.append(address)
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.refuse_rcpt is not None:
            return self.refuse_rcpt
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        received_at = time.time()
        assert isinstance(envelope.content, bytes) and envelope.mail_from is not None
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        over_tls = server.transport is not None and bool(
            server.transport.get_extra_info("ssl_object")
        )
        self.received.append(
            Received(
                envelope.mail_from,
                list(envelope.rcpt_tos),
                parsed,
                over_tls,
                bool(session.authenticated),
                received_at,
            )
        )
        return "250 Message accepted for delivery"

    def authenticator(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        ok = auth_data.login == USERNAME.encode() and auth_data.password == PASSWORD.encode()
        over_tls = server.transport is not None and bool(
            server.transport.get_extra_info("ssl_object")
        )
        self.sign_ins.append((auth_data.login, over_tls))
        return AuthResult(success=ok, handled=False)  # False: the server answers 535 itself


@contextmanager
def smtp_server(recorder: Recorder, port: int | None = None, **smtp_options: Any) -> Iterator[int]:
    """An aiosmtpd server on 127.0.0.1 for the `with` block; yields its port.

    `smtp_options` go to aiosmtpd: `tls_context` (offers STARTTLS),
    `ssl_context` (implicit TLS), `auth_required`, `auth_require_tls`.
    """
    controller = Controller(
        recorder,
        hostname=HOST,
        port=port or free_port(),
        server_hostname="localhost",  # skips a name lookup of this machine
        ready_timeout=5.0,
        authenticator=recorder.authenticator,
        **smtp_options,
    )
    controller.start()
    try:
        yield controller.port
    finally:
        controller.stop()
