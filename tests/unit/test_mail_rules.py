"""The mail channel's settings from the environment, and what each SMTP trouble means.

A worker retries a temporary failure and gives up on a permanent one, so the
line between the two is the rule tested here, one aiosmtplib error at a time;
tests/integration/test_mail.py meets the common ones on a real server.
"""

from __future__ import annotations

import ssl

import aiosmtplib
import pytest

from orderchat.notify.mail import MailFailed, SmtpSettings, _failure

ENV = {
    "ORDERCHAT_SMTP_HOST": "smtp.shop.example",
    "ORDERCHAT_SMTP_FROM": "OrderChat <orders@shop.example>",
}


def test_no_host_means_no_mail() -> None:
    assert SmtpSettings.from_env({}) is None
    assert SmtpSettings.from_env({"ORDERCHAT_SMTP_HOST": "  ", "ORDERCHAT_SMTP_PORT": "25"}) is None


def test_the_environment_gives_every_setting_and_the_password_stays_out_of_logs() -> None:
    settings = SmtpSettings.from_env(
        {
            **ENV,
            "ORDERCHAT_SMTP_PORT": "2525",
            "ORDERCHAT_SMTP_SECURITY": "TLS",
            "ORDERCHAT_SMTP_USER": "orders",
            "ORDERCHAT_SMTP_PASSWORD": "s3cret pass",
        }
    )
    assert settings == SmtpSettings(
        host="smtp.shop.example",
        port=2525,
        security="tls",
        username="orders",
        password="s3cret pass",
        sender="OrderChat <orders@shop.example>",
    )
    assert settings.timeout_s == 15.0 and settings.verify_tls
    assert "s3cret" not in repr(settings)


@pytest.mark.parametrize(("security", "port"), [("", 587), ("starttls", 587), ("tls", 465)])
def test_the_port_follows_the_security_unless_given(security: str, port: int) -> None:
    settings = SmtpSettings.from_env({**ENV, "ORDERCHAT_SMTP_SECURITY": security})
    assert settings is not None and settings.port == port
    assert settings.security == (security or "starttls")
    assert settings.username is None and settings.password is None


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "::1", "[::1]"])
def test_plain_smtp_is_for_a_server_on_this_machine(host: str) -> None:
    env = {**ENV, "ORDERCHAT_SMTP_HOST": host, "ORDERCHAT_SMTP_SECURITY": "none"}
    settings = SmtpSettings.from_env(env)
    assert settings is not None and settings.port == 25


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"ORDERCHAT_SMTP_SECURITY": "ssl"}, "ORDERCHAT_SMTP_SECURITY"),
        ({"ORDERCHAT_SMTP_PORT": "smtp"}, "ORDERCHAT_SMTP_PORT"),
        ({"ORDERCHAT_SMTP_PORT": "70000"}, "port"),
        ({"ORDERCHAT_SMTP_FROM": ""}, "ORDERCHAT_SMTP_FROM"),
        ({"ORDERCHAT_SMTP_FROM": "orders"}, "domain"),
        ({"ORDERCHAT_SMTP_USER": "orders"}, "password"),
        ({"ORDERCHAT_SMTP_PASSWORD": "secret"}, "password"),
        ({"ORDERCHAT_SMTP_SECURITY": "none"}, "this machine"),
    ],
)
def test_an_unusable_setting_is_refused_at_start_naming_it(
    changes: dict[str, str], named: str
) -> None:
    with pytest.raises(ValueError, match=named):
        SmtpSettings.from_env({**ENV, **changes})


def _refused(code: int, text: str) -> aiosmtplib.SMTPRecipientsRefused:
    return aiosmtplib.SMTPRecipientsRefused(
        [aiosmtplib.SMTPRecipientRefused(code, text, "wang@example.com")]
    )


@pytest.mark.parametrize(
    ("error", "permanent", "reason"),
    [
        (_refused(550, "no such user"), True, "recipient refused: wang@example.com 550"),
        (_refused(450, "mailbox busy"), False, "recipient refused: wang@example.com 450"),
        (aiosmtplib.SMTPSenderRefused(553, "sender not allowed", "o@s"), True, "553 sender"),
        (aiosmtplib.SMTPDataError(554, "looks like spam"), True, "554 looks like spam"),
        (aiosmtplib.SMTPDataError(452, "no room"), False, "452 no room"),
        (aiosmtplib.SMTPAuthenticationError(535, "bad credentials"), True, "authentication failed"),
        (aiosmtplib.SMTPAuthenticationError(454, "try later"), False, "454 try later"),
        (aiosmtplib.SMTPConnectResponseError(421, "too busy"), False, "421 too busy"),
        (aiosmtplib.SMTPServerDisconnected("Connection lost"), False, "Connection lost"),
        (aiosmtplib.SMTPReadTimeoutError("Timed out"), False, "timed out"),
        (aiosmtplib.SMTPConnectError("Error connecting"), False, "cannot connect"),
        (aiosmtplib.SMTPNotSupported("SMTPUTF8 is not supported"), True, "SMTPUTF8"),
        (ConnectionResetError("reset by peer"), False, "reset by peer"),
        (ssl.SSLError("wrong version number"), False, "TLS failed"),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else None,
)
def test_what_each_smtp_trouble_means_for_trying_again(
    error: BaseException, permanent: bool, reason: str
) -> None:
    failed = _failure(error)
    assert isinstance(failed, MailFailed)
    assert failed.permanent is permanent
    assert reason in failed.reason


def test_a_tls_failure_wrapped_by_aiosmtplib_is_still_a_tls_failure() -> None:
    try:
        try:
            raise ssl.SSLCertVerificationError("certificate verify failed")
        except ssl.SSLError as exc:
            raise aiosmtplib.SMTPConnectError("Error connecting to x on port 465") from exc
    except aiosmtplib.SMTPConnectError as wrapped:
        failed = _failure(wrapped)
    assert not failed.permanent and failed.reason.startswith("TLS failed")


def test_a_reason_is_one_short_line() -> None:
    failed = _failure(aiosmtplib.SMTPDataError(554, "line one\r\nline two " + "x" * 500))
    assert "\n" not in failed.reason and len(failed.reason) <= 200
    assert failed.reason.startswith("554 line one line two")
