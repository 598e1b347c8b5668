"""Server frames <-> JSON: the one encoder the server uses and the one decoder the SDK uses.

Encoding is on the hot path: every stored message is encoded once, and the
same text goes to every recipient. So each frame class has a small function
that writes its fields into one dict, and orjson is called once per frame.

Decoding is strict about what the contract promises (a missing or mistyped
field raises `MalformedFrame`) and tolerant of what it may grow: unknown
fields are ignored, and kinds stay strings.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, cast, get_args

import orjson

from orderchat.core.cursor import encode_cursor
from orderchat.core.ids import ConversationId, MessageId, UserId
from orderchat.core.model import Message as StoredMessage
from orderchat.core.model import User as Account
from orderchat.core.orders import customer_order_view
from orderchat.protocol import calls
from orderchat.protocol._fields import (
    JsonObject,
    _bool,
    _field,
    _int,
    _list,
    _object,
    _opt_int,
    _opt_object,
    _opt_str,
    _str,
)
from orderchat.protocol._fields import MalformedFrame as MalformedFrame
from orderchat.protocol.events import (
    OP_OF,
    Ack,
    CommandReply,
    Conversation,
    DurableEvent,
    ErrorReport,
    MediaUpdated,
    MembersChanged,
    Message,
    MessageEdited,
    MessageRecalled,
    MessageReceived,
    OrderChanged,
    Pong,
    ReadMarked,
    ServerFrame,
    ServerOp,
    SettingsChanged,
    Synced,
    UrgentHandled,
    User,
    UserTyping,
    Welcome,
)

# --- values -> JSON ----------------------------------------------------------------


def user_json(user: User) -> JsonObject:
    return {
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "roles": list(user.roles),
        "kind": user.kind,
    }


def message_json(message: Message, into: JsonObject | None = None) -> JsonObject:
    """A message's fields, written into `into` (a frame under construction) when given."""
    fields = {} if into is None else into
    fields["id"] = message.id
    fields["conv"] = message.conv
    fields["seq"] = message.seq
    fields["ref"] = message.ref
    fields["sender"] = message.sender
    fields["kind"] = message.kind
    fields["text"] = message.text
    fields["attachments"] = list(message.attachments)
    fields["mentions"] = list(message.mentions)
    fields["reply_to"] = message.reply_to
    fields["ts"] = message.ts
    fields["recalled"] = message.recalled
    for name in _WHEN_SET:  # flags and details a message carries only when set
        if (value := getattr(message, name)) is not None and value is not False:
            fields[name] = value
    return fields


_WHEN_SET = ("meta", "internal", "urgent", "forwarded_from", "edited_ts", "purged")


# A conversation's fields that only some answers carry: written when set.
_CONVERSATION_EXTRAS = (
    "created_by",
    "created_ts",
    "read_seq",
    "unread",
    "unread_urgent",
    "last_activity_ts",
    "order",
)


def conversation_json(conv: Conversation) -> JsonObject:
    fields: JsonObject = {
        "id": conv.id,
        "kind": conv.kind,
        "title": conv.title,
        "members": list(conv.members),
        "last_seq": conv.last_seq,
    }
    for name in _CONVERSATION_EXTRAS:
        value = getattr(conv, name)
        if value is not None:
            fields[name] = value
    if conv.last_message is not None:
        fields["last_message"] = message_json(conv.last_message)
    return fields


def wire_message(message: StoredMessage) -> Message:
    """What a member may see of a stored message: a recalled one keeps only its place."""
    recalled = message.recalled
    return Message(
        id=message.id,
        conv=message.conv,
        seq=message.seq,
        ref=message.ref,
        sender=message.sender,
        kind=message.kind.value,
        text="" if recalled else message.text,
        attachments=() if recalled else message.attachments,
        mentions=() if recalled else message.mentions,
        reply_to=message.reply_to,
        ts=message.ts,
        recalled=recalled,
        meta=None if recalled else message.meta,
        internal=message.internal,
        urgent=message.urgent,
        forwarded_from=None if recalled else message.forwarded_from,
        edited_ts=None if recalled else message.edited_ts,
        purged=message.purged,
    )


