"""The values an application gets from the SDK, and how server JSON becomes them.

This is the SDK's JSON edge: `dict[str, Any]` stops here. Parsing is strict
about the fields the contract promises (a missing one is a `ProtocolError`)
and tolerant of extra fields and of values the contract may grow, such as new
message kinds or roles, which stay plain strings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from orderchat.client._errors import ProtocolError
from orderchat.core.ids import ConversationId, MessageId, UserId

JsonObject = dict[str, Any]


@dataclass(frozen=True, slots=True)
class User:
    id: UserId
    username: str
    display_name: str
    roles: tuple[str, ...]
    kind: str = "staff"  # or "customer"


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in user: where the server is and the bearer token to use."""

    base_url: str
    token: str
    user: User

    @property
    def ws_url(self) -> str:
        """The WebSocket address next to `base_url` (http -> ws, https -> wss)."""
        parts = urlsplit(self.base_url)
        scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
        return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + "/ws", "", ""))


@dataclass(frozen=True, slots=True)
class Message:
    """A stored message. `kind` is one of the contract's kinds (`text`,
    `system`, ...); a recalled message keeps its `seq` and has no content."""

    id: MessageId
    conv: ConversationId
    seq: int
    ref: str | None
    sender: UserId
    kind: str
    text: str
    attachments: tuple[object, ...]
    mentions: tuple[str, ...]
    reply_to: int | None
    ts: int
    recalled: bool
    meta: Mapping[str, object] | None = None


@dataclass(frozen=True, slots=True)
class Conversation:
    """A conversation as listed or fetched; list-only fields are None elsewhere."""

    id: ConversationId
    kind: str
    title: str | None
    members: tuple[UserId, ...]
    last_seq: int
    read_seq: int | None = None
    unread: int | None = None
    last_message: Message | None = None


@dataclass(frozen=True, slots=True)
class Ack:
    """The server stored a send (or a recall) under `ref`."""

    ref: str
    conv: ConversationId
    seq: int
    id: MessageId
    ts: int


# --- events ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MessageReceived:
    """A message was posted. `cursor` is None when it was recovered over HTTP."""

    message: Message
    cursor: str | None


@dataclass(frozen=True, slots=True)
class MessageRecalled:
    conv: ConversationId
    seq: int
    by: UserId
    ts: int
    cursor: str


@dataclass(frozen=True, slots=True)
class ReadMarked:
    """`user` has read `conv` up to `seq` (any member, the client's user included)."""

    conv: ConversationId
    user: UserId
    seq: int
    ts: int
    cursor: str


@dataclass(frozen=True, slots=True)
class MembersChanged:
    """Members were `added`, `removed`, or `left`; `conversation` is its new state."""

    conv: ConversationId
    action: str
    users: tuple[UserId, ...]
    by: UserId | None
    ts: int
    conversation: Conversation | None
    cursor: str


@dataclass(frozen=True, slots=True)
class MediaUpdated:
    """A sent file's previews are ready (or failed) after its message went out.

    `preview` is the `preview` part of the file's descriptor (docs/media.md).
    """

    conv: ConversationId
    seq: int
    id: str
    preview: Mapping[str, object]
    cursor: str


@dataclass(frozen=True, slots=True)
class OrderChanged:
    """An order's new state, delivered in its conversation after every change.

    `order` is the order as the server shows it (see docs/orders.md); `status`
    and `number` are lifted out because every application wants them.
    """

    conv: ConversationId
    number: str
    status: str
    order: Mapping[str, object]
    ts: int
    cursor: str


@dataclass(frozen=True, slots=True)
class UserTyping:
    """Ephemeral: `user` is typing in `conv`. Never replayed after a reconnect."""

    conv: ConversationId
    user: UserId


Event = (
    MessageReceived
    | MessageRecalled
    | ReadMarked
    | MembersChanged
    | OrderChanged
    | MediaUpdated
    | UserTyping
)


# --- parsing -------------------------------------------------------------------


def _field(obj: JsonObject, name: str) -> Any:
    if name not in obj:
        raise ProtocolError(f"the server sent no {name!r} (op {obj.get('op')!r})")
    return obj[name]


def _str(obj: JsonObject, name: str) -> str:
    value = _field(obj, name)
    if not isinstance(value, str):
        raise ProtocolError(f"{name!r} should be a string, not {type(value).__name__}")
    return value


