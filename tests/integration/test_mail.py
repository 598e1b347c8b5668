"""The e-mail channel against a real SMTP server on 127.0.0.1.

What a worker needs from `Mailer.send` is delivery when the server takes the
mail and, when it does not, a `MailFailed` that says truly whether trying
again can help. Encryption asked for is never given up: a server without
STARTTLS gets neither the envelope nor the password.
"""

from __future__ import annotations

import asyncio
import time
from email.message import EmailMessage
from pathlib import Path

import pytest

from orderchat.notify.mail import (
    Mailer,
    MailFailed,
    MissedItem,
    Security,
    SmtpSettings,
    missed_messages_mail,
    order_status_mail,
)
from tests.mail_support import (
    HOST,
    PASSWORD,
    USERNAME,
    Recorder,
    self_signed_certificate,
    server_tls_context,
    smtp_server,
)
from tests.support import free_port

pytestmark = pytest.mark.timeout(30)

SENDER = "星辰户外 <orders@shop.example>"
TO = "wang@example.com"
APP = "https://shop.example"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed_certificate(tmp_path_factory.mktemp("smtp-tls"))


def _settings(
    port: int,
    security: Security = "none",
    *,
    password: str | None = None,
    timeout_s: float = 5.0,
    verify_tls: bool = False,
) -> SmtpSettings:
    return SmtpSettings(
        host=HOST,
        port=port,
        security=security,
        username=None if password is None else USERNAME,
        password=password,
        sender=SENDER,
        timeout_s=timeout_s,
        verify_tls=verify_tls,
        helo_name="localhost",
    )


def _signed_in(port: int, security: Security, password: str = PASSWORD) -> SmtpSettings:
    return _settings(port, security, password=password)


def _mail(to: str = TO) -> EmailMessage:
    return order_status_mail(
        to=to,
        sender=SENDER,
        language="zh-CN",
        shop_name="星辰户外",
        order_number="SO-1001",
        status_text="已发货",
        detail="顺丰 SF123456",
        link="https://shop.example/orders/SO-1001",
        unsubscribe_link="https://shop.example/unsubscribe?token=abc",
        now_ms=1_765_000_000_000,
    )


async def _send(settings: SmtpSettings, to: str = TO) -> None:
    await Mailer(settings).send(_mail(to))


async def _refused(settings: SmtpSettings, to: str = TO) -> MailFailed:
    with pytest.raises(MailFailed) as failed:
        await _send(settings, to)
    return failed.value


async def test_a_mail_reaches_a_plain_server_on_this_machine_whole_and_readable() -> None:
    recorder = Recorder()
    with smtp_server(recorder) as port:
        await _send(_settings(port))
    (got,) = recorder.received
    assert (got.mail_from, got.rcpt_tos, got.over_tls) == ("orders@shop.example", [TO], False)
    mail = got.message
    assert mail["Subject"] == "【星辰户外】订单 SO-1001：已发货"
    assert mail["From"].addresses[0].display_name == "星辰户外"
    assert mail["List-Unsubscribe"] == "<https://shop.example/unsubscribe?token=abc>"
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert mail["Content-Language"] == "zh-CN"
    plain, page = mail.get_body(("plain",)), mail.get_body(("html",))
    assert plain is not None and page is not None
    assert "当前状态：已发货" in plain.get_content()
    assert 'href="https://shop.example/orders/SO-1001"' in page.get_content()


async def test_a_digest_in_english_arrives_with_its_groups_links_and_escaping_intact() -> None:
    items = [
        MissedItem("Order 17", "Li", "<script>alert(1)</script>", 1_765_000_000_000, f"{APP}/m/1"),
        MissedItem("Team", "Zhao", "stock is low", 1_765_000_060_000, f"{APP}/m/2", urgent=True),
        MissedItem("Order 17", "Li", "any news?", 1_765_000_120_000, f"{APP}/m/3"),
    ]
    sent = missed_messages_mail(
        to=TO,
        sender=SENDER,
        language="en",
        shop_name="Trail <Shop>",
        person="Wang",
        items=items,
        link=APP,
        unsubscribe_link=f"{APP}/unsubscribe?token=abc",
        now_ms=1_765_000_180_000,
    )
    recorder = Recorder()
    with smtp_server(recorder) as port:
        await Mailer(_settings(port)).send(sent)
    (got,) = recorder.received
    mail = got.message
    assert mail["Subject"] == "[Trail <Shop>] 3 unread messages"
    assert mail["Message-ID"] == sent["Message-ID"]
    plain, page = mail.get_body(("plain",)), mail.get_body(("html",))
    assert plain is not None and page is not None
    text, html = plain.get_content(), page.get_content()
    assert text.count("== Order 17 ==") == 1 and "[Urgent] Zhao" in text
    assert "<script>" in text and "<script>" not in html and "&lt;Shop&gt;" in html
    assert all(f'href="{item.link}"' in html for item in items)


