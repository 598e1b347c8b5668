"""Web push against a real push service on loopback: it checks our VAPID tokens and opens
our payloads itself (tests/push_service.py), and answers 410, 429 or 500 when told to."""

from __future__ import annotations

import asyncio
import email.utils
import json
import socket
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils

from orderchat.core.errors import BadRequest
from orderchat.notify.push import (
    MAX_PAYLOAD_BYTES,
    PushOutcome,
    PushSender,
    PushTarget,
    VapidKeys,
    check_subscription,
    encrypt,
)
from tests.push_service import PushService, Subscription, b64url, fake_dns, unb64url

pytestmark = pytest.mark.timeout(30)

SUBJECT = "mailto:ops@shop.example"


@pytest.fixture
def push_service() -> Iterator[PushService]:
    """A browser and push service of the test's own, on a loopback port."""
    with PushService() as service:
        yield service


@pytest.fixture
def keys() -> VapidKeys:
    return VapidKeys.generate()


@pytest.fixture
async def sender(keys: VapidKeys) -> AsyncIterator[PushSender]:
    """A sender allowed to reach the loopback push service over plain http."""
    pusher = PushSender(keys, SUBJECT, allow_private=True, timeout_s=2.0)
    yield pusher
    await pusher.aclose()


def target(subscription: Subscription) -> PushTarget:
    return check_subscription(
        subscription.endpoint, subscription.p256dh, subscription.auth, allow_private=True
    )


def test_the_key_is_written_and_read_back_whole() -> None:
    first = VapidKeys.generate()
    again = VapidKeys.from_pem(first.private_pem())
    assert again.public_key == first.public_key
    point = unb64url(first.public_key)
    assert len(point) == 65 and point[0] == 0x04 and "=" not in first.public_key
    with pytest.raises(ValueError, match="not a PEM private key"):
        VapidKeys.from_pem("not a key")


async def test_a_push_arrives_with_the_exact_bytes_and_a_valid_token(
    push_service: PushService, sender: PushSender, keys: VapidKeys
) -> None:
    subscription = push_service.subscribe(application_server_key=keys.public_key)
    payload = bytes(range(256)) * 4
    before = time.time()
    result = await sender.send(
        target(subscription), payload, ttl_s=3600, urgency="high", topic="order-42"
    )
    assert (result.outcome, result.status) == (PushOutcome.DELIVERED, 201)
    (delivery,) = await push_service.wait_for(1)
    assert delivery.payload == payload
    assert (delivery.ttl, delivery.urgency, delivery.topic) == (3600, "high", "order-42")
    assert delivery.vapid_key == keys.public_key
    assert delivery.claims["aud"] == push_service.origin
    assert delivery.claims["sub"] == SUBJECT
    assert before < delivery.claims["exp"] <= before + 24 * 3600


async def test_the_largest_payload_arrives_and_one_byte_more_is_refused_unsent(
    push_service: PushService, sender: PushSender
) -> None:
    subscription = push_service.subscribe()
    largest = b"x" * MAX_PAYLOAD_BYTES
    assert (await sender.send(target(subscription), largest, ttl_s=60)).outcome == "delivered"
    assert (await push_service.wait_for(1))[0].payload == largest

    result = await sender.send(target(subscription), largest + b"x", ttl_s=60)
    assert (result.outcome, result.status) == (PushOutcome.REJECTED, None)
    assert push_service.requests == 1


async def test_an_empty_payload_is_a_push_without_data(
    push_service: PushService, sender: PushSender
) -> None:
    subscription = push_service.subscribe()
    result = await sender.send(target(subscription), b"", ttl_s=0, urgency="low")
    assert result.outcome is PushOutcome.DELIVERED
    (delivery,) = await push_service.wait_for(1)
    assert (delivery.payload, delivery.ttl, delivery.urgency) == (b"", 0, "low")


async def test_many_pushes_at_once_share_one_sender(
    push_service: PushService, sender: PushSender
) -> None:
    subscriptions = [push_service.subscribe() for _ in range(4)]
    sends = [
        sender.send(target(s), f"{s.id}:{n}".encode(), ttl_s=60)
        for s in subscriptions
        for n in range(5)
    ]
    results = await asyncio.gather(*sends)
    assert {r.outcome for r in results} == {PushOutcome.DELIVERED}
    for subscription in subscriptions:
        arrived = await push_service.wait_for(5, subscription_id=subscription.id)
        assert {d.payload for d in arrived} == {f"{subscription.id}:{n}".encode() for n in range(5)}
    # One token per push service, reused: the push service sees the same one throughout.
    assert len({json.dumps(d.claims) for d in push_service.deliveries}) == 1


async def test_pushes_one_after_another_go_over_one_connection(
    push_service: PushService, sender: PushSender
) -> None:
    """A TLS handshake per push would be most of its cost against a real push service."""
    subscription = push_service.subscribe()
    for n in range(5):
        result = await sender.send(target(subscription), f"{n}".encode(), ttl_s=60)
        assert result.outcome is PushOutcome.DELIVERED
    assert len({d.connection for d in await push_service.wait_for(5)}) == 1


