"""The e-mail channel's edge: hand a composed mail to the shop's SMTP server.

The queue that calls `Mailer.send` decides whether to try a mail again; what
it needs from here is an honest answer to "can trying again help?". So every
SMTP or network trouble comes out as one exception, `MailFailed`, whose
`permanent` says it: a refused recipient or a refused password stays refused,
while a server that is down, slow, or not speaking TLS today may be fine in
an hour. A bounce that arrives later as a delivery report is not seen here.

Encryption is never optional once asked for: with `security="starttls"` a
server that does not offer STARTTLS gets nothing, not even the envelope, so a
stripped STARTTLS (a downgrade on the path) cannot turn into a plaintext mail
or password. Plain SMTP is only for a relay on the same machine.

The mails themselves are composed in `mail_compose`; they are re-exported here
so a caller imports the channel from one place.
"""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import getaddresses, parseaddr
from typing import Literal

import aiosmtplib

from orderchat.notify.mail_compose import (
    MAX_LISTED,
    MAX_TEXT_CHARS,
    MissedItem,
    cut,
    missed_messages_mail,
    order_status_mail,
    sender_domain,
    urgent_reminder_mail,
)

__all__ = [
    "MAX_LISTED",
    "MAX_TEXT_CHARS",
    "MailFailed",
    "Mailer",
    "MissedItem",
    "Security",
    "SmtpSettings",
    "cut",
    "missed_messages_mail",
    "order_status_mail",
    "urgent_reminder_mail",
]

Security = Literal["starttls", "tls", "none"]
SECURITIES: tuple[Security, ...] = ("starttls", "tls", "none")
DEFAULT_PORTS: Mapping[Security, int] = {"starttls": 587, "tls": 465, "none": 25}
ENV = "ORDERCHAT_SMTP_"
# A reason is one line of a delivery log, not a server's whole transcript.
MAX_REASON_CHARS = 200


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    """Where and how to hand mail over; refused at construction when it could leak.

    The password is kept out of `repr`, so settings can be logged.
    """

    host: str
    port: int
    security: Security
    username: str | None
    password: str | None = field(repr=False)
    sender: str
    timeout_s: float = 15.0
    verify_tls: bool = True
    helo_name: str | None = None  # None: the machine's own name

    def __post_init__(self) -> None:
        if self.security not in SECURITIES:
            raise ValueError(f"security must be starttls, tls or none, not {self.security!r}")
        if not 0 < self.port < 65536:
            raise ValueError(f"no TCP port {self.port}")
        if self.security == "none" and not _is_loopback(self.host):
            raise ValueError(
                f"plain SMTP is only for a server on this machine; use starttls or tls for"
                f" {self.host!r}"
            )
        if (self.username is None) != (self.password is None):
            raise ValueError("give both an SMTP username and a password, or neither")
        if self.timeout_s <= 0:
            raise ValueError("the SMTP timeout must be positive")
        sender_domain(self.sender)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SmtpSettings | None:
        """The settings `ORDERCHAT_SMTP_*` give, or None when no host is set (no e-mail).

        HOST, PORT (default by SECURITY: 587, 465 or 25), SECURITY (starttls,
        tls or none; default starttls), USER, PASSWORD, FROM (required), HELO.

        Raises:
            ValueError: a variable is set to something unusable; the message names it.
        """
        host = env.get(f"{ENV}HOST", "").strip()
        if not host:
            return None
        security = _security(env.get(f"{ENV}SECURITY", "").strip().lower() or "starttls")
        port_text = env.get(f"{ENV}PORT", "").strip()
        try:
            port = int(port_text) if port_text else DEFAULT_PORTS[security]
        except ValueError:
            raise ValueError(f"{ENV}PORT must be a number, not {port_text!r}") from None
        sender = env.get(f"{ENV}FROM", "").strip()
        if not sender:
            raise ValueError(f"{ENV}FROM is required when {ENV}HOST is set")
        return cls(
            host=host,
            port=port,
            security=security,
            username=env.get(f"{ENV}USER", "").strip() or None,
            password=env.get(f"{ENV}PASSWORD") or None,
            sender=sender,
            helo_name=env.get(f"{ENV}HELO", "").strip() or None,
        )


class MailFailed(Exception):
    """A mail was not handed over; `permanent` says whether trying again can help.

    permanent=True: retrying cannot help (recipient refused with 5xx, bad
    address, credentials refused); False: try later (connection refused or
    timed out, 4xx, TLS failure, no STARTTLS offered).
    """

    def __init__(self, permanent: bool, reason: str) -> None:
        super().__init__(reason)
        self.permanent = permanent
        self.reason = reason

    def __repr__(self) -> str:
        return f"MailFailed(permanent={self.permanent!r}, reason={self.reason!r})"


