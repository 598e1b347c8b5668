from __future__ import annotations

import orjson
import pytest

from orderchat.core.errors import ErrorCode
from orderchat.core.ids import ConversationId, MessageId, UserId
from orderchat.core.model import Message, MessageKind
from orderchat.protocol.codec import (
    MAX_FRAME_BYTES,
    FrameError,
    decode_client_frame,
    encode_client_frame,
)
from orderchat.protocol.frames import (
    ClientFrame,
    Hello,
    MarkRead,
    Ping,
    PostMessage,
    RecallMessage,
    Typing,
)
from orderchat.protocol.server_codec import message_fields

FRAMES: list[ClientFrame] = [
    Hello("tok", "phone", None),
    Hello("tok", "phone", "v1.42"),
    PostMessage("r-1", "c_1", MessageKind.TEXT, "你好 @warehouse", (), ("@warehouse",), 3),
    PostMessage("r-2", "c_1", MessageKind.TEXT, "x", (), (), None),
    PostMessage("r-4", "c_1", MessageKind.TEXT, "now", (), (), None, internal=True, urgent=True),
    MarkRead("c_1", 7),
    RecallMessage("r-3", "c_1", 7),
    Typing("c_1"),
    Ping(),
]


@pytest.mark.parametrize("frame", FRAMES, ids=lambda f: type(f).__name__)
def test_client_frames_round_trip(frame: ClientFrame) -> None:
    assert decode_client_frame(encode_client_frame(frame)) == frame


def _error(raw: object) -> FrameError:
    data = raw if isinstance(raw, str | bytes) else orjson.dumps(raw)
    with pytest.raises(FrameError) as info:
        decode_client_frame(data)
    return info.value


SEND = {"op": "send", "ref": "r1", "conv": "c_1", "kind": "text", "text": "hi"}


@pytest.mark.parametrize(
    "raw",
    [
        "{not json",
        "[1, 2]",
        '"send"',
        {"no": "op"},
        {"op": 5},
        {"op": "explode"},
        {"op": "hello", "token": "", "device": "d"},
        {"op": "hello", "token": "t", "device": "d" * 65},
        {"op": "hello", "token": "t", "device": "d", "cursor": 5},
        {**SEND, "conv": 12},
        {**SEND, "conv": ""},
        {**SEND, "text": 12},
        {**SEND, "text": "   "},
        {**SEND, "kind": "order_event"},
        {**SEND, "kind": "hologram"},
        {**SEND, "attachments": [{"upload": "x"}]},
        {**SEND, "attachments": "none"},
        {**SEND, "kind": "image"},
        {**SEND, "kind": "image", "attachments": []},
        {**SEND, "kind": "image", "attachments": [{"upload": "x"}]},
        {**SEND, "kind": "image", "attachments": [{"id": 5}]},
        {**SEND, "kind": "image", "attachments": [{"id": ""}]},
        {**SEND, "kind": "file", "attachments": [{"id": "u" * 65}]},
        {**SEND, "kind": "file", "attachments": [{"id": "up_1"}, {"id": "up_1"}]},
        {**SEND, "kind": "file", "attachments": [{"id": f"up_{i}"} for i in range(21)]},
        {**SEND, "kind": "voice", "attachments": [{"id": "up_1"}], "text": 5},
        {**SEND, "mentions": "@all"},
        {**SEND, "reply_to": "3"},
        {**SEND, "reply_to": 0},
        {**SEND, "reply_to": True},
        {**SEND, "ref": ""},
        {**SEND, "ref": "r" * 65},
        {**SEND, "ref": "réf"},
        {**SEND, "ref": 7},
        {"op": "read", "conv": "c_1", "seq": -1},
        {"op": "read", "conv": "c_1", "seq": "1"},
        {"op": "read", "conv": "c_1", "seq": False},
        {"op": "read", "conv": "c_1"},
        {"op": "recall", "conv": "c_1", "seq": 1},
        {"op": "typing"},
    ],
)
def test_malformed_frames_are_bad_requests(raw: object) -> None:
    assert _error(raw).code is ErrorCode.BAD_REQUEST