async def test_a_gone_subscription_says_gone(push_service: PushService, sender: PushSender) -> None:
    subscription = push_service.subscribe()
    push_service.make_gone(subscription)
    result = await sender.send(target(subscription), b"hello", ttl_s=60)
    assert (result.outcome, result.status) == (PushOutcome.GONE, 410)
    assert push_service.deliveries == []


async def test_an_unknown_subscription_says_gone(
    push_service: PushService, sender: PushSender
) -> None:
    subscription = push_service.subscribe()
    unknown = PushTarget(
        f"{push_service.origin}/push/nobody", subscription.p256dh, subscription.auth
    )
    result = await sender.send(unknown, b"hello", ttl_s=60)
    assert (result.outcome, result.status) == (PushOutcome.GONE, 404)


async def test_too_many_requests_says_retry_after_what_the_service_asked(
    push_service: PushService, sender: PushSender
) -> None:
    subscription = push_service.subscribe()
    push_service.fail_next(1, 429, retry_after="7")
    soon = email.utils.formatdate(time.time() + 30, usegmt=True)
    push_service.fail_next(1, 503, retry_after=soon)

    first = await sender.send(target(subscription), b"hello", ttl_s=60)
    assert (first.outcome, first.status, first.retry_after_s) == (PushOutcome.RETRY, 429, 7.0)
    second = await sender.send(target(subscription), b"hello", ttl_s=60)
    assert (second.outcome, second.status) == (PushOutcome.RETRY, 503)
    assert second.retry_after_s is not None and 25 <= second.retry_after_s <= 30
    third = await sender.send(target(subscription), b"hello", ttl_s=60)
    assert third.outcome is PushOutcome.DELIVERED
    assert len(await push_service.wait_for(1)) == 1


async def test_a_server_error_says_retry(push_service: PushService, sender: PushSender) -> None:
    subscription = push_service.subscribe()
    push_service.fail_next(1, 500)
    result = await sender.send(target(subscription), b"hello", ttl_s=60)
    assert (result.outcome, result.status, result.retry_after_s) == (PushOutcome.RETRY, 500, None)
    assert "told to fail" in result.reason


async def test_a_service_that_is_down_says_retry(sender: PushSender) -> None:
    with PushService() as service:
        subscription = service.subscribe()
    result = await sender.send(target(subscription), b"hello", ttl_s=60)
    assert (result.outcome, result.status) == (PushOutcome.RETRY, None)


async def test_a_service_that_does_not_answer_in_time_says_retry(
    push_service: PushService, keys: VapidKeys
) -> None:
    subscription = push_service.subscribe()
    push_service.stall_next(1, 3.0)
    impatient = PushSender(keys, SUBJECT, allow_private=True, timeout_s=0.3)
    try:
        started = time.monotonic()
        result = await impatient.send(target(subscription), b"hello", ttl_s=60)
    finally:
        await impatient.aclose()
    assert (result.outcome, result.status) == (PushOutcome.RETRY, None)
    assert time.monotonic() - started < 2.0


async def test_a_key_other_than_the_subscriptions_is_refused_for_good(
    push_service: PushService, sender: PushSender
) -> None:
    subscription = push_service.subscribe(application_server_key=VapidKeys.generate().public_key)
    result = await sender.send(target(subscription), b"hello", ttl_s=60)
    assert (result.outcome, result.status) == (PushOutcome.REJECTED, 403)
    assert push_service.deliveries == []
    assert [r.status for r in push_service.refusals] == [403]


async def test_an_unauthorized_answer_is_refused_for_good(
    push_service: PushService, sender: PushSender
) -> None:
    subscription = push_service.subscribe()
    push_service.fail_next(1, 401)
    result = await sender.send(target(subscription), b"hello", ttl_s=60)
    assert (result.outcome, result.status) == (PushOutcome.REJECTED, 401)


async def test_a_redirect_is_not_followed(push_service: PushService, sender: PushSender) -> None:
    subscription = push_service.subscribe()
    push_service.fail_next(1, 307)
    result = await sender.send(target(subscription), b"hello", ttl_s=60)
    assert (result.outcome, result.status) == (PushOutcome.REJECTED, 307)
    assert push_service.requests == 1


