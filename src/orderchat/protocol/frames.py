"""Everything a client sends over the WebSocket, as values; `protocol.events` has
what the server sends. `protocol.codec` is their one encoder and decoder."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum

from orderchat.core.model import MessageKind
from orderchat.protocol.calls import (
    CallAccept,
    CallAdd,
    CallClientFrame,
    CallDecline,
    CallHangUp,
    CallInvite,
    CallMediaChange,
    CallRejoin,
    CallSignalOut,
)


class ClientOp(StrEnum):
    """The `op` of every frame a client may send."""

    HELLO = "hello"
    SEND = "send"
    READ = "read"
    RECALL = "recall"
    EDIT = "edit"
    TYPING = "typing"
    PING = "ping"
    CALL_INVITE = "call_invite"
    CALL_ADD = "call_add"
    CALL_ACCEPT = "call_accept"
    CALL_DECLINE = "call_decline"
    CALL_HANGUP = "call_hangup"
    CALL_REJOIN = "call_rejoin"
    CALL_MEDIA = "call_media"
    CALL_SIGNAL = "call_signal"


@dataclass(frozen=True, slots=True)
class Hello:
    """The first frame: who is connecting, from which device, resuming from where.

    `language` (zh-CN or en) is what the server words this connection's
    `error` frames in; absent, zh-CN.
    """

    token: str
    device: str
    cursor: str | None
    language: str | None = None


@dataclass(frozen=True, slots=True)
class ForwardOf:
    """The message a send forwards: message `seq` of conversation `conv`."""

    conv: str
    seq: int


@dataclass(frozen=True, slots=True)
class PostMessage:
    """Send a message; `ref` is the sender's idempotency key for it.

    `attachments` name finished uploads; `mentions` are user ids or role and
    everyone mentions as docs/protocol.md describes, checked by the server.
    With `forward`, the message is a copy of that one (its kind, text and
    files) and the frame's own text and attachments are empty.
    """

    ref: str
    conv: str
    kind: MessageKind
    text: str
    attachments: tuple[str, ...]  # upload ids
    mentions: tuple[object, ...]
    reply_to: int | None
    internal: bool = False
    urgent: bool = False
    forward: ForwardOf | None = None


@dataclass(frozen=True, slots=True)
class MarkRead:
    """Mark `conv` read up to `seq`."""

    conv: str
    seq: int


@dataclass(frozen=True, slots=True)
class RecallMessage:
    """Recall message `seq` of `conv`."""

    ref: str
    conv: str
    seq: int


@dataclass(frozen=True, slots=True)
class EditMessage:
    """Replace the text (or caption) of the sender's own message `seq` of `conv`."""

    ref: str
    conv: str
    seq: int
    text: str


@dataclass(frozen=True, slots=True)
class Typing:
    """Tell the other members of `conv` that this user is typing."""

    conv: str


@dataclass(frozen=True, slots=True)
class Ping:
    """Ask for a `pong`: the client's heartbeat."""


ClientFrame = (
    Hello | PostMessage | MarkRead | RecallMessage | EditMessage | Typing | Ping | CallClientFrame
)

# The op of each frame class: one table, read by the encoder, the decoder and the docs.
CLIENT_OP_OF: dict[type[ClientFrame], ClientOp] = {
    Hello: ClientOp.HELLO,
    PostMessage: ClientOp.SEND,
    MarkRead: ClientOp.READ,
    RecallMessage: ClientOp.RECALL,
    EditMessage: ClientOp.EDIT,
    Typing: ClientOp.TYPING,
    Ping: ClientOp.PING,
    CallInvite: ClientOp.CALL_INVITE,
    CallAdd: ClientOp.CALL_ADD,
    CallAccept: ClientOp.CALL_ACCEPT,
    CallDecline: ClientOp.CALL_DECLINE,
    CallHangUp: ClientOp.CALL_HANGUP,
    CallRejoin: ClientOp.CALL_REJOIN,
    CallMediaChange: ClientOp.CALL_MEDIA,
    CallSignalOut: ClientOp.CALL_SIGNAL,
}


class CloseCode(IntEnum):
    """WebSocket close codes the server uses, and what a client should do on each."""

    POLICY = 1008  # no hello in time: reconnect and say hello promptly
    TOO_LARGE = 1009  # a frame over 1 MiB: do not send it again
    SESSION_ENDED = 4001  # signed out or expired: sign in again, do not retry the token
    TOO_SLOW = 4008  # fell too far behind: reconnect with the last cursor