def wire_user(user: Account) -> User:
    """A user as every answer shows them, over HTTP and the WebSocket alike."""
    return User(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        roles=tuple(r.value for r in user.roles),
        kind=user.kind.value,
    )


def customer_projection(event: DurableEvent) -> DurableEvent:
    """What a customer may see of a durable event: an order through the customer's view."""
    if isinstance(event, OrderChanged):
        return OrderChanged(event.conv, customer_order_view(event.order), event.ts, event.cursor)
    return event


def message_fields(message: StoredMessage) -> JsonObject:
    """A stored message as the contract shows it, for HTTP answers."""
    return message_json(wire_message(message))


# --- frames -> JSON ----------------------------------------------------------------


def _welcome(f: Welcome, out: JsonObject) -> None:
    out["user"] = user_json(f.user)
    out["cursor"] = f.cursor
    out["server_ts"] = f.server_ts


def _synced(f: Synced, out: JsonObject) -> None:
    out["cursor"] = f.cursor


def _ack(f: Ack, out: JsonObject) -> None:
    out.update(ref=f.ref, conv=f.conv, seq=f.seq, id=f.id, ts=f.ts)


def _error(f: ErrorReport, out: JsonObject) -> None:
    out["code"] = f.code
    out["message"] = f.message
    if f.ref is not None:
        out["ref"] = f.ref
    if f.retry_after_s is not None:
        out["retry_after_s"] = f.retry_after_s
    if f.reason is not None:
        out["reason"] = f.reason
    if f.params is not None:
        out["params"] = dict(f.params)


def _pong(f: Pong, out: JsonObject) -> None:
    pass


def _typing(f: UserTyping, out: JsonObject) -> None:
    out["conv"] = f.conv
    out["user"] = f.user


def _message(f: MessageReceived, out: JsonObject) -> None:
    message_json(f.message, out)


def _recalled(f: MessageRecalled, out: JsonObject) -> None:
    out.update(conv=f.conv, seq=f.seq, by=f.by, ts=f.ts)


def _edited(f: MessageEdited, out: JsonObject) -> None:
    out.update(conv=f.conv, seq=f.seq, text=f.text, version=f.version, by=f.by)
    out["edited_at"] = f.edited_at


def _command_reply(f: CommandReply, out: JsonObject) -> None:
    out.update(conv=f.conv, ref=f.ref, command=f.command, query=f.query)
    out["lines"] = list(f.lines)
    out["items"] = list(f.items)
    out.update(page=f.page, pages=f.pages, total=f.total)
    if f.next is not None:
        out["next"] = f.next
    if f.prev is not None:
        out["prev"] = f.prev


def _read(f: ReadMarked, out: JsonObject) -> None:
    out.update(conv=f.conv, user=f.user, seq=f.seq, ts=f.ts)


def _member(f: MembersChanged, out: JsonObject) -> None:
    out.update(conv=f.conv, action=f.action, users=list(f.users), by=f.by, ts=f.ts)
    out["conversation"] = None if f.conversation is None else conversation_json(f.conversation)


def _media(f: MediaUpdated, out: JsonObject) -> None:
    out.update(conv=f.conv, seq=f.seq, message=f.message, id=f.id, preview=f.preview, ts=f.ts)


def _order(f: OrderChanged, out: JsonObject) -> None:
    out.update(conv=f.conv, order=f.order, ts=f.ts)


def _handled(f: UrgentHandled, out: JsonObject) -> None:
    out.update(conv=f.conv, seq=f.seq, by=f.by, ts=f.ts)


def _settings(f: SettingsChanged, out: JsonObject) -> None:
    out.update(conv=f.conv, pinned=f.pinned, muted=f.muted)
    if f.pinned_ts is not None:
        out["pinned_ts"] = f.pinned_ts


