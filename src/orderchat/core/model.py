"""The values the messaging core works with, and the limits on them."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

from orderchat.core.errors import BadRequest, TooLarge
from orderchat.core.ids import ConversationId, MessageId, SessionId, UserId
from orderchat.core.texts import say

MAX_TEXT_CHARS = 10_000
MAX_TITLE_CHARS = 200
MAX_DISPLAY_NAME_CHARS = 100
MAX_MEMBERS_PER_REQUEST = 5_000
MAX_MENTIONS = 100
MAX_PASSWORD_CHARS = 1024

_USERNAME = re.compile(r"[A-Za-z0-9._-]{1,64}")


class Role(StrEnum):
    ADMIN = "admin"
    CUSTOMER_SERVICE = "customer_service"
    SALES = "sales"
    PURCHASING = "purchasing"
    WAREHOUSE = "warehouse"
    LOGISTICS = "logistics"
    FINANCE = "finance"
    PRODUCTION = "production"
    QC = "qc"


class UserKind(StrEnum):
    STAFF = "staff"
    CUSTOMER = "customer"


class ConversationKind(StrEnum):
    CHANNEL = "channel"
    DIRECT = "direct"
    ORDER = "order"
    CONSULT = "consult"  # a visitor's pre-sales chat (docs/consults.md)


class MessageKind(StrEnum):
    TEXT = "text"
    IMAGE = "image"
    VOICE = "voice"
    VIDEO = "video"
    FILE = "file"
    SYSTEM = "system"
    ORDER_EVENT = "order_event"
    CALL = "call"
    PRODUCT = "product"  # a catalogue product shared as a card (docs/consults.md §4)


# Kinds a client may send itself; the others are written by the server.
CLIENT_KINDS = frozenset(
    {MessageKind.TEXT, MessageKind.IMAGE, MessageKind.VOICE, MessageKind.VIDEO, MessageKind.FILE}
)
# Kinds whose message carries uploaded files.
MEDIA_KINDS = CLIENT_KINDS - {MessageKind.TEXT}


class MemberAction(StrEnum):
    ADDED = "added"
    REMOVED = "removed"
    LEFT = "left"
    RENAMED = "renamed"  # the title changed; `users` is empty


@dataclass(frozen=True, slots=True)
class User:
    id: UserId
    username: str
    display_name: str
    roles: tuple[Role, ...]
    kind: UserKind = UserKind.STAFF

    @property
    def is_admin(self) -> bool:
        return Role.ADMIN in self.roles

    @property
    def is_staff(self) -> bool:
        return self.kind is UserKind.STAFF


@dataclass(frozen=True, slots=True)
class Message:
    id: MessageId
    conv: ConversationId
    seq: int
    ref: str | None
    sender: UserId
    kind: MessageKind
    text: str
    attachments: tuple[object, ...]
    mentions: tuple[str, ...]
    reply_to: int | None
    ts: int
    recalled: bool
    meta: dict[str, object] | None = field(default=None)
    internal: bool = False  # staff only: never shown to a customer
    urgent: bool = False  # the sender asked members to deal with it first
    # Where a forwarded message came from: {conv, seq, sender, sender_name, sent_at, …}.
    forwarded_from: dict[str, object] | None = None
    # When the text was last edited; the stored text stays the original (see core.edits).
    edited_ts: int | None = None
    # Retention removed the content; the hash stays, so the chain links through it.
    purged: bool = False


@dataclass(frozen=True, slots=True)
class Conversation:
    """A conversation's own state: the head of its message chain and its last activity."""

    id: ConversationId
    kind: ConversationKind
    title: str | None
    created_by: UserId | None
    created_at_ms: int
    last_seq: int
    last_activity_ms: int
    last_hash: str


@dataclass(frozen=True, slots=True)
class Session:
    """One signed-in device of a user, until it expires or is revoked."""

    id: SessionId
    user_id: UserId
    device: str
    expires_at_ms: int
    revoked_at_ms: int | None


def validate_username(username: object) -> str:
    if not isinstance(username, str) or not _USERNAME.fullmatch(username):
        raise BadRequest(say("model.username_must_1_64_letters"))
    return username


def parse_roles(raw: str | list[str] | tuple[str, ...]) -> tuple[Role, ...]:
    """Parse `a,b` or a list into known roles, keeping the order given, without repeats."""
    names = raw.split(",") if isinstance(raw, str) else list(raw)
    roles: list[Role] = []
    for name in names:
        name = name.strip()
        try:
            role = Role(name)
        except ValueError:
            known = ", ".join(r.value for r in Role)
            raise BadRequest(
                say("model.unknown_role_known_roles", name=name, known=known)
            ) from None
        if role not in roles:
            roles.append(role)
    if not roles:
        raise BadRequest(say("model.staff_user_needs_at_least"))
    return tuple(roles)


@dataclass(frozen=True, slots=True)
class NewStaff:
    """A staff account to create: sign-in name, password, roles and the name others see."""

    username: str
    password: str = field(repr=False)
    roles: tuple[Role, ...]
    display_name: str


