"""The reader's language on the WebSocket: the hello's `language`, and the
error frames worded in it (sans-I/O, no server)."""

from __future__ import annotations

import orjson
import pytest

from orderchat.core.errors import ErrorCode, NotFound
from orderchat.core.texts import say
from orderchat.protocol.codec import FrameError, decode_client_frame, encode_client_frame
from orderchat.protocol.events import ErrorReport
from orderchat.protocol.frames import Hello
from orderchat.protocol.server_codec import frame_json
from orderchat.protocol.session import Reply, ServerSession


def _hello(**extra: object) -> bytes:
    return orjson.dumps({"op": "hello", "token": "t", "device": "d", "cursor": None, **extra})


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ({}, None),
        ({"language": None}, None),
        ({"language": "en-GB"}, "en"),
        ({"language": "zh"}, "zh-CN"),
        ({"language": "fr"}, None),
    ],
)
def test_a_hellos_language_is_one_of_ours_or_none(
    given: dict[str, object], kept: str | None
) -> None:
    frame = decode_client_frame(_hello(**given))
    assert isinstance(frame, Hello)
    assert frame.language == kept


def test_a_hello_whose_language_is_not_a_string_is_a_bad_request() -> None:
    with pytest.raises(FrameError) as refused:
        decode_client_frame(_hello(language=["en"]))
    assert refused.value.code is ErrorCode.BAD_REQUEST
    assert refused.value.text.key == "codec.language_must_string_null"


def test_the_sdk_sends_the_language_only_when_it_has_one() -> None:
    assert "language" not in orjson.loads(encode_client_frame(Hello("t", "d", None)))
    sent = orjson.loads(encode_client_frame(Hello("t", "d", None, "en")))
    assert sent["language"] == "en"


def test_errors_before_a_hello_are_chinese_and_after_an_english_hello_english() -> None:
    session = ServerSession()
    (early,) = session.receive(orjson.dumps({"op": "read", "conv": "c", "seq": 1}), 0)
    assert isinstance(early, Reply) and isinstance(early.frame, ErrorReport)
    assert early.frame.reason == "session.hello_first"
    assert early.frame.message == "请先用有效的令牌发送 hello"
    session.receive(_hello(language="en"), 0)
    assert session.language == "en"
    (bad,) = session.receive(b"[]", 0)
    assert isinstance(bad, Reply) and isinstance(bad.frame, ErrorReport)
    assert bad.frame.message == "frame must be a JSON object"


def test_an_error_frame_carries_the_reason_and_params_beside_the_message() -> None:
    exc = NotFound(say("inventory.no_sku", code="TENT-9"))
    report = ErrorReport.of(exc.code, exc.text, "zh-CN", "r-1")
    assert frame_json(report) == {
        "op": "error",
        "code": "not_found",
        "message": "SKU 'TENT-9' 不存在",
        "ref": "r-1",
        "reason": "inventory.no_sku",
        "params": {"code": "TENT-9"},
    }
    assert exc.message == str(exc) == "no SKU 'TENT-9'"
