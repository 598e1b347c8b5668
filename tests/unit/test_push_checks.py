"""The pure parts of web push: what a subscription may be, how answers are read, how headers
are spelled. Names are resolved by a stand-in for `socket.getaddrinfo`, never by DNS."""

from __future__ import annotations

import email.utils
import os
import socket
import time
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from orderchat.core.errors import BadRequest
from orderchat.notify.push import (
    MAX_PAYLOAD_BYTES,
    PushOutcome,
    check_subscription,
    check_subscription_async,
    outcome_for,
    push_headers,
    retry_after_seconds,
)
from orderchat.notify.push_endpoints import (
    MAX_ENDPOINT_CHARS,
    b64url_decode,
    check_auth,
    check_p256dh,
    is_public_address,
    parse_endpoint,
)
from orderchat.notify.vapid import check_subject, vapid_header
from tests.push_service import b64url, fake_dns

PUBLIC = "https://142.250.72.10/fcm/send/abc"


def _point() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    return key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


P256DH = b64url(_point())
AUTH = b64url(os.urandom(16))


def _refused(key: str, call: Any, *args: Any, **kwargs: Any) -> None:
    with pytest.raises(BadRequest) as caught:
        call(*args, **kwargs)
    assert caught.value.text.key == key


def test_base64url_is_taken_with_or_without_padding_and_nothing_else() -> None:
    assert b64url_decode("AAE") == b"\x00\x01"
    assert b64url_decode("AAE=") == b"\x00\x01"
    assert b64url_decode("-_8") == b"\xfb\xff"
    for bad in ("+/8", "AA E", "A", "AAE==="):
        assert b64url_decode(bad) is None, bad


def test_a_public_key_is_an_uncompressed_point_on_p256() -> None:
    assert check_p256dh(P256DH) == b64url_decode(P256DH)
    raw = _point()
    compressed = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw).public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
    )
    off_curve = raw[:64] + bytes([raw[64] ^ 1])
    for bad in (
        b64url(raw[:64]),  # too short
        b64url(raw + b"\x00"),  # too long
        b64url(compressed),
        b64url(b"\x05" + raw[1:]),  # not the uncompressed form's tag
        b64url(off_curve),
        P256DH.replace("-", "+").replace("_", "/") + "+",  # not base64url
        "",
    ):
        _refused("push.public_key_invalid", check_p256dh, bad)


def test_an_auth_secret_is_16_bytes() -> None:
    assert len(check_auth(AUTH)) == 16
    for bad in (b64url(os.urandom(15)), b64url(os.urandom(17)), "not*base64", ""):
        _refused("push.auth_secret_invalid", check_auth, bad)


def test_an_endpoint_is_taken_apart_and_its_origin_is_the_audience() -> None:
    parsed = parse_endpoint("https://FCM.googleapis.com/fcm/send/x", allow_private=False)
    assert (parsed.scheme, parsed.host, parsed.port) == ("https", "fcm.googleapis.com", 443)
    assert parsed.origin == "https://fcm.googleapis.com" and not parsed.literal
    assert parse_endpoint("https://push.example.com:8443/x", allow_private=False).origin == (
        "https://push.example.com:8443"
    )
    assert parse_endpoint("https://push.example.com:443/x", allow_private=False).origin == (
        "https://push.example.com"
    )
    local = parse_endpoint("http://127.0.0.1:8080/push/1", allow_private=True)
    assert (local.origin, local.literal) == ("http://127.0.0.1:8080", True)
    assert parse_endpoint("https://[::1]:9/x", allow_private=True).origin == "https://[::1]:9"


@pytest.mark.parametrize(
    ("endpoint", "key"),
    [
        ("http://push.example.com/x", "push.endpoint_not_encrypted"),
        ("ftp://push.example.com/x", "push.endpoint_not_encrypted"),
        ("push.example.com/x", "push.endpoint_not_url"),
        ("https:///x", "push.endpoint_not_url"),
        ("https://user:pw@push.example.com/x", "push.endpoint_not_url"),
        ("https://push.example.com/x#frag", "push.endpoint_not_url"),
        ("https://push.example.com:99999/x", "push.endpoint_not_url"),
        ("https://push.example.com:0/x", "push.endpoint_not_url"),
        ("https://püsh.example.com/x", "push.endpoint_not_url"),
        ("https://push.example.com/a b", "push.endpoint_not_url"),
        ("https://push.example.com/\n", "push.endpoint_not_url"),
        ("https://push.example.com/" + "x" * MAX_ENDPOINT_CHARS, "push.endpoint_too_long"),
        ("https://127.0.0.1/x", "push.endpoint_host_not_public"),
        ("https://10.1.2.3/x", "push.endpoint_host_not_public"),
        ("https://172.16.0.1/x", "push.endpoint_host_not_public"),
        ("https://192.168.1.1/x", "push.endpoint_host_not_public"),
        ("https://169.254.169.254/latest/meta-data", "push.endpoint_host_not_public"),
        ("https://100.64.0.1/x", "push.endpoint_host_not_public"),
        ("https://0.0.0.0/x", "push.endpoint_host_not_public"),
        ("https://224.0.0.1/x", "push.endpoint_host_not_public"),
        ("https://[::1]/x", "push.endpoint_host_not_public"),
        ("https://[::]/x", "push.endpoint_host_not_public"),
        ("https://[fe80::1]/x", "push.endpoint_host_not_public"),
        ("https://[fd00::1]/x", "push.endpoint_host_not_public"),
        ("https://[::ffff:127.0.0.1]/x", "push.endpoint_host_not_public"),
    ],
)
def test_endpoints_that_may_not_be_posted_to(endpoint: str, key: str) -> None:
    _refused(key, check_subscription, endpoint, P256DH, AUTH, allow_private=False)


