"""Idempotency keys: which keys are valid, what binds them, and what a stored key means."""

from __future__ import annotations

import pytest

from orderchat.core.errors import BadRequest
from orderchat.core.idempotency import (
    IN_FLIGHT,
    IN_FLIGHT_STALE_MS,
    KEY_TTL_MS,
    StoredKey,
    Verdict,
    decide,
    is_kept,
    parse_key,
    request_hash,
)
from orderchat.services.idempotency import Answer, decode_answer, encode_answer

NOW = 1_700_000_000_000
HASH = request_hash("POST", "/api/orders", b"{}")


def _stored(status: int = 201, age_ms: int = 0, hashed: str = HASH) -> StoredKey:
    return StoredKey(hashed, status, "", NOW - age_ms)


@pytest.mark.parametrize("key", ["a", "x" * 128, "order-42 retry 1", "~!@#$%^&*()_+ {}|:<>?"])
def test_printable_ascii_keys_of_1_to_128_characters_are_accepted(key: str) -> None:
    assert parse_key(key) == key


@pytest.mark.parametrize("key", ["", "x" * 129, "ключ", "tab\there", "del\x7f", "nl\n"])
def test_other_keys_are_refused(key: str) -> None:
    with pytest.raises(BadRequest):
        parse_key(key)


def test_request_hash_covers_method_path_and_body() -> None:
    variants = {
        request_hash("POST", "/api/orders", b"{}"),
        request_hash("PATCH", "/api/orders", b"{}"),
        request_hash("POST", "/api/orders?x=1", b"{}"),
        request_hash("POST", "/api/orders/o_1/status", b"{}"),
        request_hash("POST", "/api/orders", b'{"a":1}'),
    }
    assert len(variants) == 5
    assert request_hash("post", "/api/orders", b"{}") == HASH


def test_an_unknown_key_runs() -> None:
    assert decide(None, HASH, NOW) is Verdict.RUN


def test_the_same_request_replays_and_a_different_one_is_a_mismatch() -> None:
    assert decide(_stored(), HASH, NOW) is Verdict.REPLAY
    assert decide(_stored(hashed="0" * 64), HASH, NOW) is Verdict.MISMATCH


def test_a_key_lasts_a_day() -> None:
    assert decide(_stored(age_ms=KEY_TTL_MS - 1), HASH, NOW) is Verdict.REPLAY
    assert decide(_stored(age_ms=KEY_TTL_MS), HASH, NOW) is Verdict.RUN
    assert decide(_stored(age_ms=KEY_TTL_MS, hashed="0" * 64), HASH, NOW) is Verdict.RUN


def test_an_in_flight_key_is_refused_until_its_claim_is_stale() -> None:
    assert decide(_stored(IN_FLIGHT), HASH, NOW) is Verdict.IN_FLIGHT
    assert decide(_stored(IN_FLIGHT, hashed="0" * 64), HASH, NOW) is Verdict.IN_FLIGHT
    assert decide(_stored(IN_FLIGHT, IN_FLIGHT_STALE_MS - 1), HASH, NOW) is Verdict.IN_FLIGHT
    assert decide(_stored(IN_FLIGHT, IN_FLIGHT_STALE_MS), HASH, NOW) is Verdict.RUN


@pytest.mark.parametrize(("status", "kept"), [(200, True), (201, True), (204, True), (299, True)])
def test_successful_answers_are_kept(status: int, kept: bool) -> None:
    assert is_kept(status) is kept


@pytest.mark.parametrize("status", [100, 301, 400, 401, 403, 404, 409, 413, 429, 500])
def test_other_answers_are_not_kept(status: int) -> None:
    assert not is_kept(status)


@pytest.mark.parametrize(
    "answer",
    [
        Answer(201, ((b"content-type", b"application/json"),), '{"名":"订单"}'.encode()),
        Answer(200, ((b"content-type", b"application/octet-stream"),), bytes(range(256))),
        Answer(204, (), b""),
        Answer(201, ((b"cache-control", b"no-store"),), b"", withheld=True),
    ],
)
def test_answers_survive_the_trip_through_the_table(answer: Answer) -> None:
    assert decode_answer(answer.status, encode_answer(answer)) == answer
