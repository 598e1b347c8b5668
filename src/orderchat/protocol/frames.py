"""Client frames as values. Server frames are built by `codec` as JSON objects."""

from __future__ import annotations

from dataclasses import dataclass

from orderchat.core.model import MessageKind


@dataclass(frozen=True, slots=True)
class Hello:
    token: str
    device: str
    cursor: str | None


@dataclass(frozen=True, slots=True)
class PostMessage:
    ref: str
    conv: str
    kind: MessageKind
    text: str
    attachments: tuple[object, ...]
    mentions: tuple[object, ...]
    reply_to: int | None


@dataclass(frozen=True, slots=True)
class MarkRead:
    conv: str
    seq: int


@dataclass(frozen=True, slots=True)
class RecallMessage:
    ref: str
    conv: str
    seq: int


@dataclass(frozen=True, slots=True)
class Typing:
    conv: str


@dataclass(frozen=True, slots=True)
class Ping:
    pass


ClientFrame = Hello | PostMessage | MarkRead | RecallMessage | Typing | Ping