def parse_new_staff(
    username: object, password: object, roles: object, display_name: object = None
) -> NewStaff:
    name = validate_username(username)
    if not isinstance(roles, str | list | tuple) or not all(isinstance(r, str) for r in roles):
        raise BadRequest(say("model.roles_must_list_role_names"))
    shown = _display_name(display_name, name)
    return NewStaff(name, _password(password), parse_roles(roles), shown)


def _password(password: object) -> str:
    if not isinstance(password, str) or not password:
        raise BadRequest(say("model.password_must_non_empty_string"))
    if len(password) > MAX_PASSWORD_CHARS:
        raise BadRequest(
            say("model.password_longer_than_characters", max_password_chars=MAX_PASSWORD_CHARS)
        )
    return password


def _display_name(name: object, fallback: str) -> str:
    if name is None or name == "":
        return fallback
    if not isinstance(name, str) or len(name) > MAX_DISPLAY_NAME_CHARS or not name.strip():
        raise BadRequest(
            say(
                "model.display_name_must_1_characters",
                max_display_name_chars=MAX_DISPLAY_NAME_CHARS,
            )
        )
    return name.strip()


def refuse_nul(text: str) -> str:
    """U+0000 is refused in every text a person writes: PostgreSQL cannot store it,
    and no one types it; the same answer on both stores."""
    if "\x00" in text:
        raise BadRequest(say("model.text_has_nul"))
    return text


def validate_text(text: object) -> str:
    if not isinstance(text, str):
        raise BadRequest(say("model.text_must_string"))
    refuse_nul(text)
    if len(text) > MAX_TEXT_CHARS:
        raise TooLarge(
            say("model.text_characters_limit", length=len(text), max_text_chars=MAX_TEXT_CHARS)
        )
    if not text.strip():
        raise BadRequest(say("model.text_must_not_empty"))
    return text


def text_field(raw: object, what: str, max_chars: int, *, required: bool = True) -> str:
    """A short text field of a request, stripped; optional ones may be missing (null)."""
    if raw is None and not required:
        return ""
    if not isinstance(raw, str):
        raise BadRequest(say("model.must_string", what=what))
    text = refuse_nul(raw).strip()
    if required and not text:
        raise BadRequest(say("model.must_not_empty", what=what))
    if len(text) > max_chars:
        raise TooLarge(say("model.longer_than_characters", what=what, max_chars=max_chars))
    return text


def validate_title(title: object, *, required: bool) -> str | None:
    if title is None or title == "":
        if required:
            raise BadRequest(say("model.channel_needs_title"))
        return None
    if not isinstance(title, str):
        raise BadRequest(say("model.title_must_string"))
    title = title.strip()
    if not title and required:
        raise BadRequest(say("model.channel_needs_title"))
    if len(title) > MAX_TITLE_CHARS:
        raise TooLarge(say("model.title_longer_than_characters", max_title_chars=MAX_TITLE_CHARS))
    return title or None


@dataclass(frozen=True, slots=True)
class NewConversation:
    """A channel (with a title) or a direct conversation, and who else is in it."""

    kind: ConversationKind
    title: str | None
    members: tuple[UserId, ...]


def parse_member_ids(raw: object, *, allow_repeats: bool = True) -> tuple[UserId, ...]:
    """User ids of a request, each once, in the order given.

    Creating a conversation has always let a list name someone twice (the
    caller, typically); adding people to a group says so when it does.
    """
    if not isinstance(raw, list) or not all(isinstance(m, str) and m for m in raw):
        raise BadRequest(say("model.members_must_list_user_ids"))
    if len(raw) > MAX_MEMBERS_PER_REQUEST:
        raise TooLarge(
            say(
                "model.at_most_members_per_request", max_members_per_request=MAX_MEMBERS_PER_REQUEST
            )
        )
    ids = tuple(dict.fromkeys(UserId(m) for m in raw))
    if not allow_repeats and len(ids) != len(raw):
        twice = next(m for m in ids if raw.count(m) > 1)
        raise BadRequest(say("model.person_listed_twice", user=twice))
    return ids


def parse_new_conversation(kind: object, title: object, members: object) -> NewConversation:
    conv_kind = next((k for k in ConversationKind if k.value == kind), None)
    if conv_kind not in (ConversationKind.CHANNEL, ConversationKind.DIRECT):
        raise BadRequest(say("model.kind_must_channel_direct"))
    required = conv_kind is ConversationKind.CHANNEL
    return NewConversation(
        conv_kind, validate_title(title, required=required), parse_member_ids(members)
    )


def direct_key(a: UserId, b: UserId) -> str:
    """The key that makes one direct conversation per pair, whoever creates it."""
    first, second = sorted((a, b))
    return f"{first}|{second}"


def preview(text: str, limit: int = 80) -> str:
    """A one-line preview of a message for conversation lists."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