class Mailer:
    """Sends each mail on a connection of its own.

    Notifications come a few at a time; a fresh connection costs a handshake
    but never inherits a session the server has half closed, and concurrent
    sends need no lock.
    """

    def __init__(self, settings: SmtpSettings) -> None:
        self._settings = settings
        self._tls = _tls_context(settings.verify_tls)  # reads the CA store: once, not per mail

    async def send(self, message: EmailMessage) -> None:
        """Hand `message` to the server, or raise MailFailed saying why not.

        Returns once the server has accepted the mail; a failure to say
        goodbye after that is ignored, since retrying would send it twice.
        """
        sender, recipients = _envelope(message)
        settings = self._settings
        client = aiosmtplib.SMTP(
            hostname=settings.host,
            port=settings.port,
            use_tls=settings.security == "tls",
            start_tls=False,  # done by hand below, to refuse a server that lacks it
            tls_context=self._tls,
            timeout=settings.timeout_s,
            local_hostname=settings.helo_name,
        )
        try:
            await client.connect()
            await self._secure_and_sign_in(client)
            refused, _ = await client.send_message(message, sender=sender, recipients=recipients)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            client.close()
            raise _failure(exc) from exc
        except BaseException:
            client.close()
            raise
        await _quit(client)
        if refused:  # some recipients took it: trying again would send them a second copy
            raise MailFailed(True, _short("recipient refused: " + _refusals(refused.items())))

    async def _secure_and_sign_in(self, client: aiosmtplib.SMTP) -> None:
        settings = self._settings
        if settings.security == "starttls":
            await client.ehlo()
            if not client.supports_extension("starttls"):
                raise MailFailed(False, "the server offers no STARTTLS; nothing was sent")
            await client.starttls()
        if settings.username is not None and settings.password is not None:
            await client.ehlo()
            if not client.supports_extension("auth"):
                raise MailFailed(True, "authentication failed: the server offers no AUTH")
            await client.login(settings.username, settings.password)


def _security(text: str) -> Security:
    for security in SECURITIES:
        if text == security:
            return security
    raise ValueError(f"{ENV}SECURITY must be starttls, tls or none, not {text!r}")


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _tls_context(verify: bool) -> ssl.SSLContext:
    """The system's trust store and TLS 1.2 or newer; unverified only when tests say so."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _envelope(message: EmailMessage) -> tuple[str, list[str]]:
    """The envelope's sender and recipients, checked before a connection is opened for them."""
    sender = parseaddr(str(message.get("Sender") or message.get("From") or ""))[1]
    fields = [str(value) for name in ("To", "Cc", "Bcc") for value in message.get_all(name, [])]
    recipients = [address for _, address in getaddresses(fields) if address]
    if not recipients or not all(_is_address(address) for address in recipients):
        raise MailFailed(True, _short(f"bad recipient address: {', '.join(fields) or 'none'}"))
    if not _is_address(sender):
        raise MailFailed(True, _short(f"bad sender address: {sender or 'none'}"))
    return sender, recipients


def _is_address(address: str) -> bool:
    local, at, domain = address.rpartition("@")
    return bool(local and at and domain) and not any(c.isspace() for c in address)


async def _quit(client: aiosmtplib.SMTP) -> None:
    try:
        await client.quit()
    except (aiosmtplib.SMTPException, OSError, TimeoutError):
        client.close()


def _failure(exc: BaseException) -> MailFailed:
    """What a trouble from aiosmtplib means for trying again."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [refusal.code for refusal in exc.recipients]
        refusals = _refusals((r.recipient, (r.code, r.message)) for r in exc.recipients)
        permanent = bool(codes) and all(_is_permanent(code) for code in codes)
        return MailFailed(permanent, _short(f"recipient refused: {refusals}"))
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError) and _is_permanent(exc.code):
        return MailFailed(True, _short(f"authentication failed: {exc.code} {exc.message}"))
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return MailFailed(_is_permanent(exc.code), _short(f"{exc.code} {exc.message}"))
    if isinstance(exc, aiosmtplib.SMTPNotSupported):
        return MailFailed(True, _short(exc.message))  # an address that needs SMTPUTF8
    if _caused_by(exc, ssl.SSLError):
        return MailFailed(False, _short(f"TLS failed: {exc}"))
    if _caused_by(exc, TimeoutError):
        return MailFailed(False, _short(f"timed out: {exc}"))
    if isinstance(exc, aiosmtplib.SMTPConnectError):
        return MailFailed(False, _short(f"cannot connect: {exc}"))
    return MailFailed(False, _short(f"{type(exc).__name__}: {exc}"))


def _is_permanent(code: int) -> bool:
    return 500 <= code < 600


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    """Whether `kind` is in the chain: aiosmtplib wraps what the socket raised."""
    seen: list[BaseException] = []
    link: BaseException | None = exc
    while link is not None and not any(link is earlier for earlier in seen):
        if isinstance(link, kind):
            return True
        seen.append(link)
        link = link.__cause__ or link.__context__
    return False


def _refusals(refused: Iterable[tuple[str, tuple[int, str]]]) -> str:
    return "; ".join(f"{address} {code} {text}" for address, (code, text) in refused)


def _short(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= MAX_REASON_CHARS else line[: MAX_REASON_CHARS - 1] + "…"