_Writer = Callable[[Any, JsonObject], None]
_WRITERS: dict[type[ServerFrame], _Writer] = {
    Welcome: _welcome,
    Synced: _synced,
    Ack: _ack,
    ErrorReport: _error,
    Pong: _pong,
    UserTyping: _typing,
    MessageReceived: _message,
    MessageRecalled: _recalled,
    ReadMarked: _read,
    MembersChanged: _member,
    MediaUpdated: _media,
    OrderChanged: _order,
    MessageEdited: _edited,
    CommandReply: _command_reply,
    UrgentHandled: _handled,
    SettingsChanged: _settings,
    calls.CallState: calls.write_state,
    calls.CallSignal: calls.write_signal,
}
_OP_TEXT = {cls: op.value for cls, op in OP_OF.items()}
# The ops a client may resume from: derived from the union, so a new durable event is one.
_DURABLE_CLASSES = get_args(DurableEvent)
DURABLE_OPS = frozenset(OP_OF[cls] for cls in _DURABLE_CLASSES)


def frame_json(frame: ServerFrame) -> JsonObject:
    """A frame as the JSON object that goes on the wire; a durable one with its cursor.

    Raises:
        ValueError: a durable event without a cursor (it has no stream position yet).
    """
    cls = type(frame)
    out: JsonObject = {"op": _OP_TEXT[cls]}
    _WRITERS[cls](frame, out)
    if OP_OF[cls] in DURABLE_OPS:
        cursor = getattr(frame, "cursor", None)
        if cursor is None:
            raise ValueError(f"a {out['op']} event has no cursor until it has a position")
        out["cursor"] = cursor
    return out


def encode_server_frame(frame: ServerFrame) -> str:
    """A frame's JSON text: WebSocket text frames take a str."""
    return orjson.dumps(frame_json(frame)).decode()


def encode_event(event: DurableEvent, pos: int) -> str:
    """A durable event's frame at stream position `pos`, encoded once for every recipient."""
    cls = type(event)
    out: JsonObject = {"op": _OP_TEXT[cls]}
    _WRITERS[cls](event, out)
    out["cursor"] = encode_cursor(pos)
    return orjson.dumps(out).decode()


def event_payload(event: DurableEvent) -> JsonObject:
    """What the database keeps of a non-message event: its fields without op or cursor."""
    out: JsonObject = {}
    _WRITERS[type(event)](event, out)
    return out


# --- JSON -> frames ----------------------------------------------------------------


def decode_user(value: object) -> User:
    obj = _object(value, "a user")
    return User(
        id=UserId(_str(obj, "id")),
        username=_str(obj, "username"),
        display_name=_opt_str(obj, "display_name") or _str(obj, "username"),
        roles=tuple(str(role) for role in _list(obj, "roles")),
        kind=_opt_str(obj, "kind") or "staff",
    )


def decode_message(value: object) -> Message:
    obj = _object(value, "a message")
    return Message(
        id=MessageId(_str(obj, "id")),
        conv=ConversationId(_str(obj, "conv")),
        seq=_int(obj, "seq"),
        ref=_opt_str(obj, "ref"),
        sender=UserId(_str(obj, "sender")),
        kind=_str(obj, "kind"),
        text=_opt_str(obj, "text") or "",
        attachments=tuple(_list(obj, "attachments")),
        mentions=tuple(str(m) for m in _list(obj, "mentions")),
        reply_to=_opt_int(obj, "reply_to"),
        ts=_int(obj, "ts"),
        recalled=_bool(obj, "recalled"),
        meta=_opt_object(obj, "meta"),
        internal=_bool(obj, "internal"),
        urgent=_bool(obj, "urgent"),
        forwarded_from=_opt_object(obj, "forwarded_from"),
        edited_ts=_opt_int(obj, "edited_ts"),
        purged=_bool(obj, "purged"),
    )


def decode_conversation(value: object) -> Conversation:
    obj = _object(value, "a conversation")
    last = obj.get("last_message")
    created_by = _opt_str(obj, "created_by")
    return Conversation(
        id=ConversationId(_str(obj, "id")),
        kind=_str(obj, "kind"),
        title=_opt_str(obj, "title"),
        members=tuple(UserId(str(m)) for m in _list(obj, "members")),
        last_seq=_opt_int(obj, "last_seq") or 0,
        created_by=None if created_by is None else UserId(created_by),
        created_ts=_opt_int(obj, "created_ts"),
        read_seq=_opt_int(obj, "read_seq"),
        unread=_opt_int(obj, "unread"),
        unread_urgent=_opt_int(obj, "unread_urgent"),
        last_message=None if last is None else decode_message(last),
        last_activity_ts=_opt_int(obj, "last_activity_ts"),
        order=_opt_str(obj, "order"),
    )


