"""Client frames as values. Server frames are built by `codec` as JSON objects."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

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
    attachments: tuple[str, ...]  # upload ids
    mentions: tuple[object, ...]
    reply_to: int | None
    internal: bool = False
    urgent: bool = False


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


class CloseCode(IntEnum):
    """WebSocket close codes the server uses, and what a client should do on each."""

    POLICY = 1008  # no hello in time: reconnect and say hello promptly
    TOO_LARGE = 1009  # a frame over 1 MiB: do not send it again
    SESSION_ENDED = 4001  # signed out or expired: sign in again, do not retry the token
    TOO_SLOW = 4008  # fell too far behind: reconnect with the last cursor