def test_allow_private_lets_plain_http_and_local_addresses_through() -> None:
    for endpoint in ("http://127.0.0.1:8080/push/1", "https://10.0.0.5/x", "http://[::1]:81/x"):
        assert check_subscription(endpoint, P256DH, AUTH, allow_private=True).endpoint == endpoint
    _refused(
        "push.endpoint_not_encrypted",
        check_subscription,
        "ftp://127.0.0.1/x",
        P256DH,
        AUTH,
        allow_private=True,
    )


def test_public_addresses_are_told_from_the_rest() -> None:
    assert is_public_address("142.250.72.10") and is_public_address("2606:4700:4700::1111")
    for address in ("127.0.0.1", "10.0.0.1", "::1", "fe80::1%eth0", "::ffff:10.0.0.1", "x"):
        assert not is_public_address(address), address


def _no_dns(*args: object, **kwargs: object) -> object:
    raise AssertionError("no name may be resolved here")


def test_a_literal_address_or_allow_private_needs_no_lookup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", _no_dns)
    check_subscription(PUBLIC, P256DH, AUTH, allow_private=False)
    check_subscription("https://push.example.test/x", P256DH, AUTH, allow_private=True)


RESOLVED = [
    (["142.250.72.10"], None),
    (["142.250.72.10", "2607:f8b0:4005::200a"], None),
    (["127.0.0.1"], "push.endpoint_host_not_public"),
    (["142.250.72.10", "10.0.0.7"], "push.endpoint_host_not_public"),
    (["::1"], "push.endpoint_host_not_public"),
    ([], "push.endpoint_host_unknown"),
]
NAMED = "https://push.example.test/send/1"


@pytest.mark.parametrize(("addresses", "key"), RESOLVED)
def test_a_name_must_resolve_to_public_addresses_only(
    monkeypatch: pytest.MonkeyPatch, addresses: list[str], key: str | None
) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", fake_dns({"push.example.test": addresses}))
    if key is None:
        assert check_subscription(NAMED, P256DH, AUTH, allow_private=False).endpoint == NAMED
    else:
        _refused(key, check_subscription, NAMED, P256DH, AUTH, allow_private=False)


@pytest.mark.parametrize(("addresses", "key"), RESOLVED)
async def test_the_async_check_resolves_the_same_way(
    monkeypatch: pytest.MonkeyPatch, addresses: list[str], key: str | None
) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", fake_dns({"push.example.test": addresses}))
    if key is None:
        target = await check_subscription_async(NAMED, P256DH, AUTH, allow_private=False)
        assert target.endpoint == NAMED
        return
    with pytest.raises(BadRequest) as caught:
        await check_subscription_async(NAMED, P256DH, AUTH, allow_private=False)
    assert caught.value.text.key == key


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, PushOutcome.DELIVERED),
        (201, PushOutcome.DELIVERED),
        (202, PushOutcome.DELIVERED),
        (404, PushOutcome.GONE),
        (410, PushOutcome.GONE),
        (408, PushOutcome.RETRY),
        (429, PushOutcome.RETRY),
        (500, PushOutcome.RETRY),
        (502, PushOutcome.RETRY),
        (503, PushOutcome.RETRY),
        (301, PushOutcome.REJECTED),
        (307, PushOutcome.REJECTED),
        (400, PushOutcome.REJECTED),
        (401, PushOutcome.REJECTED),
        (403, PushOutcome.REJECTED),
        (413, PushOutcome.REJECTED),
    ],
)
def test_what_a_push_services_answer_means(status: int, outcome: PushOutcome) -> None:
    assert outcome_for(status) is outcome


def test_retry_after_is_seconds_or_a_date() -> None:
    now = time.time()
    assert retry_after_seconds("120", now) == 120.0
    assert retry_after_seconds(" 0 ", now) == 0.0
    later = retry_after_seconds(email.utils.formatdate(now + 90, usegmt=True), now)
    assert later is not None and 88 <= later <= 90
    assert retry_after_seconds(email.utils.formatdate(now - 90, usegmt=True), now) == 0.0
    for unreadable in (None, "", "soon", "-5", "1.5"):
        assert retry_after_seconds(unreadable, now) is None, unreadable


def test_push_headers_and_a_callers_mistakes() -> None:
    assert push_headers(60, "normal", None) == {"TTL": "60", "Urgency": "normal"}
    assert push_headers(0, "very-low", "a" * 32)["Topic"] == "a" * 32
    for ttl, urgency, topic in (
        (-1, "normal", None),
        (True, "normal", None),
        (60, "urgent", None),
        (60, "normal", "a" * 33),
        (60, "normal", "order.42"),
        (60, "normal", ""),
    ):
        with pytest.raises(ValueError, match=r"ttl_s|urgency|topic"):
            push_headers(ttl, urgency, topic)


def test_the_payload_limit_leaves_one_record_within_4096_bytes() -> None:
    header, delimiter, tag = 16 + 4 + 1 + 65, 1, 16
    assert header + MAX_PAYLOAD_BYTES + delimiter + tag == 4096


def test_the_vapid_header_is_spelled_as_rfc_8292_shows_it() -> None:
    assert vapid_header("vapid t=aaa.bbb.ccc,k=BKEY") == "vapid t=aaa.bbb.ccc, k=BKEY"


def test_the_subject_is_a_mailto_or_https_url() -> None:
    for subject in ("mailto:ops@shop.example", "https://shop.example/contact"):
        check_subject(subject)
    for bad in ("ops@shop.example", "mailto:nobody", "http://shop.example", "https://"):
        with pytest.raises(ValueError, match="subject"):
            check_subject(bad)