def test_error_keeps_a_usable_ref_and_drops_an_unusable_one() -> None:
    assert _error({**SEND, "conv": 1}).ref == "r1"
    assert _error({**SEND, "ref": "r" * 65}).ref is None
    assert _error({"op": "nope", "ref": "r9"}).ref == "r9"


@pytest.mark.parametrize(
    "raw",
    [
        '{"op": "send", "ref": "r1", "conv": "c_1", "text": "hi", "reply_to": 1e400}',
        '{"op": "send", "ref": "r1", "conv": "c_1", "text": "\\ud800"}',
    ],
)
def test_json_we_refuse_still_names_its_request(raw: str) -> None:
    error = _error(raw)
    assert (error.code, error.ref) == (ErrorCode.BAD_REQUEST, "r1")


def test_overlong_text_is_too_large() -> None:
    error = _error({**SEND, "text": "x" * 10_001})
    assert (error.code, error.ref) == (ErrorCode.TOO_LARGE, "r1")


def test_oversize_frame_is_too_large() -> None:
    assert _error(b" " * (MAX_FRAME_BYTES + 1)).code is ErrorCode.TOO_LARGE


def test_the_frame_limit_counts_bytes_not_characters() -> None:
    # 300,000 Chinese characters are 900,000 bytes of UTF-8: within the limit.
    within = orjson.dumps({**SEND, "text": "帐" * 300_000}).decode()
    refused = _error(within)  # by the 10,000-character text limit, not the frame limit
    assert refused.code is ErrorCode.TOO_LARGE and "frames are limited" not in refused.message
    assert len(within) < MAX_FRAME_BYTES < len(("帐" * 400_000).encode())
    over = orjson.dumps({**SEND, "text": "帐" * 400_000}).decode()
    error = _error(over)
    assert error.code is ErrorCode.TOO_LARGE and "frames are limited" in error.message


def test_media_sends_name_their_uploads_and_may_have_no_caption() -> None:
    raw = {**SEND, "kind": "image", "text": "", "attachments": [{"id": "up_1"}, "up_2"]}
    frame = decode_client_frame(orjson.dumps(raw))
    assert isinstance(frame, PostMessage)
    assert frame.kind is MessageKind.IMAGE
    assert frame.attachments == ("up_1", "up_2")
    assert frame.text == ""
    encoded = orjson.loads(encode_client_frame(frame))
    assert encoded["attachments"] == [{"id": "up_1"}, {"id": "up_2"}]
    assert decode_client_frame(encode_client_frame(frame)) == frame


def test_send_defaults() -> None:
    frame = decode_client_frame(orjson.dumps({"op": "send", "ref": "r", "conv": "c", "text": "t"}))
    assert frame == PostMessage("r", "c", MessageKind.TEXT, "t", (), (), None)


def test_recalled_message_shows_only_its_place() -> None:
    message = Message(
        MessageId("m_1"),
        ConversationId("c_1"),
        4,
        "r",
        UserId("u_1"),
        MessageKind.TEXT,
        "secret",
        (),
        ("@all",),
        2,
        99,
        True,
        {"k": "v"},
    )
    fields = message_fields(message)
    assert fields["recalled"] is True and fields["seq"] == 4 and fields["reply_to"] == 2
    assert fields["text"] == "" and fields["mentions"] == [] and "meta" not in fields
    assert "secret" not in orjson.dumps(fields).decode()


def test_any_string_cursor_passes_the_codec_to_be_judged_by_the_server() -> None:
    long_cursor = "v1." + "9" * 80
    frame = decode_client_frame(
        orjson.dumps({"op": "hello", "token": "t", "device": "d", "cursor": long_cursor})
    )
    assert frame == Hello("t", "d", long_cursor)
