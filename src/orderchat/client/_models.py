"""The values an application gets from the SDK, and the SDK's JSON edge.

The values are the protocol's own (`orderchat.protocol.events`): the server
builds them, the SDK decodes into them, so there is one model of the wire.
Decoding is strict about the fields the contract promises (a missing one is a
`ProtocolError`) and tolerant of extra fields and of values the contract may
grow, such as new message kinds or roles, which stay plain strings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import orjson

from orderchat.client._errors import ProtocolError
from orderchat.protocol.events import (
    Ack,
    CommandReply,
    Conversation,
    MediaUpdated,
    MembersChanged,
    Message,
    MessageEdited,
    MessageRecalled,
    MessageReceived,
    OrderChanged,
    ReadMarked,
    SettingsChanged,
    UrgentHandled,
    User,
    UserTyping,
)
from orderchat.protocol.server_codec import (
    MalformedFrame,
    decode_conversation,
    decode_message,
    decode_user,
)

__all__ = [
    "Ack",
    "CommandReply",
    "Conversation",
    "Event",
    "JsonObject",
    "MediaUpdated",
    "MembersChanged",
    "Message",
    "MessageEdited",
    "MessageRecalled",
    "MessageReceived",
    "OrderChanged",
    "ReadMarked",
    "Session",
    "SettingsChanged",
    "User",
    "UserTyping",
    "parse_conversation",
    "parse_frame_json",
    "parse_message",
    "parse_user",
]

JsonObject = dict[str, Any]
T = TypeVar("T")


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


Event = (
    MessageReceived
    | MessageEdited
    | MessageRecalled
    | ReadMarked
    | MembersChanged
    | OrderChanged
    | MediaUpdated
    | UrgentHandled
    | UserTyping
    | CommandReply
)


def strict(decode: Callable[[Any], T], value: object) -> T:
    """Decode with the protocol's decoder; a malformed value is the SDK's ProtocolError."""
    try:
        return decode(value)
    except MalformedFrame as exc:
        raise ProtocolError(str(exc)) from exc


def parse_user(value: object) -> User:
    return strict(decode_user, value)


def parse_message(value: object) -> Message:
    return strict(decode_message, value)


def parse_conversation(value: object) -> Conversation:
    return strict(decode_conversation, value)


def parse_frame_json(data: str | bytes) -> JsonObject:
    """A frame's JSON object as the server sent it."""
    try:
        frame = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError("the server sent a frame that is not JSON") from exc
    if not isinstance(frame, dict):
        raise ProtocolError("the server sent a frame that is not a JSON object")
    return frame
