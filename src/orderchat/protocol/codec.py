"""Client frames <-> JSON, with every check a frame needs before it means anything.

Decoding raises `FrameError` carrying the contract's error code and, when the
frame had a usable one, its `ref`, so the answer can be matched by the client.
Server frames have their own codec, `protocol.server_codec`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson

from orderchat.core.errors import BadRequest, ErrorCode, TooLarge
from orderchat.core.model import (
    CLIENT_KINDS,
    MAX_MENTIONS,
    MAX_TEXT_CHARS,
    MessageKind,
    refuse_nul,
    validate_text,
)
from orderchat.core.texts import Text, normalize_language, say
from orderchat.protocol import calls
from orderchat.protocol.frames import (
    CLIENT_OP_OF,
    ClientFrame,
    ClientOp,
    EditMessage,
    ForwardOf,
    Hello,
    MarkRead,
    Ping,
    PostMessage,
    RecallMessage,
    Typing,
)

MAX_FRAME_BYTES = 1024 * 1024
MAX_ID_CHARS = 64
MAX_TOKEN_CHARS = 256
MAX_ATTACHMENTS = 20

JsonObject = dict[str, Any]


class FrameError(Exception):
    """The peer sent a frame we cannot act on; the connection stays usable."""

    def __init__(self, code: ErrorCode, text: Text, ref: str | None = None) -> None:
        super().__init__(text.key)
        self.code = code
        self.text = text
        self.ref = ref

    @property
    def message(self) -> str:
        return self.text.render("en")


def _is_ref(value: object) -> bool:
    # Printable ASCII is space through "~": checked in C, not a character at a time,
    # because every send passes here.
    return (
        isinstance(value, str)
        and 1 <= len(value) <= MAX_ID_CHARS
        and value.isascii()
        and value.isprintable()
    )


def _string(obj: JsonObject, name: str, max_chars: int) -> str:
    value = obj.get(name)
    if not isinstance(value, str) or not value:
        raise BadRequest(say("codec.must_non_empty_string", name=name))
    if len(value) > max_chars:
        raise BadRequest(say("codec.longer_than_characters", name=name, max_chars=max_chars))
    return value


def _seq(obj: JsonObject, name: str) -> int:
    value = obj.get(name)
    # bool is an int in Python; JSON true is not a sequence number.
    if not isinstance(value, int) or isinstance(value, bool) or value < 1 or value > 2**62:
        raise BadRequest(say("codec.must_positive_integer", name=name))
    return value


def _ref(obj: JsonObject) -> str:
    value = obj.get("ref")
    if not _is_ref(value):
        raise BadRequest(say("codec.ref_must_1_64_printable"))
    assert isinstance(value, str)
    return value


def _ref_if_any(obj: JsonObject) -> str | None:
    return None if obj.get("ref") is None else _ref(obj)


def _list(obj: JsonObject, name: str, max_items: int) -> tuple[object, ...]:
    value = obj.get(name, [])
    if value is None:
        return ()
    if not isinstance(value, list):
        raise BadRequest(say("codec.must_list", name=name))
    if len(value) > max_items:
        raise BadRequest(say("codec.has_more_than_items", name=name, max_items=max_items))
    return tuple(value)


def _hello(obj: JsonObject) -> Hello:
    cursor = obj.get("cursor")
    # Any string is a cursor here; one the server cannot serve (too long
    # included) is answered with cursor_expired when it is decoded.
    if cursor is not None and not isinstance(cursor, str):
        raise BadRequest(say("codec.cursor_must_string_null"))
    language = obj.get("language")
    if language is not None and not isinstance(language, str):
        raise BadRequest(say("codec.language_must_string_null"))
    return Hello(
        token=_string(obj, "token", MAX_TOKEN_CHARS),
        device=_string(obj, "device", MAX_ID_CHARS),
        cursor=cursor,
        # A language the server does not speak gets the default, not a refusal:
        # a client may offer its reader's language without knowing ours.
        language=normalize_language(language),
    )


def _send(obj: JsonObject) -> PostMessage:
    ref = _ref(obj)
    if obj.get("forward") is not None:
        return _forward(obj, ref)
    kind_name = obj.get("kind", "text")
    try:
        kind = MessageKind(kind_name)
    except (ValueError, TypeError):
        raise BadRequest(say("codec.unknown_message_kind", kind_name=kind_name)) from None
    if kind not in CLIENT_KINDS:
        raise BadRequest(say("codec.messages_kind_cannot_sent_by", value=kind.value))
    attachments = _attachment_ids(obj, kind)
    reply_to = obj.get("reply_to")
    internal = obj.get("internal", False)
    if not isinstance(internal, bool):
        raise BadRequest(say("codec.internal_must_true_false"))
    urgent = obj.get("urgent", False)
    if not isinstance(urgent, bool):
        raise BadRequest(say("codec.urgent_must_true_false"))
    return PostMessage(
        ref=ref,
        conv=_string(obj, "conv", MAX_ID_CHARS),
        kind=kind,
        text=validate_text(obj.get("text")) if kind is MessageKind.TEXT else _caption(obj),
        attachments=attachments,
        mentions=_list(obj, "mentions", MAX_MENTIONS),
        reply_to=None if reply_to is None else _seq(obj, "reply_to"),
        internal=internal,
        urgent=urgent,
    )


def _forward(obj: JsonObject, ref: str) -> PostMessage:
    """A send that forwards: the content is the original's, so the frame brings none."""
    source = obj["forward"]
    if not isinstance(source, dict):
        raise BadRequest(say("codec.forward_must_be_object"))
    if obj.get("text") or obj.get("attachments"):
        raise BadRequest(say("codec.forward_has_no_content"))
    if obj.get("kind", "text") != "text" or obj.get("reply_to") is not None:
        raise BadRequest(say("codec.forward_has_no_kind"))
    internal = obj.get("internal", False)
    if not isinstance(internal, bool):
        raise BadRequest(say("codec.internal_must_true_false"))
    return PostMessage(
        ref=ref,
        conv=_string(obj, "conv", MAX_ID_CHARS),
        kind=MessageKind.TEXT,
        text="",
        attachments=(),
        mentions=(),
        reply_to=None,
        internal=internal,
        forward=ForwardOf(conv=_string(source, "conv", MAX_ID_CHARS), seq=_seq(source, "seq")),
    )