def _decode_welcome(obj: JsonObject, cursor: str | None) -> Welcome:
    return Welcome(
        user=decode_user(_field(obj, "user")),
        cursor=_str(obj, "cursor"),
        server_ts=_int(obj, "server_ts"),
    )


def _decode_synced(obj: JsonObject, cursor: str | None) -> Synced:
    return Synced(cursor=_str(obj, "cursor"))


def _decode_ack(obj: JsonObject, cursor: str | None) -> Ack:
    return Ack(
        ref=_str(obj, "ref"),
        conv=ConversationId(_str(obj, "conv")),
        seq=_int(obj, "seq"),
        id=MessageId(_str(obj, "id")),
        ts=_int(obj, "ts"),
    )


def _decode_error(obj: JsonObject, cursor: str | None) -> ErrorReport:
    retry = obj.get("retry_after_s")
    if retry is not None and (not isinstance(retry, int | float) or isinstance(retry, bool)):
        raise MalformedFrame("'retry_after_s' should be a number")
    return ErrorReport(
        code=_opt_str(obj, "code") or "internal",
        message=_opt_str(obj, "message") or "",
        ref=_opt_str(obj, "ref"),
        retry_after_s=None if retry is None else float(retry),
        reason=_opt_str(obj, "reason"),
        params=params if isinstance(params := obj.get("params"), dict) else None,
    )


def _decode_pong(obj: JsonObject, cursor: str | None) -> Pong:
    return Pong()


def _decode_typing(obj: JsonObject, cursor: str | None) -> UserTyping:
    return UserTyping(conv=ConversationId(_str(obj, "conv")), user=UserId(_str(obj, "user")))


def _decode_message(obj: JsonObject, cursor: str | None) -> MessageReceived:
    return MessageReceived(decode_message(obj), cursor)


def _decode_recalled(obj: JsonObject, cursor: str | None) -> MessageRecalled:
    return MessageRecalled(
        conv=ConversationId(_str(obj, "conv")),
        seq=_int(obj, "seq"),
        by=UserId(_str(obj, "by")),
        ts=_int(obj, "ts"),
        cursor=cursor,
    )


def _decode_read(obj: JsonObject, cursor: str | None) -> ReadMarked:
    return ReadMarked(
        conv=ConversationId(_str(obj, "conv")),
        user=UserId(_str(obj, "user")),
        seq=_int(obj, "seq"),
        ts=_int(obj, "ts"),
        cursor=cursor,
    )


def _decode_member(obj: JsonObject, cursor: str | None) -> MembersChanged:
    conversation = obj.get("conversation")
    by = _opt_str(obj, "by")
    return MembersChanged(
        conv=ConversationId(_str(obj, "conv")),
        action=_str(obj, "action"),
        users=tuple(UserId(str(u)) for u in _list(obj, "users")),
        by=None if by is None else UserId(by),
        ts=_int(obj, "ts"),
        conversation=None if conversation is None else decode_conversation(conversation),
        cursor=cursor,
    )


def _decode_media(obj: JsonObject, cursor: str | None) -> MediaUpdated:
    return MediaUpdated(
        conv=ConversationId(_str(obj, "conv")),
        seq=_int(obj, "seq"),
        message=MessageId(_str(obj, "message")),
        id=_str(obj, "id"),
        preview=_object(_field(obj, "preview"), "'preview'"),
        ts=_int(obj, "ts"),
        cursor=cursor,
    )


def _decode_order(obj: JsonObject, cursor: str | None) -> OrderChanged:
    order = _object(_field(obj, "order"), "an order event's order")
    _str(order, "number")
    _str(order, "status")
    return OrderChanged(
        conv=ConversationId(_str(obj, "conv")), order=order, ts=_int(obj, "ts"), cursor=cursor
    )


