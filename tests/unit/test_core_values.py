from __future__ import annotations

import pytest

from orderchat.core.chain import GENESIS, chain_hash
from orderchat.core.cursor import decode_cursor, encode_cursor
from orderchat.core.errors import BadRequest, CursorExpired, ErrorCode, TooLarge
from orderchat.core.ids import ConversationId, MessageId, UserId
from orderchat.core.model import (
    MAX_TEXT_CHARS,
    Message,
    MessageKind,
    Role,
    direct_key,
    parse_roles,
    preview,
    text_field,
    validate_text,
    validate_title,
    validate_username,
)


def _crockford(value: int, width: int) -> str:
    alphabet = "0123456789abcdefghjkmnpqrstvwxyz"
    return "".join(alphabet[(value >> (5 * i)) & 31] for i in reversed(range(width)))


def test_cursor_round_trips_position() -> None:
    assert decode_cursor(encode_cursor(0)) == 0
    assert decode_cursor(encode_cursor(987_654_321)) == 987_654_321


@pytest.mark.parametrize("cursor", ["", "42", "v2.5", "v1.", "v1.-3", "v1.1e3", "v1." + "9" * 19])
def test_foreign_or_malformed_cursor_is_expired(cursor: str) -> None:
    with pytest.raises(CursorExpired) as info:
        decode_cursor(cursor)
    assert info.value.code is ErrorCode.CURSOR_EXPIRED


def test_text_limits() -> None:
    assert validate_text("x" * MAX_TEXT_CHARS) == "x" * MAX_TEXT_CHARS
    with pytest.raises(TooLarge):
        validate_text("x" * (MAX_TEXT_CHARS + 1))
    for blank in ("", "   ", "\n\t"):
        with pytest.raises(BadRequest):
            validate_text(blank)
    with pytest.raises(BadRequest):
        validate_text(42)


@pytest.mark.parametrize("name", ["a", "wang.jian-guo_2", "x" * 64])
def test_valid_usernames(name: str) -> None:
    assert validate_username(name) == name


@pytest.mark.parametrize("name", ["", "x" * 65, "has space", "王", "a/b", None, 7])
def test_invalid_usernames(name: object) -> None:
    with pytest.raises(BadRequest):
        validate_username(name)


def test_roles_parse_in_order_without_repeats() -> None:
    assert parse_roles("warehouse, admin,warehouse") == (Role.WAREHOUSE, Role.ADMIN)
    assert parse_roles(["qc"]) == (Role.QC,)
    with pytest.raises(BadRequest, match="unknown role"):
        parse_roles("wizard")
    with pytest.raises(BadRequest):
        parse_roles([])


def test_titles() -> None:
    assert validate_title("  仓库  ", required=True) == "仓库"
    assert validate_title(None, required=False) is None
    with pytest.raises(BadRequest):
        validate_title("", required=True)
    with pytest.raises(TooLarge):
        validate_title("x" * 201, required=False)


def test_direct_key_is_the_same_whoever_asks() -> None:
    a, b = UserId("u_a"), UserId("u_b")
    assert direct_key(a, b) == direct_key(b, a) == "u_a|u_b"


def test_preview_flattens_and_shortens() -> None:
    assert preview("a\n\nb") == "a b"
    assert len(preview("长" * 500)) == 80


def _message(text: str, seq: int = 1) -> Message:
    return Message(
        MessageId("m_1"),
        ConversationId("c_1"),
        seq,
        "r",
        UserId("u_1"),
        MessageKind.TEXT,
        text,
        (),
        (),
        None,
        1000,
        False,
    )


def test_hash_chain_covers_content_and_predecessor() -> None:
    first = chain_hash(GENESIS, _message("hello"))
    assert first == chain_hash(GENESIS, _message("hello"))
    assert first != chain_hash(GENESIS, _message("hellp"))
    assert chain_hash(first, _message("next", 2)) != chain_hash(GENESIS, _message("next", 2))


def test_text_fields_are_stripped_bounded_and_optional_only_when_allowed() -> None:
    assert text_field("  SF  ", "carrier", 10) == "SF"
    assert text_field(None, "note", 10, required=False) == ""
    assert text_field("  ", "note", 10, required=False) == ""
    for raw in (None, 5, "   "):
        with pytest.raises(BadRequest):
            text_field(raw, "title", 10)
    with pytest.raises(TooLarge):
        text_field("x" * 11, "title", 10)
