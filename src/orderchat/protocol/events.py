"""Everything the server sends over the WebSocket, as values.

The server builds these and `protocol.server_codec` turns them into JSON; the
SDK decodes the same JSON back into the same classes, so there is one model of
the wire, not one per side. `docs/protocol.md` has a reference section rendered
from these definitions (`protocol.reference`), which a test keeps in step.

Rules:
- Every field is part of the contract. A field that may be absent on the wire
  has a default; the encoder leaves it out while it holds that default, so
  adding an optional field never changes the bytes of frames that do not use it.
- Values are the contract's view: a `Message` here is what a member may see of
  a stored message (a recalled one has no content), not the stored row.
- Kinds that the contract may grow (message kinds, roles, member actions)
  stay plain strings, so an older SDK reads a newer server.
- Durable events carry `cursor`, the stream position after them. The server
  builds them without one (`None`) and the writer's encoder adds it once the
  event has its position; a decoded event always has it, except messages the
  SDK recovered over HTTP.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from orderchat.core.ids import ConversationId, MessageId, UserId
from orderchat.core.texts import Text
from orderchat.protocol.calls import CallParty as CallParty
from orderchat.protocol.calls import CallSignal as CallSignal
from orderchat.protocol.calls import CallState as CallState


class ServerOp(StrEnum):
    """The `op` of every frame the server sends."""

    WELCOME = "welcome"
    SYNCED = "synced"
    ACK = "ack"
    ERROR = "error"
    PONG = "pong"
    TYPING = "typing"
    # Durable events: each carries a cursor and is replayed on resume.
    MESSAGE = "message"
    RECALLED = "recalled"
    READ = "read"
    MEMBER = "member"
    MEDIA = "media"
    ORDER = "order"
    MESSAGE_EDITED = "message_edited"
    # Answers to a private slash query (e.g. `/stock`): only the asker's connections, not replayed.
    COMMAND_REPLY = "command_reply"
    HANDLED = "handled"
    # Ephemeral, to one user's own connections only: not replayed.
    SETTINGS = "settings"
    # Ephemeral, to the parties of a call (docs/calls.md).
    CALL = "call"
    CALL_SIGNAL = "call_signal"


# --- values carried inside frames ------------------------------------------------


@dataclass(frozen=True, slots=True)
class User:
    """A signed-in person as the wire shows them; `kind` is `staff` or `customer`."""

    id: UserId
    username: str
    display_name: str
    roles: tuple[str, ...]
    kind: str = "staff"


@dataclass(frozen=True, slots=True)
class Message:
    """A stored message. `kind` is one of the contract's kinds (`text`,
    `system`, ...); a recalled message keeps its `seq` and has no content.

    `meta` is structured content of server-made messages (order events, stock
    answers); `internal` marks a staff-only note; `urgent` asks members to deal
    with it first. `forwarded_from` links a forwarded message to its original
    (`conv`, `seq`, `sender`, `sender_name`, `sent_at`, and `title` where the
    forward's readers may see it); `edited_ts` is set once the text was edited,
    and `text` is then the newest version. `purged`: retention removed the
    content (text, files, details); the message keeps its place and its hash.
    """

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
    internal: bool = False
    urgent: bool = False
    forwarded_from: Mapping[str, object] | None = None
    edited_ts: int | None = None
    purged: bool = False


@dataclass(frozen=True, slots=True)
class Conversation:
    """A conversation as listed or fetched; fields that only some answers carry
    (a list's unread counts, a member event's creation details) are None elsewhere."""

    id: ConversationId
    kind: str
    title: str | None
    members: tuple[UserId, ...]
    last_seq: int
    created_by: UserId | None = None
    created_ts: int | None = None
    read_seq: int | None = None
    unread: int | None = None
    unread_urgent: int | None = None
    last_message: Message | None = None
    last_activity_ts: int | None = None
    order: str | None = None


# --- answers and notices (not replayed) --------------------------------------------


@dataclass(frozen=True, slots=True)
class Welcome:
    """The answer to `hello`: who the connection belongs to and where the stream is.

    `cursor` is the hello's own cursor when it resumed, else the stream's head.
    """

    user: User
    cursor: str
    server_ts: int


@dataclass(frozen=True, slots=True)
class Synced:
    """Every event missed since the hello's cursor has been sent; live ones follow."""

    cursor: str


@dataclass(frozen=True, slots=True)
class Ack:
    """The server stored a send (or a recall) under `ref`."""

    ref: str
    conv: ConversationId
    seq: int
    id: MessageId
    ts: int


@dataclass(frozen=True, slots=True)
class ErrorReport:
    """A request failed and changed nothing; `ref` names it when it had a usable one.

    `retry_after_s` comes with `rate_limited`: when trying again may succeed.
    `message` is in the connection's language (its hello's `language`);
    `reason` and `params` are the catalogue key and values it was rendered
    from (core/texts.py), absent from servers that predate them.
    """

    code: str
    message: str
    ref: str | None = None
    retry_after_s: float | None = None
    reason: str | None = None
    params: Mapping[str, object] | None = None

    @classmethod
    def of(
        cls,
        code: str,
        text: Text,
        language: str,
        ref: str | None = None,
        retry_after_s: float | None = None,
    ) -> ErrorReport:
        """The report of a failure described by a catalogue text, worded for `language`."""
        wire = text.to_json()
        params = wire["params"]
        assert isinstance(params, dict)
        return cls(code, text.render(language), ref, retry_after_s, text.key, params)


@dataclass(frozen=True, slots=True)
class Pong:
    """The answer to `ping`."""


@dataclass(frozen=True, slots=True)
class UserTyping:
    """Ephemeral: `user` is typing in `conv`. Never replayed after a reconnect."""

    conv: ConversationId
    user: UserId


@dataclass(frozen=True, slots=True)
class CommandReply:
    """The answer to a private slash query, for the asker's connections alone.

    `ref` is the send that asked: it settles that send (nothing was stored, so
    there is no `ack`). `lines` are the answer as text, `items` the same as
    data; `page` of `pages` holds the matches `total` counts, and `next`/`prev`
    are the commands that ask for the neighbouring pages (None at either end).
    """

    conv: ConversationId
    ref: str
    command: str
    query: str
    lines: tuple[str, ...]
    items: tuple[Mapping[str, object], ...]
    page: int
    pages: int
    total: int
    next: str | None = None
    prev: str | None = None


@dataclass(frozen=True, slots=True)
class SettingsChanged:
    """The connection's own user pinned, unpinned, muted or unmuted `conv`.

    Sent to that user's connections only, never to other members, and not
    replayed: a client that reconnects reads the settings again from the
    conversation list. `pinned_ts` is when it was pinned, None when it is not.
    """

    conv: ConversationId
    pinned: bool
    muted: bool
    pinned_ts: int | None = None


# --- durable events ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MessageReceived:
    """A message was posted. `cursor` is None when it was recovered over HTTP."""

    message: Message
    cursor: str | None = None


@dataclass(frozen=True, slots=True)
class MessageRecalled:
    """`by` recalled message `seq` of `conv`; members now see it without content."""

    conv: ConversationId
    seq: int
    by: UserId
    ts: int
    cursor: str | None = None


@dataclass(frozen=True, slots=True)
class MessageEdited:
    """`by` (the sender) changed the text of message `seq` of `conv` to `text`.

    `version` counts the edits (the original is version 0); every version
    stays stored for the audit trail.
    """

    conv: ConversationId
    seq: int
    text: str
    version: int
    by: UserId
    edited_at: int
    cursor: str | None = None


@dataclass(frozen=True, slots=True)
class ReadMarked:
    """`user` has read `conv` up to `seq` (any member, the client's user included)."""

    conv: ConversationId
    user: UserId
    seq: int
    ts: int
    cursor: str | None = None


@dataclass(frozen=True, slots=True)
class MembersChanged:
    """Members were `added`, `removed`, or `left`; `conversation` is its new state.

    `by` is None when the server itself changed the members (an order routed
    to a role channel).
    """

    conv: ConversationId
    action: str
    users: tuple[UserId, ...]
    by: UserId | None
    ts: int
    conversation: Conversation | None
    cursor: str | None = None


@dataclass(frozen=True, slots=True)
class MediaUpdated:
    """A sent file's previews are ready (or failed) after its message went out.

    `id` is the upload, `message` the message carrying it; `preview` is the
    `preview` part of the file's descriptor (docs/media.md).
    """

    conv: ConversationId
    seq: int
    message: MessageId
    id: str
    preview: Mapping[str, object]
    ts: int
    cursor: str | None = None


@dataclass(frozen=True, slots=True)
class OrderChanged:
    """An order's new state, delivered in its conversation after every change.

    `order` is the order as its audience may see it (docs/orders.md): staff get
    the staff view, the order's customer the customer's projection.
    """

    conv: ConversationId
    order: Mapping[str, object]
    ts: int
    cursor: str | None = None

    @property
    def number(self) -> str:
        return str(self.order["number"])

    @property
    def status(self) -> str:
        return str(self.order["status"])


@dataclass(frozen=True, slots=True)
class UrgentHandled:
    """`by` has dealt with urgent message `seq` of `conv`: its marker may go."""

    conv: ConversationId
    seq: int
    by: UserId
    ts: int
    cursor: str | None = None


DurableEvent = (
    MessageReceived
    | MessageRecalled
    | ReadMarked
    | MembersChanged
    | MediaUpdated
    | OrderChanged
    | MessageEdited
    | UrgentHandled
)
ServerFrame = (
    Welcome
    | Synced
    | Ack
    | ErrorReport
    | Pong
    | UserTyping
    | CommandReply
    | SettingsChanged
    | CallState
    | CallSignal
    | DurableEvent
)

# The op of each frame class: one table, read by the encoder, the decoder and the docs.
OP_OF: dict[type[ServerFrame], ServerOp] = {
    Welcome: ServerOp.WELCOME,
    Synced: ServerOp.SYNCED,
    Ack: ServerOp.ACK,
    ErrorReport: ServerOp.ERROR,
    Pong: ServerOp.PONG,
    UserTyping: ServerOp.TYPING,
    MessageReceived: ServerOp.MESSAGE,
    MessageRecalled: ServerOp.RECALLED,
    ReadMarked: ServerOp.READ,
    MembersChanged: ServerOp.MEMBER,
    MediaUpdated: ServerOp.MEDIA,
    OrderChanged: ServerOp.ORDER,
    MessageEdited: ServerOp.MESSAGE_EDITED,
    CommandReply: ServerOp.COMMAND_REPLY,
    UrgentHandled: ServerOp.HANDLED,
    SettingsChanged: ServerOp.SETTINGS,
    CallState: ServerOp.CALL,
    CallSignal: ServerOp.CALL_SIGNAL,
}