def _token(signer: ec.EllipticCurvePrivateKey, claims: dict[str, object]) -> str:
    head = b64url(json.dumps({"typ": "JWT", "alg": "ES256"}).encode())
    body = b64url(json.dumps(claims).encode())
    der = signer.sign(f"{head}.{body}".encode(), ec.ECDSA(hashes.SHA256()))
    r, s = utils.decode_dss_signature(der)
    return f"{head}.{body}.{b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("valid", 201),
        ("no header", 401),
        ("signed by another key", 401),
        ("expired", 401),
        ("over 24 h", 401),
        ("another audience", 401),
        ("no subject", 401),
    ],
)
async def test_the_push_service_checks_tokens_itself(
    push_service: PushService, keys: VapidKeys, case: str, status: int
) -> None:
    """So that a delivery in the tests above means our token was really valid."""
    subscription = push_service.subscribe(application_server_key=keys.public_key)
    now = int(time.time())
    claims: dict[str, object] = {"aud": push_service.origin, "exp": now + 600, "sub": SUBJECT}
    signer = keys.private_key
    if case == "signed by another key":
        signer = ec.generate_private_key(ec.SECP256R1())
    changes: dict[str, dict[str, object]] = {
        "expired": {"exp": now - 1},
        "over 24 h": {"exp": now + 25 * 3600},
        "another audience": {"aud": "https://push.example.com"},
        "no subject": {"sub": None},
    }
    claims.update(changes.get(case, {}))
    headers = {"TTL": "60"}
    if case != "no header":
        headers["Authorization"] = f"vapid t={_token(signer, claims)}, k={keys.public_key}"
    async with httpx.AsyncClient() as client:
        answer = await client.post(subscription.endpoint, headers=headers)
    assert answer.status_code == status, answer.text


async def test_a_body_the_browser_cannot_open_is_refused(
    push_service: PushService, keys: VapidKeys
) -> None:
    subscription = push_service.subscribe()
    other = push_service.subscribe()
    claims = {"aud": push_service.origin, "exp": int(time.time()) + 600, "sub": SUBJECT}
    body = encrypt(target(other), b"for the other browser")
    headers = {
        "TTL": "60",
        "Content-Encoding": "aes128gcm",
        "Authorization": f"vapid t={_token(keys.private_key, claims)}, k={keys.public_key}",
    }
    async with httpx.AsyncClient() as client:
        answer = await client.post(subscription.endpoint, headers=headers, content=body)
    assert answer.status_code == 400, answer.text


async def test_without_allow_private_nothing_local_is_reached(
    push_service: PushService, keys: VapidKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Plain http, a name for this machine, and a name that resolved elsewhere when the
    subscription was stored but to this machine now (DNS rebinding): none is posted to."""
    answers = {"push.example.test": ["93.184.216.34"], "local.example.test": ["127.0.0.1"]}
    monkeypatch.setattr(socket, "getaddrinfo", fake_dns(answers))
    subscription = push_service.subscribe()
    with pytest.raises(BadRequest):
        check_subscription(
            subscription.endpoint, subscription.p256dh, subscription.auth, allow_private=False
        )
    rebinding = f"https://push.example.test:{push_service.port}/push/{subscription.id}"
    stored = check_subscription(
        rebinding, subscription.p256dh, subscription.auth, allow_private=False
    )
    answers["push.example.test"] = ["127.0.0.1"]
    guarded = PushSender(keys, SUBJECT, timeout_s=2.0)
    try:
        for endpoint in (
            subscription.endpoint,
            f"https://localhost:{push_service.port}/push/{subscription.id}",
            f"https://local.example.test:{push_service.port}/push/{subscription.id}",
            stored.endpoint,
        ):
            pushed = PushTarget(endpoint, subscription.p256dh, subscription.auth)
            result = await guarded.send(pushed, b"hello", ttl_s=60)
            assert (result.outcome, result.status) == (PushOutcome.REJECTED, None), endpoint
    finally:
        await guarded.aclose()
    assert push_service.requests == 0


async def test_a_name_is_connected_to_at_the_address_it_resolved_to(
    sender: PushSender, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", fake_dns({"push.example.test": ["127.0.0.1"]}))
    with PushService(name="push.example.test") as service:
        subscription = service.subscribe()
        assert subscription.endpoint.startswith("http://push.example.test:")
        result = await sender.send(target(subscription), b"hello", ttl_s=60)
        assert result.outcome is PushOutcome.DELIVERED, result.reason
        (delivery,) = await service.wait_for(1)
    assert delivery.claims["aud"] == service.origin


async def test_tls_is_checked_against_the_name_while_the_address_is_pinned(
    keys: VapidKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The connection goes to the address that was checked, and the certificate must still
    be for the endpoint's name: one for another name is not trusted."""
    monkeypatch.setattr(socket, "getaddrinfo", fake_dns({"push.example.test": ["127.0.0.1"]}))
    for certificate_name, outcome in (
        ("push.example.test", PushOutcome.DELIVERED),
        ("other.example.test", PushOutcome.RETRY),
    ):
        with PushService("push.example.test", tls=True, certificate_name=certificate_name) as svc:
            subscription = svc.subscribe()
            pusher = PushSender(
                keys, SUBJECT, allow_private=True, ssl_context=svc.client_ssl_context()
            )
            try:
                result = await pusher.send(target(subscription), b"hello", ttl_s=60)
            finally:
                await pusher.aclose()
            assert result.outcome is outcome, result.reason
            assert len(svc.deliveries) == (outcome is PushOutcome.DELIVERED)
