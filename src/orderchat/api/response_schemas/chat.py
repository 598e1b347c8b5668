"""Bodies of the chat: messages, conversations, files and uploads."""

from __future__ import annotations

from typing import Any, Literal

from orderchat.api.response_schemas._base import Body, omitted
from orderchat.core.media import MediaKind, PreviewStatus
from orderchat.core.model import ConversationKind, MessageKind


class Preview(Body):
    """What previews a file has (`core.media.media_descriptor`): every key, null until made."""

    status: PreviewStatus
    error: str | None
    url: str | None
    width: int | None
    height: int | None
    duration_ms: int | None
    pages: int | None
    peaks: list[int] | None
    playback: str | None


class MediaDescriptor(Body):
    """A file as a message, the library and `/info` show it."""

    id: str
    name: str
    type: str
    size: int
    sha256: str | None
    kind: MediaKind
    url: str
    preview: Preview


class ForwardLink(Body):
    """Where a forwarded message came from (`core.forwarding`)."""

    conv: str
    seq: int
    sender: str
    sender_name: str
    sent_at: int
    title: str = omitted()


class Message(Body):
    """A message (`protocol.server_codec.message_json`); flags only when set."""

    id: str
    conv: str
    seq: int
    ref: str | None
    sender: str
    kind: MessageKind
    text: str
    attachments: list[MediaDescriptor]
    mentions: list[str]
    reply_to: int | None
    ts: int
    recalled: bool
    # Each kind of message carries its own details (an order event's order,
    # a call's duration …), so `meta` is any object.
    meta: dict[str, Any] = omitted()
    internal: Literal[True] = omitted()
    urgent: Literal[True] = omitted()
    # A forward's link to its original; set only on forwards.
    forwarded_from: ForwardLink = omitted()
    # Set once the text was edited: `text` is then the newest version.
    edited_ts: int = omitted()
    # Retention removed the content; the message keeps its place in the chain.
    purged: Literal[True] = omitted()


class MessagePage(Body):
    messages: list[Message]


class MessageVersion(Body):
    """One edit of a message's text, with its own link of the hash chain."""

    version: int
    text: str
    by: str
    ts: int
    hash: str


class MessageAudit(Body):
    """A message as it was sent, recalled or not, with its place in the hash chain."""

    message: Message
    recalled_by: str | None
    recalled_ts: int | None
    hash: str
    edits: list[MessageVersion]


class Conversation(Body):
    """A conversation as member changes show it (`services.chat.conversations`)."""

    id: str
    kind: ConversationKind
    title: str | None
    members: list[str]
    last_seq: int
    created_by: str = omitted()
    created_ts: int


class ListFlags(Body):
    """What the list's filters go by, for the caller (docs/conversations.md)."""

    needs_me: bool
    exception_open: bool
    waiting_customer: bool


class ConversationSummary(Conversation):
    """A conversation in the caller's list: with the caller's reading position,
    their own pin and mute, the urgent messages nobody has handled, and the flags."""

    read_seq: int
    unread: int
    unread_urgent: int
    last_message: Message | None
    last_activity_ts: int
    order: str = omitted()
    pinned: bool
    pinned_ts: int | None
    muted: bool
    urgent_open: int
    flags: ListFlags


class ConversationSettings(Body):
    """The caller's own settings of a conversation after a change."""

    conv: str
    pinned: bool
    muted: bool
    pinned_ts: int | None


class UrgentEntry(Body):
    seq: int
    sender: str
    ts: int
    handled: bool
    handled_by: str | None
    handled_ts: int | None


class UrgentList(Body):
    urgent: list[UrgentEntry]


class UrgentHandled(Body):
    conv: str
    seq: int
    by: str
    ts: int


class ConversationDetail(ConversationSummary):
    # Keyed by member user id: the keys are the conversation's members.
    member_reads: dict[str, int]


class ConversationList(Body):
    conversations: list[ConversationSummary]


class LibraryFile(MediaDescriptor):
    """A file in a conversation's or order's library, with the message it came in."""

    message: str
    seq: int
    sender: str
    ts: int
    message_kind: MessageKind
    recalled: Literal[True] = omitted()


class FilePage(Body):
    """A page of the library; `next` is the `before` of the next page, null at the end."""

    files: list[LibraryFile]
    next: int | None


class UploadCreated(Body):
    id: str
    offset: int
    length: int


class UploadState(MediaDescriptor):
    """An upload of the caller's: how far it is, and the message it went into."""

    offset: int
    state: Literal["receiving", "finished"]
    conv: str
    message: str | None


class SearchSnippet(Body):
    text: str
    marks: list[list[int]]  # [start, end) into `text`, to highlight


class SearchConversation(Body):
    id: str
    kind: Literal["channel", "direct", "order", "consult"]
    title: str | None


class SearchOrder(Body):
    id: str
    number: str


class SearchResult(Body):
    message: Message
    snippet: SearchSnippet
    conversation: SearchConversation
    sender_name: str | None
    order: SearchOrder | None
    recalled: bool


class SearchPage(Body):
    """A page of results; `next` asks for the following one (null on the last)."""

    results: list[SearchResult]
    next: str | None