def _opt_str(obj: JsonObject, name: str) -> str | None:
    value = obj.get(name)
    if value is not None and not isinstance(value, str):
        raise ProtocolError(f"{name!r} should be a string or null")
    return value


def _int(obj: JsonObject, name: str) -> int:
    value = _field(obj, name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ProtocolError(f"{name!r} should be an integer, not {type(value).__name__}")
    return value


def _opt_int(obj: JsonObject, name: str) -> int | None:
    value = obj.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise ProtocolError(f"{name!r} should be an integer or null")
    return value


def _list(obj: JsonObject, name: str) -> list[Any]:
    value = obj.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ProtocolError(f"{name!r} should be a list")
    return value


def _object(value: object, what: str) -> JsonObject:
    if not isinstance(value, dict):
        raise ProtocolError(f"{what} should be a JSON object")
    return value


def parse_user(value: object) -> User:
    obj = _object(value, "a user")
    return User(
        id=UserId(_str(obj, "id")),
        username=_str(obj, "username"),
        display_name=_opt_str(obj, "display_name") or _str(obj, "username"),
        roles=tuple(str(role) for role in _list(obj, "roles")),
        kind=_opt_str(obj, "kind") or "staff",
    )


def parse_message(value: object) -> Message:
    obj = _object(value, "a message")
    meta = obj.get("meta")
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
        recalled=bool(obj.get("recalled", False)),
        meta=meta if isinstance(meta, dict) else None,
    )


def parse_conversation(value: object) -> Conversation:
    obj = _object(value, "a conversation")
    last = obj.get("last_message")
    return Conversation(
        id=ConversationId(_str(obj, "id")),
        kind=_str(obj, "kind"),
        title=_opt_str(obj, "title"),
        members=tuple(UserId(str(m)) for m in _list(obj, "members")),
        last_seq=_opt_int(obj, "last_seq") or 0,
        read_seq=_opt_int(obj, "read_seq"),
        unread=_opt_int(obj, "unread"),
        last_message=None if last is None else parse_message(last),
    )


def parse_ack(obj: JsonObject) -> Ack:
    return Ack(
        ref=_str(obj, "ref"),
        conv=ConversationId(_str(obj, "conv")),
        seq=_int(obj, "seq"),
        id=MessageId(_str(obj, "id")),
        ts=_int(obj, "ts"),
    )


def parse_durable(obj: JsonObject) -> Event | None:
    """The event for a durable frame (one with a cursor), or None for an op
    this SDK does not know: its cursor still counts, its content is skipped."""
    cursor = _str(obj, "cursor")
    op = obj.get("op")
    if op == "message":
        return MessageReceived(parse_message(obj), cursor)
    if op == "recalled":
        return MessageRecalled(
            conv=ConversationId(_str(obj, "conv")),
            seq=_int(obj, "seq"),
            by=UserId(_str(obj, "by")),
            ts=_int(obj, "ts"),
            cursor=cursor,
        )
    if op == "read":
        return ReadMarked(
            conv=ConversationId(_str(obj, "conv")),
            user=UserId(_str(obj, "user")),
            seq=_int(obj, "seq"),
            ts=_int(obj, "ts"),
            cursor=cursor,
        )
    if op == "member":
        conversation = obj.get("conversation")
        by = _opt_str(obj, "by")
        return MembersChanged(
            conv=ConversationId(_str(obj, "conv")),
            action=_str(obj, "action"),
            users=tuple(UserId(str(u)) for u in _list(obj, "users")),
            by=None if by is None else UserId(by),
            ts=_int(obj, "ts"),
            conversation=None if conversation is None else parse_conversation(conversation),
            cursor=cursor,
        )
    if op == "media":
        preview = obj.get("preview")
        return MediaUpdated(
            conv=ConversationId(_str(obj, "conv")),
            seq=_int(obj, "seq"),
            id=_str(obj, "id"),
            preview=preview if isinstance(preview, dict) else {},
            cursor=cursor,
        )
    if op == "order":
        order = obj.get("order")
        if not isinstance(order, dict):
            raise ProtocolError("an order event without its order")
        return OrderChanged(
            conv=ConversationId(_str(obj, "conv")),
            number=_str(order, "number"),
            status=_str(order, "status"),
            order=order,
            ts=_int(obj, "ts"),
            cursor=cursor,
        )
    return None


def parse_typing(obj: JsonObject) -> UserTyping:
    return UserTyping(conv=ConversationId(_str(obj, "conv")), user=UserId(_str(obj, "user")))