async def test_starttls_then_auth_delivers_over_tls_with_the_password_sent_encrypted(
    certificate: tuple[Path, Path],
) -> None:
    recorder = Recorder()
    tls = server_tls_context(certificate)
    with smtp_server(recorder, tls_context=tls, require_starttls=True, auth_required=True) as port:
        await _send(_signed_in(port, "starttls"))
    (got,) = recorder.received
    assert got.over_tls and got.signed_in
    assert recorder.sign_ins == [(USERNAME.encode(), True)]


async def test_implicit_tls_delivers_and_signs_in(certificate: tuple[Path, Path]) -> None:
    recorder = Recorder()
    tls = server_tls_context(certificate)
    with smtp_server(recorder, ssl_context=tls, auth_require_tls=False) as port:
        await _send(_signed_in(port, "tls"))
    (got,) = recorder.received
    assert got.over_tls and got.signed_in
    assert recorder.sign_ins == [(USERNAME.encode(), True)]


async def test_a_wrong_password_is_permanent_and_says_authentication_failed(
    certificate: tuple[Path, Path],
) -> None:
    recorder = Recorder()
    tls = server_tls_context(certificate)
    with smtp_server(recorder, tls_context=tls, require_starttls=True, auth_required=True) as port:
        failed = await _refused(_signed_in(port, "starttls", password="wrong"))
    assert failed.permanent
    assert failed.reason.startswith("authentication failed"), failed.reason
    assert recorder.mail_commands == [] and recorder.received == []


async def test_a_recipient_refused_with_550_is_permanent() -> None:
    recorder = Recorder(refuse_rcpt="550 no such user")
    with smtp_server(recorder) as port:
        failed = await _refused(_settings(port))
    assert failed.permanent
    assert "550" in failed.reason and "no such user" in failed.reason
    assert recorder.received == []


async def test_a_recipient_refused_with_451_is_tried_later() -> None:
    recorder = Recorder(refuse_rcpt="451 greylisted, try again later")
    with smtp_server(recorder) as port:
        failed = await _refused(_settings(port))
    assert not failed.permanent
    assert "451" in failed.reason


async def test_nothing_listening_is_tried_later() -> None:
    failed = await _refused(_settings(free_port()))
    assert not failed.permanent


async def test_a_server_without_starttls_gets_nothing_in_the_clear() -> None:
    """It even offers AUTH in the clear: the password must not go."""
    recorder = Recorder()
    with smtp_server(recorder, auth_require_tls=False) as port:
        failed = await _refused(_signed_in(port, "starttls"))
    assert not failed.permanent
    assert "STARTTLS" in failed.reason
    assert recorder.sign_ins == [] and recorder.mail_commands == []


async def test_an_unverifiable_certificate_is_a_tls_failure_tried_later(
    certificate: tuple[Path, Path],
) -> None:
    recorder = Recorder()
    tls = server_tls_context(certificate)
    with smtp_server(recorder, ssl_context=tls, auth_require_tls=False) as port:
        failed = await _refused(_settings(port, "tls", password=PASSWORD, verify_tls=True))
    assert not failed.permanent
    assert "TLS" in failed.reason or "certificate" in failed.reason.lower(), failed.reason
    assert recorder.sign_ins == [] and recorder.received == []


async def _silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read()  # never greets; waits for the client to give up
    writer.close()


async def test_a_server_that_never_answers_times_out_and_is_tried_later() -> None:
    server = await asyncio.start_server(_silent, HOST, 0)
    port = server.sockets[0].getsockname()[1]
    try:
        started = time.monotonic()
        failed = await _refused(_settings(port, timeout_s=0.5))
        waited = time.monotonic() - started
    finally:
        server.close()
        await server.wait_closed()
    assert not failed.permanent
    assert "timed out" in failed.reason
    assert waited < 3


async def test_a_bad_recipient_address_is_permanent_before_any_connection() -> None:
    """Nothing listens on the port: had it tried to connect, the failure would be temporary."""
    failed = await _refused(_settings(free_port()), to="nobody")
    assert failed.permanent
    assert "recipient" in failed.reason
