"""Webhook signatures: the HMAC, the timestamp window, and what is refused."""

from __future__ import annotations

import hmac

import pytest

from orderchat.core.errors import ErrorCode, Unauthorized
from orderchat.core.signatures import Rejection, SignatureRejected, sign, verify

SECRET = "whsec_test"
BODY = b'{"event":"order.status","number":"OD-1","to":"confirmed"}'
NOW = 1_700_000_000
# Computed independently: printf '%s' '1700000000.{BODY}' | openssl dgst -sha256 -hmac whsec_test
KNOWN_HEX = "443b50baa854315ec685f1284d5714926761bfee3f5e8ef38799f4ecdf34bbbe"


def _headers(timestamp: int = NOW, body: bytes = BODY, secret: str = SECRET) -> tuple[str, str]:
    signed = sign(secret, timestamp, body)
    return signed["X-OrderChat-Timestamp"], signed["X-OrderChat-Signature"]


def _rejection(timestamp: str | None, signature: str | None, body: bytes = BODY) -> Rejection:
    with pytest.raises(SignatureRejected) as caught:
        verify(SECRET, timestamp, signature, body, NOW)
    return caught.value.reason


def test_signature_matches_an_independent_hmac_of_timestamp_dot_body() -> None:
    assert _headers() == (str(NOW), f"sha256={KNOWN_HEX}")


def test_valid_delivery_verifies_and_returns_the_canonical_digest() -> None:
    timestamp, signature = _headers()
    verified = verify(SECRET, timestamp, signature, BODY, NOW)
    assert verified.timestamp_s == NOW
    assert verified.digest == KNOWN_HEX


def test_upper_case_hex_verifies_to_the_same_digest_so_a_replay_cannot_change_case() -> None:
    verified = verify(SECRET, str(NOW), f"sha256={KNOWN_HEX.upper()}", BODY, NOW)
    assert verified.digest == KNOWN_HEX


@pytest.mark.parametrize(
    ("timestamp", "signature"), [(None, "x"), ("1", None), ("", ""), (None, None)]
)
def test_missing_headers_are_refused(timestamp: str | None, signature: str | None) -> None:
    assert _rejection(timestamp, signature) is Rejection.MISSING


@pytest.mark.parametrize("timestamp", ["abc", "-5", "1.5", " 1700000000", "1700000000 ", "1e9"])
def test_malformed_timestamp_is_refused(timestamp: str) -> None:
    assert _rejection(timestamp, f"sha256={KNOWN_HEX}") is Rejection.MALFORMED


@pytest.mark.parametrize(
    "signature",
    [
        KNOWN_HEX,
        f"sha1={KNOWN_HEX}",
        f"sha256={KNOWN_HEX[:-1]}",
        f"sha256={KNOWN_HEX}0",
        f"sha256= {KNOWN_HEX}",
        "sha256=" + "g" * 64,
        f"sha256={KNOWN_HEX},sha256={KNOWN_HEX}",
    ],
)
def test_malformed_signature_is_refused(signature: str) -> None:
    assert _rejection(str(NOW), signature) is Rejection.MALFORMED


@pytest.mark.parametrize("offset_s", [-300, -1, 0, 1, 300])
def test_timestamp_within_five_minutes_either_way_is_accepted(offset_s: int) -> None:
    timestamp, signature = _headers(NOW + offset_s)
    assert verify(SECRET, timestamp, signature, BODY, NOW).timestamp_s == NOW + offset_s


@pytest.mark.parametrize("offset_s", [-301, 301, -86_400, -NOW])
def test_timestamp_outside_the_window_is_refused_even_when_signed_correctly(offset_s: int) -> None:
    timestamp, signature = _headers(NOW + offset_s)
    assert _rejection(timestamp, signature) is Rejection.STALE


def test_wrong_secret_is_refused() -> None:
    timestamp, signature = _headers(secret="not-the-secret")
    assert _rejection(timestamp, signature) is Rejection.MISMATCH


def test_a_changed_body_is_refused() -> None:
    timestamp, signature = _headers()
    assert _rejection(timestamp, signature, BODY.replace(b"confirmed", b"cancelled")) is (
        Rejection.MISMATCH
    )
    assert _rejection(timestamp, signature, BODY + b" ") is Rejection.MISMATCH


def test_a_moved_timestamp_is_refused() -> None:
    _, signature = _headers(NOW)
    assert _rejection(str(NOW + 1), signature) is Rejection.MISMATCH


def test_a_zero_padded_timestamp_is_a_different_signed_text() -> None:
    _, signature = _headers(NOW)
    assert _rejection(f"0{NOW}", signature) is Rejection.MISMATCH


def test_digests_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[tuple[str, str]] = []
    compare = hmac.compare_digest

    def spy(a: str, b: str) -> bool:
        compared.append((a, b))
        return compare(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    timestamp, signature = _headers()
    verify(SECRET, timestamp, signature, BODY, NOW)
    assert compared == [(KNOWN_HEX, KNOWN_HEX)]


def test_rejection_is_an_unauthorized_domain_error() -> None:
    with pytest.raises(Unauthorized) as caught:
        verify(SECRET, None, None, BODY, NOW)
    assert caught.value.code is ErrorCode.UNAUTHORIZED
    assert "X-OrderChat-Signature" in caught.value.message