def _decode_edited(obj: JsonObject, cursor: str | None) -> MessageEdited:
    return MessageEdited(
        conv=ConversationId(_str(obj, "conv")),
        seq=_int(obj, "seq"),
        text=_opt_str(obj, "text") or "",
        version=_int(obj, "version"),
        by=UserId(_str(obj, "by")),
        edited_at=_int(obj, "edited_at"),
        cursor=cursor,
    )


def _decode_command_reply(obj: JsonObject, cursor: str | None) -> CommandReply:
    return CommandReply(
        conv=ConversationId(_str(obj, "conv")),
        ref=_str(obj, "ref"),
        command=_str(obj, "command"),
        query=_opt_str(obj, "query") or "",
        lines=tuple(str(line) for line in _list(obj, "lines")),
        items=tuple(_object(item, "a command reply's item") for item in _list(obj, "items")),
        page=_int(obj, "page"),
        pages=_int(obj, "pages"),
        total=_int(obj, "total"),
        next=_opt_str(obj, "next"),
        prev=_opt_str(obj, "prev"),
    )


def _decode_handled(obj: JsonObject, cursor: str | None) -> UrgentHandled:
    same = _decode_recalled(obj, cursor)  # the same fields: conv, seq, by, ts
    return UrgentHandled(same.conv, same.seq, same.by, same.ts, cursor)


def _decode_settings(obj: JsonObject, cursor: str | None) -> SettingsChanged:
    return SettingsChanged(
        conv=ConversationId(_str(obj, "conv")),
        pinned=_bool(obj, "pinned"),
        muted=_bool(obj, "muted"),
        pinned_ts=_opt_int(obj, "pinned_ts"),
    )


_READERS: dict[ServerOp, Callable[[JsonObject, str | None], ServerFrame]] = {
    ServerOp.WELCOME: _decode_welcome,
    ServerOp.SYNCED: _decode_synced,
    ServerOp.ACK: _decode_ack,
    ServerOp.ERROR: _decode_error,
    ServerOp.PONG: _decode_pong,
    ServerOp.TYPING: _decode_typing,
    ServerOp.MESSAGE: _decode_message,
    ServerOp.RECALLED: _decode_recalled,
    ServerOp.READ: _decode_read,
    ServerOp.MEMBER: _decode_member,
    ServerOp.MEDIA: _decode_media,
    ServerOp.ORDER: _decode_order,
    ServerOp.MESSAGE_EDITED: _decode_edited,
    ServerOp.COMMAND_REPLY: _decode_command_reply,
    ServerOp.HANDLED: _decode_handled,
    ServerOp.SETTINGS: _decode_settings,
    ServerOp.CALL: calls.read_state,
    ServerOp.CALL_SIGNAL: calls.read_signal,
}


_KNOWN_OPS = frozenset(op.value for op in ServerOp)


def decode_server_frame(data: str | bytes | JsonObject) -> ServerFrame | None:
    """The frame a server sent, or None for an op this version does not know.

    An unknown op with a cursor is a durable event of a newer server: the
    caller still counts its cursor (see `frame_cursor`) and skips its content.

    Raises:
        MalformedFrame: not JSON, not an object, or a known op with bad fields.
    """
    obj = data if isinstance(data, dict) else _loads(data)
    raw_op = obj.get("op")
    if not isinstance(raw_op, str) or raw_op not in _KNOWN_OPS:
        return None
    op = ServerOp(raw_op)
    cursor = _str(obj, "cursor") if op in DURABLE_OPS else None
    return _READERS[op](obj, cursor)


def decode_event(op: str, payload: Mapping[str, Any], cursor: str | None) -> DurableEvent:
    """A stored non-message event back as its value (the database keeps `event_payload`)."""
    event = _READERS[ServerOp(op)](dict(payload), cursor)
    assert isinstance(event, _DURABLE_CLASSES)
    return cast(DurableEvent, event)


def frame_cursor(obj: Mapping[str, Any]) -> str | None:
    cursor = obj.get("cursor")
    return cursor if isinstance(cursor, str) else None


def _loads(data: str | bytes) -> JsonObject:
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise MalformedFrame("the server sent a frame that is not JSON") from exc
    return _object(obj, "a server frame")