def _attachment_ids(obj: JsonObject, kind: MessageKind) -> tuple[str, ...]:
    """The uploads a message carries, by id: `[{"id": "up_…"}]` (a bare id string is fine)."""
    items = _list(obj, "attachments", MAX_ATTACHMENTS)
    if kind is MessageKind.TEXT:
        if items:
            raise BadRequest(say("codec.text_message_carries_no_attachments"))
        return ()
    if not items:
        raise BadRequest(say("codec.message_needs_at_least_one", value=kind.value))
    ids: list[str] = []
    for item in items:
        upload_id = item.get("id") if isinstance(item, dict) else item
        if not isinstance(upload_id, str) or not 1 <= len(upload_id) <= MAX_ID_CHARS:
            raise BadRequest(say("codec.each_attachment_must"))
        if upload_id in ids:
            raise BadRequest(say("codec.attachment_listed_twice", upload_id=upload_id))
        ids.append(upload_id)
    return tuple(ids)


def _caption(obj: JsonObject) -> str:
    """A file's message may say something about it, or nothing."""
    text = obj.get("text")
    if text is None or text == "":
        return ""
    if not isinstance(text, str):
        raise BadRequest(say("model.text_must_string"))
    refuse_nul(text)
    if len(text) > MAX_TEXT_CHARS:
        raise TooLarge(
            say("model.text_characters_limit", length=len(text), max_text_chars=MAX_TEXT_CHARS)
        )
    return text


def _read(obj: JsonObject) -> MarkRead:
    return MarkRead(conv=_string(obj, "conv", MAX_ID_CHARS), seq=_seq(obj, "seq"))


def _recall(obj: JsonObject) -> RecallMessage:
    return RecallMessage(
        ref=_ref(obj), conv=_string(obj, "conv", MAX_ID_CHARS), seq=_seq(obj, "seq")
    )


def _edit(obj: JsonObject) -> EditMessage:
    text = obj.get("text")
    if not isinstance(text, str):
        raise BadRequest(say("model.text_must_string"))
    refuse_nul(text)
    if len(text) > MAX_TEXT_CHARS:
        raise TooLarge(
            say("model.text_characters_limit", length=len(text), max_text_chars=MAX_TEXT_CHARS)
        )
    return EditMessage(
        ref=_ref(obj), conv=_string(obj, "conv", MAX_ID_CHARS), seq=_seq(obj, "seq"), text=text
    )


def _typing(obj: JsonObject) -> Typing:
    return Typing(conv=_string(obj, "conv", MAX_ID_CHARS))


def _ping(obj: JsonObject) -> Ping:
    return Ping()


_DECODERS: dict[str, Callable[[JsonObject], ClientFrame]] = {
    ClientOp.HELLO: _hello,
    ClientOp.SEND: _send,
    ClientOp.READ: _read,
    ClientOp.RECALL: _recall,
    ClientOp.EDIT: _edit,
    ClientOp.TYPING: _typing,
    ClientOp.PING: _ping,
    ClientOp.CALL_INVITE: lambda obj: calls.decode_invite(obj, _ref(obj)),
    ClientOp.CALL_ADD: lambda obj: calls.decode_add(obj, _ref(obj)),
    ClientOp.CALL_ACCEPT: lambda obj: calls.decode_accept(obj, _ref(obj)),
    ClientOp.CALL_DECLINE: lambda obj: calls.decode_decline(obj, _ref(obj)),
    ClientOp.CALL_HANGUP: lambda obj: calls.decode_hang_up(obj, _ref(obj)),
    ClientOp.CALL_REJOIN: lambda obj: calls.decode_rejoin(obj, _ref(obj)),
    ClientOp.CALL_MEDIA: lambda obj: calls.decode_media(obj, _ref_if_any(obj)),
    ClientOp.CALL_SIGNAL: lambda obj: calls.decode_signal(obj, _ref_if_any(obj)),
}


def _ref_of_refused(data: str | bytes) -> str | None:
    """The ref of a frame orjson refuses although it is JSON (a number past a double's
    range, a lone surrogate escape), so that its error can still name the request.
    Only the error path pays for the second parser."""
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError):
        return None
    ref = obj.get("ref") if isinstance(obj, dict) else None
    return ref if _is_ref(ref) else None


def _size_bytes(data: str | bytes) -> int:
    # A character is at most 4 bytes of UTF-8: only a text that might be over the
    # limit is encoded to measure it, so the usual small frame costs one len().
    if isinstance(data, bytes) or len(data) * 4 <= MAX_FRAME_BYTES:
        return len(data)
    return len(data.encode("utf-8", "surrogatepass"))


def decode_client_frame(data: str | bytes) -> ClientFrame:
    """Parse one text frame from a client.

    Raises:
        FrameError: malformed JSON, not an object, unknown op, or invalid fields.
    """
    if _size_bytes(data) > MAX_FRAME_BYTES:
        raise FrameError(ErrorCode.TOO_LARGE, say("frame.too_large", limit=MAX_FRAME_BYTES))
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise FrameError(
            ErrorCode.BAD_REQUEST, say("frame.not_json"), _ref_of_refused(data)
        ) from None
    if not isinstance(obj, dict):
        raise FrameError(ErrorCode.BAD_REQUEST, say("frame.not_object"))
    raw_ref = obj.get("ref")
    ref = raw_ref if _is_ref(raw_ref) else None
    op = obj.get("op")
    decoder = _DECODERS.get(op) if isinstance(op, str) else None
    if decoder is None:
        raise FrameError(ErrorCode.BAD_REQUEST, say("frame.unknown_op", op=op), ref)
    try:
        return decoder(obj)
    except (BadRequest, TooLarge) as exc:
        raise FrameError(exc.code, exc.text, ref) from exc


def client_frame_json(frame: ClientFrame) -> JsonObject:
    """The JSON object a client sends for a frame: every field, so nothing is dropped."""
    match frame:
        case Hello(token=token, device=device, cursor=cursor, language=language):
            hello = {"op": ClientOp.HELLO, "token": token, "device": device, "cursor": cursor}
            return hello if language is None else {**hello, "language": language}
        case PostMessage(forward=ForwardOf() as source):
            return {
                "op": ClientOp.SEND,
                "ref": frame.ref,
                "conv": frame.conv,
                "forward": {"conv": source.conv, "seq": source.seq},
                "internal": frame.internal,
            }
        case PostMessage():
            return {
                "op": ClientOp.SEND,
                "ref": frame.ref,
                "conv": frame.conv,
                "kind": frame.kind.value,
                "text": frame.text,
                "attachments": [{"id": upload_id} for upload_id in frame.attachments],
                "mentions": list(frame.mentions),
                "reply_to": frame.reply_to,
                "internal": frame.internal,
                "urgent": frame.urgent,
            }
        case MarkRead(conv=conv, seq=seq):
            return {"op": ClientOp.READ, "conv": conv, "seq": seq}
        case RecallMessage(ref=ref, conv=conv, seq=seq):
            return {"op": ClientOp.RECALL, "ref": ref, "conv": conv, "seq": seq}
        case EditMessage(ref=ref, conv=conv, seq=seq, text=text):
            return {"op": ClientOp.EDIT, "ref": ref, "conv": conv, "seq": seq, "text": text}
        case Typing(conv=conv):
            return {"op": ClientOp.TYPING, "conv": conv}
        case Ping():
            return {"op": ClientOp.PING}
        case _:
            return calls.call_frame_json(frame, CLIENT_OP_OF[type(frame)])


def encode_client_frame(frame: ClientFrame) -> bytes:
    """The JSON a client sends for a frame; the SDK's only way to speak."""
    return orjson.dumps(client_frame_json(frame))
